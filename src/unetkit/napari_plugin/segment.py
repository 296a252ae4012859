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
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..data.dataset import check_image_values
from ..data.io import PlaneShape
from ..data.normalize import to_channels_first
from ..inference.loading import LoadedPredictor
from ..predict import check_fits_predictor
from ..tiling import TileOptions, plan_tiles, predict_tiled
from .layers import channel_count, iter_planes, leading_shape, plane_count, spatial_shape

__all__ = ["TileOptions", "count_tiles", "segment_layer_data"]


def count_tiles(loaded: LoadedPredictor, shape: tuple[int, ...], rgb: bool, options: TileOptions) -> int:
    """How many tiles :func:`segment_layer_data` predicts for layer data of this shape (a progress total)."""
    height, width = spatial_shape(shape, rgb)
    per_plane = plan_tiles(loaded.predictor.size_rule, height, width, options).tile_count
    return per_plane * plane_count(shape, rgb)


def segment_layer_data(
    loaded: LoadedPredictor,
    data: Any,
    rgb: bool,
    options: TileOptions,
    name: str,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Labels of every plane of ``data``: shape ``(..., H, W)``, one label image per plane.

    ``name`` (the layer's) stands for the file in error messages; ``progress`` is called
    with the number of tiles done after each batch of tiles.
    """
    shape = tuple(data.shape)
    height, width = spatial_shape(shape, rgb)
    check_fits_predictor(
        PlaneShape(plane_count(shape, rgb), height, width, channel_count(shape, rgb)), loaded.predictor, name
    )
    labels: np.ndarray | None = None
    for index, plane in iter_planes(data, rgb):
        check_image_values(plane, name)
        image = loaded.data_options.normalization.apply(to_channels_first(plane))
        plane_labels = loaded.task.labels(predict_tiled(loaded.predictor, image, options, progress=progress))
        if labels is None:
            labels = np.zeros((*leading_shape(shape, rgb), height, width), plane_labels.dtype)
        elif np.promote_types(labels.dtype, plane_labels.dtype) != labels.dtype:
            labels = labels.astype(np.promote_types(labels.dtype, plane_labels.dtype))
        labels[index] = plane_labels
    assert labels is not None  # a layer has at least one plane
    return labels
