"""The plugin as a user meets it in napari (Xvfb): sample, reader, both widgets, and what is drawn.

``UNETKIT_SCREENSHOT_DIR=docs/images`` makes the last test save the window as ``napari.png``
(the README's picture).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

# napari.viewer, not napari: without napari, "import napari" finds this folder (tests/ is on sys.path)
pytest.importorskip("napari.viewer", reason='the napari extra is not installed: pip install -e ".[napari,napari-dev]"')

from unetkit.data.io import write_image  # noqa: E402
from unetkit.metrics import dice_iou  # noqa: E402

pytestmark = pytest.mark.napari
TIMEOUT_MS = 60_000


def test_sample_data_opens_as_image_and_labels_layers(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("unetkit", "hela-heldout")
    assert [(layer.name, layer._type_string, layer.data.shape) for layer in viewer.layers] == [
        ("HeLa held-out", "image", (2, 700, 1100)), ("HeLa held-out labels", "labels", (2, 700, 1100))]


def test_the_reader_opens_a_predicted_label_image_as_a_labels_layer(make_napari_viewer, tmp_path):
    labels = np.zeros((30, 40), np.uint8)
    labels[10:20, 5:25] = 1
    write_image(tmp_path / "frame_labels.png", labels)
    viewer = make_napari_viewer()
    [layer] = viewer.open(str(tmp_path / "frame_labels.png"), plugin="unetkit")
    assert layer._type_string == "labels" and layer.name == "frame_labels"
    np.testing.assert_array_equal(layer.data, labels)


def test_the_reader_opens_a_probability_map_as_one_image_layer_per_class(make_napari_viewer, tmp_path,
                                                                         predicted_probabilities):
    path = predicted_probabilities(tmp_path, 3)
    viewer = make_napari_viewer()
    layers = viewer.open(str(path), plugin="unetkit")
    assert [(layer._type_string, layer.name, layer.data.shape) for layer in layers] == [
        ("image", f"cells_probabilities [{k}]", (40, 56)) for k in range(3)]
    import tifffile
    np.testing.assert_allclose(np.asarray(layers[2].data), tifffile.imread(path)[2])


def colour_pixels(shot: np.ndarray, rgb: np.ndarray, tolerance: int = 12) -> int:
    return int((np.abs(shot[..., :3].astype(int) - rgb.astype(int)).max(axis=-1) <= tolerance).sum())


def test_train_then_segment_in_the_viewer_and_see_the_labels(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer(show=True)  # a shown window: the canvas draws (hidden, it stays black)
    viewer.window.resize(1280, 1000)
    viewer.open_sample("unetkit", "hela")
    viewer.open_sample("unetkit", "hela-heldout")
    _, trainer = viewer.window.add_plugin_dock_widget("unetkit", "Train")
    trainer.image_choice.setCurrentText("HeLa")
    trainer.labels_choice.setCurrentText("HeLa labels")
    for box, value in ((trainer.epochs, 2), (trainer.steps, 30), (trainer.patch_size, 64), (trainer.depth, 2),
                       (trainer.width, 4)):
        box.setValue(value)
    trainer.learning_rate.setValue(1e-2)
    trainer.run_dir.setText(str(tmp_path / "run"))
    with qtbot.waitSignal(trainer.trained, timeout=TIMEOUT_MS):
        trainer.start()
    assert len(trainer.curve.rows) == 2 and trainer.curve.rows[-1]["val_dice"] != ""
    qtbot.waitUntil(trainer.train_button.isEnabled, timeout=TIMEOUT_MS)

    segmenter = trainer.use_model()
    segmenter.image_choice.setCurrentText("HeLa held-out")
    with qtbot.waitSignal(segmenter.segmented, timeout=TIMEOUT_MS) as done:
        segmenter.segment()
    predicted = viewer.layers[done.args[0].name]
    truth = (viewer.layers["HeLa held-out labels"].data > 0).astype(np.uint8)
    assert predicted.data.shape == (2, 700, 1100)
    assert dice_iou(predicted.data[0], truth[0], num_classes=2).dice[1] > 0.7  # a trained model: nuclei, not noise
    assert segmenter.progress.value() == segmenter.progress.maximum() == 2 * 6  # 2 frames of 700 x 1100, 512 px tiles

    qtbot.waitUntil(segmenter.run_button.isEnabled, timeout=TIMEOUT_MS)
    for name in ("HeLa", "HeLa labels", "HeLa held-out labels"):
        viewer.layers[name].visible = False
    predicted.contour, predicted.opacity = 2, 1.0
    viewer.dims.set_current_step(0, 0)
    viewer.reset_view()
    canvas = viewer.screenshot(canvas_only=True, flash=False)
    assert canvas[..., :3].std() > 10, "the canvas is blank"
    colour = np.asarray(predicted.get_color(1))[:3] * 255
    assert colour_pixels(canvas, colour) > 2000, f"label colour {colour} is not drawn"
    window = viewer.screenshot(canvas_only=False, flash=False)
    assert window.shape[1] > canvas.shape[1] + 200  # the docked widgets are beside the canvas
    assert colour_pixels(window, colour) > 2000
    if os.environ.get("UNETKIT_SCREENSHOT_DIR"):
        save_small_png(window, Path(os.environ["UNETKIT_SCREENSHOT_DIR"]) / "napari.png")


def save_small_png(rgba: np.ndarray, path: Path) -> None:
    """The window as a palette PNG (a few hundred KB at most)."""
    from PIL import Image

    Image.fromarray(rgba[..., :3]).quantize(colors=128, dither=Image.Dither.NONE).save(path, optimize=True)
