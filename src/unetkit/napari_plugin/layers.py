"""Layer data as unetkit sees it: a stack of 2D planes, each grey ``(H, W)`` or RGB ``(H, W, C)``.

A napari image layer holds ``(..., H, W)`` (grey) or ``(..., H, W, C)`` (``rgb=True``,
channels last); every leading axis (time, z) counts planes, as pages of a TIFF stack do.
A grey layer may also hold the channels of a several-channel model on a leading axis
(``(C, H, W)``, ImageJ's ``(Z, C, Y, X)``): :func:`channel_axis` finds it and
:class:`ChannelsLast` reads such a layer plane by plane as channels-last planes.

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


def channel_axis(shape: tuple[int, ...], rgb: bool, channels: int) -> int | None:
    """The leading axis of a grey layer that holds a model's ``channels`` (more than one): the last of that size,
    next to Y and X as in ImageJ's order (``Z, C, Y, X``); None for a one-channel model, an RGB layer or none.

    >>> channel_axis((5, 2, 64, 64), rgb=False, channels=2), channel_axis((5, 64, 64), rgb=False, channels=2)
    (1, None)
    """
    if channels == 1 or rgb:
        return None
    sizes = leading_shape(shape, rgb=False)
    return max((axis for axis, size in enumerate(sizes) if size == channels), default=None)


def without_axis(shape: tuple[int, ...], axis: int | None) -> tuple[int, ...]:
    """``shape`` without ``axis`` (as it is for None).

    >>> without_axis((5, 2, 64, 64), 1)
    (5, 64, 64)
    """
    return shape if axis is None else shape[:axis] + shape[axis + 1:]


def labels_channel_axis(image_shape: tuple[int, ...], labels_shape: tuple[int, ...]) -> int | None:
    """The leading axis of a grey image layer that its labels layer lacks, or holds at size 1 (as the Segment
    widget adds a several-channel model's labels, :func:`channels_placed`): the image's channels (the last such
    axis, as :func:`channel_axis` takes it); None where the labels have the image's shape or lack no one axis.

    >>> labels_channel_axis((2, 64, 64), (64, 64)), labels_channel_axis((3, 2, 64, 64), (3, 1, 64, 64))
    (0, 1)
    >>> labels_channel_axis((5, 64, 64), (5, 64, 64)) is None
    True
    """
    image_shape, labels_shape = tuple(image_shape), tuple(labels_shape)
    if len(image_shape) == len(labels_shape):
        candidates = [axis for axis in range(len(image_shape) - 2) if labels_shape[axis] == 1 < image_shape[axis]
                      and without_axis(image_shape, axis) == without_axis(labels_shape, axis)]
    elif len(image_shape) == len(labels_shape) + 1:
        candidates = [axis for axis in range(len(image_shape) - 2) if without_axis(image_shape, axis) == labels_shape]
    else:
        return None
    return max(candidates, default=None)


def labels_over_channels(labels: np.ndarray, image_shape: tuple[int, ...], axis: int, name: str) -> np.ndarray:
    """``labels`` for a grey image layer whose leading ``axis`` holds channels, without that axis: as they are
    where they lack it, squeezed where they hold it at size 1, and where they have the image's whole shape (napari's
    *new labels* on a ``(Z, C, Y, X)`` layer, painted on one channel's slider position), what was painted on any
    channel. Two channels painted with different ids at one pixel are refused (``name``: the labels layer's).

    >>> labels = np.zeros((3, 2, 4, 4), np.uint8); labels[1, 0, :2] = 5; labels[2, 1, 2:] = 7   # Z, C, Y, X
    >>> merged = labels_over_channels(labels, (3, 2, 4, 4), 1, "cells")
    >>> merged.shape, merged[1, 0].tolist(), merged[2, 3].tolist()
    ((3, 4, 4), [5, 5, 5, 5], [7, 7, 7, 7])
    """
    labels, image_shape = np.asarray(labels), tuple(image_shape)
    if labels.shape != image_shape:
        squeezed = labels.ndim == len(image_shape) and labels.shape[axis] == 1
        return labels.squeeze(axis) if squeezed else labels  # lacking the axis, or a shape the caller refuses
    top = labels.max(axis=axis)
    lowest_painted = np.where(labels == 0, top[(slice(None),) * axis + (None,)], labels).min(axis=axis)
    clashes = int(np.count_nonzero(lowest_painted != top))
    if clashes:
        raise InputError(f"labels painted with different ids on different channels (axis {axis}) of the same plane, "
                         f"at {clashes} pixel(s)", path=name,
                         fix="paint each plane's labels on one channel, or erase the others")
    return top


def channels_placed(labels: np.ndarray, axis: int, channels: int, scale: Any, translate: Any
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels that lack a layer's channel ``axis`` (of size ``channels``), with the layer's ``scale`` and
    ``translate``, as a Labels layer to add beside it: napari lines a layer of fewer axes up with the image's
    last ones (Z labels would move with the channel slider), so the axis comes back at size 1, stretched over
    the channels and centred on them: the labels show at every channel, and at their own Z.

    >>> labels, scale, translate = channels_placed(np.zeros((3, 8, 8)), 1, 2, (2.0, 1.0, 0.5, 0.5), (0, 0, 0, 0))
    >>> labels.shape, scale.tolist(), translate.tolist()
    ((3, 1, 8, 8), [2.0, 2.0, 0.5, 0.5], [0.0, 0.5, 0.0, 0.0])
    """
    scale, translate = np.array(scale, dtype=float), np.array(translate, dtype=float)
    translate[axis] += (channels - 1) * scale[axis] / 2
    scale[axis] *= channels
    return np.expand_dims(labels, axis), scale, translate


class ChannelsLast:
    """A grey layer's ``data`` with the channels on leading ``axis`` read as channels-last planes (as an RGB
    layer's), one plane at a time: lazy data (dask, zarr) stays lazy.

    >>> data = np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)     # Z, C, Y, X
    >>> view = ChannelsLast(data, axis=1)
    >>> view.shape, np.array_equal(view[(1,)], np.moveaxis(data[1], 0, -1))
    ((2, 4, 5, 3), True)
    """

    def __init__(self, data: Any, axis: int):
        self.data, self.axis = data, axis
        shape = tuple(int(size) for size in data.shape)
        self.shape = (*without_axis(shape, axis), shape[axis])

    def __getitem__(self, index: tuple[int, ...]) -> np.ndarray:
        full = (*index[: self.axis], slice(None), *index[self.axis:])
        return np.moveaxis(np.asarray(self.data[full]), 0, -1)
