"""Image normalisation, stored with the model so prediction normalises as training did.

Microscopy is often 16-bit with a narrow range (the sample's HeLa frames span 33,000 to
37,000 of 65,535), so the default maps each image's 1st and 99.8th percentiles, per
channel, to 0 and 1 (``unetkit train`` chooses the upper one by task: the 99th for pixels, the
99.8th for objects; :data:`unetkit.training.config.TASK_DEFAULTS`).

>>> import numpy as np
>>> norm = Normalization()
>>> out = norm.apply(np.linspace(1000, 2000, 1000, dtype=np.float32).reshape(1, 25, 40))
>>> out.dtype, round(float(np.percentile(out, 1)), 3), round(float(np.percentile(out, 99.8)), 3)
(dtype('float32'), 0.0, 1.0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol, get_args

import numpy as np

from ..errors import ConfigError
from ..options import from_dict, to_dict

class ImageNormalizer(Protocol):
    """What turns an image as read into network input: a :class:`Normalization` for unetkit's
    models, or a bioimage.io package's preprocessing
    (:class:`~unetkit.inference.bioimageio_ops.PackagePreprocessing`). It runs once per whole
    image, before tiling, so that per-image statistics are the image's, not a tile's."""

    def apply(self, image: np.ndarray) -> np.ndarray:
        """A ``(C, H, W)`` image as read to float32 ``(C, H, W)`` network input."""
        ...


NormalizationMode = Literal["percentile", "minmax", "scale", "none"]
NORMALIZATION_MODES: tuple[str, ...] = get_args(NormalizationMode)


@dataclass(frozen=True)
class Normalization:
    """How images become network input (``(C, H, W)`` float32).

    - ``percentile``: per image and channel, the ``low`` and ``high`` percentiles to 0 and 1;
    - ``minmax``: per image and channel, min and max to 0 and 1;
    - ``scale``: divide by ``high`` (255 for 8-bit data, say), the same for every image
      (training takes it from the images' type: :func:`full_scale_of`);
    - ``none``: as read, as float32.
    """

    mode: NormalizationMode = "percentile"
    low: float = 1.0
    high: float = 99.8

    def __post_init__(self) -> None:
        if self.mode not in NORMALIZATION_MODES:
            raise ConfigError(
                f"unknown normalisation {self.mode!r}", fix=f"choose one of {NORMALIZATION_MODES}"
            )
        if self.mode == "percentile" and not 0 <= self.low < self.high <= 100:
            raise ConfigError(f"percentiles must satisfy 0 <= low < high <= 100, got {self.low}, {self.high}")
        if self.mode == "scale":
            check_scale_divisor(self.high, "the scale normalisation's divisor")

    def apply(self, image: np.ndarray) -> np.ndarray:
        """Normalise a ``(C, H, W)`` image; returns float32 of the same shape.

        >>> Normalization().apply(np.zeros((64, 48, 3)))
        Traceback (most recent call last):
        ...
        ValueError: expected a (C, H, W) image, got shape (64, 48, 3): channels last? np.moveaxis(image, -1, 0) puts them first
        """
        check_channels_first(image)
        return self.fitted(image).apply(image)

    def fitted(self, sample: np.ndarray, scratch: bool = False) -> FixedScaling:
        """The affine map this normalisation gives an image whose pixels ``sample`` (``(C, ...)``)
        represents: the image itself, or a bounded sample of a huge one. With ``scratch``, the
        sample is the caller's throw-away copy: its pixels may be reordered, which saves
        another copy of it (hundreds of MiB for the sample of a huge image).

        >>> Normalization("minmax").fitted(np.array([[[2.0, 4.0]]])).apply(np.array([[[3.0]]])).tolist()
        [[[0.5]]]
        """
        channels = sample.shape[0]
        if self.mode == "none":
            return FixedScaling(np.zeros(channels), np.ones(channels))
        if self.mode == "scale":
            return FixedScaling(np.zeros(channels), np.full(channels, self.high))
        precision = working_type(np.asarray(sample).dtype)
        flat = np.asarray(sample, precision).reshape(channels, -1)
        if self.mode == "percentile":
            reorder = scratch or not np.shares_memory(flat, sample)  # a copy made here may be reordered too
            low, high = np.percentile(flat, [self.low, self.high], axis=1, overwrite_input=reorder)
        else:
            low, high = flat.min(axis=1), flat.max(axis=1)
        low, high = np.asarray(low, np.float64), np.asarray(high, np.float64)
        collapsed = high - low < narrowest_span(low, high, precision)
        if collapsed.any():  # a few bright spots on 0s: the percentiles meet; the brightest pixel is 1
            high = np.where(collapsed, np.asarray(flat.max(axis=1), np.float64), high)
        span = high - low
        return FixedScaling(low, np.where(span < narrowest_span(low, high, precision), 1.0, span))  # constant: 0s

    def __str__(self) -> str:
        """In a few words, for messages.

        >>> str(Normalization("percentile", 1.0, 99.0)), str(Normalization("scale", high=255.0))
        ('percentile 1 to 99', 'scale 255')
        """
        if self.mode == "percentile":
            return f"percentile {self.low:g} to {self.high:g}"
        return self.mode if self.mode in ("minmax", "none") else f"{self.mode} {self.high:g}"

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Normalization:
        return from_dict(cls, values)


@dataclass(frozen=True)
class FixedScaling:
    """``(image - offset) / span`` per channel, with the numbers fixed: what a normalisation
    fitted to one image applies to any region of it."""

    offset: np.ndarray
    span: np.ndarray

    def apply(self, image: np.ndarray) -> np.ndarray:
        image = np.asarray(image)
        if not np.any(self.offset) and np.all(np.asarray(self.span) == 1):
            return image.astype(np.float32, copy=False)
        precision = working_type(image.dtype)  # float64 images keep their digits until the offset is off
        offset = np.asarray(self.offset, precision)[:, None, None]
        span = np.asarray(self.span, precision)[:, None, None]
        return ((image.astype(precision, copy=False) - offset) / span).astype(np.float32, copy=False)


def working_type(dtype: np.dtype) -> type:
    """The float type an image of ``dtype`` is normalised in: float64 for types whose values
    float32 would round (float64, 32- and 64-bit integers), float32 for the rest.

    >>> working_type(np.dtype("uint16")).__name__, working_type(np.dtype("float64")).__name__
    ('float32', 'float64')
    """
    wide = dtype.itemsize > 4 or (dtype.kind in "iu" and dtype.itemsize == 4)
    return np.float64 if wide else np.float32


def narrowest_span(low: np.ndarray, high: np.ndarray, precision: type = np.float32) -> np.ndarray:
    """The narrowest span a fitted normalisation takes as one: eight steps of the working ``precision``
    at the bounds' magnitude (about a millionth of it in float32), so that an image whose values span
    1e-7 is normalised as one spanning 1. Below it the percentiles have met: the image's maximum
    is taken as the upper bound, and a constant image is divided by 1 (0s, not rounding noise blown up).

    >>> narrowest_span(np.array([0.0, 1000.0]), np.array([0.0, 1000.0])).round(6).tolist()
    [0.0, 0.000954]
    """
    magnitude = np.maximum(np.abs(low), np.abs(high))
    return np.maximum(magnitude * 8 * np.finfo(precision).eps, 1e-30)


FULL_SCALE_TYPES = ("uint8", "int8", "uint16", "int16")
MIN_SCALE_DIVISOR, MAX_SCALE_DIVISOR = 1e-6, 1e30  # well inside float32, with room for the pixel values


def check_channels_first(image: np.ndarray) -> None:
    """Raise unless ``image`` is ``(C, H, W)`` with a channel axis that looks like one (a handful of channels): an
    ``(H, W)`` or ``(H, W, C)`` array would be normalised row by row as if each row were a channel."""
    shape = np.shape(image)
    if len(shape) != 3:
        raise ValueError(f"expected a (C, H, W) image, got shape {shape}: a grey (H, W) image is image[None]")
    if shape[0] > 16 and shape[2] <= 4:
        raise ValueError(f"expected a (C, H, W) image, got shape {shape}: channels last? np.moveaxis(image, -1, 0) "
                         "puts them first")


def check_scale_divisor(value: float, name: str = "--scale-divisor") -> None:
    """Refuse a divisor that is not a positive number float32 holds as one: ``1e-300`` would
    become 0 there (and the images infinite), ``1e39`` infinite (and the images 0).

    >>> check_scale_divisor(4095.0)
    >>> check_scale_divisor(1e-300)
    Traceback (most recent call last):
    unetkit.errors.ConfigError: --scale-divisor must be a positive number between 1e-06 and 1e+30, got 1e-300
      fix: the intensity that should become 1: 255 for 8-bit images, 4095 for 12-bit ones
    """
    if not MIN_SCALE_DIVISOR <= value <= MAX_SCALE_DIVISOR:  # false for nan too
        raise ConfigError(f"{name} must be a positive number between {MIN_SCALE_DIVISOR:g} and "
                          f"{MAX_SCALE_DIVISOR:g}, got {value:g}",
                          fix="the intensity that should become 1: 255 for 8-bit images, 4095 for 12-bit ones")


def full_scale_of(dtype: str) -> float | None:
    """The largest value of an 8- or 16-bit integer image type, which ``scale`` divides by;
    None for other types (floats, 32-bit integers), which have no customary full scale.

    >>> full_scale_of("uint16"), full_scale_of("uint8"), full_scale_of("float32")
    (65535.0, 255.0, None)
    """
    return float(np.iinfo(dtype).max) if dtype in FULL_SCALE_TYPES else None


def to_channels_first(plane: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, C) plane as (C, H, W)."""
    return plane[None] if plane.ndim == 2 else np.moveaxis(plane, -1, 0)
