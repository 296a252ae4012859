"""From the network's per-pixel outputs to an instance label image: short pipelines of named steps.

Each method's pipeline reads: outputs -> foreground -> seeds -> watershed (or connected
components) -> relabel -> drop small objects. Every step is a pure function on arrays,
built on scipy and scikit-image.

- :func:`labels_from_three_class`: softmax (background, interior, boundary); seeds are the
  connected interiors, grown by a watershed on the boundary probability inside the foreground;
- :func:`labels_from_distance`: foreground probability and distance-to-boundary map; seeds
  are the hills' tops that rise at least ``seed_height`` above the saddle to any higher hill
  (h-maxima of the lightly smoothed distance; every object's distance peaks at 1 in the
  targets, so the height is a share of an object's peak), grown by a watershed on the
  inverted distance. Two earlier rules failed by measurement (BENCHMARKS.md, "Objects"): a
  fixed 0.5 (networks whose distances spanned 0.1 to 0.5 lost their seeds), and a share of
  the highest distance in each connected piece of foreground (two touching nuclei whose
  valley stayed above that share merged);
- :func:`labels_from_border_gaps`: foreground probability learnt with 1-pixel gaps between
  touching objects (the paper's weight map); connected components, then grown back by a pixel.

Foreground pixels no seed reaches (an object whose interior the network missed) become
objects of their own rather than being dropped.

>>> import numpy as np
>>> fg = np.zeros((1, 5, 9), np.float32); fg[0, 1:4, 1:8] = 1        # two touching blobs ...
>>> distance = np.zeros_like(fg); distance[0, 2, [2, 6]] = 1           # ... with two hill tops
>>> labels = labels_from_distance(np.concatenate([fg, distance]), min_size=1)   # one piece, two tops
>>> int(labels.max()), bool(labels[2, 2] != labels[2, 6])
(2, True)
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.morphology import h_maxima
from skimage.segmentation import expand_labels, relabel_sequential, watershed

FOUR_CONNECTED = ndi.generate_binary_structure(2, 1)
SEED_SMOOTHING = 1.0  # px: the distance is smoothed this much before its hill tops are found


def connected_seeds(mask: np.ndarray, min_size: int = 1) -> np.ndarray:
    """Connected components of ``mask`` (4-connected) with at least ``min_size`` pixels, as labels."""
    seeds, _ = ndi.label(mask, structure=FOUR_CONNECTED)
    return remove_small(seeds, min_size) if min_size > 1 else seeds


def add_unseeded(labels: np.ndarray, foreground: np.ndarray) -> np.ndarray:
    """Foreground components that no seed reached, added as objects of their own."""
    missed, count = ndi.label(foreground & (labels == 0), structure=FOUR_CONNECTED)
    if count:
        labels = np.where(missed > 0, missed + labels.max(), labels)
    return labels


def remove_small(labels: np.ndarray, min_size: int) -> np.ndarray:
    """Objects smaller than ``min_size`` pixels set to background."""
    areas = np.bincount(labels.ravel())
    small = areas < min_size
    small[0] = False
    return np.where(small[labels], 0, labels)


def finish(labels: np.ndarray, min_size: int) -> np.ndarray:
    """Drop small objects and number the rest 1..N (uint32 while ids need it, else uint16)."""
    labels = relabel_sequential(remove_small(labels, min_size))[0]
    return labels.astype(np.uint16 if labels.max(initial=0) < 2**16 else np.uint32)


def labels_from_three_class(outputs: np.ndarray, threshold: float = 0.5, min_size: int = 10) -> np.ndarray:
    """Objects from (3, H, W) probabilities of background, interior and boundary."""
    background, interior, boundary = outputs
    foreground = background < threshold
    seeds = connected_seeds((interior > threshold) & foreground, min_size=max(1, min_size // 4))
    labels = watershed(boundary - interior, seeds, mask=foreground)
    return finish(add_unseeded(labels, foreground), min_size)


def labels_from_distance(
    outputs: np.ndarray, threshold: float = 0.5, seed_height: float = 0.1, min_size: int = 10
) -> np.ndarray:
    """Objects from (2, H, W) foreground probability and scaled distance to the boundary."""
    check_not_a_softmax(outputs)
    foreground_probability, distance = outputs
    foreground = foreground_probability > threshold
    distance = np.nan_to_num(distance, nan=0.0, posinf=1.0, neginf=0.0)  # h-maxima never returns on NaN or inf
    smooth = np.where(foreground, ndi.gaussian_filter(distance, SEED_SMOOTHING), 0).astype(np.float32)
    seeds, _ = ndi.label(hill_tops(smooth, seed_height) & foreground, structure=FOUR_CONNECTED)
    labels = watershed(-smooth, seeds, mask=foreground)
    return finish(add_unseeded(labels, foreground), min_size)


def check_not_a_softmax(outputs: np.ndarray) -> None:
    """Refuse a distance model's two outputs put through a softmax (they sum to 1 at every pixel), which is what a
    bare network given to :func:`unetkit.predict_tiled` gets: the objects found in them are nonsense.

    >>> foreground = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    >>> check_not_a_softmax(np.stack([foreground, 1 - foreground]))
    Traceback (most recent call last):
    ...
    ValueError: a distance model's outputs are two sigmoids (foreground, distance to the boundary), but these sum to 1 at every pixel, as a softmax over them does: predict with unetkit.load_predictor(PATH).predictor, which applies the model's own activation, rather than the bare network of unetkit.load_model
    """
    outputs = np.asarray(outputs)
    if outputs.shape[0] != 2 or outputs[0].size < 64 or np.ptp(outputs[0]) < 0.2:  # an untrained network says 0.5
        return
    if float(np.abs(outputs[0] + outputs[1] - 1).max()) < 1e-4:
        raise ValueError("a distance model's outputs are two sigmoids (foreground, distance to the boundary), but these "
                         "sum to 1 at every pixel, as a softmax over them does: predict with "
                         "unetkit.load_predictor(PATH).predictor, which applies the model's own activation, rather "
                         "than the bare network of unetkit.load_model")


def hill_tops(height_map: np.ndarray, height: float) -> np.ndarray:
    """Where ``height_map`` has a top rising at least ``height`` above the saddle to any higher
    top (scikit-image's h-maxima), found on every second row and column and drawn back at full
    size: the morphological reconstruction behind h-maxima costs about 1 s per megapixel at full
    size on 2 cores, four times less so, and the tops were the same on the benchmark sets. The
    price: two touching objects of a few pixels across (radius 3) may share one top or not
    depending on where they fall on the 2-pixel grid.

    >>> yy, xx = np.mgrid[:16, :24]
    >>> hills = np.maximum(1 - np.hypot(yy - 8, xx - 8) / 8, 0.9 - np.hypot(yy - 8, xx - 16) / 8)  # 0.4 to the valley
    >>> int(ndi.label(hill_tops(hills, 0.1))[1]), int(ndi.label(hill_tops(hills, 0.5))[1])
    (2, 1)
    """
    tops = h_maxima(height_map[::2, ::2], height).astype(bool)
    return tops.repeat(2, axis=0).repeat(2, axis=1)[: height_map.shape[0], : height_map.shape[1]]


def labels_from_border_gaps(outputs: np.ndarray, threshold: float = 0.5, min_size: int = 10) -> np.ndarray:
    """Objects from (1, H, W) foreground probability with gaps between touching objects."""
    foreground = outputs[0] > threshold
    labels = connected_seeds(foreground, min_size=max(1, min_size // 2))
    return finish(fill_gaps(labels), min_size)


def fill_gaps(labels: np.ndarray) -> np.ndarray:
    """Background pixels between two different objects given back to the nearer one (the
    1-pixel gaps the border-weight method learns); objects do not grow outwards."""
    higher = ndi.maximum_filter(labels, size=3)
    lower = ndi.minimum_filter(np.where(labels > 0, labels, np.iinfo(labels.dtype).max), size=3)
    gap = (labels == 0) & (higher > 0) & (lower < higher)
    return np.where(gap, expand_labels(labels, distance=1), labels)


def labels_from_foreground(outputs: np.ndarray, threshold: float = 0.5, min_size: int = 10) -> np.ndarray:
    """Connected components of a (1, H, W) foreground probability: the baseline of a semantic model."""
    return finish(connected_seeds(outputs[0] > threshold), min_size)
