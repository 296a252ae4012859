"""Instance segmentation: object metrics on hand-made cases, targets and post-processing of
every method, bad instance masks, training, tiling across objects, export."""

from __future__ import annotations

import csv
import re
import math
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from unetkit import TrainConfig, instances_from_probabilities, match_instances, train
from unetkit.cli import main
from unetkit.instances.targets import border_weight_target, distance_target, three_class_target
from unetkit.instances.task import InstanceTask
from unetkit.sizes import SizeRule
from unetkit.tiling import TileOptions, plan_tiles, predict_tiled

from helpers import snapshot

METHODS = ["distance", "three-class", "border-weights"]


# --- metrics on hand-computed cases ------------------------------------------------------------

def test_both_empty_scores_one_and_seg_is_undefined():
    empty = np.zeros((4, 4), np.uint16)
    stats = match_instances(empty, empty)
    assert (stats.tp, stats.fp, stats.fn) == (0, 0, 0)
    assert stats.precision == stats.recall == stats.f1 == stats.ap == stats.panoptic_quality == 1.0
    assert math.isnan(stats.seg)


def test_a_prediction_on_an_empty_truth_is_all_false_positives():
    truth = np.zeros((4, 4), np.uint16)
    prediction = truth.copy()
    prediction[1:3, 1:3] = 7
    stats = match_instances(truth, prediction)
    assert (stats.tp, stats.fp, stats.fn, stats.f1, stats.ap, stats.precision) == (0, 1, 0, 0.0, 0.0, 0.0)
    assert stats.recall == 0.0  # nothing to find, but something found: not a perfect recall


def test_nothing_predicted_where_objects_are_has_precision_zero_not_one():
    # it was 1.0 (nothing predicted, so nothing wrong), and a mean over images counted such a miss as perfect
    truth = np.zeros((4, 4), np.uint16)
    truth[1:3, 1:3] = 3
    stats = match_instances(truth, np.zeros_like(truth))
    assert (stats.tp, stats.fn, stats.precision, stats.recall, stats.f1) == (0, 1, 0.0, 0.0, 0.0)


def test_negative_or_fractional_labels_are_refused_not_matched_as_objects():
    # a -1 used to shift the ids so that the background (0) became an object: a perfect match of 3 "objects"
    truth = np.zeros((4, 4), np.int64)
    truth[0, 0] = -1
    truth[2:4, 2:4] = 1
    with pytest.raises(ValueError, match="negative"):
        match_instances(truth, truth)
    with pytest.raises(ValueError, match="fractions"):
        match_instances(truth.clip(0), np.full((4, 4), 0.7))


def test_a_merge_of_two_objects_matches_at_most_one():
    truth = np.array([[1, 1, 1, 2, 2, 0]])  # object 1 (3 px), object 2 (2 px)
    merged = np.array([[5, 5, 5, 5, 5, 0]])
    stats = match_instances(truth, merged)
    # IoU(1, merged) = 3/5 = 0.6 >= 0.5 matches; IoU(2, merged) = 2/5 does not
    assert (stats.tp, stats.fp, stats.fn) == (1, 0, 1)
    assert stats.precision == 1.0 and stats.recall == 0.5 and stats.ap == pytest.approx(0.5)
    assert stats.mean_matched_iou == pytest.approx(0.6)
    assert stats.panoptic_quality == pytest.approx(0.6 / 1.5)
    # SEG: object 1 is more than half covered by the merge (J = 3/5), object 2 fully (J = 2/5)
    assert stats.seg == pytest.approx((3 / 5 + 2 / 5) / 2)


def test_a_split_an_unmatched_object_and_ap_over_thresholds():
    truth = np.zeros((10, 10), np.uint16)
    truth[0:4, 0:4] = 1  # 16 px
    truth[6:10, 6:10] = 2  # 16 px, nothing predicted here
    prediction = np.zeros_like(truth)
    prediction[0:4, 0:3] = 3  # 12 px of object 1: IoU 0.75
    prediction[0:4, 3:4] = 4  # 4 px: IoU 0.25
    prediction[8, 0] = 9  # a stray object
    stats = match_instances(truth, prediction)
    assert (stats.tp, stats.fp, stats.fn) == (1, 2, 1)
    assert stats.f1 == pytest.approx(2 / (2 + 2 + 1))
    # AP(t) = 1/4 for t <= 0.75, else 0: six of the ten thresholds (0.5 .. 0.75)
    assert stats.ap_50_95 == pytest.approx(6 * 0.25 / 10)
    assert stats.seg == pytest.approx(0.75 / 2)


def test_border_objects_are_left_out_with_their_matches_and_whole():
    from unetkit.instances.scores import object_scores

    truth = np.zeros((12, 12), np.int32)
    truth[0:3, 4:8] = 1        # on the top border: left out, with its match
    truth[3:6, 4:8] = 2        # touching 1, inside: kept
    truth[7:10, 1:4] = 3       # inside; its prediction grazes the left border: kept, a match
    truth[8:10, 8:11] = 4      # inside, missed: a false negative
    found = np.zeros_like(truth)
    found[0:3, 4:8] = 7        # matches 1: left out with it
    found[3:6, 4:8] = 8        # matches 2
    found[7:10, 0:4] = 9       # matches 3 (IoU 0.75) and touches the border: kept
    found[11, 0:2] = 5         # an id in two pieces on the border (debris): left out whole
    found[5:7, 9:11] = 5       # (this piece does not touch the border)
    found[10:12, 6:8] = 6      # unmatched, on the border: left out
    scores = object_scores(found, truth, ignore_border_objects=True)
    assert (scores["n_true"], scores["n_pred"]) == (3, 2)
    assert (scores["precision"], scores["recall"]) == (1.0, 2 / 3)
    everything = object_scores(found, truth)
    assert (everything["n_true"], everything["n_pred"], everything["precision"]) == (4, 5, 3 / 5)


def test_an_image_whose_objects_all_touch_the_border_is_not_scored_perfect_but_left_out():
    from unetkit.instances.scores import ObjectAccumulator

    inside = np.zeros((12, 12), np.int32)
    inside[4:8, 4:8] = 1
    missed = np.zeros_like(inside)  # the object is missed: F1 0
    strip = np.zeros((3, 12), np.int32)
    strip[:, 1:4], strip[:, 6:9] = 1, 2  # a strip: every object touches its border
    accumulator = ObjectAccumulator(ignore_border_objects=True)
    accumulator.update(missed, inside)
    row = accumulator.update(np.zeros_like(strip), strip)
    assert np.isnan(row["f1"]) and np.isnan(row["dice"]) and (row["n_true"], row["n_pred"]) == (0, 0)
    assert accumulator.means()["f1"] == 0.0  # the strip's n/a leaves the mean alone (a 1.0 made it 0.5)
    both_empty = ObjectAccumulator(ignore_border_objects=True).update(np.zeros_like(strip), np.zeros_like(strip))
    assert both_empty["f1"] == 1.0  # nothing there, nothing found: still perfect


def test_matching_is_optimal_not_greedy():
    # prediction a overlaps truths 1 and 2; b overlaps only 1. Greedy (largest IoU first)
    # pairs a-1 and leaves 2 unmatched; the optimal matching pairs a-2 and b-1.
    truth = np.array([[1, 1, 1, 1, 2, 2, 2, 0]])
    prediction = np.array([[3, 3, 5, 5, 5, 5, 5, 0]])
    stats = match_instances(truth, prediction, threshold=0.3)
    assert stats.tp == 2


# --- targets and post-processing -----------------------------------------------------------

def touching_disks(size=(64, 160), count=6, seed=0) -> np.ndarray:
    """Instance labels of a row of disks, each overlapping the previous one (which it keeps),
    so that neighbours touch along a short edge; ids that skip."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[: size[0], : size[1]]
    labels = np.zeros(size, np.int32)
    column, previous = 4.0, 0
    for index in range(count):
        radius = int(rng.integers(8, 11))
        column += previous + radius - 1
        row = size[0] / 2 + rng.integers(-4, 5)
        disk = (rows - row) ** 2 + (cols - column) ** 2 <= radius**2
        labels[disk & (labels == 0)] = 10 + 3 * index
        previous = radius
    return labels


def ideal_outputs(task: InstanceTask, labels: np.ndarray) -> np.ndarray:
    """What a perfect network would output for these objects (the targets, as probabilities)."""
    targets = task.encode(labels)
    if task.method == "three-class":
        return np.stack([(targets[0] == c).astype(np.float32) for c in range(3)])
    if task.method == "distance":
        return np.stack([targets[0].astype(np.float32), targets[1]])
    return targets[0][None].astype(np.float32)


@pytest.mark.parametrize("method", METHODS)
def test_perfect_outputs_give_back_every_object_touching_ones_apart(method):
    labels = touching_disks()
    from unetkit.instances.targets import touching_border

    assert touching_border(labels).any(), "the test needs objects that touch"
    task = InstanceTask(method=method)
    recovered = task.labels(ideal_outputs(task, labels))
    stats = match_instances(labels, recovered, threshold=0.8)
    assert stats.n_pred == stats.n_true == 6 and stats.tp == 6
    # the same outputs thresholded as one foreground merge touching objects: the test has teeth
    merged = instances_from_probabilities((labels > 0)[None].astype(np.float32), method="foreground")
    assert match_instances(labels, merged, threshold=0.8).tp < 6


def two_hills(second_peak: float, valley: float) -> np.ndarray:
    """Outputs of one foreground piece: two round-topped distance hills (peaks 1 and
    ``second_peak``, 28 px apart) joined by a ridge at ``valley``, as a network gives for two
    touching nuclei whose boundary it barely marks."""
    yy, xx = np.mgrid[:56, :96]
    left = 1 - np.hypot(yy - 28, xx - 34) ** 2 / 24**2
    right = second_peak - np.hypot(yy - 28, xx - 62) ** 2 / 24**2
    ridge = (np.abs(yy - 28) < 5) & (xx > 34) & (xx < 62)
    distance = np.maximum(np.maximum(left, right), np.where(ridge, valley, 0)).clip(0, 1)
    return np.stack([(distance > 0).astype(np.float32), distance.astype(np.float32)])


@pytest.mark.parametrize(("second_peak", "valley", "objects"), [
    (0.95, 0.8, 2),   # a valley 0.15 below the lower top: two nuclei (a share-of-the-highest rule merged them)
    (0.97, 0.93, 1),  # a dip of 0.04: one nucleus with a noisy top, not split
])
def test_distance_seeds_are_hill_tops_that_rise_above_their_valley(second_peak, valley, objects):
    outputs = two_hills(second_peak, valley)
    labels = InstanceTask(method="distance").labels(outputs)
    assert int(labels.max()) == objects
    assert (labels > 0).sum() == (outputs[0] > 0.5).sum()  # the whole piece is shared out, nothing lost


def test_models_stored_with_the_earlier_seed_fraction_still_load():
    from unetkit.tasks import task_from_dict

    stored = {"name": "instances", "method": "distance", "threshold": 0.5, "seed_fraction": 0.7, "min_size": 10}
    assert task_from_dict(stored, 2) == InstanceTask(method="distance")


def test_the_distance_loss_reads_the_distance_inside_objects_only():
    from unetkit.instances.task import distance_loss

    foreground, distance = distance_target(touching_disks())
    batch = (torch.from_numpy(foreground)[None].long(), torch.from_numpy(distance)[None])
    guess = torch.zeros(1, 2, *foreground.shape)
    background_changed = guess.clone()
    background_changed[0, 1][torch.from_numpy(foreground == 0)] = 5.0
    assert torch.isclose(distance_loss(background_changed, batch), distance_loss(guess, batch))
    inside_changed = guess.clone()
    inside_changed[0, 1][torch.from_numpy(foreground > 0)] = 5.0  # far too high inside: costs more
    assert distance_loss(inside_changed, batch) > distance_loss(guess, batch) + 0.5
    right = guess.clone()
    right[0, 1] = torch.logit(torch.from_numpy(distance).clamp(1e-4, 1 - 1e-4))
    assert distance_loss(right, batch) < distance_loss(guess, batch)
    from unetkit.losses import bce_loss, dice_loss

    logits = torch.randn(1, 2, *foreground.shape)
    inside = torch.from_numpy(foreground > 0)
    by_hand = torch.nn.functional.binary_cross_entropy_with_logits(logits[0, 1][inside], batch[1][0][inside])
    pixel_part = dice_loss(logits[:, :1], batch[0]) + bce_loss(logits[:, :1], batch[0])
    assert torch.isclose(distance_loss(logits, batch), pixel_part + by_hand, atol=1e-5)
    empty = (torch.zeros_like(batch[0]), torch.zeros_like(batch[1]))  # a patch with no object
    empty_part = dice_loss(logits[:, :1], empty[0]) + bce_loss(logits[:, :1], empty[0])
    assert torch.isfinite(distance_loss(logits, empty)) and torch.isclose(distance_loss(logits, empty), empty_part)



def test_targets_mark_boundaries_gaps_distances_and_weights():
    labels = np.zeros((12, 20), np.int32)
    labels[2:10, 2:10] = 1
    labels[2:10, 10:18] = 2  # touches object 1 along a column
    classes = three_class_target(labels)
    assert classes[5, 9] == 2 and classes[5, 10] == 2 and classes[5, 5] == 1 and classes[0, 0] == 0
    foreground, distance = distance_target(labels)
    assert distance.max() == pytest.approx(1.0) and distance[5, 9] < distance[5, 5]
    assert distance[labels == 1].max() == pytest.approx(1.0) and distance[labels == 2].max() == pytest.approx(1.0)
    gapped, weights = border_weight_target(labels)
    assert gapped[5, 9] == 0 and gapped[5, 10] == 1  # a one-pixel gap on object 1's side
    assert weights[5, 9] > 5 * weights[0, 0]  # the gap weighs most


# --- bad instance masks ---------------------------------------------------------------------------

def instance_dataset(root: Path, count: int = 3, size=(64, 160)) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for index in range(count):
        labels = touching_disks(size, seed=index)
        rng = np.random.default_rng(index)
        image = 40 + 120 * (labels > 0) + rng.normal(0, 10, size)
        from unetkit.instances.targets import touching_border

        image[touching_border(labels)] -= 60  # a darker seam between touching nuclei, as in real images
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(root / "images" / f"n{index}.png")
        tifffile.imwrite(root / "masks" / f"n{index}.tif", labels.astype(np.uint16))
    return root


@pytest.mark.parametrize("kind, mask, words", [
    ("float", np.zeros((64, 160), np.float32), "floating point"),
    ("binary", None, "looks binary"),
    ("semantic", None, "looks semantic"),
])
def test_bad_instance_masks_are_refused_with_the_file_named(tmp_path, capsys, kind, mask, words):
    data = instance_dataset(tmp_path / "d")
    if kind == "binary":
        mask = (tifffile.imread(data / "masks" / "n1.tif") > 0).astype(np.uint8) * 255
        mask[:, 75:80] = 0  # the chain of touching disks in two pieces: one value, two objects at least
    elif kind == "semantic":
        labels = tifffile.imread(data / "masks" / "n1.tif")
        mask = np.where(labels > 0, 1 + (labels % 2), 0).astype(np.uint8)
    tifffile.imwrite(data / "masks" / "n1.tif", mask)
    before = snapshot(data)
    code = main(["train", str(data), "--task", "instances", "--out", str(tmp_path / "run"), "--depth", "2",
                 "--epochs", "1", "--steps-per-epoch", "1", "--patch-size", "32", "--no-progress"])
    error = capsys.readouterr().err
    assert code == 2 and "n1.tif" in error and words in error, error
    assert snapshot(data) == before and not (tmp_path / "run").exists()



def test_labels_with_stray_pixels_beside_their_objects_are_labels_not_a_semantic_mask(tmp_path):
    from unetkit.data.masks import check_instance_labels
    from unetkit.errors import InputError

    labels = touching_disks((64, 160), seed=2).astype(np.uint16)  # the Cell Tracking Challenge's CHO masks: ids of
    for label in np.unique(labels[labels > 0])[:4]:                 # thousands of px with 1- or 2-px pieces beside
        rows, cols = np.nonzero(labels == label)
        labels[min(rows.max() + 3, 63), cols.min()] = label
    assert check_instance_labels(labels, tmp_path / "m.tif") is None  # accepted: raises nothing
    semantic = np.where(labels > 0, 1 + (labels % 2), 0)  # two values over many objects stays refused
    with pytest.raises(InputError, match="looks semantic"):
        check_instance_labels(semantic, tmp_path / "m.tif")
    binary = np.zeros((100, 100), np.uint8)  # one big cell and a small one (9 % of it): a binary mask, not one id
    binary[:60, :60], binary[80:98, 80:98] = 1, 1
    with pytest.raises(InputError, match="looks binary: 1 value"):
        check_instance_labels(binary, tmp_path / "m.tif")


def test_labels_with_outlines_drawn_as_one_value_are_refused_and_touching_cells_are_not(tmp_path, capsys):
    # a 'boundary' value around every object passed as one more object: every object lost its rim to it
    from skimage.segmentation import find_boundaries

    data = instance_dataset(tmp_path / "d", count=2, size=(96, 96))
    yy, xx = np.mgrid[:96, :96]
    cells = ((yy // 16) * 6 + xx // 16 + 1).astype(np.uint16)  # 36 touching cells, a confluent tissue's labels
    tifffile.imwrite(data / "masks" / "n0.tif", cells)
    tifffile.imwrite(data / "masks" / "n1.tif", np.where(find_boundaries(cells), 65535, cells).astype(np.uint16))
    code = main(["inspect", str(data), "--task", "instances"])
    said = capsys.readouterr().out
    assert code == 2 and "n1.tif" in said and "value 65535 is drawn as lines" in said and "n0.tif" not in said, said

# --- training, prediction, export -------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained_instance_model(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("instances")
    data = instance_dataset(root / "d", count=4)
    config = TrainConfig(out=str(root / "run"), data=str(data), task="instances", depth=3, base_width=8,
                         epochs=6, steps_per_epoch=15, batch_size=4, patch_size=48, lr=3e-3,
                         augment="flips", progress=False, val_tile_size=64, seed=1)
    result = train(config, report=lambda text: None)
    assert result.best_score is not None
    return root / "run" / "best.pt"


def test_instance_training_learns_to_separate_touching_objects(trained_instance_model):
    rows = list(csv.DictReader(open(trained_instance_model.parent / "log.csv")))
    assert rows[-1]["val_f1"] != "" and float(rows[-1]["loss"]) < float(rows[0]["loss"])
    assert max(float(r["val_f1"]) for r in rows) > 0.6
    # best.pt follows the validation pixel Dice (steadier than F1 on a small split), kept for every epoch
    running_best = np.maximum.accumulate([float(r["val_dice"]) for r in rows])
    assert [float(r["best"]) for r in rows] == pytest.approx(list(running_best), abs=1e-5)


def test_predict_writes_instances_objects_table_and_outlined_overlay(tmp_path, trained_instance_model):
    data = instance_dataset(tmp_path / "d", count=1)
    assert main(["predict", str(trained_instance_model), str(data / "images"), "--out", str(tmp_path / "out")]) == 0
    labels = tifffile.imread(tmp_path / "out" / "n0_instances.tif")
    assert labels.dtype == np.uint16 and labels.shape == (64, 160) and labels.max() >= 2
    rows = list(csv.DictReader(open(tmp_path / "out" / "n0_objects.csv")))
    assert [int(r["label"]) for r in rows] == sorted(np.unique(labels[labels > 0]).tolist())
    first = rows[0]
    assert {"area", "centroid_y", "bbox_min_x", "mean_intensity", "max_intensity", "equivalent_diameter",
            "eccentricity", "touches_border"} <= set(first)
    assert int(first["area"]) == int((labels == int(first["label"])).sum())
    overlay = np.asarray(Image.open(tmp_path / "out" / "n0_overlay.png"))
    assert overlay.shape == (64, 160, 3) and (overlay == 255).all(axis=-1).sum() > 20  # white outlines


def test_a_calibrated_images_objects_table_adds_micrometres_and_an_empty_one_has_the_same_header(
        tmp_path, trained_instance_model):
    data = instance_dataset(tmp_path / "d", count=1)
    image = np.asarray(Image.open(data / "images" / "n0.png"))
    tifffile.imwrite(tmp_path / "cal.tif", image, imagej=True, resolution=(1 / 0.5, 1 / 0.25), metadata={"unit": "um"})
    tifffile.imwrite(tmp_path / "blank.tif", np.zeros_like(image))
    assert main(["predict", str(trained_instance_model), str(tmp_path / "cal.tif"), str(tmp_path / "blank.tif"),
                 "--out", str(tmp_path / "out")]) == 0
    rows = list(csv.DictReader(open(tmp_path / "out" / "cal_objects.csv")))
    assert rows and all(float(r["area_um2"]) == pytest.approx(int(r["area"]) * 0.25 * 0.5, abs=1e-3) for r in rows)
    assert all(float(r["centroid_x_um"]) == pytest.approx(float(r["centroid_x"]) * 0.5, abs=0.01) for r in rows)
    from unetkit.instances.measure import object_columns
    from unetkit.instances.task import write_objects_csv

    write_objects_csv(tmp_path / "empty.csv", [], False, object_columns(3, calibrated=True))  # an RGB image's, none
    rgb = np.dstack([image] * 3)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, imagej=True, resolution=(1 / 0.5, 1 / 0.25), metadata={"unit": "um"})
    labels = tifffile.imread(tmp_path / "out" / "cal_instances.tif")
    rows = InstanceTask().write_outputs  # the same writer predict uses, on an RGB calibrated image with objects
    rows({"objects": tmp_path / "full.csv"}, rgb, None, labels, False, pixel_size=(0.25, 0.5, "micrometer"))
    header = lambda path: open(path).readline().strip().split(",")  # noqa: E731
    assert header(tmp_path / "empty.csv") == header(tmp_path / "full.csv")
    assert "mean_intensity_c2" in header(tmp_path / "full.csv") and "area_um2" in header(tmp_path / "full.csv")


def test_evaluate_reports_object_metrics_with_pixel_dice(tmp_path, trained_instance_model, capsys):
    data = instance_dataset(tmp_path / "d", count=2)
    assert main(["evaluate", str(trained_instance_model), str(data), "--csv", str(tmp_path / "e.csv")]) == 0
    header = capsys.readouterr().out.splitlines()[0].split()
    assert header[:4] == ["image", "dice", "iou", "f1"] and {"ap50", "ap50_95", "pq", "seg"} <= set(header)
    rows = list(csv.DictReader(open(tmp_path / "e.csv")))
    assert [r["image"] for r in rows][-1] == "mean" and 0 <= float(rows[-1]["f1"]) <= 1



@pytest.mark.parametrize("dtype", [np.uint32, np.int64])
def test_object_ids_past_int32_score_as_the_same_objects_with_small_ids(tmp_path, trained_instance_model, dtype):
    # a cast to int32 wrapped them: uint32 ids from 2**31 became negative (the background an object, Dice 0), int64
    # ids past 2**32 collided with others (2**32 + k - 1 became k - 1, the next object's id)
    from unetkit import evaluate_checkpoint

    data = instance_dataset(tmp_path / "d", count=2)
    small = evaluate_checkpoint(trained_instance_model, data).rows()
    for path in (data / "masks").iterdir():
        labels = tifffile.imread(path).astype(np.int64)
        big = labels + 3_000_000_000
        if dtype == np.int64:  # every second object's id becomes 2**32 + the id of the object before it
            ids = np.unique(labels[labels > 0])
            big = labels.copy()
            for previous, this in zip(ids[0::2], ids[1::2]):
                big[labels == this] = 2**32 + previous
        tifffile.imwrite(path, np.where(labels > 0, big, 0).astype(dtype))
    assert evaluate_checkpoint(trained_instance_model, data).rows() == small


def test_evaluate_of_an_object_model_on_binary_masks_does_not_offer_training_advice(tmp_path, trained_instance_model,
                                                                                     capsys):
    data = instance_dataset(tmp_path / "d", count=1)
    for path in (data / "masks").iterdir():
        tifffile.imwrite(path, (tifffile.imread(path) > 0).astype(np.uint8))
    assert main(["evaluate", str(trained_instance_model), str(data)]) == 2
    error = capsys.readouterr().err
    assert "looks binary" in error and "an object model is scored against objects" in error
    assert "--task instances out" not in error

def test_evaluate_can_leave_out_objects_the_labels_omit_at_the_image_border(tmp_path, trained_instance_model, capsys):
    from skimage.segmentation import clear_border

    data = instance_dataset(tmp_path / "d", count=1)
    image = np.asarray(Image.open(data / "images" / "n0.png")).copy()
    image[20:44, :14] = 160  # a nucleus cut by the left border, in the image but not in the labels
    image[50:, 140:156] = 160  # one cut by the bottom border, in both
    Image.fromarray(image).save(data / "images" / "n0.png")
    truth = tifffile.imread(data / "masks" / "n0.tif")
    truth[50:, 140:156] = truth.max() + 1
    tifffile.imwrite(data / "masks" / "n0.tif", truth)
    assert main(["predict", str(trained_instance_model), str(data / "images"), "--out", str(tmp_path / "p")]) == 0
    found = tifffile.imread(tmp_path / "p" / "n0_instances.tif")
    count = lambda labels: len(np.unique(labels[labels > 0]))  # noqa: E731
    assert count(clear_border(truth)) < count(truth)  # the case holds an object on the border
    means = {}
    for flags in ([], ["--ignore-border-objects"]):
        csv_path = tmp_path / f"e{len(flags)}.csv"
        assert main(["evaluate", str(trained_instance_model), str(data), "--csv", str(csv_path), *flags]) == 0
        means[bool(flags)] = list(csv.DictReader(open(csv_path)))[-1]
    assert (int(means[False]["n_true"]), int(means[False]["n_pred"])) == (count(truth), count(found))
    # left out: objects on the border, but not a found one that only grazes it and matches an inner true one
    from unetkit.instances.matching import matched_pairs

    inner_truth, inner_found = set(np.unique(clear_border(truth))), set(np.unique(clear_border(found)))
    grazing = {int(p) for t, p in zip(*matched_pairs(truth, found)) if t in inner_truth and p not in inner_found}
    assert (int(means[True]["n_true"]), int(means[True]["n_pred"])) == (count(clear_border(truth)),
                                                                        count(clear_border(found)) + len(grazing))
    semantic = tmp_path / "semantic"
    train(TrainConfig(out=str(semantic), data=str(data), depth=2, base_width=4, epochs=1, steps_per_epoch=1,
                      batch_size=1, patch_size=32, progress=False, val_fraction=0.0, mask_mode="instances"),
          report=lambda text: None)
    capsys.readouterr()
    assert main(["evaluate", str(semantic / "last.pt"), str(data), "--ignore-border-objects",
                 "--csv", str(tmp_path / "s.csv")]) == 2
    assert "for instance models" in capsys.readouterr().err and not (tmp_path / "s.csv").exists()


def test_min_object_size_drops_the_smaller_objects_in_predict_and_evaluate(tmp_path, trained_instance_model, capsys):
    data = instance_dataset(tmp_path / "d", count=1)
    assert main(["predict", str(trained_instance_model), str(data / "images"), "--out", str(tmp_path / "a")]) == 0
    areas = np.bincount(tifffile.imread(tmp_path / "a" / "n0_instances.tif").ravel())[1:]
    cut = int(np.median(areas[areas > 0])) + 1  # about half the objects are smaller
    assert main(["predict", str(trained_instance_model), str(data / "images"), "--out", str(tmp_path / "b"),
                 "--min-object-size", str(cut)]) == 0
    kept = np.bincount(tifffile.imread(tmp_path / "b" / "n0_instances.tif").ravel())[1:]
    assert 0 < (kept > 0).sum() == (areas >= cut).sum() < (areas > 0).sum() and kept[kept > 0].min() >= cut
    assert main(["evaluate", str(trained_instance_model), str(data), "--csv", str(tmp_path / "e.csv"),
                 "--min-object-size", str(cut)]) == 0
    assert int(list(csv.DictReader(open(tmp_path / "e.csv")))[-1]["n_pred"]) == (areas >= cut).sum()
    capsys.readouterr()
    with pytest.raises(SystemExit) as refused:  # argparse's usage error, before the model is loaded
        main(["predict", str(trained_instance_model), str(data / "images"), "--out", str(tmp_path / "c"),
              "--min-object-size", "0"])
    assert refused.value.code == 2 and not (tmp_path / "c").exists()
    assert "--min-object-size: must be at least 1, got '0'" in capsys.readouterr().err
    for value, why in (("-3", "must be at least 1"), ("ten", "not a whole number"), ("2.5", "not a whole number")):
        with pytest.raises(SystemExit):
            main(["evaluate", str(trained_instance_model), str(data), "--min-object-size", value])
        assert f"--min-object-size: {why}" in capsys.readouterr().err


def test_an_instance_model_survives_onnx_export_with_the_same_objects(tmp_path, trained_instance_model):
    pytest.importorskip("onnxruntime")
    data = instance_dataset(tmp_path / "d", count=1)
    assert main(["export", str(trained_instance_model), "--out", str(tmp_path / "m.onnx")]) == 0
    common = [str(data / "images"), "--no-overlay", "--precision", "fp32"]
    assert main(["predict", str(trained_instance_model), *common, "--out", str(tmp_path / "torch")]) == 0
    assert main(["predict", str(tmp_path / "m.onnx"), *common, "--out", str(tmp_path / "onnx")]) == 0
    ours = tifffile.imread(tmp_path / "torch" / "n0_instances.tif")
    theirs = tifffile.imread(tmp_path / "onnx" / "n0_instances.tif")
    assert ours.max() >= 2
    stats = match_instances(ours, theirs, threshold=0.9)
    assert stats.tp == stats.n_true == stats.n_pred


class ChannelsAsOutputs:
    """A predictor whose outputs are its input channels: every pixel's output is its own,
    so tiling cannot change them; only how objects are assembled could."""

    size_rule = SizeRule(16, 16)
    in_channels = 2
    num_outputs = 2
    device = torch.device("cpu")

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        return batch.float()


def test_objects_that_cross_tile_borders_come_out_whole_and_once():
    height, width = 150, 400
    labels = np.zeros((height, width), np.int32)
    for index, top in enumerate(range(10, 140, 26)):  # long bars, each crossing several tiles
        labels[top : top + 16, 15 + 7 * index : 385 - 5 * index] = index + 1
    labels[62:78, 200:260] = 0  # one bar cut in two by a gap: two objects there
    labels[62:78, 260:380] = 99
    task = InstanceTask(method="distance")
    image = np.stack(ideal_outputs(task, labels))
    options = TileOptions(tile_size=64, overlap=0.25)
    geometry = plan_tiles(SizeRule(16, 16), height, width, options)
    crossing = [i for i in np.unique(labels[labels > 0]) if
                len({s for s in geometry.col_starts if np.any((labels == i)[:, max(s, 0):s + 64])}) > 2]
    assert len(crossing) >= 5  # objects span more than two tiles each
    tiled = task.labels(predict_tiled(ChannelsAsOutputs(), image, options))
    whole = task.labels(image)
    assert np.array_equal(tiled, whole)
    stats = match_instances(labels, tiled, threshold=0.8)
    assert stats.n_true == 6 and stats.n_pred == 6 and stats.tp == 6


def test_the_report_marks_whole_objects_for_an_instance_model():
    truth = np.zeros((6, 12), np.int32)
    truth[1:5, 1:4] = 1  # found
    truth[1:5, 8:11] = 2  # missed
    predicted = np.zeros_like(truth)
    predicted[1:5, 1:4] = 5
    predicted[0:2, 5:7] = 6  # nothing there
    errors = InstanceTask().error_masks(predicted, truth)
    assert errors.unit == "objects"
    assert errors.true_positive.sum() == 12 and errors.false_positive.sum() == 4
    assert errors.false_negative.sum() == 12 and errors.wrong_class is None


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_non_finite_distance_gives_objects_not_a_hang(bad):
    outputs = two_hills(0.95, 0.8)
    outputs[1, 28, 22] = bad  # a network gone wrong at one pixel of a flank (scikit-image's h-maxima never returned)
    labels = InstanceTask(method="distance").labels(outputs)
    assert int(labels.max()) == 2 and (labels > 0).sum() == (outputs[0] > 0.5).sum()


def test_a_run_saved_when_instance_models_kept_the_best_f1_resumes_on_the_dice(tmp_path):
    from unetkit.checkpoint import read_checkpoint, save_checkpoint
    from unetkit.training.state import resume_config

    data = instance_dataset(tmp_path / "d", count=3)
    config = TrainConfig(out=str(tmp_path / "run"), data=str(data), task="instances", depth=2, base_width=4,
                         epochs=1, steps_per_epoch=2, batch_size=2, patch_size=48, progress=False, val_tile_size=64)
    train(config, report=lambda text: None)
    last = tmp_path / "run" / "last.pt"
    payload = read_checkpoint(last)
    stored_name = payload["training"].pop("score_name", None)  # as before: the scores were F1s, no name said so
    payload["training"]["best_score"] = payload["training"]["reference_score"] = 0.999
    save_checkpoint(last, payload, overwrite=True)
    train(resume_config(tmp_path / "run", epochs=2), resume=True, report=lambda text: None)
    rows = list(csv.DictReader(open(tmp_path / "run" / "log.csv")))
    assert float(rows[-1]["best"]) == pytest.approx(float(rows[-1]["val_dice"]), abs=1e-5)  # not the old 0.999
    assert stored_name == "dice" and read_checkpoint(last)["training"]["score_name"] == "dice"


def test_an_image_emptied_by_the_minimum_object_size_says_so(tmp_path, trained_instance_model, capsys):
    # a --min-object-size above every object's size wrote empty outputs without a word
    data = instance_dataset(tmp_path / "d", count=1)
    assert main(["predict", str(trained_instance_model), str(data / "images"), "--out", str(tmp_path / "big"),
                 "--min-object-size", "1e5"]) == 0  # a whole number written as a float is taken (it was refused)
    assert tifffile.imread(tmp_path / "big" / "n0_instances.tif").max() == 0
    said = capsys.readouterr().err
    found = re.search(r"n0.*no objects left: the (\d+) found are all smaller than the minimum object size of "
                      r"100000 px \(--min-object-size\)", said)
    assert found, said
    assert "predict:" in said and "/1 [" in said  # the bar over the images (one here), by default
    assert main(["predict", str(trained_instance_model), str(data / "images"), "--out", str(tmp_path / "usual"),
                 "--no-progress"]) == 0
    assert int(found.group(1)) >= tifffile.imread(tmp_path / "usual" / "n0_instances.tif").max() >= 2  # + specks
    quiet = capsys.readouterr().err
    assert "no objects left" not in quiet and "predict:" not in quiet and "%" not in quiet


# --- the minimum object size, chosen on the validation images ----------------------------------

def test_the_size_calibration_drops_debris_but_never_typical_objects():
    from unetkit.instances.calibrate import SizeCalibration

    truth = touching_disks(seed=0)  # 6 disks of radius 8 to 10: 200 to 300 px
    found = truth.copy()
    found[2:6, 2:6] = 90  # 16 px of debris the labels do not have
    found[58:62, 150:154] = 91
    calibration = SizeCalibration(sizes=(10, 20, 40, 80, 160, 320))
    calibration.add(found, truth)
    assert calibration.sizes[calibration.choose()] == 20  # the smallest size that drops the debris
    smallest = min(a for a in np.bincount(truth.ravel())[1:] if a > 0)
    assert [len(rows) for rows in calibration.rows] == [int(s <= smallest / 2) for s in calibration.sizes]
    assert [len(rows) for rows in calibration.rows][:4] == [1, 1, 1, 1]  # up to half the smallest object (~200 px)
    small = truth.copy()  # labelled objects of 16 px are real: no size drops them
    small[2:6, 2:6], small[58:62, 150:154] = 90, 91
    calibration = SizeCalibration(sizes=(10, 20, 40, 80, 160, 320))
    calibration.add(found, small)
    assert calibration.choose() == 0
    from unetkit.instances.calibrate import allowed_sizes

    far_ids = np.where(truth > 0, truth.astype(np.int64) + 4_000_000_000, 0).astype(np.uint32)  # ids may skip
    assert allowed_sizes(far_ids) == allowed_sizes(truth)  # by the objects' areas, without a 16 GB count
    empty = SizeCalibration(sizes=(10, 20, 40))  # an image without labelled objects: only its debris to drop
    empty.add(found[:8, :8], np.zeros((8, 8), np.int32))
    assert empty.sizes[empty.choose()] == 20


def test_training_keeps_the_minimum_object_size_that_scores_best_on_its_validation_images(tmp_path):
    from unetkit.inference.loading import load_predictor
    from unetkit.training.history import read_rows
    from unetkit.training.setup import task_of

    train_data = instance_dataset(tmp_path / "train", count=3)
    val_data = instance_dataset(tmp_path / "val", count=1)
    image = np.asarray(Image.open(val_data / "images" / "n0.png")).copy()
    image[2:6, 2:6] = image[58:62, 150:154] = 160  # bright specks the labels leave out, as debris
    Image.fromarray(image).save(val_data / "images" / "n0.png")
    common = dict(data=str(train_data), val_data=str(val_data), task="instances", depth=3, base_width=8, epochs=6,
                  steps_per_epoch=15, batch_size=4, patch_size=48, lr=3e-3, augment="flips", progress=False,
                  val_tile_size=64, seed=1)
    said: list[str] = []
    train(TrainConfig(out=str(tmp_path / "run"), **common), report=said.append)
    chosen = load_predictor(tmp_path / "run" / "best.pt").task.min_size
    assert chosen in (20, 40), said  # the specks' 16 px dropped, the disks' 200 to 300 px kept
    assert any(f"(objects of {chosen} px or more)" in line for line in said)
    rows = read_rows(tmp_path / "run" / "log.csv")
    kept = [row for row in rows if row["step"] == rows[-1]["kept_step"]][0]  # the epoch best.pt is from
    assert kept["min_object_size"] == str(chosen), rows  # log.csv says which size each epoch chose
    fixed = TrainConfig(out=str(tmp_path / "fixed"), **common, min_object_size=10)
    assert task_of(fixed).min_size == 10  # given, it is kept: nothing is chosen
    with pytest.raises(Exception, match="for --task instances"):
        TrainConfig(out=str(tmp_path / "s"), min_object_size=10)
    from unetkit.cli import build_parser

    parsed = build_parser().parse_args(["train", "--task", "instances", "--out", "o", "--min-object-size", "1e2"])
    assert parsed.min_object_size == 100  # as predict and evaluate take it
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--task", "instances", "--out", "o", "--min-object-size", "2.5"])


def test_label_images_whose_ids_repeat_are_refused_as_an_8_bit_save_of_too_many_objects(tmp_path):
    from unetkit.data.masks import check_instance_labels
    from unetkit.errors import InputError

    yy, xx = np.mgrid[:160, :160]
    objects = np.where((yy % 8 < 6) & (xx % 8 < 6), (yy // 8) * 20 + xx // 8 + 1, 0)  # 400 squares of 36 px
    assert check_instance_labels(objects.astype(np.uint16), tmp_path / "m.tif") is None
    with pytest.raises(InputError, match=r"144 of the 255 object ids each cover separate objects.*8-bit file"):
        check_instance_labels(objects.astype(np.uint8), tmp_path / "m.png")  # ids 256.. wrapped onto 0..144
    one_split = objects.copy()
    one_split[objects == 5] = 7  # an id on two pieces (a cell cut by the plane) is not a repeated id
    assert check_instance_labels(one_split, tmp_path / "m.tif") is None
    yy, xx = np.mgrid[:128, :128]
    curved = np.where((yy % 8 < 6) & (xx % 8 < 6), (yy // 8) * 16 + xx // 8 + 1, 0)  # 256 squares ...
    curved = np.where(curved > 252, 0, curved).astype(np.uint8)                      # ... 252 of them, in 8 bits
    for label in range(8, 250, 8):  # every 8th id on two squares, spread over the ids: slices of curved 3D cells
        curved[curved == label + 1] = label
    assert np.unique(curved).size - 1 == 252 - 31 and check_instance_labels(curved, tmp_path / "m.png") is None


def test_matched_pairs_match_object_by_object_without_a_matrix_of_all_objects():
    import tracemalloc

    from unetkit.instances.matching import match_instances, matched_pairs

    side = 55  # 3,025 objects of 2 x 2 px: a dense matrix of every pair held 73 MB (a tissue scan's 40,000: 13 GB)
    grid = np.zeros((4 * side, 4 * side), np.int32)
    ids = np.arange(1, side * side + 1).reshape(side, side)
    for dy in (1, 2):
        for dx in (1, 2):
            grid[dy::4, dx::4] = ids
    shifted = np.where(grid > 0, grid + 7, 0)
    tracemalloc.start()
    truth_ids, found_ids = matched_pairs(grid, shifted)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 20e6 and np.array_equal(found_ids, truth_ids + 7) and truth_ids.size == side * side
    truth = np.array([[1, 1, 1, 2, 2, 2]])  # at IoU 0.3 the best sum pairs 1-5 and 2-6, not the greedy 1-6
    found = np.array([[5, 5, 6, 6, 6, 6]])
    pairs = matched_pairs(truth, found, threshold=0.3)
    assert [tuple(p) for p in np.transpose(pairs)] == [(1, 5), (2, 6)]
    assert match_instances(truth, found, threshold=0.3).tp == 2


def test_a_distance_models_outputs_through_a_softmax_are_refused_not_made_into_objects(tmp_path):
    # the README's Python recipe gave a bare network to predict_tiled, which put a distance model's two outputs
    # through a softmax: 26 objects where there were 4, silently; load_predictor applies the task's sigmoids
    import unetkit
    from unetkit.checkpoint import make_checkpoint, save_checkpoint
    from unetkit.model import UNet, UNetConfig

    torch.manual_seed(0)
    model = UNet(UNetConfig(depth=2, base_width=4, num_classes=2))
    image = np.random.default_rng(0).random((1, 64, 64), dtype=np.float32)
    with torch.no_grad():  # logits centred with a spread of 3: outputs that vary across the image, as a trained model's
        logits = model.eval()(torch.from_numpy(image)[None])
        centre, scale = logits.mean(dim=(0, 2, 3)), logits.std(dim=(0, 2, 3)) / 3
        model.head.weight.div_(scale[:, None, None, None])
        model.head.bias.sub_(centre).div_(scale)
    save_checkpoint(tmp_path / "m.pt", make_checkpoint(model, task=InstanceTask(method="distance")))
    bare, _ = unetkit.load_model(tmp_path / "m.pt")
    through_softmax = predict_tiled(bare, image, TileOptions(tile_size=64))
    with pytest.raises(ValueError, match="load_predictor"):
        instances_from_probabilities(through_softmax)
    loaded = unetkit.load_predictor(tmp_path / "m.pt", precision="fp32")
    outputs = predict_tiled(loaded.predictor, image, TileOptions(tile_size=64))
    assert np.ptp(outputs[0]) > 0.2 and np.abs(outputs.sum(0) - 1).max() > 1e-3  # two sigmoids
    assert loaded.task.labels(outputs).shape == (64, 64)


def test_an_object_model_saved_again_keeps_its_task_or_is_refused(tmp_path, trained_instance_model):
    # make_checkpoint(*load_model(path)) saved an object model as a 2-class pixel model: Dice 0 on every image
    import unetkit

    model, data_options = unetkit.load_model(trained_instance_model)
    with pytest.raises(ValueError, match="pass its task too"):
        unetkit.make_checkpoint(model, data_options)
    from unetkit.data.dataset import DataOptions
    from unetkit.model import UNet, UNetConfig

    with pytest.raises(ValueError, match="the data options say 2 classes, the network has 1 output:"):
        unetkit.make_checkpoint(UNet(UNetConfig(depth=2, base_width=4)), DataOptions(num_classes=2))
    loaded = unetkit.load_checkpoint(trained_instance_model)
    unetkit.save_checkpoint(tmp_path / "again.pt", unetkit.make_checkpoint(loaded.model, loaded.data_options,
                                                                          task=loaded.task))
    again = unetkit.load_checkpoint(tmp_path / "again.pt")
    assert again.task == loaded.task and again.data_options == loaded.data_options
