"""``unetkit evaluate``: a model file scored on a labelled folder, as a table and a CSV.

The scoring itself is :func:`unetkit.scoring.evaluate_samples`; this module adds the files:
the model (any format :func:`~unetkit.inference.loading.load_predictor` reads), the data
folder or CSV, and the per-image CSV. With ``pictures=N`` it also keeps pictures of the N
worst images for the HTML report (:func:`unetkit.report.write_report`).

>>> import numpy as np
>>> from unetkit.metrics import MetricAccumulator
>>> report = EvaluationReport(["a"], MetricAccumulator(2))
>>> _ = report.accumulator.update(np.ones((2, 2), int), np.ones((2, 2), int))
>>> print(report.table())
image  dice    iou
a      1.0000  1.0000
mean   1.0000  1.0000
"""

from __future__ import annotations

import csv
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .data.dataset import load_labelled
from .data.io import PlaneShape, atomic_write, plane_shape
from .data.masks import check_ignore_index
from .data.sample import resolve_data_source, resolve_mask_mode
from .errors import ConfigError
from .inference.input_notes import input_notes
from .inference.loading import load_predictor, with_object_options
from .inference.predictor import check_fits_predictor
from .instances.scores import COUNT_COLUMNS
from .metrics import Scores, format_score, mean_rows
from .report.pictures import ImagePictures, WorstImagePictures, error_finder
from .scoring import evaluate_samples, image_score
from .tasks import ScoreAccumulator
from .tiling import TileOptions


@dataclass
class EvaluationReport:
    """Per-image scores and their means, from :func:`evaluate_checkpoint` (the columns are
    the task's: Dice and IoU, and object scores for an instance model); what was evaluated,
    and pictures of some images (by their index) for the HTML report."""

    names: list[str]
    accumulator: ScoreAccumulator
    checkpoint: str | None = None
    data: str | None = None
    pictures: dict[int, ImagePictures] = field(default_factory=dict)
    score_name: str = "dice"  # the task's main score: worst images are those lowest in it
    notes: list[str] = field(default_factory=list)  # what reading the data and the inputs' range said

    def rows(self) -> list[dict[str, str]]:
        """The table's rows: each image's scores, then their means; a model of several classes adds each
        class's Dice and IoU (``dice_1``, ``iou_1``, ...) after their mean, so that a failing class shows."""
        classes = self.class_columns()
        per_image = [{**scores, **extra} for scores, extra in zip(self.accumulator.rows(), classes)]
        means = {**self.accumulator.means(), **mean_rows(classes)}
        rows = [{"image": name, **{k: format_score(v, k in COUNT_COLUMNS) for k, v in scores.items()}}
                for name, scores in zip(self.names, per_image)]
        rows.append({"image": "mean", **{k: format_score(v, k in COUNT_COLUMNS) for k, v in means.items()}})
        return rows

    def class_columns(self) -> list[dict[str, float]]:
        """Per image, each foreground class's Dice and IoU where the model has several classes (else empty); n/a
        (left out of the class's mean) where the class is in neither the truth nor the prediction: a class the model
        never predicts would otherwise average 1.0 from the images that lack it."""
        per_image = getattr(self.accumulator, "per_image", None) or []
        if not per_image or not isinstance(per_image[0], Scores) or len(per_image[0].dice) <= 2:
            return [{} for _ in self.names]
        return [{**{f"dice_{c}": dice for c, (dice, _) in s.foreground_classes().items()},
                 **{f"iou_{c}": iou for c, (_, iou) in s.foreground_classes().items()}} for s in per_image]

    def table(self) -> str:
        rows = self.rows()
        columns = list(rows[0])
        widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in columns}
        lines = ["  ".join(f"{c:<{widths[c]}}" for c in columns).rstrip()]
        lines += ["  ".join(f"{r[c]:<{widths[c]}}" for c in columns).rstrip() for r in rows]
        return "\n".join(lines)

    def write_csv(self, path: Path, overwrite: bool = False) -> None:
        rows = self.rows()

        def write(target: Path) -> None:
            with open(target, "w", newline="", encoding="utf-8") as handle:  # not Windows' cp1252: image names
                writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)

        atomic_write(path, write, overwrite)


def evaluated_files(data: str | Path) -> list[Path]:
    """The files ``unetkit evaluate`` reads from ``data`` (a CSV, and every image and mask it pairs): what its
    outputs must never replace. Empty where the data cannot be listed (the evaluation then says why).

    >>> from unetkit.data.sample import sample_path
    >>> [path.name for path in evaluated_files(sample_path("heldout"))]
    ['hela.tif', 'hela.tif']
    """
    from .data.pairing import find_pairs
    from .errors import UnetkitError

    source, _ = resolve_data_source(data)
    try:
        pairs = find_pairs(source).pairs
    except UnetkitError:
        return []
    return ([source] if source.suffix.lower() == ".csv" else []) + [path for pair in pairs for path in (pair.image, pair.mask)]


def evaluate_checkpoint(
    checkpoint: str | Path,
    data: str | Path,
    tile_options: TileOptions = TileOptions(),
    precision: str = "auto",
    device: str = "auto",
    backend: str = "torch",
    pictures: int = 0,
    ignore_border_objects: bool = False,
    min_object_size: int | None = None,
    instance_masks: bool = False,
    ignore_index: int | None = None,
) -> EvaluationReport:
    """Scores of a model file on a labelled folder, CSV or ``sample:SPLIT``.

    Masks are read with the options stored in the model (classes, mask mode,
    normalisation); the embedded sample's instance masks are read as foreground (or as
    objects, for an instance model). ``pictures``: keep the report's pictures of this many
    images, those lowest in the task's score (their errors as the task marks them: pixels,
    or objects for an instance model; about 0.3 MB each). ``ignore_border_objects`` (instance
    models): objects touching the image border are left out of the truth and the prediction
    before matching, for labels that omit the objects the border cuts (the embedded sample's do).
    ``min_object_size`` (instance models): drop predicted objects under this many pixels
    instead of the model's setting. ``instance_masks`` (one-class pixel models): the masks are object
    labels, scored as foreground. ``ignore_index`` (pixel models): the mask value whose pixels no score counts,
    instead of the one the model was trained with (test masks with unlabelled regions).

    >>> import tempfile
    >>> from unetkit.checkpoint import make_checkpoint, save_checkpoint
    >>> from unetkit.model import UNet
    >>> path = Path(tempfile.mkdtemp()) / "m.pt"
    >>> save_checkpoint(path, make_checkpoint(UNet(depth=2, base_width=2)))
    >>> report = evaluate_checkpoint(path, "sample:heldout", TileOptions(tile_size=128), device="cpu")
    >>> report.names, report.score_name, [row["image"] for row in report.rows()]
    (['images/hela.tif[0]', 'images/hela.tif[1]'], 'dice', ['images/hela.tif[0]', 'images/hela.tif[1]', 'mean'])
    >>> 0 <= report.accumulator.mean_dice() <= 1
    True
    """
    loaded = load_predictor(checkpoint, backend=backend, device=device, precision=precision)
    loaded = with_object_options(loaded, checkpoint, min_object_size, ignore_border_objects)
    source, _ = resolve_data_source(data)
    if instance_masks and (not loaded.task.pixelwise or loaded.data_options.num_classes != 1):
        raise ConfigError("--instance-masks is for one-class pixel models (foreground against background); "
                          f"{checkpoint} is {'an instance' if not loaded.task.pixelwise else 'a several-class'} model",
                          fix="leave --instance-masks out")
    mask_mode = resolve_mask_mode(data, "instances" if instance_masks else loaded.data_options.mask_mode)
    data_options = dataclasses.replace(loaded.data_options, mask_mode=mask_mode)
    if ignore_index is not None:
        if not loaded.task.pixelwise:
            raise ConfigError(f"--ignore-index is for pixel models; {checkpoint} is an instance model, whose masks are "
                              "object labels (every id an object)", fix="leave --ignore-index out")
        check_ignore_index(ignore_index, data_options.num_classes, mask_mode)
        data_options = dataclasses.replace(data_options, ignore_index=ignore_index)
    notes: list[str] = []
    samples = load_labelled(source, data_options, in_channels=loaded.predictor.in_channels, options_can_change=False,
                            notes=notes)
    file_types: dict[Path, np.dtype] = {}
    for sample in samples:  # what predict refuses is not scored either: below the minimum side the output is noise
        channels, height, width = sample.image.shape
        check_fits_predictor(PlaneShape(1, height, width, channels), loaded.predictor,
                             sample.files[0] if sample.files else sample.name)
        if sample.files:  # a model of another image type scores near 0 everywhere: say why (as predict does)
            image_file = sample.files[0]
            file_types.setdefault(image_file, np.dtype(plane_shape(image_file).dtype))
            notes += input_notes(data_options.normalization, sample.name, sample.image, file_types[image_file])
    keep = WorstImagePictures(pictures, image_score(loaded.task, data_options.ignore_index),
                              error_finder(loaded.task, data_options.ignore_index))
    accumulator = evaluate_samples(loaded.predictor, samples, tile_options, data_options.ignore_index,
                                   on_image=keep, task=loaded.task)
    return EvaluationReport([s.name for s in samples], accumulator, str(checkpoint), str(data), keep.pictures(),
                            loaded.task.score_name, list(dict.fromkeys(notes)))
