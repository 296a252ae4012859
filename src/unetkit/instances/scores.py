"""Per-image scores of instance predictions: object matching plus pixel Dice and IoU.

>>> import numpy as np
>>> accumulator = ObjectAccumulator()
>>> row = accumulator.update(np.array([[1, 1, 0, 2]]), np.array([[1, 1, 0, 2]]))
>>> row["f1"], row["ap50"], row["dice"]
(1.0, 1.0, 1.0)

Labels that omit the objects cut by the image border (the embedded sample's do, as many
machine-made and hand-drawn sets do) would count every such object the model finds as a
false positive. With ``ignore_border_objects=True`` the objects are matched on the whole
images first; then every true object touching the border is left out with its match, and
every predicted object touching the border is left out unless it matches a true object
inside (an object the border only grazes on one side is not lost). Every column, pixel
Dice and counts included, is then computed on what remains:

>>> truth = np.array([[0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]])
>>> found = np.array([[0, 0, 0, 2], [0, 1, 0, 2], [0, 0, 0, 0]])       # 2 is cut by the border
>>> object_scores(found, truth)["precision"], object_scores(found, truth, ignore_border_objects=True)["precision"]
(0.5, 1.0)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..metrics import dice_iou, mean_rows
from .matching import match_instances, matched_pairs

#: the columns of an instance model's per-image scores, in report order
OBJECT_COLUMNS = ("dice", "iou", "f1", "precision", "recall", "ap50", "ap50_95", "pq", "matched_iou", "seg",
                  "n_true", "n_pred")
#: those of them that count objects (whole numbers per image; their means may not be)
COUNT_COLUMNS = ("n_true", "n_pred")


def object_scores(prediction: np.ndarray, truth: np.ndarray, ignore_border_objects: bool = False) -> dict[str, float]:
    """Every column of :data:`OBJECT_COLUMNS` for one image (label images, 0 = background);
    with ``ignore_border_objects``, objects touching the image border are left out of both, and an
    image whose objects all touch it has nothing left to score: NaN ('n/a', left out of the means),
    not the 1.0 of two empty images.

    >>> strip = np.array([[1, 1, 0, 2]])
    >>> object_scores(strip, strip, ignore_border_objects=True)["f1"]
    nan
    """
    if ignore_border_objects:
        had_objects = bool(np.any(prediction) or np.any(truth))
        prediction, truth = without_border_objects(np.asarray(prediction), np.asarray(truth))
        if had_objects and not (prediction.any() or truth.any()):  # every object touched the border
            return {**{name: float("nan") for name in OBJECT_COLUMNS}, "n_true": 0.0, "n_pred": 0.0}
    stats = match_instances(truth, prediction, threshold=0.5)
    pixels = dice_iou((prediction > 0).astype(np.uint8), (truth > 0).astype(np.uint8), num_classes=2)
    return {
        "dice": pixels.dice[1], "iou": pixels.iou[1], "f1": stats.f1, "precision": stats.precision,
        "recall": stats.recall, "ap50": stats.ap, "ap50_95": stats.ap_50_95, "pq": stats.panoptic_quality,
        "matched_iou": stats.mean_matched_iou, "seg": stats.seg,
        "n_true": float(stats.n_true), "n_pred": float(stats.n_pred),
    }


def border_ids(labels: np.ndarray) -> np.ndarray:
    """Ids of the objects with a pixel on the image's outermost rows or columns."""
    edges = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    return np.unique(edges[edges > 0])


def without_border_objects(prediction: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both label images with the border objects left out, as :func:`object_scores` describes
    (whole ids removed, however many pieces they have).

    >>> truth = np.array([[1, 0, 0, 0], [0, 0, 2, 0], [0, 0, 2, 0]])    # 2 touches the bottom row
    >>> found = np.array([[0, 0, 0, 0], [0, 0, 5, 5], [0, 0, 5, 0]])    # 5 touches the right edge
    >>> [a.tolist() for a in without_border_objects(found, truth)]       # 2 and its match 5 both go
    [[[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]], [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]]
    """
    true_ids, pred_ids = matched_pairs(truth, prediction)
    true_out = border_ids(truth)
    match_of = dict(zip(true_ids.tolist(), pred_ids.tolist()))
    matched_inside = set(pred_ids[~np.isin(true_ids, true_out)].tolist())
    pred_out = {i for i in border_ids(prediction).tolist() if i not in matched_inside}
    pred_out |= {match_of[i] for i in true_out.tolist() if i in match_of}
    keep_truth = np.where(np.isin(truth, true_out), 0, truth)
    keep_prediction = np.where(np.isin(prediction, list(pred_out)), 0, prediction)
    return keep_prediction, keep_truth


@dataclass
class ObjectAccumulator:
    """Adds up images one by one; ``means()`` averages each column over images
    (``ignore_border_objects``: see :func:`object_scores`)."""

    ignore_border_objects: bool = False
    per_image: list[dict[str, float]] = field(default_factory=list)

    def update(self, prediction: np.ndarray, truth: np.ndarray) -> dict[str, float]:
        row = object_scores(np.asarray(prediction), np.asarray(truth), self.ignore_border_objects)
        self.per_image.append(row)
        return row

    def rows(self) -> list[dict[str, float]]:
        return list(self.per_image)

    def means(self) -> dict[str, float]:
        return mean_rows(self.per_image)

    def mean_dice(self) -> float:
        return self.means().get("dice", 0.0)
