"""bioimage.io pre- and post-processing steps, run with NumPy (no bioimageio.core needed).

A step is an operation id of the model format and its keyword arguments as plain values,
as a package's ``rdf.yaml`` writes them::

    ("scale_range", {"axes": ["x", "y"], "min_percentile": 1.0, "max_percentile": 99.8})

Axis names are unetkit's: ``batch``, ``channel``, ``y``, ``x``.

- Preprocessing (:class:`PackagePreprocessing`) runs once per image, on the whole
  ``(C, H, W)`` image, before tiling: its statistics (percentiles, mean, standard deviation)
  are the image's, "per sample" as the format defines them, never a tile's. It is what
  unetkit's per-image normalisation is for a checkpoint, and stands in its place.
- Postprocessing (:func:`postprocess`) runs on each batch of tile outputs ``(N, C, H, W)``,
  so only element-wise and per-channel steps are accepted; a step that needs statistics of
  the whole output would give another answer per tile and is refused.

>>> import numpy as np
>>> image = np.arange(12, dtype=np.float32).reshape(1, 3, 4)
>>> pre = PackagePreprocessing((("zero_mean_unit_variance", {"axes": ["x", "y"]}),))
>>> out = pre.apply(image)
>>> round(float(out.mean()), 6), round(float(out.std()), 4), out.dtype
(0.0, 1.0, dtype('float32'))
>>> postprocess((("sigmoid", {}),), np.zeros((1, 1, 2, 2), np.float32)).ravel().tolist()
[0.5, 0.5, 0.5, 0.5]
>>> unsupported_steps((("stardist_postprocessing", {}),), "postprocessing")
["'stardist_postprocessing' (unetkit runs: binarize, clip, ensure_dtype, scale_linear, sigmoid, softmax)"]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal, Sequence

import numpy as np

from ..errors import InputError

Step = tuple[str, dict[str, Any]]
Stage = Literal["preprocessing", "postprocessing"]

IMAGE_AXES = ("channel", "y", "x")
BATCH_AXES = ("batch", "channel", "y", "x")
EPS = 1e-6  # bioimageio.core's epsilon where a step has none of its own


def _reduced(names: Sequence[str] | None, axes: tuple[str, ...]) -> tuple[int, ...]:
    """Indices of the axes a statistic is taken over: ``None`` means all of them.

    One image is one sample, so 'batch' in ``names`` changes nothing (per-dataset statistics
    of a single image are its own).
    """
    if names is None:
        return tuple(index for index, name in enumerate(axes) if name != "batch")
    return tuple(axes.index(name) for name in names if name in axes and name != "batch")


def _along(values: Any, kwargs: dict[str, Any], axes: tuple[str, ...]) -> Any:
    """A scalar, or per-channel values shaped to broadcast along ``kwargs['axis']``."""
    if "axis" not in kwargs or np.ndim(values) == 0:
        return values
    shape = [1] * len(axes)
    shape[axes.index(kwargs["axis"])] = -1
    return np.asarray(values, np.float32).reshape(shape)


def _percentile(x: np.ndarray, q: float, kwargs: dict[str, Any], axes: tuple[str, ...]) -> np.ndarray:
    return np.percentile(x, q, axis=_reduced(kwargs.get("axes"), axes), keepdims=True).astype(np.float32)


def _scale_range(x: np.ndarray, kwargs: dict[str, Any], axes: tuple[str, ...]) -> np.ndarray:
    low = _percentile(x, kwargs.get("min_percentile", 0.0), kwargs, axes)
    high = _percentile(x, kwargs.get("max_percentile", 100.0), kwargs, axes)
    return (x - low) / (high - low + np.float32(kwargs.get("eps", EPS)))


def _zero_mean_unit_variance(x: np.ndarray, kwargs: dict[str, Any], axes: tuple[str, ...]) -> np.ndarray:
    reduced = _reduced(kwargs.get("axes"), axes)
    mean = x.mean(axis=reduced, keepdims=True, dtype=np.float64)
    std = x.std(axis=reduced, keepdims=True, dtype=np.float64)
    return ((x - mean) / (std + kwargs.get("eps", EPS))).astype(np.float32)


def _fixed_zero_mean_unit_variance(x: np.ndarray, kwargs: dict[str, Any], axes: tuple[str, ...]) -> np.ndarray:
    mean, std = _along(kwargs["mean"], kwargs, axes), _along(kwargs["std"], kwargs, axes)
    return (x - mean) / (std + np.float32(EPS))


def _scale_linear(x: np.ndarray, kwargs: dict[str, Any], axes: tuple[str, ...]) -> np.ndarray:
    return x * _along(kwargs.get("gain", 1.0), kwargs, axes) + _along(kwargs.get("offset", 0.0), kwargs, axes)


def _clip(x: np.ndarray, kwargs: dict[str, Any], axes: tuple[str, ...]) -> np.ndarray:
    low, high = kwargs.get("min"), kwargs.get("max")
    if kwargs.get("min_percentile") is not None:
        low = _percentile(x, kwargs["min_percentile"], kwargs, axes)
    if kwargs.get("max_percentile") is not None:
        high = _percentile(x, kwargs["max_percentile"], kwargs, axes)
    return np.clip(x, low, high)


def _binarize(x: np.ndarray, kwargs: dict[str, Any], axes: tuple[str, ...]) -> np.ndarray:
    return x > _along(kwargs["threshold"], kwargs, axes)


def _sigmoid(x: np.ndarray, kwargs: dict[str, Any], axes: tuple[str, ...]) -> np.ndarray:
    return np.exp(-np.logaddexp(np.float32(0), -x))


def _softmax(x: np.ndarray, kwargs: dict[str, Any], axes: tuple[str, ...]) -> np.ndarray:
    axis = axes.index(kwargs.get("axis", "channel"))
    shifted = np.exp(x - x.max(axis=axis, keepdims=True))
    return shifted / shifted.sum(axis=axis, keepdims=True)


def _ensure_dtype(x: np.ndarray, kwargs: dict[str, Any], axes: tuple[str, ...]) -> np.ndarray:
    return x.astype(kwargs["dtype"])


Operation = Callable[[np.ndarray, dict[str, Any], tuple[str, ...]], np.ndarray]

#: element-wise and per-channel steps: the same answer on a tile as on the whole image
ELEMENTWISE: dict[str, Operation] = {
    "binarize": _binarize, "clip": _clip, "ensure_dtype": _ensure_dtype, "fixed_zero_mean_unit_variance":
    _fixed_zero_mean_unit_variance, "scale_linear": _scale_linear, "sigmoid": _sigmoid, "softmax": _softmax,
}
#: steps that take statistics of the tensor: per image in preprocessing only
WITH_STATISTICS: dict[str, Operation] = {
    "scale_range": _scale_range, "zero_mean_unit_variance": _zero_mean_unit_variance,
}
SUPPORTED: dict[Stage, dict[str, Operation]] = {
    "preprocessing": {**ELEMENTWISE, **WITH_STATISTICS},
    "postprocessing": {name: op for name, op in ELEMENTWISE.items() if name != "fixed_zero_mean_unit_variance"},
}


def unsupported_steps(steps: Sequence[Step], stage: Stage) -> list[str]:
    """What in ``steps`` unetkit cannot run at ``stage``, one line per step (empty: all fine)."""
    known = SUPPORTED[stage]
    problems = []
    for name, kwargs in steps:
        if name not in known:
            problems.append(f"{name!r} (unetkit runs: {', '.join(sorted(known))})")
        elif stage == "postprocessing" and name == "clip" and (
                kwargs.get("min_percentile") is not None or kwargs.get("max_percentile") is not None):
            problems.append("'clip' by percentiles of the output (statistics of a whole output; unetkit predicts tile by tile)")
    return problems


def _run(steps: Sequence[Step], array: np.ndarray, axes: tuple[str, ...], stage: Stage) -> np.ndarray:
    problems = unsupported_steps(steps, stage)
    if problems:
        raise ValueError(f"unsupported {stage}: {'; '.join(problems)}")
    for name, kwargs in steps:
        array = SUPPORTED[stage][name](array, kwargs, axes)
    return np.asarray(array, np.float32)


@dataclass(frozen=True)
class PackagePreprocessing:
    """A package's preprocessing, run on each whole image: unetkit's normalisation for it.

    ``apply`` takes a ``(C, H, W)`` image as read and returns the network's input, float32.
    """

    steps: tuple[Step, ...] = ()

    def apply(self, image: np.ndarray) -> np.ndarray:
        return _run(self.steps, np.asarray(image, np.float32), IMAGE_AXES, "preprocessing")

    def fitted(self, sample: np.ndarray, scratch: bool = False) -> PackagePreprocessing:
        """The same steps with their statistics taken from ``sample`` (``(C, N, 1)``: the image's pixels, or a
        bounded sample of a huge one) and fixed, so that any region of the image is preprocessed as the whole:
        what lets a package predict an image region by region. ``scale_range`` and ``zero_mean_unit_variance``
        become a ``scale_linear``, ``clip`` by percentiles a ``clip`` by values (``scratch``: unused, as
        :meth:`~unetkit.data.normalize.Normalization.fitted` takes it).

        >>> steps = (("scale_range", {"axes": ["x", "y"], "min_percentile": 0.0, "max_percentile": 100.0}),)
        >>> fixed = PackagePreprocessing(steps).fitted(np.array([[[2.0], [4.0]]]))
        >>> fixed.steps[0][0], fixed.apply(np.array([[[3.0]]])).round(4).tolist()
        ('scale_linear', [[[0.5]]])
        """
        problems = unsupported_steps(self.steps, "preprocessing")
        if problems:
            raise ValueError(f"unsupported preprocessing: {'; '.join(problems)}")
        array, fixed = np.asarray(sample, np.float32), []
        for step in self.steps:
            name, kwargs = _with_statistics_fixed(*step, array)
            array = SUPPORTED["preprocessing"][name](array, kwargs, IMAGE_AXES)  # the next step's statistics see this
            fixed.append((name, kwargs))
        return PackagePreprocessing(tuple(fixed))


def _with_statistics_fixed(name: str, kwargs: dict, array: np.ndarray) -> Step:
    """A preprocessing step whose statistics come from the image (``array``: its pixels as the step meets them) as one
    with those numbers written in; other steps as they are, and so are statistics of each pixel's channels alone
    (over neither y nor x: the same on any region). Statistics of each row (or column) alone cannot be taken from
    a sample of pixels: refused."""
    takes_statistics = name in WITH_STATISTICS or (name == "clip" and (
        kwargs.get("min_percentile") is not None or kwargs.get("max_percentile") is not None))
    if takes_statistics:
        over = {IMAGE_AXES[i] for i in _reduced(kwargs.get("axes"), IMAGE_AXES)} & {"y", "x"}
        if not over:
            return name, kwargs
        if len(over) == 1:
            along = over.pop()
            raise InputError(f"the package's preprocessing '{name}' takes statistics along {along} alone (of each "
                             f"{'row' if along == 'x' else 'column'}), which a sample of the image's pixels cannot "
                             "give: it cannot be predicted region by region",
                             fix="predict the image whole (without --probabilities-on-disk), or crop it to 8192 x "
                                 "8192 or less")
    if name == "scale_range":
        low = _percentile(array, kwargs.get("min_percentile", 0.0), kwargs, IMAGE_AXES)
        high = _percentile(array, kwargs.get("max_percentile", 100.0), kwargs, IMAGE_AXES)
        # in float64, as the in-memory step's subtraction comes first: an offset of 30000 on a span of 100 in float32
        # was 3e-5 off
        gain = 1 / (high - low + np.float32(kwargs.get("eps", EPS))).astype(np.float64)
        return "scale_linear", {"gain": gain, "offset": -low.astype(np.float64) * gain}
    if name == "zero_mean_unit_variance":
        reduced = _reduced(kwargs.get("axes"), IMAGE_AXES)
        mean = array.mean(axis=reduced, keepdims=True, dtype=np.float64)
        gain = 1 / (array.std(axis=reduced, keepdims=True, dtype=np.float64) + kwargs.get("eps", EPS))
        return "scale_linear", {"gain": gain, "offset": -mean * gain}
    if name == "clip" and (kwargs.get("min_percentile") is not None or kwargs.get("max_percentile") is not None):
        low, high = kwargs.get("min"), kwargs.get("max")
        if kwargs.get("min_percentile") is not None:
            low = _percentile(array, kwargs["min_percentile"], kwargs, IMAGE_AXES)
        if kwargs.get("max_percentile") is not None:
            high = _percentile(array, kwargs["max_percentile"], kwargs, IMAGE_AXES)
        return "clip", {"min": low, "max": high}
    return name, kwargs


def postprocess(steps: Sequence[Step], outputs: np.ndarray) -> np.ndarray:
    """A package's postprocessing of network outputs ``(N, C, H, W)``, float32."""
    return _run(steps, np.asarray(outputs, np.float32), BATCH_AXES, "postprocessing")
