"""``unetkit evaluate``: a model file scored on a labelled folder, as a table and a CSV.

The scoring itself is :func:`unetkit.scoring.evaluate_samples`; this module adds the files:
the model (any format :func:`~unetkit.inference.loading.load_predictor` reads), the data
folder or CSV, and the per-image CSV. With ``pictures=N`` it also keeps pictures of the N
worst images for the HTML report (:func:`unetkit.report.write_report`).

>>> import numpy as np
>>> report = EvaluationReport(["a"], MetricAccumulator(2))
>>> _ = report.accumulator.update(np.ones((2, 2), int), np.ones((2, 2), int))
>>> print(report.table())
image  dice    iou
a     1.0000  1.0000
mean  1.0000  1.0000
"""

from __future__ import annotations

import csv
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from .data.dataset import load_labelled
from .data.io import atomic_write
from .data.sample import resolve_data_source, resolve_mask_mode
from .inference.loading import load_predictor
from .metrics import MetricAccumulator
from .report.pictures import ImagePictures, WorstImagePictures, error_finder
from .scoring import evaluate_samples, metric_classes
from .tiling import TileOptions


@dataclass
class EvaluationReport:
    """Per-image Dice and IoU and their means, from :func:`evaluate_checkpoint`; what was
    evaluated, and pictures of some images (by their index) for the report."""

    names: list[str]
    accumulator: MetricAccumulator
    checkpoint: str | None = None
    data: str | None = None
    pictures: dict[int, ImagePictures] = field(default_factory=dict)

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
    backend: str = "torch",
    pictures: int = 0,
) -> EvaluationReport:
    """Dice and IoU of a checkpoint on a labelled folder, CSV or ``sample:SPLIT``.

    Masks are read with the options stored in the checkpoint (classes, mask mode,
    normalisation); the embedded sample's instance masks are read as foreground.
    ``pictures``: keep the report's pictures of this many images, those of lowest Dice
    (their errors as the model's task marks them; about 0.3 MB each).
    """
    loaded = load_predictor(checkpoint, backend=backend, device=device, precision=precision)
    source, _ = resolve_data_source(data)
    mask_mode = resolve_mask_mode(data, loaded.data_options.mask_mode)
    data_options = dataclasses.replace(loaded.data_options, mask_mode=mask_mode)
    samples = load_labelled(source, data_options, in_channels=loaded.predictor.in_channels)
    keep = WorstImagePictures(pictures, metric_classes(loaded.predictor.num_outputs), data_options.ignore_index,
                              error_finder(loaded.task, data_options.ignore_index))
    accumulator = evaluate_samples(loaded.predictor, samples, tile_options, data_options.ignore_index,
                                   on_image=keep, task=loaded.task)
    return EvaluationReport([s.name for s in samples], accumulator, str(checkpoint), str(data), keep.pictures())
