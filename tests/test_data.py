"""Readers, mask validation, pairing and patch sampling."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import tifffile
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from unetkit.data.dataset import DataOptions, load_labelled, source_file_of, split_validation
from unetkit.data.io import count_planes, read_planes
from unetkit.data.masks import prepare_mask
from unetkit.data.pairing import find_pairs
from unetkit.data.sampling import PatchSampler, SamplingOptions
from unetkit.data.augment import AUGMENT_PRESETS
from unetkit.errors import InputError

from helpers import write_dataset, write_tiff


def test_png_8_and_16_bit_and_rgb(tmp_path):
    Image.fromarray(np.arange(12, dtype=np.uint8).reshape(3, 4)).save(tmp_path / "a.png")
    Image.fromarray(np.full((3, 4), 40000, np.uint16)).save(tmp_path / "b.png")
    Image.fromarray(np.zeros((3, 4, 3), np.uint8)).save(tmp_path / "c.png")
    assert read_planes(tmp_path / "a.png")[0].dtype == np.uint8
    sixteen = read_planes(tmp_path / "b.png")[0]
    assert sixteen.dtype == np.uint16 and sixteen.max() == 40000
    assert read_planes(tmp_path / "c.png")[0].shape == (3, 4, 3)


def test_multipage_tiff_counts_as_several_images_and_rgb_tiff_as_one(tmp_path):
    write_tiff(tmp_path / "stack.tif", np.zeros((5, 6, 7), np.uint16))
    tifffile.imwrite(tmp_path / "rgb.tif", np.zeros((6, 7, 3), np.uint8), photometric="rgb")
    assert [p.shape for p in read_planes(tmp_path / "stack.tif")] == [(6, 7)] * 5
    assert [p.shape for p in read_planes(tmp_path / "rgb.tif")] == [(6, 7, 3)]


def test_an_empty_tiff_is_refused_with_its_name_after_one_read(tmp_path, caplog):
    empty = tmp_path / "empty.tif"
    empty.write_bytes(b"II*\x00\x00\x00\x00\x00")  # a TIFF header whose first page offset is 0
    with pytest.raises(InputError, match="empty.tif.*holds no image"):
        count_planes(empty)
    # the file is opened once: tifffile's own warning is not printed twice before the error
    assert sum("contains no pages" in record.getMessage() for record in caplog.records) == 1



def test_a_numpy_array_of_two_channels_last_saved_without_metadata_is_one_image_of_two_channels(tmp_path):
    # tifffile wrote (192, 192, 2) as a 'QYX' stack: 192 images of 192 x 2 px, which a small model predicted one by one
    from unetkit.data.chunked import open_image
    from unetkit.data.io import plane_shape

    array = np.random.default_rng(0).integers(0, 255, (96, 80, 2), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "two.tif", array)
    planes = read_planes(tmp_path / "two.tif")
    assert len(planes) == 1 and np.array_equal(planes[0], array)
    shape = plane_shape(tmp_path / "two.tif")
    assert (shape.count, shape.height, shape.width, shape.channels) == (1, 96, 80, 2)
    reader = open_image(tmp_path / "two.tif")
    assert (reader.count, reader.channels) == (1, 2) and np.array_equal(reader.read(0, 96, 0, 80), array)
    tifffile.imwrite(tmp_path / "bare.tif", array, metadata=None)  # no shape metadata at all: tifffile's 'IYX'
    assert len(read_planes(tmp_path / "bare.tif")) == 1 and plane_shape(tmp_path / "bare.tif").channels == 2
    tifffile.imwrite(tmp_path / "stack.tif", np.zeros((6, 64, 64), np.uint8))  # a stack stays a stack
    assert len(read_planes(tmp_path / "stack.tif")) == 6 == plane_shape(tmp_path / "stack.tif").count

def test_jpeg_images_are_read(tmp_path):
    Image.fromarray(np.full((8, 8), 100, np.uint8)).save(tmp_path / "a.jpg")
    assert read_planes(tmp_path / "a.jpg")[0].shape == (8, 8)


def test_0_255_masks_map_to_0_1_and_the_tool_says_so(tmp_path):
    root = write_dataset(tmp_path / "d", count=2, mask_scale=255)
    notes: list[str] = []
    samples = load_labelled(root, DataOptions(), notes)
    assert all(set(np.unique(s.mask)) <= {0, 1} for s in samples)
    assert any("{0, 255}" in n and "2 file(s)" in n for n in notes)


def test_a_blank_image_whose_mask_marks_objects_is_named_in_the_notes(tmp_path):
    root = write_dataset(tmp_path / "d", count=3)
    blank = sorted((root / "images").iterdir())[1]
    Image.fromarray(np.zeros(np.asarray(Image.open(blank)).shape, np.uint8)).save(blank)
    from unetkit.data.sources import scan_file_sources

    for read in (load_labelled, scan_file_sources):  # in memory, and streamed (--memory-budget)
        notes: list[str] = []
        read(root, DataOptions(), notes)
        said = [note for note in notes if "holds one value (0) everywhere, yet its mask marks objects" in note]
        assert len(said) == 1 and blank.name in said[0], (read, notes)


def test_instance_labels_become_foreground_with_the_option():
    labels = np.array([[0, 1, 2], [3, 0, 7]], np.uint16)
    assert prepare_mask(labels, "m.tif", num_classes=1, mode="instances").tolist() == [[0, 1, 1], [1, 0, 1]]


def test_instance_labels_without_the_option_are_an_error_that_suggests_it():
    labels = np.array([[0, 1, 2], [3, 4, 5]], np.uint16)
    with pytest.raises(InputError, match="--instance-masks") as error:
        prepare_mask(labels, "m.tif", num_classes=1)
    assert "m.tif" in str(error.value) and "{0, 1, 2, 3, 4, 5}" in str(error.value)


def test_multiclass_masks_need_the_class_count():
    mask = np.array([[0, 1, 2]], np.uint8)
    assert prepare_mask(mask, "m.png", num_classes=3).tolist() == [[0, 1, 2]]
    with pytest.raises(InputError, match="--classes 3"):
        prepare_mask(mask, "m.png", num_classes=1)


@pytest.mark.parametrize("values, dtype, fix", [
    ([0, 1, 255], np.uint8, "--ignore-index 255"),  # 255: the usual "unlabelled" of semantic datasets
    ([0, 1, 2, 255], np.uint8, "--ignore-index 255 --classes 3"),
    ([-1, 0, 1], np.int16, "--ignore-index -1"),
    ([0, 128, 255], np.uint8, "smoothed by resizing or lossy saving"),  # not "256 classes"
])
def test_mask_values_get_the_fix_that_fits_them(values, dtype, fix):
    with pytest.raises(InputError) as error:
        prepare_mask(np.array([values] * 3, dtype), "m.png", num_classes=1)
    assert fix in str(error.value) and "--classes 256" not in str(error.value)


def test_a_negative_ignore_index_stays_itself_and_trains():
    # the fix above offers --ignore-index -1; as uint8 the -1 became 255, which the loss does not ignore and
    # one-hot encoding refused with a torch traceback ("Class values must be smaller than num_classes")
    import torch
    from unetkit.losses import build_loss

    mask = prepare_mask(np.array([[-1, 0], [1, 2]], np.int16), "m.tif", num_classes=3, ignore_index=-1)
    assert mask.tolist() == [[-1, 0], [1, 2]]
    loss = build_loss("dice+ce", 3, ignore_index=-1)(torch.zeros(1, 3, 2, 2), torch.from_numpy(mask)[None])
    assert torch.isfinite(loss)


def test_float_masks_are_refused():
    with pytest.raises(InputError, match="floating point"):
        prepare_mask(np.zeros((2, 2), np.float32), "m.tif", num_classes=1)


@pytest.mark.parametrize("separator, named", [(";", "semicolons"), ("\t", "tabs")])
def test_a_csv_with_another_separator_is_named_as_such(tmp_path, separator, named):
    write_dataset(tmp_path / "d", count=1)
    (tmp_path / "pairs.csv").write_text(f"d/images/img0.png{separator}d/masks/img0.png\n")  # German Excel: ';'
    with pytest.raises(InputError, match=f"separated by {named}") as error:
        find_pairs(tmp_path / "pairs.csv")
    assert "commas" in str(error.value)


def test_subfolders_of_images_and_masks_are_noted_not_silently_skipped(tmp_path):
    root = write_dataset(tmp_path / "d", count=3)
    for folder in ("images", "masks"):
        (root / folder / "sub").mkdir()
        (root / folder / "img2.png").rename(root / folder / "sub" / "img2.png")
    notes: list[str] = []
    assert len(load_labelled(root, DataOptions(), notes)) == 2
    assert notes == ["subfolders are not read (images/sub/, masks/sub/), only the files directly in images/ and masks/"]


def test_csv_of_pairs(tmp_path):
    write_dataset(tmp_path / "d", count=2)
    (tmp_path / "pairs.csv").write_text("image,mask\nd/images/img0.png,d/masks/img0.png\nd/images/img1.png,d/masks/img1.png\n")
    assert len(find_pairs(tmp_path / "pairs.csv").pairs) == 2
    assert len(load_labelled(tmp_path / "pairs.csv", DataOptions())) == 2


def test_stems_match_across_extensions_and_unmatched_files_are_listed(tmp_path):
    root = write_dataset(tmp_path / "d", count=2)
    (root / "masks" / "img1.png").rename(root / "masks" / "img1.tif")
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(root / "images" / "lonely.png")
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(root / "masks" / "orphan.png")
    listing = find_pairs(root)
    assert [p.image.name for p in listing.pairs] == ["img0.png", "img1.png"]
    assert [p.name for p in listing.images_without_mask] == ["lonely.png"]
    assert [p.name for p in listing.masks_without_image] == ["orphan.png"]


def test_validation_split_is_seeded_and_disjoint(tmp_path):
    samples = load_labelled(write_dataset(tmp_path / "d", count=5), DataOptions())
    train_a, val_a = split_validation(samples, 0.4, seed=1)
    train_b, val_b = split_validation(samples, 0.4, seed=1)
    assert [s.name for s in val_a] == [s.name for s in val_b] and len(val_a) == 2
    assert not {s.name for s in train_a} & {s.name for s in val_a}



@pytest.mark.parametrize("streamed", [False, True])
def test_a_split_that_holds_out_most_of_the_foreground_is_said(tmp_path, streamed):
    from unetkit import TrainConfig
    from unetkit.training.setup import data_options_for, load_samples

    data = write_dataset(tmp_path / "d", count=4, size=(64, 80))
    config = TrainConfig(out=str(tmp_path / "run"), data=str(data), depth=2, base_width=4, patch_size=32,
                         progress=False, memory_budget_gib=1e-5 if streamed else 8.0)
    messages: list[str] = []
    _, val = load_samples(config, data_options_for(config), messages.append)
    held = Path(source_file_of(val[0])).name
    assert not any("of the labelled foreground" in m for m in messages)  # four frames alike: nothing to say
    for mask_path in (data / "masks").iterdir():  # every frame but the held-out one keeps a single small object
        if mask_path.name != held:
            mask = np.zeros((64, 80), np.uint8)
            mask[20:24, 30:34] = 1
            Image.fromarray(mask).save(mask_path)
    messages.clear()
    train_samples, val = load_samples(config, data_options_for(config), messages.append)
    assert Path(source_file_of(val[0])).name == held and len(train_samples) == 3  # the split itself is unchanged
    note = next(m for m in messages if "of the labelled foreground" in m)
    assert f"({held})" in note and "1 of 4 images" in note and "--seed" in note and "--val-data" in note
    share = int(note.split(" % of the labelled")[0].rsplit(" ", 1)[1])
    assert 50 < share < 100


def write_stacks(root, frames_per_file: dict[str, int]):
    """``root/images/NAME`` and ``root/masks/NAME``: multi-page TIFFs of disks, one page per frame."""
    from helpers import disks

    for folder in ("images", "masks"):
        (root / folder).mkdir(parents=True)
    for number, (name, frames) in enumerate(frames_per_file.items()):
        pairs = [disks((48, 48), seed=10 * number + frame) for frame in range(frames)]
        tifffile.imwrite(root / "images" / name, np.stack([image for image, _ in pairs]))
        tifffile.imwrite(root / "masks" / name, np.stack([mask for _, mask in pairs]))
    return root


def test_the_planes_of_one_stack_stay_on_one_side_of_the_validation_split(tmp_path):
    samples = load_labelled(write_stacks(tmp_path / "d", {"movie_a.tif": 5, "movie_b.tif": 5, "movie_c.tif": 5}),
                            DataOptions())
    for seed in range(6):
        notes: list[str] = []
        train, val = split_validation(samples, 0.2, seed, notes)
        held = {source_file_of(s) for s in val}
        assert len(held) == 1 and len(val) == 5, (seed, [s.name for s in val])
        assert not held & {source_file_of(s) for s in train}
        held_file = Path(held.pop())
        assert notes == ["validation holds out whole files, a stack's planes together: "
                         f"images/{held_file.name} (5 of 15 images)"]
    by_plane = split_validation(samples, 0.2, 0, by="planes")[1]  # what runs before 2026-12-07 did, and resume so
    assert len(by_plane) == 3 and len({source_file_of(s) for s in by_plane}) > 1


@pytest.mark.parametrize("frames, held_frames", [
    ({"long.tif": 100, "short.tif": 5}, 5),  # the short stack: 5 % instead of 20 %, but no plane of "long" leaks
    ({"a.tif": 20, "b.tif": 20}, 8),  # a whole stack would be half the data: planes, with a note
])
def test_a_whole_stack_is_held_out_only_where_it_is_not_most_of_the_data(tmp_path, frames, held_frames):
    root = write_stacks(tmp_path / "d", frames)
    samples = load_labelled(root, DataOptions())
    for seed in range(3):
        notes: list[str] = []
        train, val = split_validation(samples, 0.2, seed, notes)
        assert len(val) == held_frames and len(train) == sum(frames.values()) - held_frames
        assert ("flatters its score" in notes[0]) == (held_frames == 8), notes


def test_one_file_name_in_several_folders_of_a_csv_is_several_files(tmp_path):
    rows = []
    for index in range(5):
        folder = tmp_path / f"exp{index}"
        write_dataset(folder, count=1, seed=index)
        rows.append(f"{folder / 'images' / 'img0.png'},{folder / 'masks' / 'img0.png'}")
    (tmp_path / "pairs.csv").write_text("\n".join(rows) + "\n")
    samples = load_labelled(tmp_path / "pairs.csv", DataOptions())
    assert len({s.name for s in samples}) == 1  # the names alone ("images/img0.png") cannot tell them apart
    train, val = split_validation(samples, 0.2, 0)
    assert len(train) == 4 and len(val) == 1


@pytest.mark.parametrize("mode", ["instances", "labels"])
def test_densely_packed_small_labels_are_not_taken_for_an_intensity_image(mode):
    from scipy import ndimage as ndi

    rng = np.random.default_rng(0)
    seeds = np.zeros((128, 128), np.int32)  # about 2,700 objects of about 6 px, touching: few neighbours agree
    points = rng.integers(0, 128, (128 * 128 // 6, 2))
    seeds[points[:, 0], points[:, 1]] = np.arange(1, len(points) + 1)
    _, (rows, cols) = ndi.distance_transform_edt(seeds == 0, return_indices=True)
    labels = seeds[rows, cols]
    assert np.array_equal(prepare_mask(labels, "packed.tif", num_classes=1, mode=mode) > 0, labels > 0)
    repeating = (labels % 255 + 1).astype(np.uint8)  # an 8-bit save: ids repeat every 255, each in many pieces
    if mode == "instances":  # foreground: what the objects cover stays right
        assert np.array_equal(prepare_mask(repeating, "packed8.tif", num_classes=1, mode=mode) > 0, repeating > 0)
    else:  # object ids: refused as repeated, not taken for an intensity image
        with pytest.raises(InputError, match="ids wrapped past 255"):
            prepare_mask(repeating, "packed8.tif", num_classes=1, mode=mode)
        assert np.array_equal(prepare_mask(repeating.astype(np.int32), "packed.tif", num_classes=1, mode=mode) > 0,
                              repeating > 0)  # the same ids in a wider type cannot have wrapped: cells cut, say
    for size in (64, 128):  # an image's grey levels, even small 16-bit ones whose values each occur a few times
        image = rng.integers(1, 65535, (size, size)).astype(np.uint16)
        with pytest.raises(InputError, match="looks like an intensity image"):
            prepare_mask(image, "image.tif", num_classes=1, mode=mode)


def test_a_single_stack_is_split_by_plane_with_a_note(tmp_path):
    samples = load_labelled(write_stacks(tmp_path / "d", {"movie.tif": 10}), DataOptions())
    notes: list[str] = []
    train, val = split_validation(samples, 0.2, 0, notes)
    assert len(train) == 8 and len(val) == 2
    assert len(notes) == 1 and "holds out planes of" in notes[0] and "movie.tif" in notes[0] and "--val-data" in notes[0]


def test_foreground_fraction_one_centres_every_patch_on_foreground(tmp_path):
    samples = load_labelled(write_dataset(tmp_path / "d", count=2, size=(200, 200)), DataOptions())
    options = SamplingOptions(patch_size=16, foreground_fraction=1.0, augment=AUGMENT_PRESETS["none"])
    _, masks = PatchSampler(samples, options, seed=0).batch(0, 0, range(40))
    assert all(m[8, 8] == 1 or m[6:11, 6:11].any() for m in masks)
    options = SamplingOptions(patch_size=16, foreground_fraction=0.0, augment=AUGMENT_PRESETS["none"])
    _, random_masks = PatchSampler(samples, options, seed=0).batch(0, 0, range(40))
    assert masks.float().mean() > 2 * random_masks.float().mean()


@pytest.mark.parametrize("streamed", [False, True])
def test_patches_are_centred_on_foreground_to_learn_never_on_ignored_pixels(tmp_path, streamed):
    # half the mask unannotated (--ignore-index 255), a few small objects in the other half: a patch centred on
    # "foreground" must be centred on an object, not on the ignored half
    from unetkit.data.sources import GRID, scan_file_sources

    mask = np.zeros((200, 200), np.uint8)
    mask[:, :100] = 255
    for row, col in ((40, 140), (100, 170), (160, 130)):
        mask[row - 3:row + 3, col - 3:col + 3] = 1
    image = np.random.default_rng(0).integers(0, 255, (200, 200)).astype(np.uint8)
    write_tiff(tmp_path / "d" / "images" / "a.tif", image)
    write_tiff(tmp_path / "d" / "masks" / "a.tif", mask)
    data_options = DataOptions(ignore_index=255)
    samples = (scan_file_sources(tmp_path / "d", data_options) if streamed
               else load_labelled(tmp_path / "d", data_options))
    options = SamplingOptions(patch_size=2 * GRID, foreground_fraction=1.0, augment=AUGMENT_PRESETS["none"],
                              ignore_index=255)
    _, masks = PatchSampler(samples, options, seed=0).batch(0, 0, range(60))
    # streamed sources know foreground to a 16-px cell: a 32-px patch centred in the cell holds the cell
    near_centre = masks if streamed else masks[:, GRID - 2:GRID + 3, GRID - 2:GRID + 3]
    assert all((m == 1).any() for m in near_centre)
    assert (masks == 255).float().mean() < 0.2


@pytest.mark.parametrize("task", ["semantic", "instances"])
def test_the_default_foreground_share_is_what_patches_of_a_sparse_image_get(task):
    # one 4x4 object in a 400x400 image: a patch placed anywhere almost never holds it, so the
    # share of patches that do is the share centred on foreground: the task's default
    from unetkit.data.dataset import Sample
    from unetkit.training.config import TrainConfig
    from unetkit.training.setup import sampling_options_of

    config = TrainConfig(out="r", task=task, augment="none")
    assert config.foreground_fraction == {"semantic": 0.67, "instances": 0.33}[task]
    mask = np.zeros((400, 400), np.uint8)
    mask[200:204, 300:304] = 1
    sample = Sample("sparse", np.random.default_rng(0).random((1, 400, 400), dtype=np.float32), mask)
    options = dataclasses.replace(sampling_options_of(config), patch_size=16)
    _, masks = PatchSampler([sample], options, seed=0).batch(0, 0, range(600))
    holding = float((masks.flatten(1).amax(1) > 0).float().mean())
    assert abs(holding - config.foreground_fraction) < 0.06, holding


def test_the_foreground_share_follows_the_task_unless_given():
    from unetkit.training.config import TrainConfig

    pixels = TrainConfig(out="r")
    assert (pixels.foreground_fraction, pixels.replace(task="instances").foreground_fraction) == (0.67, 0.33)
    given = TrainConfig(out="r", foreground_fraction=0.5)
    assert given.replace(task="instances").foreground_fraction == 0.5
    assert pixels.to_dict()["foreground_fraction"] == 0.67  # config.json records what the run used


def test_runs_saved_before_the_share_followed_the_task_keep_their_third(tmp_path):
    import json

    from unetkit.training.config import TrainConfig
    from unetkit.training.state import resume_config

    stored = TrainConfig(out=str(tmp_path), foreground_fraction=0.33).to_dict()
    (tmp_path / "config.json").write_text(json.dumps(stored))
    assert resume_config(tmp_path).foreground_fraction == 0.33
    del stored["foreground_fraction"]  # a config.json without the option at all
    (tmp_path / "config.json").write_text(json.dumps(stored))
    assert resume_config(tmp_path).foreground_fraction == 0.33


def test_images_smaller_than_the_patch_are_mirrored_up(tmp_path):
    samples = load_labelled(write_dataset(tmp_path / "d", count=1, size=(20, 30)), DataOptions())
    images, masks = PatchSampler(samples, SamplingOptions(patch_size=64), seed=0).batch(0, 0, range(2))
    assert images.shape == (2, 1, 64, 64) and masks.shape == (2, 64, 64)


def test_patches_are_a_pure_function_of_seed_epoch_step_and_index(tmp_path):
    samples = load_labelled(write_dataset(tmp_path / "d", count=3), DataOptions())
    sampler = PatchSampler(samples, SamplingOptions(patch_size=32, augment=AUGMENT_PRESETS["strong"]), seed=3)
    first = sampler.batch(2, 5, range(4))
    sampler.batch(0, 0, range(8))  # drawing other batches in between changes nothing
    again = sampler.batch(2, 5, range(4))
    assert torch_equal(first, again)
    halves = [sampler.batch(2, 5, range(0, 2)), sampler.batch(2, 5, range(2, 4))]
    assert torch_equal(first[0][:2], halves[0][0]) and torch_equal(first[0][2:], halves[1][0])


def torch_equal(a, b) -> bool:
    import torch

    if isinstance(a, tuple):
        return all(torch.equal(x, y) for x, y in zip(a, b))
    return torch.equal(a, b)


@settings(max_examples=25, deadline=None)
@given(
    height=st.integers(2, 40), width=st.integers(2, 40), pages=st.integers(1, 4),
    channels=st.sampled_from([0, 3]), dtype=st.sampled_from([np.uint8, np.uint16, np.float32]),
)
def test_tiff_reader_round_trips_random_shapes_and_dtypes(tmp_path_factory, height, width, pages, channels, dtype):
    folder = tmp_path_factory.mktemp("tiff")
    shape = (pages, height, width) + ((channels,) if channels else ())
    array = (np.random.default_rng(0).random(shape) * 200).astype(dtype)
    photometric = "rgb" if channels else "minisblack"
    tifffile.imwrite(folder / "x.tif", array if pages > 1 else array[0], photometric=photometric)
    planes = read_planes(folder / "x.tif")
    assert len(planes) == pages == count_planes(folder / "x.tif")
    assert all(np.array_equal(p, a) for p, a in zip(planes, array))


def test_palette_and_grey_alpha_pngs_read_as_what_they_show(tmp_path):
    # a palette PNG reads as its indices; an image's brightness is its palette's colours (grey palettes are
    # converted; colour palettes are refused as images and kept as indices for masks); an opaque alpha is dropped
    from unetkit.data.dataset import load_image_planes
    from unetkit.data.normalize import Normalization

    indices = (np.arange(40 * 48).reshape(40, 48) % 4).astype(np.uint8)
    grey = Image.fromarray(indices, "P")
    grey.putpalette([200, 200, 200, 10, 10, 10, 120, 120, 120, 60, 60, 60] + [0] * 756)
    grey.save(tmp_path / "grey.png")
    assert np.array_equal(read_planes(tmp_path / "grey.png")[0], np.array([200, 10, 120, 60], np.uint8)[indices])
    coloured = Image.fromarray(indices, "P")
    coloured.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 756)  # a VOC-style label palette
    coloured.save(tmp_path / "classes.png")
    assert np.array_equal(read_planes(tmp_path / "classes.png")[0], indices)  # as a mask: the classes
    with pytest.raises(InputError, match="palette indices") as error:
        load_image_planes(tmp_path / "classes.png", Normalization())
    assert "classes.png" in str(error.value)
    Image.fromarray(np.dstack([indices * 50, np.full_like(indices, 255)]), "LA").save(tmp_path / "la.png")
    assert np.array_equal(read_planes(tmp_path / "la.png")[0], indices * 50)  # grey, its opaque alpha dropped
    assert count_planes(tmp_path / "la.png") == 1
    from unetkit.data.io import plane_shape

    assert plane_shape(tmp_path / "la.png").channels == plane_shape(tmp_path / "grey.png").channels == 1


def test_an_alpha_channel_is_dropped_and_a_numpy_arrays_last_channel_kept(tmp_path):
    # an RGBA PNG kept its alpha where one pixel was not opaque: 4 channels, the next file 3, and a model of the
    # one refused the other; but a numpy array of 2 or 4 channels, which PIL saves as LA or RGBA, is data
    from unetkit.data.io import plane_shape

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)
    one_pixel = np.full((40, 48), 255, np.uint8)
    one_pixel[3, 4] = 254
    for name, alpha in (("opaque.png", np.full((40, 48), 255, np.uint8)), ("one_pixel.png", one_pixel),
                        ("constant.png", np.full((40, 48), 7, np.uint8))):
        Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(tmp_path / name)
        assert np.array_equal(read_planes(tmp_path / name)[0], rgb), name
        assert plane_shape(tmp_path / name).channels == 3, name
    four = rng.integers(0, 255, (40, 48, 4), dtype=np.uint8)
    Image.fromarray(four).save(tmp_path / "four.png")  # PIL: RGBA
    assert np.array_equal(read_planes(tmp_path / "four.png")[0], four) and plane_shape(tmp_path / "four.png").channels == 4
    two = rng.integers(0, 255, (40, 48, 2), dtype=np.uint8)
    Image.fromarray(two).save(tmp_path / "two.png")  # PIL: LA
    assert np.array_equal(read_planes(tmp_path / "two.png")[0], two) and plane_shape(tmp_path / "two.png").channels == 2


def test_the_odd_image_out_of_a_colour_set_is_the_one_named_with_its_alpha_hint(tmp_path):
    # an RGBA tile with transparent margins (its alpha kept) sorted first among RGB tiles: the error named an RGB tile
    # as the one of "3 channel(s)" and the RGBA tile as the norm, and so gave no word on its alpha
    root = write_dataset(tmp_path / "d", count=4)
    rng = np.random.default_rng(0)
    for index in range(4):
        Image.fromarray(rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)).save(root / "images" / f"img{index}.png")
    alpha = np.full((64, 80), 255, np.uint8)
    alpha[:, :20] = 0  # a transparent margin: a quarter of the pixels
    rgb = np.asarray(Image.open(root / "images" / "img0.png"))
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(root / "images" / "img0.png")
    with pytest.raises(InputError) as error:
        load_labelled(root, DataOptions())
    said = str(error.value)
    assert "img0.png: image has 4 channel(s) but images/img1.png has 3" in said and "its alpha" in said, said


@pytest.mark.parametrize("mode", ["percentile", "minmax"])
def test_an_images_normalisation_does_not_depend_on_its_scale_or_offset(mode, tmp_path):
    from unetkit.data.chunked import open_image, sample_pixels
    from unetkit.data.normalize import Normalization

    image = np.random.default_rng(0).random((1, 40, 50)).astype(np.float32)
    normalization = Normalization(mode)
    expected = normalization.apply(image)
    # float32 values that span a ten-millionth (an absolute floor on the span blanked these), a
    # float64 range of 1e-3 on an offset of a million (float32 holds it to 0.06 only)
    for changed in [image * np.float32(1e-7), image * np.float32(1e-20), image.astype(np.float64) * 1e-3 + 1e6]:
        assert np.abs(normalization.apply(changed) - expected).max() < 1e-5, changed.dtype
        path = tmp_path / f"{changed.dtype}.tif"
        tifffile.imwrite(path, changed[0])
        from_sample = normalization.fitted(sample_pixels(open_image(path))[:, :, None]).apply(changed)
        assert np.abs(from_sample - expected).max() < 1e-5, changed.dtype
    assert not normalization.apply(np.full((1, 5, 5), 35_000, np.uint16)).any()  # constant: 0s


def test_a_few_bright_spots_on_zeros_are_normalised_to_their_brightest_not_blown_up():
    from unetkit.data.normalize import Normalization

    image = np.zeros((1, 128, 128), np.uint16)
    image.flat[np.random.default_rng(0).choice(image.size, 10, replace=False)] = 4000  # percentiles 1 and 99.8 meet
    normalised = Normalization().apply(image)
    assert normalised.max() == pytest.approx(1.0) and normalised.min() == 0.0


@pytest.mark.parametrize("shape", [(3, 40, 50, 1), (3, 1, 40, 50)])
def test_a_stack_saved_with_an_axis_of_one_is_read_as_its_planes(tmp_path, shape):
    from unetkit.data.io import plane_shape

    stack = np.arange(np.prod(shape), dtype=np.uint16).reshape(shape) % 251
    tifffile.imwrite(tmp_path / "s.tif", stack)  # numpy's (N, H, W, 1): axes QYXQ, once refused as a 4D stack
    planes = read_planes(tmp_path / "s.tif")
    assert len(planes) == 3 and all(plane.shape == (40, 50) for plane in planes)
    assert np.array_equal(planes[1], stack.reshape(3, 40, 50)[1])
    assert (plane_shape(tmp_path / "s.tif").count, plane_shape(tmp_path / "s.tif").channels) == (3, 1)


@pytest.mark.parametrize(("channels", "values"), [(3, (3, 200)), (3, (100, 4095)), (2, (0, 60000)), (4, (7, 900))])
def test_a_16_bit_colour_png_reads_all_16_bits(tmp_path, channels, values):
    # what OpenCV's and MATLAB's imwrite save of a uint16 (H, W, 3) array: Pillow kept the high byte only, so
    # 8-bit data in a 16-bit file read as 0 and trained on blank images
    import imagecodecs

    from unetkit.data.io import plane_shape

    rng = np.random.default_rng(0)
    array = rng.integers(*values, size=(20, 30, channels)).astype(np.uint16)
    if channels in (2, 4):
        array[..., -1] = 65535  # an opaque alpha: dropped, as an 8-bit PNG's is
    (tmp_path / "a.png").write_bytes(imagecodecs.png_encode(array))
    plane = read_planes(tmp_path / "a.png")[0]
    expected = np.squeeze(array[..., :-1]) if channels in (2, 4) else array
    assert plane.dtype == np.uint16 and np.array_equal(plane, expected)
    shape = plane_shape(tmp_path / "a.png")
    assert (shape.dtype, shape.channels, shape.height, shape.width) == ("uint16", 1 if channels == 2 else 3, 20, 30)
    if channels == 3:  # its header says all: the pixels are not decoded to answer (before the memory check)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(imagecodecs, "png_decode", lambda data: pytest.fail("decoded"))
            assert plane_shape(tmp_path / "a.png").channels == 3


def test_a_mask_in_a_grey_palette_png_reads_as_its_indices(tmp_path, capsys):
    # class masks {0, 1, 2} saved as an indexed PNG with a black / grey / white palette read as {0, 128, 255}, and
    # the advice was to threshold them, which merges two classes
    from unetkit.cli import main

    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    rng = np.random.default_rng(0)
    for index in range(2):
        classes = np.zeros((40, 48), np.uint8)
        classes[5:20, 5:20], classes[22:35, 25:45] = 1, 2
        mask = Image.fromarray(classes, "P")
        mask.putpalette([0, 0, 0, 128, 128, 128, 255, 255, 255] + [0] * 759)
        mask.save(tmp_path / "masks" / f"m{index}.png")
        Image.fromarray(rng.integers(0, 255, (40, 48), dtype=np.uint8)).save(tmp_path / "images" / f"m{index}.png")
        assert np.array_equal(read_planes(tmp_path / "masks" / f"m{index}.png", mask=True)[0], classes)
    assert read_planes(tmp_path / "masks" / "m0.png")[0].max() == 255  # as an image: what it shows
    assert main(["inspect", str(tmp_path), "--classes", "3"]) == 0, capsys.readouterr().out
    binary = np.zeros((40, 48), np.uint8)
    binary[:12, :12] = 255
    Image.fromarray(binary).convert("RGB").quantize(2).save(tmp_path / "white_first.png")  # palette: white, black
    assert np.array_equal(read_planes(tmp_path / "white_first.png", mask=True)[0] > 0, binary > 0)  # not inverted


def test_a_palette_mask_reads_as_its_indices_whatever_indices_a_file_uses(tmp_path):
    # the reading was decided from the indices each file used: one file of a set read as classes, its sibling as
    # grey levels {0, 128, 255} and refused
    palette = [0, 0, 0, 255, 255, 255, 128, 128, 128] + [0] * 759
    for name, used in (("a", (0, 1, 2)), ("b", (0, 1)), ("c", (1, 2))):
        classes = np.zeros((12, 12), np.uint8)
        for index, value in enumerate(used):
            classes[index * 4 : index * 4 + 4] = value
        mask = Image.fromarray(classes, "P")
        mask.putpalette(palette)
        mask.save(tmp_path / f"{name}.png")
        assert np.array_equal(read_planes(tmp_path / f"{name}.png", mask=True)[0], classes), name


@pytest.mark.parametrize("levels", [(0, 127, 254), (255,), (0, 255)])
def test_a_mask_saved_by_quantize_reads_as_its_grey_levels(tmp_path, levels):
    # quantize() orders its palette white first: a 3-class mask read as indices swapped background and class 2
    mask = np.full((12, 12), levels[0], np.uint8)  # (255,): all foreground
    for index, level in enumerate(levels):
        mask[index * 4 : index * 4 + 4] = level
    Image.fromarray(mask).convert("RGB").quantize(len(levels)).save(tmp_path / "q.png")
    assert np.array_equal(read_planes(tmp_path / "q.png", mask=True)[0], mask)
