"""The Train widget in a napari viewer (Xvfb): a run from layers, the live curve, Stop, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

# napari.viewer, not napari: without napari, "import napari" finds this folder (tests/ is on sys.path)
pytest.importorskip("napari.viewer", reason='the napari extra is not installed: pip install -e ".[napari,napari-dev]"')

from unetkit.napari_plugin.segment_widget import SegmentWidget  # noqa: E402
from unetkit.napari_plugin.train_widget import TrainWidget  # noqa: E402

pytestmark = pytest.mark.napari
TIMEOUT_MS = 60_000


def train_widget(viewer, run_dir, epochs: int, steps: int) -> TrainWidget:
    """The widget from the manifest, set for a tiny run (depth 2, width 4, 32 px patches)."""
    _, widget = viewer.window.add_plugin_dock_widget("unetkit", "Train")
    assert isinstance(widget, TrainWidget)
    widget.epochs.setValue(epochs)
    widget.steps.setValue(steps)
    widget.patch_size.setValue(32)
    widget.depth.setValue(2)
    widget.width.setValue(4)
    if run_dir is not None:
        widget.run_dir.setText(str(run_dir))
    return widget


def train_widget_from(viewer, run_dir, qtbot) -> TrainWidget:
    """The widget on a viewer model (no canvas), set for a tiny run in ``run_dir``."""
    widget = TrainWidget(viewer)
    qtbot.addWidget(widget)
    for box, value in ((widget.epochs, 1), (widget.steps, 1), (widget.patch_size, 32), (widget.depth, 2),
                       (widget.width, 4)):
        box.setValue(value)
    widget.run_dir.setText(str(run_dir))
    return widget


def open_crop_of_the_sample(viewer, size: int = 96) -> None:
    """The held-out frames, cropped where both hold nuclei (image + labels layers)."""
    from unetkit.napari_plugin.sample import hela_heldout

    (image, image_meta, _), (labels, labels_meta, _) = hela_heldout()
    viewer.add_image(image[:, 96 : 96 + size, 96 : 96 + size], **image_meta)
    viewer.add_labels(labels[:, 96 : 96 + size, 96 : 96 + size], **labels_meta)


def test_a_run_from_layers_draws_its_curve_and_offers_its_model(make_napari_viewer, qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # the default run folder: ~/unetkit-runs/<date>-<time>
    viewer = make_napari_viewer()
    open_crop_of_the_sample(viewer)
    widget = train_widget(viewer, None, epochs=2, steps=2)
    run = Path(widget.run_dir.text())
    assert run.parent == tmp_path / "unetkit-runs" and not run.exists()
    assert widget.instances.isChecked()  # the sample's labels say they are object ids
    with qtbot.waitSignal(widget.trained, timeout=TIMEOUT_MS) as done:
        assert widget.start() is not None
        assert not widget.train_button.isEnabled() and widget.stop_button.isEnabled()
    result = done.args[0]
    assert result.stopped.value == "completed" and result.epochs_completed == 2
    assert result.run_dir == run and (run / "best.pt").is_file() and (run / "log.csv").is_file()
    # one point per epoch on each line; the two frames split into training and validation
    assert list(widget.curve.loss_line.get_xdata()) == [1, 2]
    assert all(np.isfinite(widget.curve.loss_line.get_ydata()))
    assert all(0 <= dice <= 1 for dice in widget.curve.dice_line.get_ydata())
    assert "completed after 4 steps, 2 whole epoch(s)" in widget.status.text()
    qtbot.waitUntil(widget.train_button.isEnabled, timeout=TIMEOUT_MS)
    assert widget.use_button.isEnabled()
    next_run = Path(widget.run_dir.text())
    assert next_run.parent == run.parent and next_run != run and not next_run.exists()  # a new folder next time
    segment = widget.use_model()
    assert isinstance(segment, SegmentWidget) and segment.model_path.text() == str(run / "best.pt")


def test_objects_and_a_time_budget_are_chosen_in_the_widget(make_napari_viewer, qtbot, tmp_path):
    # the widget trained pixel models only: separating touching nuclei needed the command line
    from unetkit import InstanceTask
    from unetkit.checkpoint import load_checkpoint
    from unetkit.napari_plugin.train_widget import LEARN_CHOICES

    viewer = make_napari_viewer()
    open_crop_of_the_sample(viewer)
    widget = train_widget(viewer, tmp_path / "objects", epochs=1, steps=2)
    assert widget.config().task == "semantic" and widget.config().max_time_s is None  # the defaults
    widget.learn.setCurrentText(next(k for k, v in LEARN_CHOICES.items() if v == "instances"))
    widget.minutes.setValue(2)
    config = widget.config()
    assert (config.task, config.mask_mode, config.max_time_s) == ("instances", None, 120.0)
    assert not widget.instances.isEnabled() and not widget.classes.isEnabled()
    with qtbot.waitSignal(widget.trained, timeout=TIMEOUT_MS) as done:
        assert widget.start() is not None
    assert done.args[0].stopped.value == "completed"
    assert isinstance(load_checkpoint(tmp_path / "objects" / "best.pt").task, InstanceTask)
    widget.learn.setCurrentText(next(k for k, v in LEARN_CHOICES.items() if v == "semantic"))
    assert widget.instances.isEnabled() and widget.classes.isEnabled() and widget.config().task == "semantic"
    assert (widget.config().patch_size, widget.config().steps_per_epoch) == (32, 2)  # set by hand: kept


def test_patches_and_steps_follow_the_task_until_set_by_hand(make_napari_viewer):
    # 128-px patches are the pixel default, 256 px the objects' (TASK_DEFAULTS): the widget trained
    # objects on the pixel default
    from unetkit import TrainConfig
    from unetkit.napari_plugin.train_widget import LEARN_CHOICES

    widget = TrainWidget(make_napari_viewer())
    choice = {task: next(k for k, v in LEARN_CHOICES.items() if v == task) for task in ("semantic", "instances")}
    sides = []
    for task in ("instances", "semantic"):
        widget.learn.setCurrentText(choice[task])
        sides.append((widget.config().patch_size, widget.config().steps_per_epoch))
    assert sides == [(256, 50), (128, 200)]
    assert sides[1] == (TrainConfig(out="x").patch_size, TrainConfig(out="x").steps_per_epoch)
    widget.patch_size.setValue(192)
    widget.learn.setCurrentText(choice["instances"])
    assert (widget.config().patch_size, widget.config().steps_per_epoch) == (192, 50)
    widget.steps.setValue(200)  # by hand, though the pixels' default: it stays through a round trip
    widget.learn.setCurrentText(choice["semantic"])
    widget.learn.setCurrentText(choice["instances"])
    assert (widget.config().patch_size, widget.config().steps_per_epoch) == (192, 200)


def test_stop_ends_the_run_after_the_current_step_with_a_checkpoint(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    open_crop_of_the_sample(viewer)
    widget = train_widget(viewer, tmp_path / "run", epochs=50, steps=4)
    widget.epoch_finished.connect(lambda row: widget.stop_button.click())  # Stop once the first epoch is drawn
    with qtbot.waitSignal(widget.trained, timeout=TIMEOUT_MS) as done:
        widget.start()
    result = done.args[0]
    assert result.stopped.value == "signal"
    assert result.epochs_completed == 1 and result.global_step < 2 * 4  # it did not run on to the end
    assert (tmp_path / "run" / "last.pt").is_file()
    assert len(widget.curve.rows) == 1 and f"stopped after {result.global_step} steps, 1 whole epoch(s)" in widget.status.text()
    qtbot.waitUntil(widget.train_button.isEnabled, timeout=TIMEOUT_MS)
    assert not widget.stop_button.isEnabled()


@pytest.mark.parametrize("problem", ["no labels layer", "labels of another size", "run folder in use"])
def test_problems_are_shown_in_the_widget_not_raised(make_napari_viewer, qtbot, tmp_path, problem):
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((64, 64), np.uint16), name="img")
    if problem == "labels of another size":
        viewer.add_labels(np.ones((32, 32), np.uint8), name="small")
    elif problem == "run folder in use":
        viewer.add_labels(np.ones((64, 64), np.uint8), name="lab")
        (tmp_path / "run").mkdir()
        (tmp_path / "run" / "config.json").write_text("{}")
    widget = train_widget(viewer, tmp_path / "run", epochs=1, steps=1)
    expected = {"no labels layer": "needs an image layer and a labels layer",
                "labels of another size": "labels layer has shape (32, 32), the image layer (64, 64)",
                "run folder in use": "run directory exists and is not empty"}[problem]
    with qtbot.waitSignal(widget.failed, timeout=TIMEOUT_MS) as failed:
        widget.start()
    assert expected in failed.args[0] and expected in widget.status.text()
    qtbot.waitUntil(widget.train_button.isEnabled, timeout=TIMEOUT_MS)
    assert widget.result is None and not widget.use_button.isEnabled()


@pytest.mark.parametrize("problem", ["object ids read as classes", "NaN in the image", "patches too small"])
def test_data_problems_name_the_layers_and_the_widgets_options(qtbot, tmp_path, problem):
    # they named the temporary copy (/tmp/unetkit-napari-.../masks/layer.tif, gone by then) and the
    # command line's options (pass --instance-masks)
    from napari.components import ViewerModel

    viewer = ViewerModel()
    image = np.zeros((2, 48, 48), np.float32)
    labels = np.zeros((2, 48, 48), np.uint16)
    labels[:, 4:14, 4:14], labels[:, 20:30, 20:30] = 1, 7
    if problem != "object ids read as classes":
        labels = labels > 0
    if problem == "NaN in the image":
        image[0, 0, 0] = np.nan
    viewer.add_image(image, name="cells")
    viewer.add_labels(labels.astype(np.uint16), name="nuclei")
    widget = train_widget_from(viewer, tmp_path / "run", qtbot)
    if problem == "patches too small":
        widget.depth.setValue(8)
    expected = {"object ids read as classes": ("labels layer 'nuclei': mask has values {0, 1, 7}",
                                               'tick "labels are object ids"'),
                "NaN in the image": ("image layer 'cells': image holds 1 NaN", ""),
                "patches too small": ("patch size 128 or more, or a smaller depth",)}[problem]
    with qtbot.waitSignal(widget.failed, timeout=TIMEOUT_MS) as failed:
        widget.start()
    assert all(part in failed.args[0] for part in expected), failed.args[0]
    assert "unetkit-napari-" not in failed.args[0] and "--" not in failed.args[0]
    qtbot.waitUntil(widget.train_button.isEnabled, timeout=TIMEOUT_MS)


def test_after_a_run_that_failed_in_its_folder_the_next_run_gets_a_new_one(qtbot, tmp_path, monkeypatch):
    # the default folder was renewed only after a run that ended well: Train again said "run directory exists"
    from napari.components import ViewerModel

    from unetkit.errors import TrainingDiverged
    from unetkit.napari_plugin import train_widget as module

    def diverges(image, labels, rgb, config, **options):
        Path(config.out).mkdir(parents=True)
        (Path(config.out) / "log.csv").write_text("epoch\n")
        raise TrainingDiverged("the loss became NaN", fix="lower the learning rate")

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(module, "train_from_layers", diverges)
    viewer = ViewerModel()
    viewer.add_image(np.zeros((32, 32), np.float32), name="img")
    viewer.add_labels(np.ones((32, 32), np.uint8), name="lab")
    widget = TrainWidget(viewer)
    qtbot.addWidget(widget)
    first = Path(widget.run_dir.text())
    with qtbot.waitSignal(widget.failed, timeout=TIMEOUT_MS):
        widget.start()
    qtbot.waitUntil(widget.train_button.isEnabled, timeout=TIMEOUT_MS)
    assert (first / "log.csv").is_file() and Path(widget.run_dir.text()) != first
    assert not Path(widget.run_dir.text()).exists()


def test_the_epoch_count_shown_is_the_running_runs_not_the_boxs(qtbot, tmp_path):
    # the status read the epochs box at each epoch: set to 9 during a 2-epoch run, it said "epoch 1/9"
    from napari.components import ViewerModel

    viewer = ViewerModel()
    open_crop_of_the_sample(viewer, size=48)
    widget = train_widget_from(viewer, tmp_path / "run", qtbot)
    widget.epochs.setValue(2)
    shown = []
    widget.epoch_finished.connect(lambda row: shown.append(widget.status.text().split(":")[0]))
    with qtbot.waitSignal(widget.trained, timeout=TIMEOUT_MS):
        widget.start()
        widget.epochs.setValue(9)
    assert shown == ["epoch 1/2", "epoch 2/2"]
    qtbot.waitUntil(widget.train_button.isEnabled, timeout=TIMEOUT_MS)


def test_without_labels_the_fix_names_the_sample_as_the_menu_shows_it(qtbot, tmp_path):
    # it said "File > Open Sample > HeLa nuclei": the menu has a unetkit submenu and two HeLa entries
    from napari.components import ViewerModel

    viewer = ViewerModel()
    viewer.add_image(np.zeros((32, 32), np.float32), name="img")
    widget = train_widget_from(viewer, tmp_path / "run", qtbot)
    with qtbot.waitSignal(widget.failed, timeout=TIMEOUT_MS) as failed:
        widget.start()
    assert "File > Open Sample > unetkit > HeLa nuclei (training frames)" in failed.args[0]


def test_a_pasted_quoted_run_folder_is_the_folder_it_names(qtbot, tmp_path):
    # the quotes were kept: a relative folder named '"' in napari's working directory
    from napari.components import ViewerModel

    widget = train_widget_from(ViewerModel(), f"'{tmp_path / 'run'}'", qtbot)
    assert widget.config().out == str(tmp_path / "run")


def test_a_zcyx_layer_with_new_labels_trains_a_model_of_its_channels_once_its_channel_axis_is_chosen(qtbot, tmp_path):
    # napari's "new labels" on a (Z, C, Y, X) layer have its whole shape: every channel plane trained as an image of
    # its own, a one-channel model for a two-channel stack, and nothing said; the axis can now be chosen
    from napari.components import ViewerModel

    from unetkit import load_predictor

    viewer = ViewerModel()
    rng = np.random.default_rng(0)
    objects = np.zeros((3, 48, 64), np.uint8)
    objects[:, 10:30, 8:40] = 1
    image = np.stack([rng.integers(0, 50, (3, 48, 64)), 200 * objects], axis=1).astype(np.uint8)  # Z, C, Y, X
    viewer.add_image(image, name="stack")
    labels = np.zeros(image.shape, np.uint8)
    labels[:, 1] = objects  # painted with the channel slider at 1
    viewer.add_labels(labels, name="stack labels")
    widget = train_widget_from(viewer, tmp_path / "run", qtbot)
    choices = [widget.channels.itemText(i) for i in range(widget.channels.count())]
    assert choices[1:] == ["axis 0 (of size 3)", "axis 1 (of size 2)"] and widget.channel_axis() is None
    with qtbot.waitSignal(widget.trained, timeout=TIMEOUT_MS) as auto:
        widget.start()
    assert load_predictor(auto.args[0].run_dir / "best.pt", precision="fp32").predictor.in_channels == 1
    qtbot.waitUntil(widget.train_button.isEnabled, timeout=TIMEOUT_MS)
    widget.run_dir.setText(str(tmp_path / "run2"))
    widget.channels.setCurrentIndex(2)
    with qtbot.waitSignal(widget.trained, timeout=TIMEOUT_MS) as chosen:
        widget.start()
    assert load_predictor(chosen.args[0].run_dir / "best.pt", precision="fp32").predictor.in_channels == 2
    qtbot.waitUntil(widget.train_button.isEnabled, timeout=TIMEOUT_MS)
    viewer.add_image(image[0, 0], name="plane")  # a plane has no leading axis to choose
    widget.image_choice.set_layer(viewer.layers["plane"])
    assert widget.channels.count() == 1 and widget.channel_axis() is None


def test_the_chosen_channel_axis_stays_when_the_layer_list_changes_and_follows_a_changed_shape(qtbot, tmp_path):
    # the image list is rebuilt on every added or removed layer (and when it opens): the chosen layer, listed again,
    # reset the channels to auto, so a layer added after the choice (new labels, Segment's output) undid it unseen
    from napari.components import ViewerModel

    viewer = ViewerModel()
    viewer.add_image(np.zeros((8, 8), np.uint8), name="plane")
    viewer.add_image(np.zeros((3, 2, 8, 8), np.uint8), name="stack")
    widget = train_widget_from(viewer, tmp_path / "run", qtbot)
    widget.image_choice.set_layer(viewer.layers["stack"])
    widget.channels.setCurrentIndex(2)
    assert widget.channel_axis() == 1
    viewer.add_labels(np.zeros((3, 2, 8, 8), np.uint8), name="stack labels")
    widget.image_choice.refresh()  # as opening the list does
    assert widget.image_choice.current_layer() is viewer.layers["stack"] and widget.channel_axis() == 1
    viewer.layers["stack"].data = np.zeros((2, 8, 8), np.uint8)  # another shape: its own choices
    widget.channels.showPopup()
    choices = [widget.channels.itemText(i) for i in range(widget.channels.count())]
    assert choices[1:] == ["axis 0 (of size 2)"] and widget.channel_axis() is None
    widget.channels.hidePopup()
