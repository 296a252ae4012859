"""Opening the files that ``unetkit predict`` writes in napari.

``<stem>_labels.png`` / ``.tif`` (class indices) and ``<stem>_instances.tif`` (object ids)
are read as Labels layers; a multi-page TIFF becomes a stack. ``<stem>_probabilities.tif``
(``--probabilities``: an OME-TIFF of axes ``YX``, or ``CYX`` with one channel per output) is
read as Image layers, one per channel, into memory (napari shows each layer's whole plane, so reading through
zarr saved nothing: it held each shown plane again, 2.7 times the map's size in all, and kept the file open). Any
other file, or a file of such a name that holds other pixels (colour, or non-integer labels),
is declined (``None``), so napari offers its own readers for it.

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


PROBABILITY_ENDINGS = ("_probabilities.tif", "_probabilities.tiff")


def is_probability_name(path: str | Path) -> bool:
    """Whether ``path`` is named as ``unetkit predict --probabilities`` names its TIFFs (its header unread)."""
    return Path(path).name.lower().endswith(PROBABILITY_ENDINGS)


def probability_axes(path: str | Path) -> str | None:
    """The axes (``YX`` or ``CYX``) of a probability map that ``unetkit predict --probabilities`` wrote, from its
    name and header; None for any other file (another name, integer pixels, other axes, not a TIFF)."""
    if not is_probability_name(path):
        return None
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            axes, kind = series.axes, np.dtype(series.dtype).kind
    except (OSError, ValueError, IndexError, tifffile.TiffFileError):
        return None
    return axes if axes in ("YX", "CYX") and kind == "f" else None


def get_reader(path: str | list[str]) -> Reader | None:
    """napari's reader hook: :func:`read_files` if every path is a unetkit label image or probability map, else
    None."""
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    if not paths or not all(is_label_image(p) or probability_axes(p) is not None for p in paths):
        return None
    return read_files


def read_files(path: str | list[str]) -> list[LayerData]:
    """Each file's layers: label images as :func:`read_labels` reads them, probability maps as
    :func:`read_probabilities` does."""
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    return [layer for file in paths for layer in
            (read_probabilities(file) if is_probability_name(file) else read_labels(file))]  # each checks its file


def read_probabilities(path: str | Path) -> list[LayerData]:
    """A probability map as Image layers, one per channel (``name [k]``; one layer, ``name``, for a one-class
    model's), read whole: each channel's layer is a view of the one array, and the file is closed again.

    >>> import tempfile
    >>> from unetkit.data.writers import write_tiled_tiff
    >>> file = Path(tempfile.mkdtemp()) / "cells_probabilities.tif"
    >>> write_tiled_tiff(file, np.stack([np.zeros((4, 6)), np.ones((4, 6))]).astype(np.float32))
    >>> [(data, meta, kind)] = read_probabilities(file)
    >>> data.shape, meta["name"], meta["channel_axis"], kind
    ((2, 4, 6), ['cells_probabilities [0]', 'cells_probabilities [1]'], 0, 'image')
    """
    import tifffile

    file = Path(path)
    axes = probability_axes(file)
    if axes is None:
        raise InputError("is not a probability map that unetkit predict wrote (float pixels, axes YX or CYX)",
                         path=file, fix="open it with napari's own reader")
    data = tifffile.imread(file)
    if axes == "YX":
        return [(data, {"name": file.stem}, "image")]
    names = [f"{file.stem} [{k}]" for k in range(data.shape[0])]
    return [(data, {"name": names, "channel_axis": 0}, "image")]


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
