"""Layer data as unetkit sees it: a stack of 2D planes, each grey ``(H, W)`` or RGB ``(H, W, C)``.

A napari image layer holds ``(..., H, W)`` (grey) or ``(..., H, W, C)`` (``rgb=True``,
channels last); every leading axis (time, z) counts planes, as pages of a TIFF stack do.

>>> import numpy as np
>>> data = np.zeros((3, 5, 7, 3), np.uint8)
>>> spatial_shape(data.shape, rgb=True), plane_count(data.shape, rgb=True), channel_count(data.shape, rgb=True)
((5, 7), 3, 3)
>>> [index for index, plane in iter_planes(np.zeros((2, 4, 4)), rgb=False)]
[(0,), (1,)]
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from ..errors import InputError


def plane_axes(ndim: int, rgb: bool) -> int:
    """How many trailing axes make one plane: 2 (grey) or 3 (channels last)."""
    axes = 3 if rgb else 2
    if ndim < axes:
        raise InputError(f"a {ndim}D layer where a 2D image{' with channels' if rgb else ''} was expected")
    return axes


def spatial_shape(shape: tuple[int, ...], rgb: bool) -> tuple[int, int]:
    """``(H, W)`` of each plane."""
    axes = plane_axes(len(shape), rgb)
    return int(shape[-axes]), int(shape[-axes + 1])


def leading_shape(shape: tuple[int, ...], rgb: bool) -> tuple[int, ...]:
    """The axes that count planes (``()`` for a single 2D image)."""
    return tuple(int(size) for size in shape[: len(shape) - plane_axes(len(shape), rgb)])


def plane_count(shape: tuple[int, ...], rgb: bool) -> int:
    return int(np.prod(leading_shape(shape, rgb), dtype=np.int64))


def channel_count(shape: tuple[int, ...], rgb: bool) -> int:
    return int(shape[-1]) if rgb else 1


def iter_planes(data: Any, rgb: bool) -> Iterator[tuple[tuple[int, ...], np.ndarray]]:
    """``(index, plane)`` for every plane; only that plane is read (``data`` may be lazy, dask say)."""
    for index in np.ndindex(*leading_shape(tuple(data.shape), rgb)):
        yield index, np.asarray(data[index])


def stack_planes(data: Any, rgb: bool) -> np.ndarray:
    """All planes as one ``(N, H, W)`` or ``(N, H, W, C)`` array (N = 1 for a 2D image)."""
    array = np.asarray(data)
    return array.reshape((-1, *array.shape[len(array.shape) - plane_axes(array.ndim, rgb):]))
