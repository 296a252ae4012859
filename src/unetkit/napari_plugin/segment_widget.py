"""The Segment widget: the chosen image layer through a model file, into a Labels layer.

A thin layer over :mod:`unetkit.napari_plugin.segment`: the model is loaded and the image
predicted in a worker thread (``napari.qt.threading.create_worker``), so the viewer stays
responsive; the progress bar counts tiles done out of the total; the Labels layer is added
back on the GUI thread, with the number of objects for an instance model; errors appear in
the widget and as a napari notification. "min object size" is ``--min-object-size``.

Needs a display (Qt); ``tests/napari/test_segment_widget.py`` drives it under Xvfb.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtCore import QObject, Signal
from qtpy.QtWidgets import (
    QFileDialog, QFormLayout, QHBoxLayout, QLineEdit, QProgressBar, QPushButton, QVBoxLayout, QWidget,
)

from ..errors import InputError
from ..inference.loading import load_predictor
from .common_widget import LayerChoice, show_error, show_status, spin_box, status_label, typed_path
from .layers import channel_axis, channels_placed
from .segment import MODELS_OWN, TileOptions, count_objects, count_tiles, segment_layer_data, with_min_object_size

if TYPE_CHECKING:
    import napari
    from napari.qt.threading import FunctionWorker

MODEL_FILTER = "unetkit models (*.pt *.onnx *.zip);;all files (*)"


class _Progress(QObject):
    """Carries progress from the worker thread to the GUI thread (queued signals)."""

    total = Signal(int)
    advanced = Signal(int)
    noted = Signal(str)


def _segment(path: str, data: Any, rgb: bool, options: TileOptions, min_object_size: int, name: str,
             relay: _Progress) -> tuple[np.ndarray, int | None, int | None]:
    """Runs in the worker thread: load, count tiles, predict every plane; (labels, objects found:
    None for a semantic model, the layer's axis that held a several-channel model's channels: None if none)."""
    loaded = with_min_object_size(load_predictor(path), path, min_object_size)
    relay.total.emit(count_tiles(loaded, tuple(data.shape), rgb, options))
    labels = segment_layer_data(loaded, data, rgb, options, name, progress=relay.advanced.emit, notes=relay.noted.emit)
    axis = channel_axis(tuple(data.shape), rgb, loaded.predictor.in_channels)
    return labels, None if loaded.task.pixelwise else count_objects(labels), axis


def _warn(note: str) -> None:
    """A note on the image (what ``unetkit predict`` prints) as a napari warning."""
    from napari.utils.notifications import show_warning

    show_warning(note)


class SegmentWidget(QWidget):
    """Segment an image layer with a checkpoint (``.pt``), ONNX file or bioimage.io package (``.zip``)."""

    segmented = Signal(object)  # the new Labels layer
    failed = Signal(str)  # the message shown

    def __init__(self, napari_viewer: napari.viewer.Viewer, parent: QWidget | None = None):
        from napari.layers import Image

        super().__init__(parent)
        self.viewer = napari_viewer
        self.image_choice = LayerChoice(napari_viewer, Image)
        self.model_path = QLineEdit()
        self.model_path.setPlaceholderText("checkpoint .pt, ONNX .onnx or bioimage.io .zip")
        browse = QPushButton("Browse...")
        browse.clicked.connect(self._browse)
        self.tile_size = spin_box(32, 8192, TileOptions().tile_size, step=64,
                                  tip="side of the tiles that large images are cut into")
        self.min_object_size = spin_box(0, 1_000_000, 0, step=10,
                                        tip="instance models: drop objects of fewer pixels "
                                        f"({MODELS_OWN}: the model's own setting, 10 by default)")
        self.min_object_size.setSpecialValueText(MODELS_OWN)
        self.run_button = QPushButton("Segment")
        self.run_button.clicked.connect(self.segment)
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m tiles")
        self.status = status_label()
        self._worker: FunctionWorker | None = None
        self._relay: _Progress | None = None
        self._layer: Any = None  # the image layer being segmented

        model_row = QHBoxLayout()
        model_row.addWidget(self.model_path)
        model_row.addWidget(browse)
        form = QFormLayout()
        form.addRow("image", self.image_choice)
        form.addRow("model", model_row)
        form.addRow("tile size", self.tile_size)
        form.addRow("min object size", self.min_object_size)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.run_button)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)

    def set_model_path(self, path: str | Path) -> None:
        self.model_path.setText(str(path))

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Model file", self.model_path.text(), MODEL_FILTER)
        if path:
            self.set_model_path(path)

    def segment(self) -> FunctionWorker | None:
        """Start segmenting the chosen image layer; returns the worker (None if it cannot start)."""
        from napari.qt.threading import create_worker

        layer = self.image_choice.current_layer()
        path = typed_path(self.model_path.text())
        if layer is None:
            self._fail(InputError("no image layer", fix="open an image (File > Open, or File > Open Sample)"))
            return None
        if not path:
            self._fail(InputError("no model file chosen", fix="choose a .pt checkpoint, .onnx file or .zip package"))
            return None
        data = layer.data[0] if layer.multiscale else layer.data
        relay = _Progress()
        relay.total.connect(self._start_progress)
        relay.advanced.connect(self._advance)
        relay.noted.connect(_warn)
        self._relay, self._layer = relay, layer
        self.progress.reset()  # empty until the model is loaded and the tiles counted
        self.run_button.setEnabled(False)
        show_status(self.status, f"segmenting {layer.name} with {Path(path).name} ...")
        self._worker = create_worker(
            _segment, str(Path(path).expanduser()), data, bool(layer.rgb),
            TileOptions(tile_size=self.tile_size.value()), self.min_object_size.value(), layer.name, relay,
            _connect={"returned": self._add_labels, "errored": self._fail, "finished": self._finished},
        )
        return self._worker

    def _start_progress(self, total: int) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(0)

    def _advance(self, tiles: int) -> None:
        self.progress.setValue(self.progress.value() + tiles)

    def _finished(self) -> None:
        self.run_button.setEnabled(True)

    def _add_labels(self, result: tuple[np.ndarray, int | None, int | None]) -> None:
        labels, count, axis = result
        layer = self._layer
        scale, translate = layer.scale, layer.translate
        if axis is not None:  # the channels' axis comes back at size 1, so that the labels line up with the image
            labels, scale, translate = channels_placed(labels, axis, layer.data.shape[axis], scale, translate)
        added = self.viewer.add_labels(labels, name=f"{layer.name} prediction", scale=scale, translate=translate)
        foreground = float(np.count_nonzero(labels)) / max(labels.size, 1)
        objects = "" if count is None else f"{count} object{'' if count == 1 else 's'}, "
        show_status(self.status, f"added {added.name}: {objects}{foreground:.1%} of pixels labelled")
        self.segmented.emit(added)

    def _fail(self, error: BaseException) -> None:
        self.failed.emit(show_error(self.status, error))
