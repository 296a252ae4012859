"""Images larger than memory: lazy readers, band-by-band writers, out-of-core prediction,
OME-Zarr, object measurement in bands, block-wise objects, sharded and resumed batches."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from unetkit import PredictOptions, TileOptions, UNet, make_checkpoint, match_instances, predict_files, save_checkpoint
from unetkit.data.chunked import NormalizedImage, open_image, pixel_size, sample_pixels
from unetkit.data.dataset import load_image_planes
from unetkit.data.io import plane_shape, read_planes
from unetkit.errors import InputError
from unetkit.data.normalize import Normalization
from unetkit.instances.blocks import label_in_blocks
from unetkit.instances.measure import measure_objects
from unetkit.instances.task import InstanceTask

QUIET = lambda text: None  # noqa: E731


def image(shape=(300, 420), channels: int = 0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 4000, shape + ((channels,) if channels else ()), dtype=np.uint16)


# --- lazy and eager readers agree ----------------------------------------------------------------

@pytest.mark.parametrize("layout", ["strips", "tiled", "pyramid OME-TIFF", "RGB", "stack", "OME-Zarr"])
def test_lazy_and_eager_readers_agree(tmp_path, layout):
    path = tmp_path / ("x.ome.zarr" if layout == "OME-Zarr" else "x.tif")
    channels = 3 if layout == "RGB" else 0
    data = np.stack([image(seed=1), image(seed=2)]) if layout == "stack" else image(channels=channels)
    if layout == "tiled":
        tifffile.imwrite(path, data, tile=(64, 64))
    elif layout == "pyramid OME-TIFF":
        with tifffile.TiffWriter(path, ome=True) as tif:
            tif.write(data, tile=(64, 64), subifds=1, metadata={"axes": "YX"})
            tif.write(data[::2, ::2], tile=(64, 64), subfiletype=1)
    elif layout == "OME-Zarr":
        from unetkit.data.writers import write_ome_zarr

        write_ome_zarr(path, data, labels=True, min_side=64)
    else:
        tifffile.imwrite(path, data, photometric="rgb" if channels else "minisblack")
    eager = [data] if layout == "OME-Zarr" else read_planes(path)
    for plane, expected in enumerate(eager):
        reader = open_image(path, plane)
        assert (reader.height, reader.width) == expected.shape[:2]
        window = reader.read(37, 250, 11, 400)
        assert np.array_equal(window.squeeze(-1) if not channels else window, expected[37:250, 11:400])
    assert np.array_equal(open_image(path, len(eager) - 1).read(0, 300, 0, 420).squeeze(), eager[-1].squeeze())


def test_a_bare_zarr_array_of_a_few_channels_last_is_one_colour_image_not_a_stack_of_strips(tmp_path):
    import zarr

    pixels = np.random.default_rng(0).integers(0, 255, (300, 200, 3), dtype=np.uint8)
    zarr.open_array(str(tmp_path / "yxc.zarr"), mode="w", shape=pixels.shape, dtype="uint8")[:] = pixels
    reader = open_image(tmp_path / "yxc.zarr")  # read as 300 planes of 200 x 3 px before
    assert (reader.height, reader.width, reader.channels) == (300, 200, 3)
    assert np.array_equal(reader.read(10, 20, 5, 9), pixels[10:20, 5:9])
    planes = load_image_planes(tmp_path / "yxc.zarr", Normalization())
    assert len(planes) == 1 and planes[0][2].shape == (3, 300, 200)


def test_a_huge_images_normalisation_comes_from_a_bounded_sample(tmp_path):
    data = image((600, 800))
    tifffile.imwrite(tmp_path / "x.tif", data, tile=(64, 64))
    reader = open_image(tmp_path / "x.tif")
    whole = NormalizedImage(reader, Normalization(), max_pixels=10**9)
    exact = Normalization().apply(data[None].astype(np.float32))
    assert np.allclose(whole[:, 100:200, 50:300], exact[:, 100:200, 50:300], atol=1e-6)  # small: read whole
    sample = sample_pixels(reader, max_pixels=20_000, window=64)
    assert sample.shape[1] <= 20_000 and sample.shape[1] >= 4 * 64 * 64
    sampled = NormalizedImage(reader, Normalization(), max_pixels=20_000)
    assert np.abs(sampled[:, 100:200, 50:300] - exact[:, 100:200, 50:300]).max() < 0.02  # uniform noise: close


def test_the_overlay_of_a_huge_image_is_drawn_from_bounded_bands_and_equals_the_whole_one():
    from scipy import ndimage

    from unetkit.visualize import _Subsampled, display_bounds, object_overlay, overlay, overlay_picture

    rng = np.random.default_rng(0)
    image = rng.random((1, 301, 257)).astype(np.float32)
    objects = ndimage.label(rng.random((301, 257)) > 0.7)[0]

    class Recorded:
        """An array-like that remembers the most rows read at once."""

        def __init__(self, array):
            self.array, self.shape, self.most_rows = array, array.shape, 0

        def __getitem__(self, key):
            part = self.array[key]
            self.most_rows = max(self.most_rows, part.shape[-2] if part.ndim == 3 else part.shape[0])
            return part

    bounds = display_bounds(_Subsampled(image))
    for is_objects, draw in ((False, overlay), (True, object_overlay)):
        labels = objects if is_objects else (objects > 0).astype(np.uint8)
        full = overlay_picture(image, labels, objects=is_objects, band_pixels=257 * 10)
        assert np.array_equal(full, draw(image, labels, bounds=bounds))  # outlines across band borders too
        label_reads = Recorded(labels)
        small = overlay_picture(image, label_reads, objects=is_objects, max_side=100, band_pixels=257 * 9)
        assert small.shape == (76, 65, 3)  # downscaled by 4: every 4th pixel, outlines at that scale
        assert np.array_equal(small, draw(image[:, ::4, ::4], labels[::4, ::4], bounds=bounds))
        assert label_reads.most_rows <= 8 + 2 * 4  # a band of 8 rows (9 rows' pixels, whole steps of 4) + context


# --- out-of-core prediction equals in-memory prediction ----------------------------------------

@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = UNet(depth=3, base_width=4)
    with torch.no_grad():  # about half the pixels foreground: labels that can differ
        model.head.bias -= model(torch.rand(1, 1, 64, 64)).median()
    path = tmp_path_factory.mktemp("model") / "m.pt"
    save_checkpoint(path, make_checkpoint(model))
    return path


@pytest.mark.parametrize("label_format", ["tif", "ome-zarr"])
def test_region_by_region_prediction_writes_what_the_in_memory_path_writes(tmp_path, model_file, label_format):
    tifffile.imwrite(tmp_path / "in.tif", image((500, 700)), tile=(128, 128), resolution=(1e4 / 0.65, 1e4 / 0.65),
                     resolutionunit="CENTIMETER")
    common = dict(tile=TileOptions(tile_size=128), label_format=label_format, probabilities=True)
    eager = predict_files(model_file, [tmp_path / "in.tif"], tmp_path / "eager", PredictOptions(**common), QUIET)[0]
    large = predict_files(model_file, [tmp_path / "in.tif"], tmp_path / "large",
                          PredictOptions(**common, probabilities_on_disk=True), QUIET)[0]
    read = (lambda p: open_image(p).read(0, 500, 0, 700)[..., 0]) if label_format == "ome-zarr" else tifffile.imread
    labels = read(large.labels)
    assert labels.shape == (500, 700) and 0.2 < labels.mean() < 0.8
    assert np.array_equal(labels, read(eager.labels))
    probabilities = open_image(large.probabilities).read(0, 500, 0, 700)[..., 0] if label_format == "ome-zarr" \
        else tifffile.imread(large.probabilities)
    assert probabilities.dtype == np.float32 and np.abs(np.squeeze(probabilities) - np.squeeze(
        open_image(eager.probabilities).read(0, 500, 0, 700)[..., 0] if label_format == "ome-zarr"
        else tifffile.imread(eager.probabilities))).max() < 1e-5
    size = pixel_size(large.labels)
    assert size is not None and size[0] == pytest.approx(0.65, rel=1e-3)  # the input's pixel size, kept
    assert not [p for p in (tmp_path / "large").iterdir() if "partial" in p.name]


@pytest.mark.parametrize("on_disk", [False, True])
def test_a_probability_tiff_names_its_channel_axis_and_pixel_size_for_fiji_and_napari(tmp_path, on_disk):
    # a (K, Y, X) stack written without axes opened in Fiji as K slices of a Z stack, not K channels
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "three.pt", make_checkpoint(UNet(num_classes=3, depth=2, base_width=4)))
    tifffile.imwrite(tmp_path / "in.tif", image((70, 90)), resolution=(1e4 / 0.65, 1e4 / 0.65),
                     resolutionunit="CENTIMETER")
    options = PredictOptions(tile=TileOptions(tile_size=64), label_format="tif", probabilities=True,
                             probabilities_on_disk=on_disk)
    record = predict_files(tmp_path / "three.pt", [tmp_path / "in.tif"], tmp_path / "out", options, QUIET)[0]
    with tifffile.TiffFile(record.probabilities) as tif:
        assert tif.is_ome and tif.series[0].axes == "CYX" and tif.series[0].shape == (3, 70, 90)
        pixels = tif.ome_metadata.split("<Pixels ", 1)[1].split(">", 1)[0]
        probabilities = tif.asarray()
    assert 'PhysicalSizeX="0.65' in pixels and 'PhysicalSizeXUnit="\u00b5m"' in pixels and 'SizeC="3"' in pixels
    assert np.allclose(probabilities.sum(axis=0), 1.0, atol=1e-4)  # softmax over the channel axis
    with tifffile.TiffFile(record.labels) as tif:
        assert tif.series[0].axes == "YX" and tif.series[0].shape == (70, 90)


@pytest.mark.parametrize("unit", ["um", "micron", "\\u00B5m"])
def test_the_calibration_fiji_saves_is_the_pixel_size_the_outputs_carry(tmp_path, model_file, unit):
    # ImageJ records pixels per its own unit (ResolutionUnit NONE, the unit in its description)
    tifffile.imwrite(tmp_path / "ij.tif", image((64, 96)), imagej=True, resolution=(1 / 0.65, 1 / 0.5),
                     metadata={"unit": unit})
    assert pixel_size(tmp_path / "ij.tif") == (pytest.approx(0.5), pytest.approx(0.65), "micrometer")
    record = predict_files(model_file, [tmp_path / "ij.tif"], tmp_path / "out",
                           PredictOptions(label_format="ome-zarr", overlay=False), QUIET)[0]
    assert pixel_size(record.labels) == (pytest.approx(0.5), pytest.approx(0.65), "micrometer")
    in_tiffs = predict_files(model_file, [tmp_path / "ij.tif"], tmp_path / "tif",
                             PredictOptions(label_format="tif", overlay=False, probabilities=True), QUIET)[0]
    for written in (in_tiffs.labels, in_tiffs.probabilities):  # the probabilities lacked it
        assert pixel_size(written) == (pytest.approx(0.5), pytest.approx(0.65), "micrometer"), written
    tifffile.imwrite(tmp_path / "plain.tif", image((64, 96)), imagej=True)  # uncalibrated: no size invented
    assert pixel_size(tmp_path / "plain.tif") is None


@pytest.mark.parametrize("unit", ["\\u00C5", "angstrom"])
def test_a_fiji_calibration_in_angstroms_is_a_pixel_size(tmp_path, unit):
    # an EM image calibrated in Å in Fiji: the unit was not among Fiji's lengths, so the size was lost without a word
    tifffile.imwrite(tmp_path / "em.tif", image((16, 16)), imagej=True, resolution=(1 / 2500, 1 / 5000),
                     metadata={"unit": unit})
    assert pixel_size(tmp_path / "em.tif") == (pytest.approx(0.5), pytest.approx(0.25), "micrometer")


@pytest.mark.parametrize(("y", "y_unit", "x", "x_unit"), [(500, "nm", 0.5, "µm"), (0.5e-6, "m", 5e-7, "m"),
                                                       (0.0005, "mm", 0.5, "µm")])
def test_an_ome_pixel_size_is_read_in_micrometres_whatever_unit_each_axis_records(tmp_path, model_file, y, y_unit,
                                                                                 x, x_unit):
    # Y's unit was taken from X's (500 nm read as 500 µm), and a size in metres was written nowhere
    tifffile.imwrite(tmp_path / "a.ome.tif", image((64, 96)), ome=True, metadata={
        "axes": "YX", "PhysicalSizeX": x, "PhysicalSizeXUnit": x_unit, "PhysicalSizeY": y, "PhysicalSizeYUnit": y_unit})
    assert pixel_size(tmp_path / "a.ome.tif") == (pytest.approx(0.5), pytest.approx(0.5), "micrometer")
    record = predict_files(model_file, [tmp_path / "a.ome.tif"], tmp_path / "out",
                           PredictOptions(label_format="tif", overlay=False), QUIET)[0]
    assert pixel_size(record.labels) == (pytest.approx(0.5), pytest.approx(0.5), "micrometer")


def test_a_screen_resolution_is_no_pixel_size_and_fijis_own_y_unit_is_read(tmp_path):
    # 72 dpi from an image editor read as 353 micrometre pixels (object areas in millions of square micrometres);
    # Fiji's yunit ignored: Y 1000 times too large
    tifffile.imwrite(tmp_path / "dpi.tif", image((16, 16)), resolution=(72, 72), resolutionunit="INCH")
    assert pixel_size(tmp_path / "dpi.tif") is None
    tifffile.imwrite(tmp_path / "scan.tif", image((16, 16)), resolution=(600, 600), resolutionunit="INCH")
    assert pixel_size(tmp_path / "scan.tif")[0] == pytest.approx(25400 / 600)  # a scanner's: a real size
    tifffile.imwrite(tmp_path / "cm.tif", image((16, 16)), resolution=(1e4 / 0.65, 1e4 / 0.65), resolutionunit="CENTIMETER")
    assert pixel_size(tmp_path / "cm.tif") == (pytest.approx(0.65), pytest.approx(0.65), "micrometer")
    tifffile.imwrite(tmp_path / "ij.tif", image((16, 16)), imagej=True, resolution=(1 / 0.5, 1 / 500),
                     metadata={"unit": "um", "yunit": "nm"})
    assert pixel_size(tmp_path / "ij.tif") == (pytest.approx(0.5), pytest.approx(0.5), "micrometer")


def test_ome_zarr_labels_open_in_the_ome_ngff_reader_of_the_registry(tmp_path, model_file):
    ome_zarr = pytest.importorskip("ome_zarr")
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    tifffile.imwrite(tmp_path / "in.tif", image((600, 520)))
    record = predict_files(model_file, [tmp_path / "in.tif"], tmp_path / "out",
                           PredictOptions(label_format="ome-zarr", tile=TileOptions(tile_size=128)), QUIET)[0]
    nodes = list(Reader(parse_url(str(record.labels)))())
    assert ome_zarr.__version__ and nodes, "the reader found no image"
    pyramid = nodes[0].data
    assert [level.shape for level in pyramid] == [(600, 520), (300, 260)]
    assert np.array_equal(np.asarray(pyramid[0]), np.asarray(Image.open(
        predict_files(model_file, [tmp_path / "in.tif"], tmp_path / "png", PredictOptions(
            tile=TileOptions(tile_size=128)), QUIET)[0].labels)))
    assert np.array_equal(np.asarray(pyramid[1]), np.asarray(pyramid[0])[::2, ::2])
    metadata = nodes[0].metadata
    assert [axis["name"] for axis in metadata["axes"]] == ["y", "x"]
    assert record.labels.name == "in_labels.ome.zarr" and metadata["name"] == "in_labels"  # not "in_labels.ome"


# --- objects larger than memory ------------------------------------------------------------------

def test_objects_measured_band_by_band_equal_regionprops():
    from scipy import ndimage as ndi
    from skimage.measure import regionprops_table

    rng = np.random.default_rng(0)
    labels = ndi.label(ndi.gaussian_filter(rng.random((300, 200)), 3) > 0.52)[0].astype(np.uint16)
    intensities = rng.integers(0, 1000, (300, 200, 2)).astype(np.uint16)
    rows = measure_objects(labels, intensities, band=64)
    table = regionprops_table(labels.astype(int), intensity_image=intensities, properties=(
        "label", "area", "centroid", "bbox", "intensity_mean", "intensity_max", "equivalent_diameter_area",
        "eccentricity"))
    assert len(rows) == len(table["label"]) > 20
    pairs = [("area", "area"), ("centroid_y", "centroid-0"), ("centroid_x", "centroid-1"),
             ("bbox_min_y", "bbox-0"), ("bbox_max_x", "bbox-3"), ("mean_intensity_c1", "intensity_mean-1"),
             ("max_intensity_c0", "intensity_max-0"), ("equivalent_diameter", "equivalent_diameter_area"),
             ("eccentricity", "eccentricity")]
    for index, row in enumerate(rows):
        for ours, theirs in pairs:
            assert float(row[ours]) == pytest.approx(float(table[theirs][index]), abs=0.006), (ours, index)


def test_objects_in_micrometres_equal_regionprops_with_the_pixel_spacing():
    # the table gave pixels only (its eccentricity that of the pixel grid), while the pixel size was read and kept
    from scipy import ndimage as ndi
    from skimage.measure import regionprops_table

    rng = np.random.default_rng(1)
    labels = ndi.label(ndi.gaussian_filter(rng.random((200, 160)), 3) > 0.52)[0].astype(np.uint16)
    rows = measure_objects(labels, labels, band=64, pixel_size=(0.25, 0.5, "micrometer"))
    table = regionprops_table(labels.astype(int), spacing=(0.25, 0.5), properties=(
        "area", "centroid", "equivalent_diameter_area", "eccentricity"))
    assert len(rows) == len(table["area"]) > 10
    pairs = [("area_um2", "area"), ("centroid_y_um", "centroid-0"), ("centroid_x_um", "centroid-1"),
             ("equivalent_diameter_um", "equivalent_diameter_area"), ("eccentricity_physical", "eccentricity")]
    for index, row in enumerate(rows):
        for ours, theirs in pairs:
            assert float(row[ours]) == pytest.approx(float(table[theirs][index]), abs=0.002), (ours, index)
    assert "area_um2" not in measure_objects(labels, labels, pixel_size=(1.0, 1.0, "pixel"))[0]
    nanometres = measure_objects(labels, labels, pixel_size=(0.001, 0.001, "micrometer"))  # an electron microscope's
    assert all(float(row["area_um2"]) == pytest.approx(int(row["area"]) * 1e-6, rel=1e-5) for row in nanometres)
    far = np.zeros((4, 60010), np.uint8)
    far[1:3, 60000:60004] = 1  # centroid x 60001.5 px, 18000.45 micrometres at 0.3
    assert measure_objects(far, far, pixel_size=(0.3, 0.3, "micrometer"))[0]["centroid_x_um"] == 18000.45


def test_objects_found_block_by_block_equal_those_of_the_whole_image():
    from test_instances import ideal_outputs

    rng = np.random.default_rng(3)
    rows, cols = np.mgrid[:200, :260]
    truth = np.zeros((200, 260), np.int32)
    for index in range(40):  # objects everywhere, many across the 48-px blocks' borders
        r, c, radius = rng.integers(0, 200), rng.integers(0, 260), rng.integers(5, 12)
        truth[((rows - r) ** 2 + (cols - c) ** 2 <= radius**2) & (truth == 0)] = index + 1
    task = InstanceTask(method="distance", min_size=3)
    outputs = ideal_outputs(task, truth)
    whole = task.labels(outputs)
    blocks = np.zeros(truth.shape, np.uint32)
    count = label_in_blocks(outputs, blocks, task, block=48, margin=32)
    stats = match_instances(whole, blocks, threshold=0.95)
    assert count == stats.n_true == stats.n_pred == stats.tp > 25


def test_an_object_larger_than_the_blocks_margin_comes_out_whole_or_is_said_to_be_cut():
    from test_instances import ideal_outputs

    rows, cols = np.mgrid[:160, :200]
    truth = np.zeros((160, 200), np.int32)
    truth[(rows - 80) ** 2 + (cols - 96) ** 2 <= 45**2] = 1  # 91 px across, on a corner of four 48-px blocks
    truth[10:18, 150:158], truth[140:148, 10:18] = 2, 3
    task = InstanceTask(method="distance", min_size=3)
    outputs = ideal_outputs(task, truth)
    blocks, notes = np.zeros(truth.shape, np.uint32), []
    assert label_in_blocks(outputs, blocks, task, block=48, margin=16, notes=notes) == 3  # a 16-px margin, grown
    assert match_instances(task.labels(outputs), blocks, threshold=0.95).tp == 3 and notes == []
    cut, notes = np.zeros(truth.shape, np.uint32), []
    label_in_blocks(outputs, cut, task, block=48, margin=16, max_margin=16, notes=notes)  # cannot grow: said
    assert np.unique(cut[truth == 1]).size > 1 and "may be cut where blocks meet" in notes[0]
    from scipy import ndimage as ndi

    class Threshold:  # an L-shaped object whose centre of mass lies outside it, in a block it does not touch
        def labels(self, maps: np.ndarray) -> np.ndarray:
            return ndi.label(maps[0] > 0.5)[0]

    shape_l = np.zeros((256, 256), np.float32)
    shape_l[186:192, 60:100], shape_l[192:204, 40:62] = 1, 1
    found, notes = np.zeros(shape_l.shape, np.uint32), []
    assert label_in_blocks(shape_l[None], found, Threshold(), block=64, margin=8, max_margin=64, notes=notes) == 1
    assert np.array_equal(found > 0, shape_l > 0) and notes == []  # kept by a block growing the margin lost it
    hook = np.zeros((256, 256), np.float32)  # its centre of mass lies in block (64, 64), whose window never sees it
    hook[137, 98:138], hook[98:138, 137] = 1, 1
    found, notes = np.zeros(hook.shape, np.uint32), []
    assert label_in_blocks(hook[None], found, Threshold(), block=64, margin=8, max_margin=32, notes=notes) == 1
    assert np.array_equal(found > 0, hook > 0) and notes == []  # kept by the block holding its first pixel


@pytest.fixture(scope="module")
def instance_model_file(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    task = InstanceTask(method="three-class", min_size=3)
    model = UNet(depth=3, base_width=4, num_classes=3)
    path = tmp_path_factory.mktemp("instances") / "m.pt"
    save_checkpoint(path, make_checkpoint(model, task=task))
    return path


def test_skip_existing_region_by_region_describes_the_label_image_it_keeps(tmp_path, instance_model_file):
    tifffile.imwrite(tmp_path / "in.tif", image((300, 260)), tile=(128, 128))
    options = dict(tile=TileOptions(tile_size=128), probabilities_on_disk=True, label_format="tif")
    first = predict_files(instance_model_file, [tmp_path / "in.tif"], tmp_path / "out", PredictOptions(**options),
                          QUIET)[0]
    first.outputs["objects"].unlink()
    table = tmp_path / "out" / first.outputs["objects"].name
    yy, xx = np.mgrid[:300, :260]
    kept = np.where((yy % 20 < 12) & (xx % 20 < 12), (yy // 20) * 13 + xx // 20 + 1, 0).astype(np.uint16)
    tifffile.imwrite(first.labels, kept)  # 195 squares: not what this model finds (one object, or none)
    again = predict_files(instance_model_file, [tmp_path / "in.tif"], tmp_path / "out",
                          PredictOptions(**options, skip_existing=True), QUIET)
    assert len(again) == 1 and np.array_equal(tifffile.imread(first.labels), kept)
    with open(table) as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["label"]) for row in rows] == list(range(1, 196)) and {row["area"] for row in rows} == {"144"}


def test_an_image_the_minimum_object_size_empties_says_so_region_by_region_too(tmp_path, instance_model_file):
    tifffile.imwrite(tmp_path / "in.tif", image((300, 260)), tile=(128, 128))
    said: dict[bool, list[str]] = {False: [], True: []}
    for on_disk in (False, True):
        options = PredictOptions(tile=TileOptions(tile_size=128), probabilities_on_disk=on_disk, min_object_size=10**6)
        predict_files(instance_model_file, [tmp_path / "in.tif"], tmp_path / f"out{on_disk}", options,
                      said[on_disk].append)
    assert [line for line in said[False] if "no objects left" in line]  # the model finds objects, all too small
    assert [line for line in said[True] if "no objects left" in line]


def test_the_work_folder_is_removed_even_while_a_write_in_flight_lands_in_it(tmp_path):
    import threading

    from unetkit.predict_large import remove_folder

    work = tmp_path / ".big.partial-work"
    (work / "outputs.zarr" / "c").mkdir(parents=True)

    def late_chunks() -> None:  # zarr's I/O thread finishing chunks after the stop (Ctrl-C) removed the folder
        for index in range(3):
            time.sleep(0.02)
            (work / "outputs.zarr" / "c" / "0").mkdir(parents=True, exist_ok=True)
            (work / "outputs.zarr" / "c" / "0" / str(index)).write_bytes(b"chunk")

    writer = threading.Thread(target=late_chunks)
    writer.start()
    remove_folder(work, settle_s=0.25)
    writer.join()
    assert not work.exists()


def test_a_stack_that_does_not_fit_in_memory_whole_is_predicted_plane_by_plane_region_by_region(
        tmp_path, model_file, monkeypatch):
    from unetkit.data import memory

    frames = np.stack([image((96, 128), seed=index) for index in range(6)])
    tifffile.imwrite(tmp_path / "movie.tif", frames)
    eager = predict_files(model_file, [tmp_path / "movie.tif"], tmp_path / "eager", PredictOptions(overlay=False),
                          QUIET)
    plane = memory.decoded_bytes(plane_shape(tmp_path / "movie.tif"), np.dtype(np.uint16), 3) / 6
    monkeypatch.setattr(memory, "available_memory_bytes", lambda: int(10 * plane))  # 2 planes' worth, not 6
    said: list[str] = []
    tight = predict_files(model_file, [tmp_path / "movie.tif"], tmp_path / "tight", PredictOptions(overlay=False),
                          said.append)
    assert len(tight) == 6 == sum("predicted region by region" in line for line in said)  # refused before
    for a, b in zip(eager, tight):
        assert np.array_equal(read_planes(a.labels)[0], read_planes(b.labels)[0])


def test_the_free_memory_does_not_change_the_names_of_a_movies_outputs(tmp_path, model_file, monkeypatch):
    from unetkit.data import memory

    tifffile.imwrite(tmp_path / "movie.tif", np.stack([image((96, 128), seed=index) for index in range(6)]))
    first = predict_files(model_file, [tmp_path / "movie.tif"], tmp_path / "out", PredictOptions(overlay=False), QUIET)
    first[-1].labels.unlink()  # a batch stopped before its last plane, resumed on a busier machine
    plane = memory.decoded_bytes(plane_shape(tmp_path / "movie.tif"), np.dtype(np.uint16), 3) / 6
    monkeypatch.setattr(memory, "available_memory_bytes", lambda: int(10 * plane))  # region by region now
    resumed = predict_files(model_file, [tmp_path / "movie.tif"], tmp_path / "out",
                            PredictOptions(overlay=False, skip_existing=True), QUIET)
    assert [record.labels for record in resumed] == [first[-1].labels]  # the missing plane, under its own name
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == sorted(r.labels.name for r in first)


def test_a_large_plane_s_labels_are_a_tiff_only_where_it_is_predicted_region_by_region(tmp_path, model_file,
                                                                                       monkeypatch):
    # a plane past LARGE_PIXELS is predicted region by region (a tiled TIFF, written band by band) in a TIFF, but
    # whole in a PNG, which cannot be read in chunks: its labels stay a PNG, as before
    import unetkit.predict as predict_module

    monkeypatch.setattr(predict_module, "LARGE_PIXELS", 64 * 64)
    Image.fromarray((image((96, 128)) // 256).astype(np.uint8)).save(tmp_path / "big.png")
    tifffile.imwrite(tmp_path / "huge.tif", image((96, 128)))
    records = predict_files(model_file, [tmp_path / "big.png", tmp_path / "huge.tif"], tmp_path / "out",
                            PredictOptions(overlay=False), QUIET)
    assert [record.labels.name for record in records] == ["big_labels.png", "huge_labels.tif"]


# --- many files: sharded, resumed ------------------------------------------------------------------

def small_inputs(folder: Path, count: int) -> Path:
    folder.mkdir()
    for index in range(count):
        Image.fromarray(np.random.default_rng(index).integers(0, 255, (40, 48), dtype=np.uint8)).save(
            folder / f"im{index:03d}.png")
    return folder


def test_torchrun_shards_the_files_so_each_is_predicted_exactly_once(tmp_path, model_file):
    inputs = small_inputs(tmp_path / "in", 9)
    environment = dict(os.environ, OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo")
    finished = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "unetkit",
         "predict", str(model_file), str(inputs), "--out", str(tmp_path / "out"), "--no-overlay"],
        capture_output=True, text=True, env=environment, timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert "shard 1 of 2: 5 of 9" in finished.stderr and "shard 2 of 2: 4 of 9" in finished.stderr
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == [f"im{index:03d}_labels.png" for index in range(9)]


def test_a_batch_killed_midway_is_completed_by_skip_existing_without_redoing_finished_files(tmp_path, model_file):
    inputs = small_inputs(tmp_path / "in", 60)
    command = [sys.executable, "-m", "unetkit", "predict", str(model_file), str(inputs), "--out", str(tmp_path / "out")]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(list((tmp_path / "out").glob("*_overlay.png")) if (tmp_path / "out").exists() else []) < 5:
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)  # no clean-up at all: only atomic writes protect the outputs
    process.wait()
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out").iterdir() if not p.name.startswith(".")}
    assert 0 < len(before) < 120
    subprocess.run([*command, "--skip-existing"], check=True, capture_output=True, timeout=300)
    after = {p.name: p for p in (tmp_path / "out").iterdir()}
    assert sorted(n for n in after if not n.startswith(".")) == sorted(
        f"im{i:03d}_{kind}.png" for i in range(60) for kind in ("labels", "overlay"))
    complete_before = {n for n in before if n.replace("_labels", "_overlay") in before and n.endswith("_labels.png")}
    for name in complete_before:  # finished images were not redone
        assert after[name].stat().st_mtime_ns == before[name]
    references = predict_files(model_file, [inputs / "im000.png", inputs / "im059.png"], tmp_path / "ref",
                               PredictOptions(), QUIET)
    for reference in references:  # a file finished before the kill and one done after it: both right
        assert np.array_equal(read_planes(tmp_path / "out" / reference.labels.name)[0], read_planes(reference.labels)[0])


# --- datasets larger than the memory budget --------------------------------------------------------

def test_a_dataset_over_the_memory_budget_trains_from_its_files_and_learns(tmp_path):
    from unetkit import TrainConfig, train
    from unetkit.data.sampling import PatchSampler, SamplingOptions
    from unetkit.data.sources import FileSource
    from unetkit.training.setup import data_options_for, load_samples

    from helpers import write_dataset

    data = write_dataset(tmp_path / "d", count=5, size=(72, 72))
    for path in (data / "images").iterdir():  # TIFF, read region by region; masks stay PNG (read whole)
        tifffile.imwrite(path.with_suffix(".tif"), read_planes(path)[0], tile=(32, 32))
        path.unlink()
    config = TrainConfig(out=str(tmp_path / "run"), data=str(data), depth=3, base_width=8, epochs=6, steps_per_epoch=12,
                         batch_size=4, patch_size=48, lr=3e-3, val_tile_size=64, progress=False, augment="flips",
                         memory_budget_gib=1e-5)
    messages: list[str] = []
    train_sources, val_sources = load_samples(config, data_options_for(config), messages.append)
    assert all(isinstance(s, FileSource) for s in train_sources + val_sources) and len(val_sources) == 1
    notice = next(m for m in messages if "read from the files as they are drawn" in m)
    assert "memory budget of 10.5 KiB" in notice and "0.0" not in notice  # tiny sizes in a unit that shows them
    sampler = PatchSampler(train_sources, SamplingOptions(48), seed=3)
    first, again = sampler.batch(1, 2, range(4)), PatchSampler(train_sources, SamplingOptions(48), seed=3).batch(1, 2, range(4))
    assert all(torch.equal(a, b) for a, b in zip(first, again))  # still a pure function of (seed, epoch, step)
    result = train(config, report=QUIET)
    rows = list(csv.DictReader(open(tmp_path / "run" / "log.csv")))
    assert result.epochs_completed == 6 and float(rows[-1]["val_dice"]) > 0.8


# --- what a review found -------------------------------------------------------------------------

def test_ome_zarr_outputs_can_be_overwritten_and_continued(tmp_path, model_file):
    tifffile.imwrite(tmp_path / "a.tif", image((200, 240)))
    options = dict(label_format="ome-zarr", tile=TileOptions(tile_size=128))
    first = predict_files(model_file, [tmp_path / "a.tif"], tmp_path / "out", PredictOptions(**options), QUIET)[0]
    assert first.labels.is_dir()
    again = predict_files(model_file, [tmp_path / "a.tif"], tmp_path / "out",
                          PredictOptions(**options, overwrite=True), QUIET)
    skipped = predict_files(model_file, [tmp_path / "a.tif"], tmp_path / "out",
                            PredictOptions(**options, skip_existing=True), QUIET)
    assert len(again) == 1 and skipped == []
    first.remove()
    assert not first.labels.exists()


def test_pages_written_one_by_one_are_predicted_region_by_region_too(tmp_path, model_file):
    with tifffile.TiffWriter(tmp_path / "pages.tif") as writer:
        for seed in range(2):
            writer.write(image((160, 200), seed=seed))
    records = predict_files(model_file, [tmp_path / "pages.tif"], tmp_path / "out",
                            PredictOptions(probabilities_on_disk=True, tile=TileOptions(tile_size=128)), QUIET)
    eager = predict_files(model_file, [tmp_path / "pages.tif"], tmp_path / "eager",
                          PredictOptions(label_format="tif", tile=TileOptions(tile_size=128)), QUIET)
    assert [r.labels.name for r in records] == ["pages_000_labels.tif", "pages_001_labels.tif"]
    for large, small in zip(records, eager):
        ours, theirs = tifffile.imread(large.labels), tifffile.imread(small.labels)
        assert ours.dtype == theirs.dtype and np.array_equal(ours, theirs)


def test_files_predicted_region_by_region_are_never_read_whole(tmp_path, model_file, monkeypatch):
    import unetkit.predict as predict

    tifffile.imwrite(tmp_path / "a_small.tif", image((64, 64)))
    tifffile.imwrite(tmp_path / "b_large.tif", image((300, 300)), tile=(64, 64))
    real = predict.load_image_planes

    def whole_reads_only_of_small_files(path, normalization):
        assert "large" not in path.name, "a file predicted region by region was read whole"
        return real(path, normalization)

    monkeypatch.setattr(predict, "LARGE_PIXELS", 100 * 100)
    monkeypatch.setattr(predict, "load_image_planes", whole_reads_only_of_small_files)
    records = predict_files(model_file, [tmp_path / "a_small.tif", tmp_path / "b_large.tif"], tmp_path / "out",
                            PredictOptions(tile=TileOptions(tile_size=64)), QUIET)
    assert [r.labels.suffix for r in records] == [".png", ".tif"]


def test_shards_refuse_inputs_whose_outputs_would_collide_across_shards(tmp_path, model_file):
    from unetkit.errors import InputError

    for folder in ("x", "y"):
        (tmp_path / folder).mkdir()
        Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / folder / "same.png")
    for shard in ((0, 2), (1, 2)):
        with pytest.raises(InputError, match="same"):
            predict_files(model_file, [tmp_path / "x" / "same.png", tmp_path / "y" / "same.png"], tmp_path / "out",
                          PredictOptions(shard=shard), QUIET)


@pytest.mark.parametrize("bad", [np.nan, np.inf, 1e39])
def test_a_nan_or_out_of_float32_pixel_in_a_region_read_image_is_refused_and_nothing_is_written(tmp_path, model_file,
                                                                                                bad):
    pixels = image((500, 700)).astype(np.float64)
    pixels[460, 650] = bad  # in the last band: found after earlier bands were predicted
    tifffile.imwrite(tmp_path / "in.tif", pixels, tile=(128, 128))
    options = PredictOptions(tile=TileOptions(tile_size=128), label_format="tif", probabilities_on_disk=True)
    with pytest.raises(InputError, match=r"in\.tif.*1 NaN or infinite pixel\(s\)"):
        predict_files(model_file, [tmp_path / "in.tif"], tmp_path / "out", options, QUIET)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
    with pytest.raises(InputError, match=r"1 NaN or infinite pixel\(s\) in rows 384-500"):  # a band, once fitted
        image_in_bands = NormalizedImage(open_image(tmp_path / "in.tif"), Normalization(), max_pixels=1000)
        image_in_bands[:, 384:500, 0:700]


def test_a_nan_pixel_on_one_page_of_a_stack_is_reported_with_that_page(tmp_path):
    pages = np.random.default_rng(0).random((6, 64, 64)).astype(np.float32)
    pages[4, 60, 3] = np.nan
    tifffile.imwrite(tmp_path / "stack.tif", pages)
    NormalizedImage(open_image(tmp_path / "stack.tif", 3), Normalization())  # page 3 is clean
    with pytest.raises(InputError, match=r"1 NaN or infinite pixel\(s\) in stack\.tif\[4\]"):
        NormalizedImage(open_image(tmp_path / "stack.tif", 4), Normalization())
    with pytest.raises(InputError, match=r"in stack\.tif\[4\]"):
        load_image_planes(tmp_path / "stack.tif", Normalization())


def test_a_truncated_tiff_read_in_chunks_is_an_input_error_naming_the_file_and_rows(tmp_path, model_file):
    # region-by-region reading (huge images, datasets beyond --memory-budget) met the codecs' own
    # exceptions raw: a traceback instead of the file's name
    path = tmp_path / "cut.tif"
    tifffile.imwrite(path, np.arange(96 * 96, dtype=np.uint16).reshape(96, 96), tile=(32, 32), compression="zlib")
    path.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])
    reader = open_image(path)  # the header is whole: opening works, reading the last tiles does not
    assert reader.read(0, 32, 0, 32).shape == (32, 32, 1)
    with pytest.raises(InputError, match=r"cut\.tif: rows 0 to 96, columns 0 to 96 cannot be read") as caught:
        sample_pixels(reader)
    assert "complete" in caught.value.fix
    options = PredictOptions(tile=TileOptions(tile_size=64), probabilities_on_disk=True)  # region by region
    with pytest.raises(InputError, match=r"cut\.tif: rows .* cannot be read"):
        predict_files(model_file, [path], tmp_path / "out", options, QUIET)
    assert not (tmp_path / "out").exists()  # no empty output folder left behind
