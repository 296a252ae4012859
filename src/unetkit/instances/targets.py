"""From instance label images to what the network learns: one encoder per separation method.

Each encoder takes a label patch (objects numbered 1..N, 0 background; ids may skip) and
returns the training targets of one method. They run on augmented patches, where the batches are
made (a background thread where a core is spare: :func:`unetkit.data.prefetch.batch_feed`).

- :func:`three_class_target`: background 0, interior 1, boundary 2 (each object's inner
  boundary, so two touching objects are parted by two boundary pixels);
- :func:`distance_target`: foreground and, per object, the distance to its boundary scaled
  to [0, 1] (touching objects parted, so each has its own hill);
- :func:`border_weight_target`: the U-Net paper's foreground with 1-pixel gaps between
  touching objects, and its weight map ``w(x) = w_c(x) + w0 exp(-(d1 + d2)^2 / (2 sigma^2))``
  (w0 = 10, sigma = 5 px; w_c balances the classes; d1, d2 are the distances to the nearest
  and second-nearest object).

>>> import numpy as np
>>> labels = np.array([[1, 1, 2, 2],
...                    [1, 1, 2, 2]])
>>> touching_gap(labels).astype(int).tolist()      # the gap goes on the lower id's side
[[0, 1, 0, 0], [0, 1, 0, 0]]
>>> int(three_class_target(np.pad(labels, 1)).max())
2
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import find_boundaries

BACKGROUND, INTERIOR, BOUNDARY = 0, 1, 2


def touching_gap(labels: np.ndarray) -> np.ndarray:
    """Pixels of an object that touch (8-neighbourhood) an object of a higher id: a 1-pixel gap."""
    higher = ndi.maximum_filter(labels, size=3, mode="nearest")
    return (labels > 0) & (higher > labels)


def touching_border(labels: np.ndarray) -> np.ndarray:
    """Pixels of an object that touch another object, on both sides."""
    higher = ndi.maximum_filter(labels, size=3, mode="nearest")
    nonzero = np.where(labels > 0, labels, np.iinfo(np.int64).max)
    lower = ndi.minimum_filter(nonzero, size=3, mode="nearest")
    return (labels > 0) & ((higher > labels) | (lower < labels))


def three_class_target(labels: np.ndarray) -> np.ndarray:
    """Background 0, interior 1, boundary 2 (uint8)."""
    target = (labels > 0).astype(np.uint8)
    target[find_boundaries(labels, mode="inner") & (labels > 0)] = BOUNDARY
    return target


def distance_target(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Foreground (uint8) and each object's distance to its boundary, scaled to [0, 1] (float32)."""
    parted = (labels > 0) & ~touching_border(labels)
    distance = ndi.distance_transform_edt(parted)
    ids = np.unique(labels[labels > 0])
    if ids.size:
        peak = np.zeros(int(labels.max()) + 1)
        peak[ids] = ndi.maximum(distance, labels, ids)
        scale = peak[labels]
        distance = np.divide(distance, scale, out=np.zeros_like(distance), where=scale > 0)
    return (labels > 0).astype(np.uint8), distance.astype(np.float32)


def border_weight_target(
    labels: np.ndarray, w0: float = 10.0, sigma: float = 5.0, max_objects: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """Foreground with 1-pixel gaps between touching objects (uint8), and the paper's weights (float32)."""
    foreground = (labels > 0) & ~touching_gap(labels)
    weights = np.ones(labels.shape, np.float32)
    share = foreground.mean()
    if 0 < share < 1:  # w_c: each class weighs as much as the other in total
        weights[foreground] = 0.5 / share
        weights[~foreground] = 0.5 / (1 - share)
    ids = np.unique(labels[labels > 0])[:max_objects]
    if ids.size >= 2:
        nearest = np.full(labels.shape, np.inf)
        second = np.full(labels.shape, np.inf)
        for object_id in ids:
            distance = ndi.distance_transform_edt(labels != object_id)
            second = np.minimum(second, np.maximum(nearest, distance))
            nearest = np.minimum(nearest, distance)
        border = w0 * np.exp(-((nearest + second) ** 2) / (2 * sigma**2))
        weights += np.where(foreground, 0.0, border).astype(np.float32)
    return foreground.astype(np.uint8), weights
