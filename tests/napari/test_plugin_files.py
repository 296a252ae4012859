"""The plugin's parts that need no display: isolation from Qt, manifest, reader, sample, training data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

from unetkit.data.io import write_image
from unetkit.errors import InputError

pytestmark = pytest.mark.napari
ROOT = Path(__file__).resolve().parents[2]


def test_importing_unetkit_imports_no_qt_and_no_napari():
    code = (
        "import json, sys, unetkit, unetkit.napari_plugin, unetkit.napari_plugin.segment, "
        "unetkit.napari_plugin.training, unetkit.napari_plugin.reader, unetkit.napari_plugin.sample\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('napari', 'qtpy', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6', 'vispy', 'magicgui', 'superqt'))))"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(output) == []


def test_the_manifest_validates_and_lists_every_contribution():
    npe2 = pytest.importorskip("npe2", reason='the napari extra is not installed: pip install -e ".[napari]"')
    result = subprocess.run([sys.executable, "-m", "npe2", "validate", "--imports", "unetkit"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid" in result.stdout
    manifest = npe2.PluginManifest.from_distribution("unetkit")
    assert {w.display_name for w in manifest.contributions.widgets} == {"Segment", "Train"}
    assert {s.key for s in manifest.contributions.sample_data} == {"hela", "hela-heldout"}
    assert manifest.contributions.readers[0].command == "unetkit.get_reader"


def test_the_manifest_is_package_data_beside_the_plugin():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'unetkit = "unetkit.napari_plugin:napari.yaml"' in pyproject
    assert "napari_plugin/napari.yaml" in pyproject
    assert (ROOT / "src" / "unetkit" / "napari_plugin" / "napari.yaml").is_file()


def test_the_reader_reads_unetkit_label_images_as_labels_layers(tmp_path):
    from unetkit.napari_plugin.reader import get_reader

    labels = np.zeros((20, 30), np.uint8)
    labels[5:10, 5:15] = 1
    write_image(tmp_path / "cells_labels.png", labels)
    instances = np.stack([labels * 3, labels * 7]).astype(np.uint16)
    tifffile.imwrite(tmp_path / "cells_instances.tif", instances, photometric="minisblack")
    for path, expected, mode in ((tmp_path / "cells_labels.png", labels, "classes"),
                                 (tmp_path / "cells_instances.tif", instances, "instances")):
        reader = get_reader(str(path))
        assert reader is not None
        [(data, meta, kind)] = reader(str(path))
        assert kind == "labels" and meta["name"] == path.stem and meta["metadata"]["unetkit_mask_mode"] == mode
        np.testing.assert_array_equal(data, expected)


def test_the_reader_declines_other_files(tmp_path):
    from unetkit.napari_plugin.reader import get_reader

    write_image(tmp_path / "cells.png", np.zeros((8, 8), np.uint8))  # not a label file name
    write_image(tmp_path / "cells_overlay.png", np.zeros((8, 8, 3), np.uint8))  # predict's overlay
    write_image(tmp_path / "photo_labels.png", np.zeros((8, 8, 3), np.uint8))  # the name, but colour
    (tmp_path / "broken_labels.tif").write_bytes(b"not a tiff")
    # the name, but float pixels (a probability map): it was accepted, then failed to open instead of falling back
    write_image(tmp_path / "probability_labels.tif", np.zeros((8, 8), np.float32))
    for name in ("cells.png", "cells_overlay.png", "photo_labels.png", "broken_labels.tif", "missing_labels.png",
                 "probability_labels.tif"):
        assert get_reader(str(tmp_path / name)) is None, name
    assert get_reader([str(tmp_path / "cells.png"), str(tmp_path / "photo_labels.png")]) is None


def test_the_reader_reads_a_probability_map_as_one_image_layer_per_channel(tmp_path, predicted_probabilities):
    # a (K, Y, X) map opened with napari's own reader is one layer with a slider over the classes
    from unetkit.napari_plugin.reader import get_reader

    three, one = predicted_probabilities(tmp_path, 3), predicted_probabilities(tmp_path, 1)
    [(data, meta, kind)] = get_reader(str(three))(str(three))
    assert kind == "image" and meta["channel_axis"] == 0 and data.shape == (3, 40, 56)
    assert meta["name"] == [f"cells_probabilities [{k}]" for k in range(3)]
    np.testing.assert_array_equal(np.asarray(data), tifffile.imread(three))
    [(data, meta, kind)] = get_reader(str(one))(str(one))
    assert kind == "image" and "channel_axis" not in meta and meta["name"] == "cells_probabilities"
    np.testing.assert_array_equal(np.asarray(data), tifffile.imread(one))
    layers = get_reader([str(three), str(one)])([str(three), str(one)])  # opened together
    assert [np.asarray(layer[0]).shape for layer in layers] == [(3, 40, 56), (40, 56)]
    # the name, but not what predict writes: napari's own readers take these
    tifffile.imwrite(tmp_path / "plain_probabilities.tif", np.zeros((2, 8, 8), np.float32))  # no axes
    tifffile.imwrite(tmp_path / "ids_probabilities.tif", np.zeros((8, 8), np.uint8))
    for name in ("plain_probabilities.tif", "ids_probabilities.tif"):
        assert get_reader(str(tmp_path / name)) is None, name


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="open files are listed in /proc")
def test_a_probability_map_is_read_whole_and_its_file_closed(tmp_path, predicted_probabilities):
    # read through zarr, napari still read each shown layer's whole plane (2.7 times the map's memory in all, so a
    # map larger than memory never opened), and the store kept the file open: on Windows predict --overwrite could
    # not replace a map that napari showed
    import os

    from unetkit.napari_plugin.reader import get_reader

    path = predicted_probabilities(tmp_path, 3)
    [(data, meta, kind)] = get_reader(str(path))(str(path))
    np.testing.assert_array_equal(np.asarray(data[2]), tifffile.imread(path)[2])  # as napari reads a layer
    opened = [os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")
              if os.path.exists(f"/proc/self/fd/{fd}")]
    assert str(path.resolve()) not in opened
    assert isinstance(data, np.ndarray) and data.shape == (3, 40, 56)


def test_the_sample_gives_the_hela_frames_and_their_instance_labels():
    from unetkit.napari_plugin.sample import hela_heldout, hela_train

    for layers, frames in ((hela_train(), 4), (hela_heldout(), 2)):
        [(image, image_meta, image_kind), (labels, labels_meta, labels_kind)] = layers
        assert (image_kind, labels_kind) == ("image", "labels")
        assert image.shape == labels.shape == (frames, 700, 1100)
        assert labels_meta["metadata"]["unetkit_mask_mode"] == "instances"
        assert len(np.unique(labels[0])) > 20  # object ids, not a binary mask
        assert image.dtype == np.uint16 and image.std() > 0
        low, high = image_meta["contrast_limits"]  # the nuclei's range, not the raw 16-bit one
        assert image.min() <= low < high <= image.max() and high - low < 0.5 * 65535


def test_training_data_from_layers_are_a_folder_that_training_reads(tmp_path):
    from unetkit.data.dataset import DataOptions, load_labelled
    from unetkit.napari_plugin.training import write_training_folder

    image = np.random.default_rng(0).integers(0, 255, (3, 24, 32, 3), dtype=np.uint8)
    labels = np.zeros((3, 24, 32), np.int32)
    labels[:, 4:10, 4:12] = [[[1]], [[2]], [[5]]]
    folder = write_training_folder(image, labels, rgb=True, folder=tmp_path / "data", name="cells")
    samples = load_labelled(folder, DataOptions(mask_mode="instances"))
    assert [s.image.shape for s in samples] == [(3, 24, 32)] * 3
    assert all(sorted(np.unique(s.mask).tolist()) == [0, 1] for s in samples)


def test_object_ids_beyond_32_bits_stay_distinct():
    # they were cast to uint32: id 2**32 + 1 became 1, two objects one
    from unetkit.napari_plugin.training import mask_array

    assert np.unique(mask_array(np.array([[0, 1, 2**32 + 1]], np.int64), "labels")).tolist() == [0, 1, 2**32 + 1]


def test_a_stack_painted_on_some_planes_trains_on_those_planes_only(tmp_path):
    # the frames of a time series left unpainted were trained on, and validated, as all background
    from unetkit.data.io import read_planes
    from unetkit.napari_plugin.training import write_training_folder

    image = np.arange(4 * 8 * 8, dtype=np.uint16).reshape(4, 8, 8)
    labels = np.zeros((4, 8, 8), np.uint8)
    labels[1, 2:5, 2:5] = labels[3, 0, 0] = 1
    said = []
    folder = write_training_folder(image, labels, rgb=False, folder=tmp_path / "data", report=said.append)
    assert [plane[0, 0] for plane in read_planes(folder / "images" / "layer.tif")] == [64, 192]
    assert len(read_planes(folder / "masks" / "layer.tif")) == 2
    assert said == ["training on the 2 of 4 planes that hold labels: a plane without any is left out, not trained as "
                    "background (for a truly empty frame, train on files: unetkit train)"]
    write_training_folder(image, labels > -1, rgb=False, folder=tmp_path / "all", report=said.append)
    assert len(read_planes(tmp_path / "all" / "masks" / "layer.tif")) == 4 and len(said) == 1  # all painted


def test_widget_terms_replace_whole_options_not_option_like_text_in_paths():
    # '--lr' in a run folder 'unet--lr-0.01' became 'unetlearning rate-0.01' in the fix to copy
    from unetkit.errors import OutputExistsError
    from unetkit.napari_plugin.training import in_layer_terms

    error = OutputExistsError("run directory exists and is not empty", path="/data/unet--lr-0.01",
                              fix="continue it with --resume /data/unet--lr-0.01, or choose another --out")
    said = str(in_layer_terms(error, Path("/tmp/unetkit-napari-x"), ("cells", "nuclei")))
    assert "unetkit train --resume /data/unet--lr-0.01, or choose another run folder" in said, said
    error = OutputExistsError("--out is a folder of other files (a--depth.txt), not a run", path="/d")
    said = str(in_layer_terms(error, Path("/tmp/unetkit-napari-x"), ("cells", "nuclei")))
    assert said.startswith("/d: the run folder is a folder of other files (a--depth.txt)"), said


def test_training_data_refuse_labels_of_another_shape_and_non_integer_labels(tmp_path):
    from unetkit.napari_plugin.training import write_training_folder

    with pytest.raises(InputError, match=r"labels layer has shape \(20, 20\), the image layer \(24, 32\)"):
        write_training_folder(np.zeros((24, 32)), np.zeros((20, 20), np.uint8), False, tmp_path / "a")
    with pytest.raises(InputError, match="not integers"):
        write_training_folder(np.zeros((24, 32)), np.zeros((24, 32), np.float32), False, tmp_path / "b")
    with pytest.raises(InputError, match="negative"):
        write_training_folder(np.zeros((24, 32)), -np.ones((24, 32), np.int32), False, tmp_path / "c")


def test_a_layer_holding_channels_on_an_axis_trains_and_segments_a_model_of_that_many_channels(tmp_path):
    # a (C, H, W) layer was C planes: its labels' shape was refused, and a 2-channel model could not segment it
    from unetkit import TrainConfig, load_predictor
    from unetkit.data.io import read_planes
    from unetkit.napari_plugin.segment import TileOptions, segment_layer_data
    from unetkit.napari_plugin.training import train_from_layers, write_training_folder

    rng = np.random.default_rng(0)
    labels = np.zeros((48, 64), np.uint8)
    labels[10:30, 8:40] = 1
    image = np.stack([rng.integers(0, 50, (48, 64)), 200 * labels]).astype(np.uint8)  # C, H, W: objects in channel 1
    said: list[str] = []
    folder = write_training_folder(image, labels, rgb=False, folder=tmp_path / "data", report=said.append)
    planes = read_planes(folder / "images" / "layer.tif")
    assert len(planes) == 1 and np.array_equal(planes[0], np.moveaxis(image, 0, -1))
    assert said == ["the image layer's axis 0 (of size 2), which the labels lack or hold at size 1, is read as its "
                    "channels"]
    config = TrainConfig(out=str(tmp_path / "run"), depth=2, base_width=4, epochs=1, steps_per_epoch=2, batch_size=1,
                         patch_size=32, progress=False)
    result = train_from_layers(image, labels, rgb=False, config=config, report=lambda text: None)
    loaded = load_predictor(result.run_dir / "best.pt", precision="fp32")
    assert loaded.predictor.in_channels == 2
    notes: list[str] = []
    stack = np.stack([image, image, image])  # Z, C, Y, X
    segmented = segment_layer_data(loaded, stack, False, TileOptions(tile_size=32), "cells", notes=notes.append)
    alone = segment_layer_data(loaded, image, False, TileOptions(tile_size=32), "cells")
    assert segmented.shape == (3, 48, 64) and alone.shape == (48, 64) and np.array_equal(segmented[2], alone)
    assert notes == ["cells: the model's 2 channels are read from the layer's axis 1 (of size 2)"]
    again = write_training_folder(stack, segmented[:, None], rgb=False, folder=tmp_path / "again")  # labels as Segment
    assert [plane.shape for plane in read_planes(again / "images" / "layer.tif")] == [(48, 64, 2)] * 3  # adds them
    with pytest.raises(InputError, match=r"the model takes 2 channels, and the layer \(shape \(3, 48, 64\)\) has no "
                                         "axis of 2"):
        segment_layer_data(loaded, image[[0, 1, 1]], False, TileOptions(tile_size=32), "cells")


def test_an_rgba_layer_segments_with_an_rgb_model_and_trains_one_as_its_png_file_would(tmp_path):
    # napari opens an RGBA PNG as a (Y, X, 4) layer: Segment refused a 3-channel model ("image has 4 channel(s)"),
    # which unetkit predict runs on that PNG (alpha dropped), and Train made a 4-channel model that predict refuses
    from unetkit import UNet, load_predictor, make_checkpoint, save_checkpoint
    from unetkit.data.io import read_planes
    from unetkit.napari_plugin.segment import TileOptions, segment_layer_data
    from unetkit.napari_plugin.training import write_training_folder

    rgb = np.random.default_rng(0).integers(0, 255, (2, 32, 40, 3), dtype=np.uint8)
    rgba = np.concatenate([rgb, np.full((2, 32, 40, 1), 255, np.uint8)], axis=-1)
    save_checkpoint(tmp_path / "rgb.pt", make_checkpoint(UNet(in_channels=3, depth=2, base_width=2)))
    loaded = load_predictor(tmp_path / "rgb.pt", precision="fp32")
    notes: list[str] = []
    labels = segment_layer_data(loaded, rgba, True, TileOptions(tile_size=32), "tile", notes=notes.append)
    assert np.array_equal(labels, segment_layer_data(loaded, rgb, True, TileOptions(tile_size=32), "tile"))
    assert notes == ["tile: the layer's 4th channel (alpha) is left out: the model takes 3 (RGB)"]
    said: list[str] = []
    folder = write_training_folder(rgba, labels, rgb=True, folder=tmp_path / "data", report=said.append)
    assert [plane.shape for plane in read_planes(folder / "images" / "layer.tif")] == [(32, 40, 3)] * 2
    assert len(said) == 1 and "alpha" in said[0]
    measured = rgba.copy()
    measured[..., 3] = rgb[..., 0]  # a fourth measurement, not transparency: kept, as the reader keeps it
    folder = write_training_folder(measured, labels, rgb=True, folder=tmp_path / "four")
    assert [plane.shape for plane in read_planes(folder / "images" / "layer.tif")] == [(32, 40, 4)] * 2
    with pytest.raises(InputError, match="4 channel"):  # nor does Segment drop it for an RGB model, as predict would not
        segment_layer_data(loaded, measured, True, TileOptions(tile_size=32), "tile")


def test_segmenting_a_layer_gives_the_notes_predict_prints_once_per_layer(tmp_path):
    # An 8-bit stack for a model whose training images were divided by 65535: predict says so, napari was silent.
    from unetkit import UNet, make_checkpoint, save_checkpoint, load_predictor
    from unetkit.data.dataset import DataOptions
    from unetkit.data.normalize import Normalization
    from unetkit.napari_plugin.segment import TileOptions, segment_layer_data

    save_checkpoint(tmp_path / "m.pt", make_checkpoint(UNet(depth=2, base_width=2),
                                                       DataOptions(normalization=Normalization("scale", high=65535.0))))
    loaded = load_predictor(tmp_path / "m.pt", precision="fp32")
    notes: list[str] = []
    segment_layer_data(loaded, np.full((2, 32, 32), 200, np.uint8), False, TileOptions(tile_size=32), "cells",
                       notes=notes.append)
    assert len(notes) == 1 and notes[0].startswith("cells: an 8-bit image") and "divided by 65535" in notes[0]
    notes.clear()
    segment_layer_data(loaded, np.full((32, 32), 20000, np.uint16), False, TileOptions(tile_size=32), "cells",
                       notes=notes.append)
    assert notes == []
    # a 16-bit stack for a model of 8-bit images: each plane's note names its own brightness; one pop-up, not one a plane
    save_checkpoint(tmp_path / "m8.pt", make_checkpoint(UNet(depth=2, base_width=2),
                                                        DataOptions(normalization=Normalization("scale", high=255.0))))
    stack = (1000 + 37 * np.arange(5, dtype=np.uint16))[:, None, None] * np.ones((1, 32, 32), np.uint16)
    segment_layer_data(load_predictor(tmp_path / "m8.pt", precision="fp32"), stack, False, TileOptions(tile_size=32),
                       "cells", notes=notes.append)
    assert len(notes) == 1 and "cells" in notes[0], notes


def test_segmenting_a_layer_says_when_the_minimum_object_size_left_a_plane_empty(tmp_path):
    # predict said "no objects left: the N found are all smaller than ..."; napari showed "0 objects" alone
    import torch

    from unetkit import UNet, make_checkpoint, save_checkpoint, load_predictor
    from unetkit.instances.task import InstanceTask
    from unetkit.napari_plugin.segment import TileOptions, segment_layer_data

    torch.manual_seed(0)
    save_checkpoint(tmp_path / "m.pt", make_checkpoint(UNet(depth=3, base_width=4, num_classes=3),
                                                       task=InstanceTask(method="three-class", min_size=10**6)))
    notes: list[str] = []
    image = np.random.default_rng(0).integers(0, 60000, (2, 96, 96)).astype(np.uint16)
    labels = segment_layer_data(load_predictor(tmp_path / "m.pt", precision="fp32"), image, False,
                                TileOptions(tile_size=96), "cells", notes=notes.append)
    assert not labels.any()
    emptied = [note for note in notes if "no objects left" in note]  # one pop-up for the layer, not one a plane
    assert len(emptied) == 1 and emptied[0].startswith("cells (planes 0, 1): no objects left: the ") \
        and "1000000 px (--min-object-size)" in emptied[0], notes


def test_drawing_the_training_curve_leaves_the_gui_s_matplotlib_backend_alone(tmp_path):
    # Training in napari's worker thread must not switch the process's backend (which closes every pyplot figure).
    code = (
        "import sys, matplotlib; from pathlib import Path; matplotlib.use('svg')\n"
        "from unetkit.training.history import append_row, plot_curves\n"
        "log, png = Path(sys.argv[1]) / 'log.csv', Path(sys.argv[1]) / 'curves.png'\n"
        "append_row(log, {'epoch': 1, 'loss': 0.5, 'val_dice': 0.8})\n"
        "plot_curves(log, png)\n"
        "print(matplotlib.get_backend(), png.read_bytes()[:4] == b'\\x89PNG')"
    )
    output = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True)
    assert output.stdout.split() == ["svg", "True"]


def test_the_readme_shows_the_napari_screenshot_and_it_is_small():
    readme = (ROOT / "README.md").read_text()
    assert "](docs/images/napari.png)" in readme and "## Segment and train in napari" in readme
    picture = ROOT / "docs" / "images" / "napari.png"
    assert picture.read_bytes()[:4] == b"\x89PNG" and picture.stat().st_size < 300_000


def test_the_training_notes_the_train_widget_shows_name_the_layers_not_the_removed_temporary_files(tmp_path):
    # "validation holds out planes of /tmp/unetkit-napari-.../images/layer.tif ..." named a folder gone by then
    from unetkit.napari_plugin.training import train_from_layers
    from unetkit.training.config import TrainConfig

    labels = np.zeros((4, 48, 64), np.uint8)
    labels[:, 10:30, 8:40] = 1
    said: list[str] = []
    config = TrainConfig(out=str(tmp_path / "run"), depth=2, base_width=4, epochs=1, steps_per_epoch=2, batch_size=1,
                         patch_size=32, progress=False)
    train_from_layers((200 * labels + 5).astype(np.uint8), labels, rgb=False, config=config, report=said.append,
                      names=("cells", "cells labels"))
    held = [line for line in said if "validation holds out planes of" in line]
    assert held and "image layer 'cells'" in held[0], said
    assert any("validating on 1 (image layer 'cells'[" in line for line in said), said
    assert not any("unetkit-napari-" in line or "layer.tif" in line for line in said), said


def test_layer_terms_keep_the_punctuation_after_a_file_and_options_in_windows_paths():
    # a file's name ran on through a closing quote and a sentence's full stop ("see 'image layer 'cells'"), and
    # the '--epochs' of a folder C:\runs\--epochs became 'epochs'
    from unetkit.napari_plugin.training import text_in_layer_terms

    folder, names = Path("/tmp/unetkit-napari-x"), ("cells", "nuclei")
    said = text_in_layer_terms("see '/tmp/unetkit-napari-x/images/layer.tif'. Held out /tmp/unetkit-napari-x/masks/"
                               "layer.tif.", folder, names)
    assert said == "see 'image layer 'cells''. Held out labels layer 'nuclei'.", said
    assert text_in_layer_terms(r"wrote C:\runs\--epochs\best.pt", folder, names) == r"wrote C:\runs\--epochs\best.pt"


def test_labels_of_a_zcyx_layers_whole_shape_are_merged_over_the_chosen_channel_axis_and_said_otherwise(tmp_path):
    # "new labels" on a (Z, C, Y, X) layer have its whole shape; without a chosen axis every channel plane was an
    # image of its own, silently
    from unetkit.data.io import read_planes
    from unetkit.napari_plugin.training import write_training_folder

    image = np.arange(3 * 2 * 8 * 8, dtype=np.uint16).reshape(3, 2, 8, 8)
    labels = np.zeros(image.shape, np.uint8)
    labels[0, 1, 2:5, 2:5] = 4  # z 0 painted on channel 1, z 2 on channel 0
    labels[2, 0, 0, :] = 2
    said: list[str] = []
    folder = write_training_folder(image, labels, rgb=False, folder=tmp_path / "auto", report=said.append)
    assert [plane.shape for plane in read_planes(folder / "images" / "layer.tif")] == [(8, 8)] * 2  # 2 painted planes
    assert said[0] == ("the image layer's axes (3, 2) are all read as planes: each 8 x 8 plane trains as a "
                       'one-channel image; if one of them holds channels, choose it under "channels"')
    said.clear()
    folder = write_training_folder(image, labels, rgb=False, folder=tmp_path / "chosen", report=said.append,
                                   channel_axis=1)
    planes, masks = read_planes(folder / "images" / "layer.tif"), read_planes(folder / "masks" / "layer.tif")
    assert [plane.shape for plane in planes] == [(8, 8, 2)] * 2 and np.array_equal(planes[1], np.moveaxis(image[2], 0, -1))
    assert np.array_equal(masks[0], labels[0, 1]) and np.array_equal(masks[1], labels[2, 0])
    assert not any("all read as planes" in text for text in said)
    assert said[0] == 'the image layer\'s axis 1 (of size 2), chosen under "channels", is read as its channels', said
    labels[0, 0, 2, 2] = 9  # another id on the other channel at a painted pixel
    with pytest.raises(InputError, match=r"different ids on different channels \(axis 1\) of the same plane, at 1 "):
        write_training_folder(image, labels, rgb=False, folder=tmp_path / "clash", channel_axis=1)
    with pytest.raises(InputError, match="axis 2 cannot hold the channels"):
        write_training_folder(image, labels, rgb=False, folder=tmp_path / "bad", channel_axis=2)
    with pytest.raises(InputError, match='or another axis under "channels"'):  # (Z, Y, X) labels, Z chosen
        write_training_folder(image, labels[:, 0], rgb=False, folder=tmp_path / "wrong", channel_axis=0)
    assert write_training_folder(image[:, 0], labels[:, 0], rgb=False, folder=tmp_path / "z", report=said.append)
    assert not any("all read as planes" in text for text in said)  # (Z, Y, X) with its labels: nothing to choose
