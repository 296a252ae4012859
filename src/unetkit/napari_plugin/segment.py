"""Segmenting layer data with a model file: the work behind the Segment widget, without Qt.

Any model file that :func:`~unetkit.inference.loading.load_predictor` reads (a ``.pt``
checkpoint, an ``.onnx`` export, a bioimage.io package) segments every plane of a layer:
each plane is checked against the model (channels, size), normalised as the model was
trained (its stored ``data_options.normalization``), predicted tile by tile
(:func:`~unetkit.tiling.predict_tiled`) and turned into labels by the model's task.

>>> import tempfile
>>> from pathlib import Path
>>> import numpy as np
>>> from unetkit import UNet, make_checkpoint, save_checkpoint, load_predictor
>>> path = Path(tempfile.mkdtemp()) / "m.pt"
>>> save_checkpoint(path, make_checkpoint(UNet(depth=2, base_width=2)))
>>> loaded = load_predictor(path, precision="fp32")
>>> image = np.random.default_rng(0).random((2, 40, 60)).astype(np.float32)
>>> options = TileOptions(tile_size=32)
>>> count_tiles(loaded, image.shape, rgb=False, options=options)
12
>>> done = []
>>> labels = segment_layer_data(loaded, image, rgb=False, options=options, name="cells", progress=done.append)
>>> labels.shape, labels.dtype, sum(done)
((2, 40, 60), dtype('uint8'), 12)

An instance model's smallest object can be changed for one segmentation, as
``--min-object-size`` does on the command line; a semantic model has no objects to drop:

>>> with_min_object_size(loaded, "m.pt", 0) is loaded  # 0: the model's own setting
True
>>> with_min_object_size(loaded, "m.pt", 80)
Traceback (most recent call last):
...
unetkit.errors.ConfigError: a min object size is for instance models; m.pt is a semantic model
  fix: set min object size back to "model's"
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..data.dataset import check_image_values
from ..data.io import PlaneShape, an_alpha_to_drop
from ..data.normalize import to_channels_first
from ..errors import ConfigError, InputError
from ..inference.input_notes import input_notes
from ..inference.loading import LoadedPredictor, with_object_options
from ..inference.predictor import check_fits_predictor
from ..instances.task import InstanceTask, size_emptied_note
from ..tiling import TileOptions, plan_tiles, predict_tiled
from .layers import (
    ChannelsLast, channel_axis, channel_count, iter_planes, leading_shape, plane_count, spatial_shape, without_axis,
)

__all__ = ["TileOptions", "count_tiles", "count_objects", "segment_layer_data", "with_min_object_size"]

MODELS_OWN = "model's"  # what the widget shows for a min object size of 0


def with_min_object_size(loaded: LoadedPredictor, path: str | Path, min_object_size: int) -> LoadedPredictor:
    """``loaded`` dropping objects under ``min_object_size`` pixels (0: the model's own setting)."""
    if min_object_size == 0:
        return loaded
    if loaded.task.pixelwise:
        raise ConfigError(f"a min object size is for instance models; {Path(path).name} is a {loaded.task.name} "
                          "model", fix=f'set min object size back to "{MODELS_OWN}"')
    return with_object_options(loaded, path, min_object_size=min_object_size)


def count_objects(labels: np.ndarray) -> int:
    """Objects in a stack of instance label images (``(..., H, W)``: ids start again in each plane).

    >>> count_objects(np.array([[[0, 1, 1, 4]], [[2, 0, 0, 0]]]))
    3
    """
    planes = labels.reshape(-1, *labels.shape[-2:])
    return sum(int(np.count_nonzero(np.unique(plane))) for plane in planes)


def count_tiles(loaded: LoadedPredictor, shape: tuple[int, ...], rgb: bool, options: TileOptions) -> int:
    """How many tiles :func:`segment_layer_data` predicts for layer data of this shape (a progress total)."""
    height, width = spatial_shape(shape, rgb)
    per_plane = plan_tiles(loaded.predictor.size_rule, height, width, options).tile_count
    return per_plane * plane_count(without_axis(shape, channel_axis(shape, rgb, loaded.predictor.in_channels)), rgb)


def segment_layer_data(
    loaded: LoadedPredictor,
    data: Any,
    rgb: bool,
    options: TileOptions,
    name: str,
    progress: Callable[[int], None] | None = None,
    notes: Callable[[str], None] | None = None,
) -> np.ndarray:
    """Labels of every plane of ``data``: shape ``(..., H, W)``, one label image per plane.

    ``name`` (the layer's) stands for the file in error messages; ``progress`` is called
    with the number of tiles done after each batch of tiles; ``notes`` with each note that
    ``unetkit predict`` prints on such an image (:func:`~unetkit.inference.input_notes.input_notes`:
    an 8-bit image for a model of 16-bit ones, say), those of the first plane that has any: once per layer;
    and, once, which planes an object model's minimum object size left without objects.

    For a model of several channels, a grey layer's leading axis of that size holds them (:func:`channel_axis`;
    ``notes`` is told which), and the labels have the layer's shape without it.
    """
    channels = loaded.predictor.in_channels
    axis = channel_axis(tuple(data.shape), rgb, channels)
    if axis is not None:
        data, rgb = ChannelsLast(data, axis), True
        if notes is not None:
            notes(f"{name}: the model's {channels} channels are read from the layer's axis {axis} (of size {channels})")
    elif channels > 1 and not rgb:
        raise InputError(f"the model takes {channels} channels, and the layer (shape {tuple(data.shape)}) has no "
                         f"axis of {channels} before Y and X", path=name,
                         fix=f"give one layer holding the {channels} channels on an axis before Y and X (as a "
                             "several-channel TIFF opens without a channel axis), or use a model of one channel")
    elif rgb and channels == 3 and channel_count(tuple(data.shape), rgb) == 4 and an_alpha_to_drop(
            np.asarray(data[(0,) * (data.ndim - 3)][..., 3])):  # transparency (of the first plane): predict drops it too
        data = data[..., :3]
        if notes is not None:
            notes(f"{name}: the layer's 4th channel (alpha) is left out: the model takes 3 (RGB)")
    shape = tuple(data.shape)
    height, width = spatial_shape(shape, rgb)
    check_fits_predictor(
        PlaneShape(plane_count(shape, rgb), height, width, channel_count(shape, rgb)), loaded.predictor, name
    )
    labels: np.ndarray | None = None
    noted = notes is None
    emptied: list[tuple[tuple[int, ...], int]] = []  # planes the minimum object size emptied, objects found there
    for index, plane in iter_planes(data, rgb):
        check_image_values(plane, name)
        image = loaded.data_options.normalization.apply(to_channels_first(plane))
        if not noted:  # the first plane that has notes says them: a stack's planes repeat them, with other numbers
            plane_notes = input_notes(loaded.data_options.normalization, name, image, plane.dtype)
            for note in plane_notes:
                notes(note)
            noted = bool(plane_notes)
        outputs = predict_tiled(loaded.predictor, image, options, progress=progress)
        plane_labels = loaded.task.labels(outputs)
        if notes is not None and isinstance(loaded.task, InstanceTask):
            found = loaded.task.objects_the_size_emptied(outputs, plane_labels)
            if found:
                emptied.append((index, found))
        if labels is None:
            labels = np.zeros((*leading_shape(shape, rgb), height, width), plane_labels.dtype)
        elif np.promote_types(labels.dtype, plane_labels.dtype) != labels.dtype:
            labels = labels.astype(np.promote_types(labels.dtype, plane_labels.dtype))
        labels[index] = plane_labels
    assert labels is not None  # a layer has at least one plane
    if emptied:
        notes(emptied_planes_note(name, emptied, loaded.task.min_size))
    return labels


def emptied_planes_note(name: str, emptied: list[tuple[tuple[int, ...], int]], min_size: int) -> str:
    """One note for all the planes of layer ``name`` that the minimum object size left without objects (their
    index, and the objects found there before it): a pop-up a layer, not a plane.

    >>> emptied_planes_note("cells", [((0,), 3), ((4,), 2)], 400)
    'cells (planes 0, 4): no objects left: the 5 found are all smaller than the minimum object size of 400 px (--min-object-size)'
    >>> emptied_planes_note("cells", [((), 3)], 400)[:25]
    'cells: no objects left: t'
    """
    where = [str(index[0]) if len(index) == 1 else str(index) for index, _ in emptied if index]
    if where:
        listed = ", ".join(where[:5]) + (f" and {len(where) - 5} more" if len(where) > 5 else "")
        name = f"{name} (plane{'s' if len(where) > 1 else ''} {listed})"
    return size_emptied_note(name, sum(found for _, found in emptied), min_size)
