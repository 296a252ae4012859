"""Object-level scores: optimal one-to-one matching of predicted and true objects by IoU.

For each IoU threshold ``t``, true and predicted objects are matched one to one so that the
sum of the IoUs of matched pairs is largest (the Hungarian algorithm, run on each connected
group of overlapping objects, so that thousands of objects stay cheap); a pair counts as a
true positive if its IoU is at least ``t``. From the counts:

- precision ``TP / (TP + FP)``, recall ``TP / (TP + FN)``, F1 ``2 TP / (2 TP + FP + FN)``;
- AP ``TP / (TP + FP + FN)``, the Data Science Bowl 2018 definition, and its mean over
  ``t = 0.5, 0.55, ..., 0.95``;
- panoptic quality ``sum(IoU of TPs) / (TP + FP/2 + FN/2)`` and the mean IoU of the matched
  pairs (both at 0.5);
- the Cell Tracking Challenge SEG measure: each true object's Jaccard index with the
  predicted object that covers more than half of it (0 if none), averaged over true objects.

An image without true and predicted objects scores 1 everywhere (nothing to find, nothing
found); SEG is undefined (NaN) without true objects, and means skip it.

>>> import numpy as np
>>> truth = np.array([[1, 1, 1, 1, 1, 1, 0, 2, 2]])
>>> split = np.array([[1, 1, 2, 2, 3, 3, 0, 4, 4]])   # object 1 split in three
>>> stats = match_instances(truth, split)
>>> stats.tp, stats.fp, stats.fn, round(stats.f1, 3), stats.seg
(1, 3, 1, 0.333, 0.5)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import sparse
from scipy.optimize import linear_sum_assignment
from scipy.sparse.csgraph import connected_components

AP_THRESHOLDS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))


@dataclass(frozen=True)
class MatchStats:
    """Object-level scores of one prediction against one truth (see the module docstring)."""

    threshold: float
    n_true: int
    n_pred: int
    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f1: float
    ap: float  # TP / (TP + FP + FN) at ``threshold``
    mean_matched_iou: float
    panoptic_quality: float
    seg: float
    ap_50_95: float  # AP averaged over IoU 0.5 to 0.95

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def _relabel(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Labels renumbered 1..n (0 stays background), and n."""
    ids, inverse = np.unique(labels, return_inverse=True)
    inverse = inverse.reshape(labels.shape)
    if ids.size and ids[0] == 0:
        return inverse, ids.size - 1
    return inverse + 1, ids.size


def _check_labels(labels: np.ndarray, name: str) -> None:
    """Raise unless ``labels`` are object ids (whole numbers, 0 = background): with a negative id, 0 would be
    renumbered as an object and the background matched like one; fractions are probabilities, not objects.

    >>> _check_labels(np.array([[0, -1]]), "truth")
    Traceback (most recent call last):
    ...
    ValueError: truth holds negative values (down to -1): object labels are 0 (background) and positive ids
    """
    if labels.size == 0 or labels.dtype == bool:
        return
    if labels.dtype.kind == "f" and not np.array_equal(labels, np.round(labels)):
        raise ValueError(f"{name} holds fractions, not object labels: label objects first "
                         "(unetkit.instances_from_probabilities)")
    if labels.min() < 0:
        raise ValueError(f"{name} holds negative values (down to {labels.min()}): object labels are 0 (background) "
                         "and positive ids")


def overlaps(truth: np.ndarray, prediction: np.ndarray) -> tuple[sparse.csr_matrix, np.ndarray, np.ndarray]:
    """Sparse intersection counts (n_true x n_pred) and the areas of the objects."""
    if truth.shape != prediction.shape:
        raise ValueError(f"truth {truth.shape} and prediction {prediction.shape} must have the same shape")
    _check_labels(np.asarray(truth), "truth")
    _check_labels(np.asarray(prediction), "prediction")
    truth, n_true = _relabel(np.asarray(truth))
    prediction, n_pred = _relabel(np.asarray(prediction))
    true_area = np.bincount(truth.ravel(), minlength=n_true + 1)[1:]
    pred_area = np.bincount(prediction.ravel(), minlength=n_pred + 1)[1:]
    both = (truth > 0) & (prediction > 0)
    pairs = truth[both].astype(np.int64) * (n_pred + 1) + prediction[both]
    keys, counts = np.unique(pairs, return_counts=True)
    rows, cols = keys // (n_pred + 1) - 1, keys % (n_pred + 1) - 1
    matrix = sparse.csr_matrix((counts, (rows, cols)), shape=(n_true, n_pred))
    return matrix, true_area, pred_area


def _iou_matrix(intersection: sparse.csr_matrix, true_area: np.ndarray, pred_area: np.ndarray) -> sparse.coo_matrix:
    coo = intersection.tocoo()
    union = true_area[coo.row] + pred_area[coo.col] - coo.data
    return sparse.coo_matrix((coo.data / union, (coo.row, coo.col)), shape=coo.shape)


def _optimal_pairs(iou: sparse.coo_matrix, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The matched pairs with IoU >= threshold, maximising the sum of their IoUs (Hungarian, within each group of
    objects that overlap one another: small matrices, however many objects), as the rows (true objects), columns
    (predicted ones) and IoUs of ``iou``."""
    keep = iou.data >= threshold
    rows, cols, values = iou.row[keep], iou.col[keep], iou.data[keep]
    if not keep.any():
        return rows, cols, values
    n_true, n_pred = iou.shape
    graph = sparse.coo_matrix((np.ones_like(values), (rows, n_true + cols)), shape=(n_true + n_pred,) * 2)
    _, component = connected_components(graph, directed=False)
    edge_group = component[rows]
    alone = np.bincount(edge_group)[edge_group] == 1  # a pair that overlaps no other (all of them at IoU > 0.5)
    matched_rows, matched_cols, matched_values = [rows[alone]], [cols[alone]], [values[alone]]
    for group in np.unique(edge_group[~alone]):
        in_group = edge_group == group
        group_rows, row_index = np.unique(rows[in_group], return_inverse=True)
        group_cols, col_index = np.unique(cols[in_group], return_inverse=True)
        dense = np.zeros((len(group_rows), len(group_cols)))
        dense[row_index, col_index] = values[in_group]
        chosen_rows, chosen_cols = linear_sum_assignment(dense, maximize=True)
        good = dense[chosen_rows, chosen_cols] >= threshold
        matched_rows.append(group_rows[chosen_rows[good]])
        matched_cols.append(group_cols[chosen_cols[good]])
        matched_values.append(dense[chosen_rows[good], chosen_cols[good]])
    return np.concatenate(matched_rows), np.concatenate(matched_cols), np.concatenate(matched_values)


def matched_pairs(truth: np.ndarray, prediction: np.ndarray, threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """The ids of the true and predicted objects matched one to one at IoU >= ``threshold``
    (the matching of :func:`match_instances`), as two aligned arrays.

    >>> matched_pairs(np.array([[1, 1, 0, 2]]), np.array([[7, 7, 0, 0]]))
    (array([1]), array([7]))
    """
    truth_ids = np.unique(np.asarray(truth))
    pred_ids = np.unique(np.asarray(prediction))
    truth_ids = truth_ids[truth_ids > 0] if truth_ids.size and truth_ids[0] == 0 else truth_ids
    pred_ids = pred_ids[pred_ids > 0] if pred_ids.size and pred_ids[0] == 0 else pred_ids
    intersection, true_area, pred_area = overlaps(truth, prediction)
    rows, cols, _ = _optimal_pairs(_iou_matrix(intersection, true_area, pred_area), threshold)
    return truth_ids[rows], pred_ids[cols]


def _seg(intersection: sparse.csr_matrix, true_area: np.ndarray, pred_area: np.ndarray) -> float:
    """CTC SEG: Jaccard of each true object with the prediction covering > half of it."""
    if true_area.size == 0:
        return math.nan
    coo = intersection.tocoo()
    covering = coo.data > 0.5 * true_area[coo.row]
    jaccard = np.zeros(true_area.size)
    rows, cols, counts = coo.row[covering], coo.col[covering], coo.data[covering]
    jaccard[rows] = counts / (true_area[rows] + pred_area[cols] - counts)
    return float(jaccard.mean())


def _ratio(numerator: float, denominator: float, empty: bool = True) -> float:
    """``numerator / denominator``; where the denominator is 0, 1.0 if the image is ``empty`` on both sides
    (nothing to find, nothing found), else 0.0: precision with nothing predicted where objects are, as StarDist's
    matching counts it (a mean of images would otherwise count such a miss as perfect precision).

    >>> _ratio(3, 4), _ratio(0, 0), _ratio(0, 0, empty=False)
    (0.75, 1.0, 0.0)
    """
    return numerator / denominator if denominator else (1.0 if empty else 0.0)


def match_instances(truth: np.ndarray, prediction: np.ndarray, threshold: float = 0.5) -> MatchStats:
    """Object-level scores of ``prediction`` against ``truth`` (label images, 0 = background).

    A predicted object matches a true one where their IoU is at least ``threshold``; the ids need not agree.

    >>> truth = np.zeros((6, 12), int); truth[1:5, 1:5] = 1; truth[1:5, 7:11] = 2
    >>> prediction = np.zeros((6, 12), int); prediction[1:5, 2:5] = 7  # object 1 at IoU 0.75, object 2 missed
    >>> stats = match_instances(truth, prediction)
    >>> stats.tp, stats.fp, stats.fn, stats.precision, stats.recall, stats.mean_matched_iou
    (1, 0, 1, 1.0, 0.5, 0.75)
    >>> match_instances(truth, prediction, threshold=0.8).tp
    0
    """
    intersection, true_area, pred_area = overlaps(truth, prediction)
    iou = _iou_matrix(intersection, true_area, pred_area)
    n_true, n_pred = true_area.size, pred_area.size

    def counts_at(t: float) -> tuple[int, int, int, np.ndarray]:
        matched = _optimal_pairs(iou, t)[2]
        tp = len(matched)
        return tp, n_pred - tp, n_true - tp, matched

    tp, fp, fn, matched = counts_at(threshold)
    ap_values = [_ratio(t_tp, t_tp + t_fp + t_fn) for t_tp, t_fp, t_fn, _ in map(counts_at, AP_THRESHOLDS)]
    return MatchStats(
        threshold=threshold, n_true=n_true, n_pred=n_pred, tp=tp, fp=fp, fn=fn,
        precision=_ratio(tp, tp + fp, n_true == n_pred == 0), recall=_ratio(tp, tp + fn, n_true == n_pred == 0),
        f1=_ratio(2 * tp, 2 * tp + fp + fn),
        ap=_ratio(tp, tp + fp + fn),
        mean_matched_iou=float(matched.mean()) if tp else (1.0 if n_true == n_pred == 0 else 0.0),
        panoptic_quality=_ratio(float(matched.sum()), tp + fp / 2 + fn / 2),
        seg=_seg(intersection, true_area, pred_area),
        ap_50_95=float(np.mean(ap_values)),
    )
