"""Opening the label images that ``unetkit predict`` writes as napari Labels layers.

``<stem>_labels.png`` / ``.tif`` (class indices) and ``<stem>_instances.tif`` (object ids)
are read as Labels layers; a multi-page TIFF becomes a stack. Any other file, or a file of
such a name that holds colour or non-integer pixels, is declined (``None``), so napari
offers its own readers for it.

>>> import tempfile
>>> import numpy as np
>>> from unetkit.data.io import write_image
>>> folder = Path(tempfile.mkdtemp())
>>> write_image(folder / "cells_labels.png", np.array([[0, 1], [1, 0]], np.uint8))
>>> [(data.tolist(), meta["name"], kind) for data, meta, kind in read_labels(str(folder / "cells_labels.png"))]
[([[0, 1], [1, 0]], 'cells_labels', 'labels')]
>>> get_reader(str(folder / "cells.png")) is None
True
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..data.io import plane_shape, read_planes
from ..errors import InputError, UnetkitError

LayerData = tuple[Any, dict[str, Any], str]
Reader = Callable[[str | list[str]], list[LayerData]]

# File name endings that unetkit predict writes, and how their values are meant.
LABEL_ENDINGS = {
    "_labels.png": "classes", "_labels.tif": "classes", "_labels.tiff": "classes",
    "_instances.tif": "instances", "_instances.tiff": "instances",
}
MASK_MODE_KEY = "unetkit_mask_mode"  # layer metadata: how the Train widget reads these labels


def label_kind(path: str | Path) -> str | None:
    """``classes`` or ``instances`` for a unetkit label file name, else None.

    >>> label_kind("a/cells_instances.tif"), label_kind("cells_overlay.png")
    ('instances', None)
    """
    name = Path(path).name.lower()
    return next((kind for ending, kind in LABEL_ENDINGS.items() if name.endswith(ending)), None)


def is_label_image(path: str | Path) -> bool:
    """A unetkit label file name, holding one channel of integers (read from the header only)."""
    if label_kind(path) is None:
        return False
    try:
        shape = plane_shape(path)
        return shape.channels == 1 and np.dtype(shape.dtype).kind in "uib"
    except UnetkitError:
        return False


def get_reader(path: str | list[str]) -> Reader | None:
    """napari's reader hook: :func:`read_labels` if every path is a unetkit label image, else None."""
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    if not paths or not all(is_label_image(p) for p in paths):
        return None
    return read_labels


def read_labels(path: str | list[str]) -> list[LayerData]:
    """One Labels layer per file: ``(data, {"name": stem, ...}, "labels")``."""
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    layers = []
    for file in map(Path, paths):
        planes = read_planes(file)
        data = planes[0] if len(planes) == 1 else np.stack(planes)
        if data.dtype.kind not in "uib":
            raise InputError(f"holds {data.dtype} pixels, not integer labels", path=file,
                             fix="open it as an image (napari's own reader) instead")
        layers.append((data, {"name": file.stem, "metadata": {MASK_MODE_KEY: label_kind(file)}}, "labels"))
    return layers
