"""Objects of an image too large to post-process at once: block by block, stitched without seams.

The outputs (``(K, H, W)``, any array-like: a zarr array on disk, say) are cut into blocks of
``block`` pixels; each block is post-processed together with a margin of ``margin`` pixels
on every side, and keeps exactly the objects whose first pixel (top row, then left) lies in its core. An object is
then whole if it is smaller than the margin (256 px by default); a block where an object cut by
the window's edge reaches into the core is done again with twice the margin (up to 1,024 px); each
object is kept by one block only, so none is cut or counted twice.
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
#: a block whose cut objects reach into its core is done again with the margin doubled, up to this: objects of up to
#: about 1,000 px come out whole (a window of 4,096 px: 64 MB a float output map, 200 MB for three maps)
MAX_MARGIN = 1024


def label_in_blocks(outputs: Any, labels: Any, task: Any, block: int = DEFAULT_BLOCK,
                    margin: int = DEFAULT_MARGIN, max_margin: int = MAX_MARGIN, notes: list[str] | None = None) -> int:
    """Fill ``labels`` with the objects of ``outputs`` (see the module docstring); returns their count. A block
    where an object cut by its window's edge reaches into the block is done again with twice the margin, up to
    ``max_margin``; objects it keeps that are still cut then may be, and ``notes`` gets a line saying so."""
    height, width = outputs.shape[-2:]
    count, cut = 0, 0
    for top in range(0, height, block):
        for left in range(0, width, block):
            bottom, right = min(top + block, height), min(left + block, width)
            grown = margin
            while True:
                y0, x0 = max(top - grown, 0), max(left - grown, 0)
                y1, x1 = min(bottom + grown, height), min(right + grown, width)
                found = task.labels(np.asarray(outputs[:, y0:y1, x0:x1]))
                core = (top - y0, bottom - y0, left - x0, right - x0)
                boxes = ndi.find_objects(found)
                edge = _on_inner_edges(found, y0 > 0, y1 < height, x0 > 0, x1 < width)
                if grown >= max_margin or not _reaching_into(boxes, edge, core):
                    break
                grown = min(2 * grown, max_margin)
            kept = _objects_anchored_in(found, boxes, *core)
            cut += np.intersect1d(kept, edge).size  # at the largest margin: kept, and still cut
            if not kept.size:
                continue
            relabel = np.zeros(int(found.max()) + 1, np.uint32)
            relabel[kept] = np.arange(count + 1, count + 1 + kept.size, dtype=np.uint32)
            mine = relabel[found]
            current = np.asarray(labels[y0:y1, x0:x1])
            labels[y0:y1, x0:x1] = np.where((current == 0) & (mine > 0), mine, current)
            count += kept.size
    if cut and notes is not None:
        notes.append(f"{cut} object(s) reach more than {max_margin} px beyond a {block}-px block they lie in, and "
                     "may be cut where blocks meet")
    return count


def _reaching_into(boxes: list, edge_ids: np.ndarray, core: tuple[int, int, int, int]) -> bool:
    """Whether any of ``edge_ids`` (objects cut by the window's edge) reaches, with its bounding box, into the core
    rows [top, bottom) and columns [left, right): it may be this block's, and only whole can that be told."""
    top, bottom, left, right = core
    for i in edge_ids:
        rows, cols = boxes[int(i) - 1]
        if rows.start < bottom and rows.stop > top and cols.start < right and cols.stop > left:
            return True
    return False


def _objects_anchored_in(found: np.ndarray, boxes: list, top: int, bottom: int, left: int, right: int) -> np.ndarray:
    """Ids of ``found`` whose first pixel in raster order (top row, then left) lies in rows [top, bottom) and columns
    [left, right). A pixel of the object itself, unlike its centre of mass (outside an L or a hook): the block whose
    core holds it always sees the object, so each object is kept by one block, which sees it whole."""
    kept = []
    for index, box in enumerate(boxes):
        if box is None:
            continue
        rows, cols = box
        first_col = cols.start + int(np.argmax(found[rows.start, cols] == index + 1))
        if top <= rows.start < bottom and left <= first_col < right:
            kept.append(index + 1)
    return np.asarray(kept, dtype=np.int64)


def _on_inner_edges(found: np.ndarray, top: bool, bottom: bool, left: bool, right: bool) -> np.ndarray:
    """Ids of ``found`` on the edges that are flagged (the window's edges inside the image, where objects are cut)."""
    edges = [found[0] if top else None, found[-1] if bottom else None,
             found[:, 0] if left else None, found[:, -1] if right else None]
    values = np.concatenate([edge for edge in edges if edge is not None] or [np.zeros(0, found.dtype)])
    return np.unique(values[values > 0])
