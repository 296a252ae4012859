"""The Segment widget in a napari viewer (Xvfb): labels, progress, work off the GUI thread, errors."""

from __future__ import annotations

import numpy as np
import pytest

# napari.viewer, not napari: without napari, "import napari" finds this folder (tests/ is on sys.path)
pytest.importorskip("napari.viewer", reason='the napari extra is not installed: pip install -e ".[napari,napari-dev]"')

from unetkit.napari_plugin.segment_widget import SegmentWidget  # noqa: E402

pytestmark = pytest.mark.napari
TIMEOUT_MS = 30_000


def segment_widget(viewer) -> SegmentWidget:
    _, widget = viewer.window.add_plugin_dock_widget("unetkit", "Segment")
    assert isinstance(widget, SegmentWidget)
    return widget


def test_segmenting_adds_a_labels_layer_of_the_image_shape_off_the_gui_thread(make_napari_viewer, qtbot,
                                                                             foreground_model):
    viewer = make_napari_viewer()
    image = viewer.add_image(np.random.default_rng(0).random((300, 200)).astype(np.float32), name="cells",
                             scale=(0.5, 0.5))
    widget = segment_widget(viewer)
    widget.set_model_path(foreground_model)
    widget.tile_size.setValue(128)
    with qtbot.waitSignal(widget.segmented, timeout=TIMEOUT_MS) as done:
        worker = widget.segment()
        # The click returned before the result: the work runs in a worker thread, and its result
        # can only arrive through the GUI's event loop, which this test has not yet run.
        assert worker is not None and len(viewer.layers) == 1 and not widget.run_button.isEnabled()
    labels = done.args[0]
    assert labels.name == viewer.layers[-1].name == "cells prediction"
    assert labels.data.shape == (300, 200) and np.all(labels.data == 1)
    np.testing.assert_array_equal(labels.scale, image.scale)
    # 300 x 200 in 128 px tiles with 25 % overlap: 3 rows x 2 columns
    assert widget.progress.maximum() == widget.progress.value() == 6
    assert "100.0% of pixels labelled" in widget.status.text()
    qtbot.waitUntil(widget.run_button.isEnabled, timeout=TIMEOUT_MS)


def test_rgb_stacks_become_one_label_image_per_plane(make_napari_viewer, qtbot, tmp_path, make_constant_model):
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((2, 40, 48, 3), np.uint8), rgb=True, name="rgb")
    widget = segment_widget(viewer)
    widget.set_model_path(make_constant_model(tmp_path / "rgb.pt", bias=-10.0, in_channels=3))
    with qtbot.waitSignal(widget.segmented, timeout=TIMEOUT_MS) as done:
        widget.segment()
    assert done.args[0].data.shape == (2, 40, 48) and not done.args[0].data.any()
    assert widget.progress.value() == widget.progress.maximum() == 2


def test_a_layer_of_channels_on_an_axis_gives_labels_of_that_axis_at_size_1(make_napari_viewer, qtbot, tmp_path,
                                                                            make_constant_model):
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((3, 2, 40, 48), np.uint8), name="zcyx", scale=(2.0, 1.0, 0.5, 0.25),
                     translate=(4.0, 0.0, 1.0, 1.0))
    widget = segment_widget(viewer)
    widget.set_model_path(make_constant_model(tmp_path / "two.pt", bias=10.0, in_channels=2))
    with qtbot.waitSignal(widget.segmented, timeout=TIMEOUT_MS) as done:
        widget.segment()
    labels, image = done.args[0], viewer.layers["zcyx"]
    assert labels.data.shape == (3, 1, 40, 48) and labels.data.all()
    # napari lines a layer of fewer axes up with the last ones: (Z, Y, X) labels moved with the channel slider;
    # the channels' axis at size 1, stretched over both channels, shows them at every channel and their own Z
    for z in range(3):
        for c in range(2):
            point = np.round(labels.world_to_data(image.data_to_world((z, c, 7, 9)))).astype(int).tolist()
            assert point == [z, 0, 7, 9], (z, c, point)
    assert widget.progress.value() == widget.progress.maximum() == 3


def test_an_onnx_export_segments_like_its_checkpoint(make_napari_viewer, qtbot, trained_model, tmp_path):
    pytest.importorskip("onnxruntime", reason='the export extra is not installed: pip install -e ".[export]"')
    from unetkit.export import export_checkpoint

    onnx_path = tmp_path / "model.onnx"
    export_checkpoint(trained_model, onnx_path)
    viewer = make_napari_viewer()
    from unetkit.napari_plugin.sample import hela_heldout

    image = hela_heldout()[0][0][0, 200:456, 300:556]
    viewer.add_image(image, name="frame")
    widget = segment_widget(viewer)
    results = []
    for path in (trained_model, onnx_path):
        widget.set_model_path(path)
        with qtbot.waitSignal(widget.segmented, timeout=TIMEOUT_MS) as done:
            widget.segment()
        results.append(done.args[0].data)
        qtbot.waitUntil(widget.run_button.isEnabled, timeout=TIMEOUT_MS)
    assert 0.05 < results[0].mean() < 0.6  # nuclei found, not everything
    assert np.mean(results[0] == results[1]) > 0.99


def test_an_instance_model_counts_its_objects_and_drops_those_under_the_min_object_size(
        make_napari_viewer, qtbot, tmp_path, make_constant_model, foreground_model):
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((40, 60), np.float32), name="img")
    widget = segment_widget(viewer)
    widget.set_model_path(make_constant_model(tmp_path / "objects.pt", bias=10.0, instances=True))
    assert widget.min_object_size.value() == 0 and widget.min_object_size.text() == "model's"
    found = []
    for min_size in (0, 2400, 2401):  # the model's 10 px, then the one 40 x 60 object kept, then dropped
        widget.min_object_size.setValue(min_size)
        with qtbot.waitSignal(widget.segmented, timeout=TIMEOUT_MS) as done:
            widget.segment()
        found.append((int(done.args[0].data.max()), widget.status.text().split(": ")[1]))
        qtbot.waitUntil(widget.run_button.isEnabled, timeout=TIMEOUT_MS)
    assert found == [(1, "1 object, 100.0% of pixels labelled"), (1, "1 object, 100.0% of pixels labelled"),
                     (0, "0 objects, 0.0% of pixels labelled")]
    widget.set_model_path(foreground_model)  # semantic: refused, not ignored
    with qtbot.waitSignal(widget.failed, timeout=TIMEOUT_MS) as failed:
        widget.segment()
    assert "a min object size is for instance models; foreground.pt is a semantic model" in failed.args[0]
    assert len(viewer.layers) == 4
    qtbot.waitUntil(widget.run_button.isEnabled, timeout=TIMEOUT_MS)


@pytest.mark.parametrize("problem", ["not a model", "wrong channels", "no model", "missing file"])
def test_problems_are_shown_in_the_widget_not_raised(make_napari_viewer, qtbot, tmp_path, foreground_model, problem):
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((2, 32, 32, 3), np.uint8) if problem == "wrong channels" else np.zeros((32, 32)),
                     name="img")
    widget = segment_widget(viewer)
    bad = tmp_path / "notes.pt"
    bad.write_text("not a checkpoint")
    path = {"not a model": bad, "wrong channels": foreground_model, "no model": "",
            "missing file": tmp_path / "gone.pt"}[problem]
    widget.set_model_path(path)
    expected = {"not a model": "notes.pt", "wrong channels": "image has 3 channel(s), the model takes 1",
                "no model": "no model file chosen", "missing file": "gone.pt"}[problem]
    with qtbot.waitSignal(widget.failed, timeout=TIMEOUT_MS) as failed:
        widget.segment()
    assert expected in failed.args[0] and expected in widget.status.text()
    assert "Traceback" not in widget.status.text() and "unexpected" not in widget.status.text()
    assert len(viewer.layers) == 1
    qtbot.waitUntil(widget.run_button.isEnabled, timeout=TIMEOUT_MS)


def test_a_pasted_quoted_path_is_the_file_it_names(qtbot, foreground_model):
    # Windows' "Copy as path" pastes "C:\...\best.pt" with its quotes: 'checkpoint not found'
    from napari.components import ViewerModel

    viewer = ViewerModel()
    viewer.add_image(np.zeros((32, 32), np.float32), name="img")
    widget = SegmentWidget(viewer)
    qtbot.addWidget(widget)
    widget.set_model_path(f' "{foreground_model}" ')
    with qtbot.waitSignal(widget.segmented, timeout=TIMEOUT_MS):
        widget.segment()
    qtbot.waitUntil(widget.run_button.isEnabled, timeout=TIMEOUT_MS)
