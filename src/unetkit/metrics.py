"""Dice and IoU from integer label maps, per class and mean, accumulated over images.

Labels are integer arrays or tensors of the same shape; class 0 is background. For a
one-class (binary) model, pass ``num_classes=2``: the scores of class 1 are reported.
A class absent from both prediction and truth scores 1.0 (nothing to find, nothing found).

>>> import numpy as np
>>> scores = dice_iou(np.array([[1, 1, 0, 0]]), np.array([[1, 0, 0, 0]]), num_classes=2)
>>> round(scores.dice[1], 4), round(scores.iou[1], 4)
(0.6667, 0.5)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

ArrayLike = np.ndarray | torch.Tensor


@dataclass(frozen=True)
class Scores:
    """Dice and IoU per class (index = class); ``mean_*`` averages the foreground classes that are in the truth or
    the prediction (``present``; None: all), 1.0 where none is: a class in neither would add its 1.0 to the mean.

    >>> Scores(dice=(1.0, 0.5, 1.0), iou=(1.0, 0.25, 1.0), present=(True, True, False)).mean_dice
    0.5
    """

    dice: tuple[float, ...]
    iou: tuple[float, ...]
    present: tuple[bool, ...] | None = None

    @property
    def mean_dice(self) -> float:
        return self._foreground_mean(self.dice)

    @property
    def mean_iou(self) -> float:
        return self._foreground_mean(self.iou)

    def is_scored(self, c: int) -> bool:
        """Whether class ``c`` is in the truth or the prediction (else its 1.0 is a convention, not a score)."""
        return self.present is None or self.present[c]

    def scores_any_pixel(self) -> bool:
        """Whether any class, background included, was in the truth or the prediction (else every pixel was
        ignored, and the 1.0 scores say nothing)."""
        return any(map(self.is_scored, range(len(self.dice))))

    def foreground_classes(self) -> dict[int, tuple[float, float]]:
        """Each foreground class's (Dice, IoU), NaN (n/a) for a class in neither the truth nor the prediction.

        >>> Scores(dice=(1.0, 0.5, 1.0), iou=(1.0, 0.25, 1.0), present=(True, True, False)).foreground_classes()
        {1: (0.5, 0.25), 2: (nan, nan)}
        """
        nan = float("nan")
        return {c: (self.dice[c], self.iou[c]) if self.is_scored(c) else (nan, nan) for c in range(1, len(self.dice))}

    def _foreground_mean(self, values: tuple[float, ...]) -> float:
        if len(values) == 1:
            return values[0]
        scored = [v for c, v in enumerate(values) if c > 0 and self.is_scored(c)]
        return float(np.mean(scored)) if scored else 1.0


def _as_numpy(labels: ArrayLike) -> np.ndarray:
    if isinstance(labels, torch.Tensor):
        return labels.detach().cpu().numpy()
    return np.asarray(labels)


def class_counts(
    prediction: ArrayLike, truth: ArrayLike, num_classes: int, ignore_index: int | None = None
) -> np.ndarray:
    """Per class: [intersection, predicted pixels, true pixels], shape (num_classes, 3). A ``num_classes`` of 1 (a
    one-class model's: foreground against background) counts the two, background and foreground."""
    num_classes = max(2, num_classes)
    prediction, truth = _as_numpy(prediction), _as_numpy(truth)
    if prediction.shape != truth.shape:
        raise ValueError(
            f"prediction {prediction.shape} and truth {truth.shape} must have the same shape"
        )
    valid = np.ones(truth.shape, bool) if ignore_index is None else truth != ignore_index
    prediction, truth = prediction[valid], truth[valid]
    for name, values in (("prediction", prediction), ("truth", truth)):
        _check_class_indices(values, num_classes, name)
    prediction, truth = prediction.astype(np.int64), truth.astype(np.int64)
    pred_hist = np.bincount(prediction, minlength=num_classes)[:num_classes]
    true_hist = np.bincount(truth, minlength=num_classes)[:num_classes]
    agree = prediction[prediction == truth]
    inter_hist = np.bincount(agree, minlength=num_classes)[:num_classes]
    return np.stack([inter_hist, pred_hist, true_hist], axis=1).astype(np.int64)


def _check_class_indices(values: np.ndarray, num_classes: int, name: str) -> None:
    """Raise unless ``values`` are class indices 0..num_classes-1: probabilities, object ids or a {0, 255} mask
    would otherwise be cut to integers or past the last class and score a plausible-looking 0.

    >>> _check_class_indices(np.array([0.2, 0.9]), 2, "prediction")
    Traceback (most recent call last):
    ...
    ValueError: prediction holds fractions, not class indices: threshold probabilities first (probabilities > 0.5)
    """
    if values.size == 0:
        return
    if values.dtype.kind == "f" and not np.array_equal(values, np.round(values)):
        raise ValueError(f"{name} holds fractions, not class indices: threshold probabilities first "
                         "(probabilities > 0.5)")
    low, high = values.min(), values.max()
    if low < 0 or high >= num_classes:
        found = np.unique(values)
        shown = ", ".join(str(v) for v in found[:8].tolist()) + (", ..." if found.size > 8 else "")
        raise ValueError(f"{name} holds values {{{shown}}}, outside the class indices 0..{num_classes - 1}: object "
                         "labels or a {0, 255} mask? compare foreground as (mask > 0), or give the number of classes")


def scores_from_counts(counts: np.ndarray) -> Scores:
    """Dice and IoU from :func:`class_counts` (both empty: 1.0)."""
    intersection, predicted, true = counts[:, 0], counts[:, 1], counts[:, 2]
    union = predicted + true - intersection
    empty = (predicted + true) == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        dice = np.where(empty, 1.0, 2 * intersection / np.maximum(predicted + true, 1))
        iou = np.where(empty, 1.0, intersection / np.maximum(union, 1))
    return Scores(tuple(float(v) for v in dice), tuple(float(v) for v in iou), tuple(bool(v) for v in ~empty))


def dice_iou(
    prediction: ArrayLike, truth: ArrayLike, num_classes: int, ignore_index: int | None = None
) -> Scores:
    """Dice and IoU of one prediction (or of a batch taken as one), per class."""
    return scores_from_counts(class_counts(prediction, truth, num_classes, ignore_index))


@dataclass
class MetricAccumulator:
    """Adds up images one by one: per-image scores and the dataset-wide (pooled) scores.

    >>> acc = MetricAccumulator(num_classes=2)
    >>> _ = acc.update(np.zeros((2, 2), int), np.zeros((2, 2), int))   # no foreground in either
    >>> _ = acc.update(np.ones((2, 2), int), np.ones((2, 2), int))
    >>> acc.mean_dice(), acc.pooled().dice[1]
    (1.0, 1.0)
    """

    num_classes: int
    ignore_index: int | None = None
    per_image: list[Scores] = field(default_factory=list)
    _counts: np.ndarray | None = None

    def update(self, prediction: ArrayLike, truth: ArrayLike) -> Scores:
        counts = class_counts(prediction, truth, self.num_classes, self.ignore_index)
        self._counts = counts if self._counts is None else self._counts + counts
        scores = scores_from_counts(counts)
        self.per_image.append(scores)
        return scores

    def mean_dice(self) -> float:
        """Mean over images of each image's foreground Dice."""
        return float(np.mean([s.mean_dice for s in self.per_image])) if self.per_image else 0.0

    def mean_iou(self) -> float:
        return float(np.mean([s.mean_iou for s in self.per_image])) if self.per_image else 0.0

    def pooled(self) -> Scores:
        """Scores of all pixels of all images taken together."""
        if self._counts is None:
            raise ValueError("no images were added")
        return scores_from_counts(self._counts)

    def rows(self) -> list[dict[str, float]]:
        """Per image: ``dice`` and ``iou`` (the foreground mean), the columns of a report; NaN (n/a, left out of
        the means) for an image none of whose pixels is scored (its mask all ``ignore_index``).

        >>> acc = MetricAccumulator(num_classes=2, ignore_index=255)
        >>> _ = acc.update(np.ones((2, 2), int), np.ones((2, 2), int))
        >>> _ = acc.update(np.zeros((2, 2), int), np.full((2, 2), 255))   # nothing to score
        >>> acc.rows()[1], acc.means()
        ({'dice': nan, 'iou': nan}, {'dice': 1.0, 'iou': 1.0})
        """
        nan = float("nan")  # no class in truth or prediction, background included: every pixel was ignored
        return [{"dice": s.mean_dice, "iou": s.mean_iou} if s.scores_any_pixel() else {"dice": nan, "iou": nan}
                for s in self.per_image]

    def means(self) -> dict[str, float]:
        """Each column's mean over images (NaN entries skipped)."""
        return mean_rows(self.rows())


def mean_rows(rows: list[dict[str, float]]) -> dict[str, float]:
    """The mean of every column over rows, skipping NaN (an undefined score of one image).

    >>> mean_rows([{"a": 1.0, "b": float("nan")}, {"a": 0.0, "b": 0.5}])
    {'a': 0.5, 'b': 0.5}
    """
    if not rows:
        return {}
    means = {}
    for name in rows[0]:
        values = [float(row[name]) for row in rows if not np.isnan(float(row[name]))]
        means[name] = float(np.mean(values)) if values else float("nan")
    return means


def format_score(value: float, count: bool = False) -> str:
    """A score with 4 decimals, a count as an integer (a mean count with one decimal), an undefined score as
    'n/a' (tables, CSVs, reports).

    >>> format_score(1.0), format_score(1.0, count=True), format_score(0.0, count=True), format_score(41.5, count=True)
    ('1.0000', '1', '0', '41.5')
    """
    if value != value:  # NaN: undefined for this image (SEG without true objects)
        return "n/a"
    if count:
        return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"
    return f"{value:.4f}"
