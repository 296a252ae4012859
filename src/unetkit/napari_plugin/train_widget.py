"""The Train widget: a U-Net trained on an image layer and a labels layer, with a live curve.

A thin layer over :func:`unetkit.napari_plugin.training.train_from_layers` (which calls
:func:`unetkit.train`). Training runs in a worker thread (``napari.qt.threading``), so
the viewer stays responsive; each epoch's log row travels to the GUI thread by a queued Qt
signal and becomes a point on the curve. **Stop** sets the ``threading.Event`` that
:func:`unetkit.train` checks after every step: the run saves ``last.pt`` and ends
(``stopped == "signal"``). *learn* chooses pixels (foreground or classes) or objects
(``--task instances``: touching objects separated; the labels must be object ids);
*time budget* is ``--max-time``. When the run ends, **Segment with this model** puts its
``best.pt`` into the Segment widget.

Needs a display (Qt); ``tests/napari/test_train_widget.py`` drives it under Xvfb.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
from qtpy.QtCore import QObject, QSignalBlocker, Signal
from qtpy.QtWidgets import (
    QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QHBoxLayout, QLineEdit, QPushButton, QSpinBox,
    QVBoxLayout, QWidget,
)

from ..errors import InputError, UnetkitError
from ..model import PRESETS
from ..training.config import TASK_DEFAULTS
from ..training.loop import BEST, TrainResult
from .common_widget import LayerChoice, show_error, show_status, spin_box, status_label, typed_path
from .curve_widget import TrainingCurve
from .reader import MASK_MODE_KEY
from .training import TrainConfig, default_run_dir, image_channel_axis, train_from_layers, unchosen_channels_note

if TYPE_CHECKING:
    import napari
    from napari.qt.threading import FunctionWorker

PLUGIN, SEGMENT_WIDGET = "unetkit", "Segment"
ENDINGS = {"completed": "completed", "signal": "stopped"}  # else: "done (why)", e.g. the stopping rule's reason


class _Relay(QObject):
    """Carries epoch rows and messages from the worker thread to the GUI thread (queued signals)."""

    row = Signal(object)
    message = Signal(str)


#: the widget's "learn" choices: what each trains (TrainConfig.task)
LEARN_CHOICES = {"pixels (foreground or classes)": "semantic", "objects (touching ones separated)": "instances"}


class _ChannelChoice(QComboBox):
    """A combo box that lists its choices again when opened (``refresh``): the image layer's data may have changed."""

    def __init__(self, refresh: Callable[[], None]):
        super().__init__()
        self._refresh = refresh

    def showPopup(self) -> None:  # noqa: N802 (Qt's name)
        self._refresh()
        super().showPopup()


class TrainWidget(QWidget):
    """Train on the chosen image and labels layers; watch the loss and Dice; stop at any step."""

    epoch_finished = Signal(object)  # each epoch's log row, once drawn
    trained = Signal(object)  # the TrainResult
    failed = Signal(str)  # the message shown

    def __init__(self, napari_viewer: napari.viewer.Viewer, parent: QWidget | None = None):
        from napari.layers import Image, Labels

        super().__init__(parent)
        self.viewer = napari_viewer
        defaults = TrainConfig(out="")
        network = PRESETS[defaults.preset]
        self.image_choice = LayerChoice(napari_viewer, Image)
        self._channels_of: Any = None  # the image layer whose axes self.channels lists
        self.channels = _ChannelChoice(self._image_chosen)
        self.channels.setToolTip("auto: a leading axis of a grey image that the labels lack holds its channels; "
                                 "or the axis that holds them (the labels may then have the image's whole shape)")
        self.image_choice.currentIndexChanged.connect(self._image_chosen)
        self.labels_choice = LayerChoice(napari_viewer, Labels)
        self.labels_choice.currentIndexChanged.connect(self._labels_chosen)
        self.learn = QComboBox()
        self.learn.addItems(list(LEARN_CHOICES))
        self.learn.setToolTip("pixels: a mask of foreground (or classes); objects: each object on its own, "
                              "touching ones separated (the labels must be object ids)")
        self.learn.currentIndexChanged.connect(self._learn_chosen)
        self.instances = QCheckBox("labels are object ids (instances)")
        self.instances.setToolTip("each object has its own id: train on foreground vs background")
        self.classes = spin_box(1, 255, defaults.num_classes, tip="1: foreground/background; K: classes 0..K-1")
        self.epochs = spin_box(0, 10_000, defaults.epochs or 0,
                               tip="auto: until the validation score stops improving (at most 40 epochs)")
        self.epochs.setSpecialValueText("auto")
        self.minutes = spin_box(0, 100_000, 0, tip="stop after this many minutes of training (--max-time); "
                                                   "none: when the run decides")
        self.minutes.setSpecialValueText("none")
        self.minutes.setSuffix(" min")
        self.steps = spin_box(1, 100_000, defaults.steps_per_epoch, tip="training steps per epoch")
        self.patch_size = spin_box(16, 4096, defaults.patch_size, step=16, tip="side of the training patches")
        self._set_by_hand: set[str] = set()  # of patch_size and steps_per_epoch: those no longer follow the task
        for name, box in self._task_boxes().items():
            box.valueChanged.connect(lambda value, name=name: self._set_by_hand.add(name))
        self.learning_rate = QDoubleSpinBox()
        self.learning_rate.setDecimals(6)
        self.learning_rate.setRange(1e-6, 1.0)
        self.learning_rate.setSingleStep(1e-4)
        self.learning_rate.setValue(defaults.lr)
        self.depth = spin_box(2, 8, network.depth, tip="levels of the U-Net (pooling steps + 1)")
        self.width = spin_box(1, 256, network.base_width, tip="filters of the first level")
        self.run_dir = QLineEdit(str(default_run_dir()))
        self.run_dir.setToolTip("a new or empty folder: the model, log.csv and curves.png go there")
        self.choose_button = QPushButton("Choose...")
        self.choose_button.clicked.connect(self._choose_run_dir)
        self.train_button = QPushButton("Train")
        self.train_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)
        self.curve = TrainingCurve()
        self.status = status_label()
        self.use_button = QPushButton("Segment with this model")
        self.use_button.setEnabled(False)
        self.use_button.clicked.connect(self.use_model)
        self.result: TrainResult | None = None
        self._default_dir = self.run_dir.text()
        self._epochs: int | None = None  # the running run's (the box may change meanwhile)
        self._stop_event: threading.Event | None = None
        self._worker: FunctionWorker | None = None
        self._relay: _Relay | None = None
        self._layout()
        self._image_chosen()
        self._labels_chosen()

    def _layout(self) -> None:
        run_row = QHBoxLayout()
        run_row.addWidget(self.run_dir)
        run_row.addWidget(self.choose_button)
        form = QFormLayout()
        for label, widget in (
            ("image", self.image_choice), ("channels", self.channels), ("labels", self.labels_choice),
            ("learn", self.learn),
            ("", self.instances), ("classes", self.classes), ("epochs", self.epochs),
            ("time budget", self.minutes), ("steps per epoch", self.steps),
            ("patch size", self.patch_size), ("learning rate", self.learning_rate),
            ("depth", self.depth), ("width", self.width),
        ):
            form.addRow(label, widget)
        form.addRow("run folder", run_row)
        buttons = QHBoxLayout()
        buttons.addWidget(self.train_button)
        buttons.addWidget(self.stop_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.curve)
        layout.addWidget(self.status)
        layout.addWidget(self.use_button)

    def _choose_run_dir(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Run folder (new or empty)", str(Path.home()))
        if folder:
            self.run_dir.setText(folder)

    def _image_chosen(self, index: int = -1) -> None:
        """The channel choices of the chosen image: auto, or one of a grey layer's leading axes. The choice made
        stays while the layer and its leading axes do: the image list is rebuilt (and says so) whenever a layer is
        added or removed, and when it is opened."""
        layer = self.image_choice.current_layer()
        choices: list[tuple[str, int | None]] = [("auto (the image's axis the labels lack)", None)]
        if layer is not None and not layer.rgb:
            shape = tuple((layer.data[0] if layer.multiscale else layer.data).shape)
            choices += [(f"axis {axis} (of size {size})", axis) for axis, size in enumerate(shape[:-2])]
        listed = [(self.channels.itemText(i), self.channels.itemData(i)) for i in range(self.channels.count())]
        if layer is self._channels_of and choices == listed:
            return
        self._channels_of = layer
        self.channels.clear()
        for text, axis in choices:
            self.channels.addItem(text, axis)

    def channel_axis(self) -> int | None:
        """The image axis chosen to hold its channels (None: auto)."""
        return self.channels.currentData()

    def _labels_chosen(self, index: int = -1) -> None:
        """Labels that say how they are meant (the sample's, unetkit's _instances files) set the checkbox."""
        layer = self.labels_choice.current_layer()
        mode = (getattr(layer, "metadata", None) or {}).get(MASK_MODE_KEY)
        if mode is not None:
            self.instances.setChecked(mode == "instances")

    def _learn_chosen(self, index: int = -1) -> None:
        """Objects are learnt from object ids, as one class: the pixel options step aside."""
        pixels = not self.learns_objects()
        self.instances.setEnabled(pixels)
        self.classes.setEnabled(pixels)
        defaults = TASK_DEFAULTS["semantic" if pixels else "instances"]
        for name, box in self._task_boxes().items():
            if name not in self._set_by_hand:  # the task's default follows the task; a value set by hand stays
                with QSignalBlocker(box):  # not a change by hand
                    box.setValue(defaults[name])

    def _task_boxes(self) -> dict[str, QSpinBox]:
        """The boxes whose defaults depend on the task (:data:`TASK_DEFAULTS`), by option name."""
        return {"patch_size": self.patch_size, "steps_per_epoch": self.steps}

    def learns_objects(self) -> bool:
        return LEARN_CHOICES[self.learn.currentText()] == "instances"

    def config(self) -> TrainConfig:
        """The run the widget's options describe (raises ConfigError for a bad combination)."""
        if self.learns_objects():
            task_options: dict[str, Any] = {"task": "instances"}
        else:
            task_options = {"mask_mode": "instances" if self.instances.isChecked() else "classes",
                            "num_classes": self.classes.value()}
        return TrainConfig(
            out=str(Path(typed_path(self.run_dir.text())).expanduser()), **task_options,
            epochs=self.epochs.value() or None, max_time_s=60.0 * self.minutes.value() or None,
            steps_per_epoch=self.steps.value(), patch_size=self.patch_size.value(), lr=self.learning_rate.value(),
            depth=self.depth.value(), base_width=self.width.value(), progress=False,
        )

    def start(self) -> FunctionWorker | None:
        """Start training in a worker thread; returns the worker (None if it cannot start)."""
        from napari.qt.threading import create_worker

        image, labels = self.image_choice.current_layer(), self.labels_choice.current_layer()
        try:
            if image is None or labels is None:
                raise InputError("training needs an image layer and a labels layer drawn on it",
                                 fix="open both (File > Open Sample > unetkit > HeLa nuclei (training frames) "
                                     "shows the form), or paint labels")
            if not typed_path(self.run_dir.text()):
                raise InputError("no run folder", fix="choose a new or empty folder for the run")
            config = self.config()
        except UnetkitError as error:
            self._fail(error)
            return None
        stop, relay = threading.Event(), _Relay()
        relay.row.connect(self._epoch_done)
        relay.message.connect(self._message)
        self.destroyed.connect(stop.set)  # the viewer closes: the run saves and ends
        self._stop_event, self._relay, self.result, self._epochs = stop, relay, None, config.epochs
        self.curve.clear()
        self.train_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.use_button.setEnabled(False)
        show_status(self.status, f"preparing {image.name} and {labels.name} ...")
        image_data = image.data[0] if image.multiscale else image.data
        chosen = None if image.rgb else self.channel_axis()
        axis = image_channel_axis(tuple(image_data.shape), tuple(labels.data.shape), bool(image.rgb), chosen)
        from napari.utils.notifications import show_warning

        if axis is not None and chosen is None:  # a z-stack with 2D labels would read as channels too: a notification
            show_warning(f"image layer {image.name!r}: its axis {axis} (of size {image_data.shape[axis]}), which "
                         f"labels layer {labels.name!r} lacks or holds at size 1, is read as the image's channels: "
                         f"the model takes {image_data.shape[axis]} channels")
        unchosen = unchosen_channels_note(tuple(image_data.shape), tuple(labels.data.shape), bool(image.rgb))
        if axis is None and unchosen is not None:  # (Z, C, Y, X) with new labels: channel planes as images of their own
            show_warning(f"image layer {image.name!r}, labels layer {labels.name!r}: {unchosen}")
        self._worker = create_worker(
            train_from_layers, image_data, np.array(labels.data), bool(image.rgb), config,  # labels copied: painting goes on
            stop=stop, on_epoch=relay.row.emit, report=relay.message.emit, names=(image.name, labels.name),
            channel_axis=chosen,
            _connect={"returned": self._done, "errored": self._fail, "finished": self._finished},
        )
        return self._worker

    def stop(self) -> None:
        """End the run after the current step; it saves last.pt first."""
        if self._stop_event is not None and not self._stop_event.is_set():
            self._stop_event.set()
            self.stop_button.setEnabled(False)
            show_status(self.status, "stopping after the current step ...")

    def _message(self, text: str) -> None:
        show_status(self.status, text)

    def _epoch_done(self, row: dict[str, str]) -> None:
        self.curve.add_row(row)
        dice = f", validation Dice {float(row['val_dice']):.3f}" if row.get("val_dice") else " (no validation: one plane)"
        limit = f"/{self._epochs}" if self._epochs else ""
        show_status(self.status, f"epoch {row['epoch']}{limit}: loss {float(row['loss']):.4f}{dice}")
        self.epoch_finished.emit(row)

    def _done(self, result: TrainResult) -> None:
        self.result = result
        best = result.run_dir / BEST
        score = "" if result.best_score is None else f", best validation Dice {result.best_score:.3f}"
        kept = result.kept_label(3)
        if kept and result.best_score is not None and result.kept_score < result.best_score:
            score += f" ({kept})"
        ending = ENDINGS.get(result.stopped.value) or f"done ({result.why})"
        show_status(self.status, f"{ending} after {result.length}{score}; "
                                 + (f"model: {best}" if best.is_file() else f"no best.pt yet; {result.run_dir} holds last.pt"))
        self.use_button.setEnabled(best.is_file())
        self.trained.emit(result)

    def _finished(self) -> None:
        self.train_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        if self.run_dir.text() == self._default_dir and Path(self._default_dir).exists():  # also after an error
            self._default_dir = str(default_run_dir())  # the next run gets a new folder
            self.run_dir.setText(self._default_dir)

    def _fail(self, error: BaseException) -> None:
        self.failed.emit(show_error(self.status, error))

    def use_model(self) -> Any:
        """Open (or find) the Segment widget and give it this run's best.pt; returns that widget."""
        if self.result is None:
            return None
        _, widget = self.viewer.window.add_plugin_dock_widget(PLUGIN, SEGMENT_WIDGET)
        widget.set_model_path(self.result.run_dir / BEST)
        return widget
