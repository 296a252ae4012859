"""Objects of an image too large to post-process at once: block by block, stitched without seams.

The outputs (``(K, H, W)``, any array-like: a zarr array on disk, say) are cut into blocks of
``block`` pixels; each block is post-processed together with a margin of ``margin`` pixels
on every side, and keeps exactly the objects whose centre lies in its core. An object is
then whole if it is smaller than the margin, so the margin should exceed the largest object
(256 px by default); each object is kept by one block only, so none is cut or counted twice.
The kept objects are numbered across blocks (1..N) and written into ``labels`` (a ``(H, W)``
array-like: a zarr array, say), where a pixel already claimed by an object of an earlier block
keeps it.

>>> import numpy as np
>>> from unetkit.instances.task import InstanceTask
>>> outputs = np.zeros((2, 40, 40), np.float32)
>>> outputs[0, 5:35, 18:22] = 1; outputs[1, 5:35, 19:21] = 0.9      # one long object across blocks
>>> labels = np.zeros((40, 40), np.uint32)
>>> label_in_blocks(outputs, labels, InstanceTask(min_size=1), block=16, margin=24)
1
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage as ndi

DEFAULT_BLOCK = 2048
DEFAULT_MARGIN = 256


def label_in_blocks(outputs: Any, labels: Any, task: Any, block: int = DEFAULT_BLOCK,
                    margin: int = DEFAULT_MARGIN) -> int:
    """Fill ``labels`` with the objects of ``outputs`` (see the module docstring); returns their count."""
    height, width = outputs.shape[-2:]
    count = 0
    for top in range(0, height, block):
        for left in range(0, width, block):
            bottom, right = min(top + block, height), min(left + block, width)
            y0, x0 = max(top - margin, 0), max(left - margin, 0)
            y1, x1 = min(bottom + margin, height), min(right + margin, width)
            found = task.labels(np.asarray(outputs[:, y0:y1, x0:x1]))
            kept = _objects_centred_in(found, top - y0, bottom - y0, left - x0, right - x0)
            if not kept.size:
                continue
            relabel = np.zeros(int(found.max()) + 1, np.uint32)
            relabel[kept] = np.arange(count + 1, count + 1 + kept.size, dtype=np.uint32)
            mine = relabel[found]
            current = np.asarray(labels[y0:y1, x0:x1])
            labels[y0:y1, x0:x1] = np.where((current == 0) & (mine > 0), mine, current)
            count += kept.size
    return count


def _objects_centred_in(found: np.ndarray, top: int, bottom: int, left: int, right: int) -> np.ndarray:
    """Ids of ``found`` whose centre of mass lies in rows [top, bottom) and columns [left, right)."""
    ids = np.unique(found[found > 0])
    if not ids.size:
        return ids
    centres = np.asarray(ndi.center_of_mass(np.ones_like(found), found, ids)).reshape(-1, 2)
    inside = (centres[:, 0] >= top) & (centres[:, 0] < bottom) & (centres[:, 1] >= left) & (centres[:, 1] < right)
    return ids[inside]
