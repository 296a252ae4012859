"""Scoring a model on labelled whole images, tile by tile.

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

import csv
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .data.dataset import Sample, load_labelled
from .data.io import atomic_write
from .data.sample import resolve_data_source
from .predict import PredictOptions, load_predictor
from .metrics import MetricAccumulator
from .model import UNet, labels_from_probabilities
from .tiling import TileOptions, predict_tiled


def metric_classes(num_classes: int) -> int:
    """Classes in label maps: a one-output (sigmoid) model labels 0 and 1."""
    return max(2, num_classes)


def predict_labels(
    model: UNet, image: np.ndarray, tile_options: TileOptions, autocast_dtype: torch.dtype | None = None
) -> np.ndarray:
    """(H, W) integer labels of a normalised (C, H, W) image."""
    probabilities = predict_tiled(model, image, tile_options, autocast_dtype=autocast_dtype)
    return labels_from_probabilities(torch.from_numpy(probabilities)[None])[0].numpy()


def evaluate_samples(
    model: UNet,
    samples: list[Sample],
    tile_options: TileOptions = TileOptions(),
    autocast_dtype: torch.dtype | None = None,
    ignore_index: int | None = None,
    on_image: Callable[[Sample, np.ndarray], None] | None = None,
) -> MetricAccumulator:
    """Dice and IoU of every sample (per image, and pooled)."""
    accumulator = MetricAccumulator(metric_classes(model.config.num_classes), ignore_index)
    was_training = model.training
    model.eval()
    try:
        for sample in samples:
            labels = predict_labels(model, sample.image, tile_options, autocast_dtype)
            accumulator.update(labels, sample.mask)
            if on_image is not None:
                on_image(sample, labels)
    finally:
        model.train(was_training)
    return accumulator


@dataclass
class EvaluationReport:
    """Per-image Dice and IoU and their means, from :func:`evaluate_checkpoint`."""

    names: list[str]
    accumulator: MetricAccumulator

    def rows(self) -> list[dict[str, str]]:
        rows = [
            {"image": name, "dice": f"{s.mean_dice:.4f}", "iou": f"{s.mean_iou:.4f}"}
            for name, s in zip(self.names, self.accumulator.per_image)
        ]
        rows.append({"image": "mean", "dice": f"{self.accumulator.mean_dice():.4f}",
                     "iou": f"{self.accumulator.mean_iou():.4f}"})
        return rows

    def table(self) -> str:
        rows = self.rows()
        width = max(len(r["image"]) for r in rows)
        lines = [f"{'image':<{width}}  dice    iou"]
        lines += [f"{r['image']:<{width}}  {r['dice']}  {r['iou']}" for r in rows]
        return "\n".join(lines)

    def write_csv(self, path: Path, overwrite: bool = False) -> None:
        def write(target: Path) -> None:
            with open(target, "w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=["image", "dice", "iou"])
                writer.writeheader()
                writer.writerows(self.rows())

        atomic_write(path, write, overwrite)


def evaluate_checkpoint(
    checkpoint: str | Path,
    data: str | Path,
    tile_options: TileOptions = TileOptions(),
    precision: str = "auto",
    device: str = "auto",
) -> EvaluationReport:
    """Dice and IoU of a checkpoint on a labelled folder, CSV or ``sample:SPLIT``.

    Masks are read with the options stored in the checkpoint (classes, mask mode,
    normalisation); the embedded sample's instance masks are read as foreground.
    """
    model, data_options, autocast_dtype = load_predictor(checkpoint, PredictOptions(precision=precision, device=device))
    source, sample_mask_mode = resolve_data_source(data)
    if sample_mask_mode is not None:
        data_options = dataclasses.replace(data_options, mask_mode=sample_mask_mode)
    samples = load_labelled(source, data_options, in_channels=model.config.in_channels)
    accumulator = evaluate_samples(model, samples, tile_options, autocast_dtype, data_options.ignore_index)
    return EvaluationReport([s.name for s in samples], accumulator)
