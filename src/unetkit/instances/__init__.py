"""Instance segmentation: touching objects separated, counted, measured and scored.

- :mod:`~unetkit.instances.targets`: instance labels -> what each method's network learns;
- :mod:`~unetkit.instances.postprocess`: network outputs -> instance labels;
- :mod:`~unetkit.instances.matching`: object-level scores (Hungarian matching by IoU, F1, AP, PQ, SEG);
- :mod:`~unetkit.instances.measure`: one table row per object;
- :mod:`~unetkit.instances.task`: :class:`InstanceTask`, the seam training and prediction use.

>>> import numpy as np
>>> outputs = np.zeros((2, 8, 8), np.float32); outputs[0, 2:6, 2:6] = 1; outputs[1, 3:5, 3:5] = 1
>>> labels = instances_from_probabilities(outputs, method="distance", min_size=1)
>>> int(labels.max()), match_instances(labels, labels).f1
(1, 1.0)
"""

from __future__ import annotations

import numpy as np

from .matching import MatchStats, match_instances
from .postprocess import labels_from_foreground
from .task import InstanceTask


def instances_from_probabilities(
    outputs: np.ndarray,
    method: str = "distance",
    *,
    threshold: float = 0.5,
    seed_height: float = 0.1,
    min_size: int = 10,
) -> np.ndarray:
    """Instance labels (uint16/uint32, 0 = background) from a network's blended outputs (K, H, W).

    ``method`` is the instance method the network was trained with (``distance``,
    ``three-class``, ``border-weights``), or ``foreground``: connected components of a
    one-class (semantic) probability, the baseline that merges touching objects.

    >>> cells = np.zeros((10, 18), np.int32); cells[2:8, 2:9] = 1; cells[2:8, 9:16] = 2  # two touching cells
    >>> outputs = np.stack(InstanceTask(method="distance").encode(cells))  # a perfect network's foreground, distance
    >>> labels = instances_from_probabilities(outputs, method="distance")
    >>> int(labels.max()), labels.dtype, match_instances(cells, labels).f1
    (2, dtype('uint16'), 1.0)
    >>> int(instances_from_probabilities(outputs[:1], method="foreground").max())  # the baseline: one object
    1
    """
    if method == "foreground":
        return labels_from_foreground(np.asarray(outputs), threshold, min_size)
    task = InstanceTask(method=method, threshold=threshold, seed_height=seed_height, min_size=min_size)  # type: ignore[arg-type]
    return task.labels(outputs)


__all__ = ["InstanceTask", "MatchStats", "instances_from_probabilities", "match_instances"]
