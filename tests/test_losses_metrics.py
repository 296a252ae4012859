"""Losses and metrics against hand-computed values, empty masks included."""

from __future__ import annotations

import re

import math

import numpy as np
import pytest
import torch

from unetkit.errors import ConfigError
from unetkit.losses import bce_loss, build_loss, ce_loss, dice_loss
from unetkit.metrics import MetricAccumulator, dice_iou

BIG = 50.0  # a logit whose sigmoid is 1 to float precision


def test_dice_loss_matches_the_reference_formula_over_the_whole_batch():
    # p = [1, 0 | 1, 1], y = [1, 1 | 0, 1]: sum(py) = 2, sum(p) = 3, sum(y) = 3
    logits = torch.tensor([[[[BIG, -BIG]]], [[[BIG, BIG]]]])
    target = torch.tensor([[[1, 1]], [[0, 1]]])
    expected = 1 - (2 * 2 + 1) / (3 + 3 + 1)
    assert float(dice_loss(logits, target)) == pytest.approx(expected, abs=1e-6)


def test_dice_loss_of_empty_prediction_and_empty_target_is_zero():
    logits = torch.full((1, 1, 3, 3), -BIG)
    assert float(dice_loss(logits, torch.zeros(1, 3, 3, dtype=torch.long))) == pytest.approx(0.0, abs=1e-6)


def test_multiclass_dice_with_and_without_background():
    # two pixels, three classes; prediction one-hot [0, 2], target [0, 1]
    logits = torch.tensor([[[[BIG, -BIG]], [[-BIG, -BIG]], [[-BIG, BIG]]]])
    target = torch.tensor([[[0, 1]]])
    # class 1: inter 0, p 0, y 1 -> 1/2 ; class 2: inter 0, p 1, y 0 -> 1/2 ; class 0: (2+1)/(1+1+1)=1
    assert float(dice_loss(logits, target)) == pytest.approx(1 - 0.5, abs=1e-6)
    with_background = dice_loss(logits, target, include_background=True)
    assert float(with_background) == pytest.approx(1 - (1 + 0.5 + 0.5) / 3, abs=1e-6)


def test_bce_and_ce_match_hand_computed_values():
    logits = torch.zeros(1, 1, 1, 2)
    assert float(bce_loss(logits, torch.tensor([[[0, 1]]]))) == pytest.approx(math.log(2), abs=1e-6)
    multi = torch.tensor([[[[math.log(3.0)]], [[0.0]]]])  # softmax = [3/4, 1/4]
    assert float(ce_loss(multi, torch.tensor([[[1]]]))) == pytest.approx(math.log(4), abs=1e-6)


def test_ignore_index_removes_pixels_from_every_loss():
    logits = torch.tensor([[[[BIG, -BIG]]]])
    target = torch.tensor([[[1, 255]]])  # the wrong pixel is ignored
    for name in ("dice", "bce", "dice+bce"):
        loss = build_loss(name, 1, ignore_index=255)
        assert float(loss(logits, target)) == pytest.approx(0.0, abs=1e-5), name


def test_pixel_weights_scale_the_contribution_of_pixels():
    logits = torch.zeros(1, 1, 1, 2)
    target = torch.tensor([[[0, 1]]])
    weights = torch.tensor([[[0.0, 1.0]]])
    assert float(bce_loss(logits, target, weights)) == pytest.approx(math.log(2), abs=1e-6)
    confident = torch.tensor([[[[-BIG, -BIG]]]])  # wrong on pixel 2 only
    assert float(bce_loss(confident, target, torch.tensor([[[1.0, 0.0]]]))) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize(
    "logits, target, message",
    [
        (torch.zeros(1, 1, 4), torch.zeros(1, 4, dtype=torch.long), "logits: expected a float tensor"),
        (torch.zeros(1, 1, 2, 2), torch.zeros(1, 3, 2, dtype=torch.long), r"target: expected shape \(1, 2, 2\)"),
        (torch.zeros(1, 1, 2, 2), torch.zeros(1, 2, 2), "target: expected an integer tensor"),
    ],
)
def test_wrong_shapes_and_dtypes_are_rejected_with_what_was_expected(logits, target, message):
    with pytest.raises(ValueError, match=message):
        dice_loss(logits, target)


def test_loss_names_are_checked_against_the_class_count():
    with pytest.raises(ConfigError, match="needs one class"):
        build_loss("dice+bce", num_classes=3)
    with pytest.raises(ConfigError, match="unknown loss"):
        build_loss("focal", num_classes=1)


def test_dice_and_iou_by_hand():
    prediction = np.array([[1, 1, 0, 2]])
    truth = np.array([[1, 0, 0, 2]])
    scores = dice_iou(prediction, truth, num_classes=3)
    assert scores.dice[1] == pytest.approx(2 / 3)
    assert scores.iou[1] == pytest.approx(1 / 2)
    assert scores.dice[2] == 1.0
    assert scores.mean_dice == pytest.approx((2 / 3 + 1) / 2)


def test_both_empty_scores_one_and_one_empty_scores_zero():
    empty = np.zeros((3, 3), int)
    full = np.ones((3, 3), int)
    assert dice_iou(empty, empty, 2).dice[1] == 1.0
    assert dice_iou(full, empty, 2).dice[1] == 0.0
    assert dice_iou(empty, full, 2).iou[1] == 0.0


def test_accumulator_reports_per_image_mean_and_pooled_scores():
    accumulator = MetricAccumulator(num_classes=2)
    accumulator.update(np.array([[1, 1]]), np.array([[1, 1]]))  # dice 1
    accumulator.update(np.array([[1, 0]]), np.array([[0, 1]]))  # dice 0
    assert accumulator.mean_dice() == pytest.approx(0.5)
    # pooled: inter 2, pred 3, true 3
    assert accumulator.pooled().dice[1] == pytest.approx(4 / 6)


def test_an_image_mean_leaves_out_a_class_in_neither_truth_nor_prediction():
    # class 1: Dice 2/3; class 2 absent from both: n/a in evaluate's table, so not a free 1.0 in the image's mean
    truth = np.array([[1, 1, 0, 0]])
    prediction = np.array([[1, 0, 0, 0]])
    accumulator = MetricAccumulator(num_classes=3)
    accumulator.update(prediction, truth)
    assert accumulator.rows()[0]["dice"] == pytest.approx(2 / 3)
    assert accumulator.rows()[0]["iou"] == pytest.approx(1 / 2)
    assert dice_iou(truth * 0, truth * 0, 3).mean_dice == 1.0  # no foreground class anywhere: nothing to find


def test_ignore_index_in_metrics():
    scores = dice_iou(np.array([[1, 0]]), np.array([[1, 255]]), 2, ignore_index=255)
    assert scores.dice[1] == 1.0


@pytest.mark.parametrize(("truth", "words"), [(np.array([[0, 7], [12, 0]]), "values {0, 7, 12}"),
                                              (np.array([[0, 255], [255, 0]]), "values {0, 255}"),
                                              (np.array([[0.2, 0.9], [0.7, 0.1]]), "holds fractions")])
def test_scores_refuse_what_is_not_class_indices(truth, words):
    # object labels, a {0, 255} mask or probabilities scored a plausible-looking 0 (values cut or dropped)
    from unetkit.metrics import dice_iou

    with pytest.raises(ValueError, match=re.escape(words)):
        dice_iou(np.array([[0, 1], [1, 0]]), truth, 2)
    assert dice_iou(np.array([[0, 1], [1, 0]]), np.asarray(truth) > 0, 2).dice[1] > 0.3  # as foreground, scored


def test_one_class_scores_count_background_and_foreground_for_bool_masks_too():
    # num_classes=1 (a one-class model's) scored the background only for bool masks: Dice 0.8 for 0.667
    from unetkit.metrics import dice_iou

    scores = dice_iou(np.array([[1, 1, 0, 0]], bool), np.array([[1, 0, 0, 0]], bool), 1)
    assert scores.dice[1] == pytest.approx(2 / 3)


def test_an_overlay_tints_nineteen_classes_each_in_its_own_colour():
    # eight colours repeated: class 9 was tinted as class 1, so a 10-class overlay could not be read
    from unetkit.visualize import overlay

    labels = np.arange(20).reshape(1, 20)
    picture = overlay(np.zeros((1, 1, 20), np.float32), labels, alpha=1.0, bounds=(0.0, 1.0))
    tints = {tuple(colour) for colour in picture[0, 1:].tolist()}
    assert len(tints) == 19 and tuple(picture[0, 0]) == (0, 0, 0)  # background untinted
