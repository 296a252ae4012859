"""Notes on an image whose network inputs lie where the model's training inputs did not: said, not silent.

A model trained with ``--normalization scale`` divided every training image by one number (65,535 for
16-bit images, say), so it saw inputs up to about 1 and learnt their brightness. An image of another
type gives inputs of another range and the predictions are likely wrong, with nothing else to show
it: far brighter (16-bit frames for an 8-bit model), or far darker (8-bit frames for a 16-bit model:
every input below 0.004, which a 16-bit model's masks read as background). A bioimage.io package's
division (``scale_linear``) is looked at the same way, and its ``scale_range``, which divides by
almost 0 where an image's percentiles are equal. ``unetkit predict`` and ``unetkit evaluate`` print
these notes.

>>> import numpy as np
>>> from unetkit.data.normalize import Normalization
>>> image = np.full((1, 4, 4), 200 / 65535, np.float32)
>>> input_notes(Normalization("scale", high=65535.0), "a.png", image, np.dtype(np.uint8))
['a.png: an 8-bit image (values up to 255) for a model whose training images were divided by 65535 (--normalization scale): its inputs all lie below 0.0039; an image of another type or camera? Predictions may be wrong']
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..data.normalize import Normalization
from .bioimageio_ops import PackagePreprocessing

#: normalised inputs beyond this (percentile normalisation gives about 0 to 1) come from a division by almost nothing
FLAT_IMAGE_INPUT = 1e3
#: an integer image whose type's largest value is under this share of the model's divisor is of another type
DARKER_TYPE_SHARE = 0.25


def input_notes(normalization: Any, name: str, image: np.ndarray, raw_dtype: np.dtype) -> list[str]:
    """Notes on ``image`` (``(C, H, W)`` network input, named ``name``; read from a file of type
    ``raw_dtype``) for a model that normalises with ``normalization``; empty when nothing is amiss."""
    if isinstance(normalization, PackagePreprocessing):
        notes = _divided_by_nothing(name, image, normalization)
        steps = [(step, kwargs) for step, kwargs in normalization.steps if step != "ensure_dtype"]
        if len(steps) == 1 and steps[0][0] == "scale_linear" and not np.any(steps[0][1].get("offset", 0.0)):
            gain = float(np.max(steps[0][1].get("gain", 1.0)))
            if 0 < gain < 1:  # a division (a scale model's package, 1/255 say), not a standardisation
                notes += _brighter(name, image, "the package's scale_linear")
                notes += _darker_type(name, raw_dtype, 1 / gain, "the package's scale_linear")
        return notes
    if not isinstance(normalization, Normalization) or normalization.mode != "scale":
        return []
    divisor = f"the {normalization.high:g} that the model's training images were divided by (--normalization scale)"
    return _brighter(name, image, divisor) + _darker_type(name, raw_dtype, normalization.high,
                                                          "--normalization scale")


def _brighter(name: str, image: np.ndarray, divisor: str) -> list[str]:
    brightest = float(image.max(initial=0.0))
    if brightest > 1.5:
        return [f"{name}: pixels reach {brightest:.1f} times {divisor}: an image of another type or camera? "
                "Predictions may be wrong"]
    return []


def _darker_type(name: str, raw_dtype: np.dtype, divisor: float, how: str) -> list[str]:
    raw_dtype = np.dtype(raw_dtype)
    if raw_dtype.kind not in "ui" or raw_dtype == np.bool_:
        return []
    largest = int(np.iinfo(raw_dtype).max)
    if largest >= DARKER_TYPE_SHARE * divisor:
        return []
    return [f"{name}: an {raw_dtype.itemsize * 8}-bit image (values up to {largest}) for a model whose training "
            f"images were divided by {divisor:g} ({how}): its inputs all lie below {largest / divisor:.2g}; an image "
            "of another type or camera? Predictions may be wrong"]


def _divided_by_nothing(name: str, image: np.ndarray, preprocessing: PackagePreprocessing) -> list[str]:
    """A bioimage.io package maps percentiles to 0 and 1 with ``scale_range``, which divides by almost nothing
    where both percentiles are equal (a background-subtracted frame: most pixels at one value); unetkit's own
    normalisation takes the image's maximum there, the format has no way to say so: said, not silent."""
    if not any(step == "scale_range" for step, _ in preprocessing.steps):
        return []
    brightest = float(np.abs(image).max(initial=0.0))
    if brightest > FLAT_IMAGE_INPUT:
        return [f"{name}: the package's normalisation gives inputs up to {brightest:.3g}: the image's lower "
                "and upper percentiles are equal (most pixels hold one value), and scale_range divides by "
                "almost 0 there, in every tool that runs the package; predict such images with the "
                "checkpoint (.pt) or ONNX file, whose normalisation takes the image's maximum instead"]
    return []
