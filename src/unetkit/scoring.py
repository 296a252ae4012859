"""Scoring a predictor on labelled images, tile by tile: pure, no files, no checkpoints.

Training's validation and ``unetkit evaluate`` both call :func:`evaluate_samples`; the
file side of evaluation (checkpoints, folders, CSV) lives in :mod:`unetkit.evaluation`.

>>> import numpy as np
>>> from unetkit.model import UNet
>>> from unetkit.data.dataset import Sample
>>> model = UNet(depth=2, base_width=2).eval()
>>> samples = [Sample("a", np.zeros((1, 20, 30), np.float32), np.zeros((20, 30), np.uint8))]
>>> accumulator = evaluate_samples(model, samples)
>>> len(accumulator.per_image)
1
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .data.dataset import Sample
from .inference.predictor import Predictor
from .model import UNet
from .tasks import ScoreAccumulator, SemanticTask, Task
from .tiling import TileOptions, as_predictor, predict_tiled


def metric_classes(num_classes: int) -> int:
    """Classes in label maps: a one-output (sigmoid) model labels 0 and 1."""
    return max(2, num_classes)


def image_score(task: Task, ignore_index: int | None = None) -> Callable[[np.ndarray, np.ndarray], float]:
    """The task's main score (``task.score_name``) of one predicted label image against its truth.

    >>> image_score(SemanticTask(1))(np.array([[1, 0]]), np.array([[1, 1]]))
    0.6666666666666666
    """
    def score(prediction: np.ndarray, truth: np.ndarray) -> float:
        accumulator = task.new_accumulator(ignore_index)
        accumulator.update(prediction, truth)
        return float(accumulator.rows()[-1][task.score_name])

    return score


def predict_labels(
    predictor: Predictor | UNet, image: np.ndarray, tile_options: TileOptions = TileOptions(), task: Task | None = None
) -> np.ndarray:
    """(H, W) integer labels of a normalised (C, H, W) image."""
    predictor = as_predictor(predictor)
    task = task or SemanticTask(predictor.num_outputs)
    return task.labels(predict_tiled(predictor, image, tile_options))


def evaluate_samples(
    predictor: Predictor | UNet,
    samples: list[Sample],
    tile_options: TileOptions = TileOptions(),
    ignore_index: int | None = None,
    on_image: Callable[[Sample, np.ndarray], None] | None = None,
    task: Task | None = None,
) -> ScoreAccumulator:
    """The task's scores of every sample (semantic: Dice and IoU per image, and pooled;
    instances: object matching too).

    A :class:`~unetkit.model.UNet` is run in eval mode (fp32) and put back as it was (by its
    :class:`~unetkit.inference.predictor.TorchPredictor`).

    A predictor that thresholds its input scores 1.0 on an image that is its own mask:

    >>> import torch
    >>> from unetkit.sizes import SizeRule
    >>> class Threshold:
    ...     size_rule, in_channels, num_outputs, device = SizeRule(1, 1), 1, 1, torch.device("cpu")
    ...     def __call__(self, batch):
    ...         return (batch > 0.5).float()
    >>> image = np.zeros((1, 20, 30), np.float32); image[0, 5:15, 5:25] = 1
    >>> seen = []  # on_image gets each sample and its predicted labels
    >>> scores = evaluate_samples(Threshold(), [Sample("square", image, image[0].astype(np.uint8))],
    ...                           on_image=lambda sample, labels: seen.append((sample.name, labels.shape)))
    >>> scores.rows(), seen
    ([{'dice': 1.0, 'iou': 1.0}], [('square', (20, 30))])
    """
    predictor = as_predictor(predictor)
    task = task or SemanticTask(predictor.num_outputs)
    accumulator = task.new_accumulator(ignore_index)
    for sample in samples:
        labels = predict_labels(predictor, sample.image, tile_options, task)
        accumulator.update(labels, sample.mask)
        if on_image is not None:
            on_image(sample, labels)
    return accumulator
