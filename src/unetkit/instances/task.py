"""The instance task: objects, touching ones separated, for training, prediction and scoring.

``InstanceTask(method=...)`` bundles one separation method's pieces: what the network
outputs, the targets it learns (:mod:`~unetkit.instances.targets`), its loss, the
post-processing that turns outputs into objects (:mod:`~unetkit.instances.postprocess`),
object-level scores (:mod:`~unetkit.instances.scores`) and the files ``predict`` writes:
``<stem>_instances.tif`` (uint16, uint32 past 65,535 objects), ``<stem>_objects.csv`` (one row
per object) and an overlay with each object in its own colour and its outline drawn.

Methods (chosen by measurement, BENCHMARKS.md):

- ``distance`` (default): foreground + distance to the boundary, seeded watershed;
- ``three-class``: background / interior / boundary, seeded watershed;
- ``border-weights``: the U-Net paper's weight map, 1-pixel gaps between touching objects.

>>> import numpy as np
>>> task = InstanceTask(method="three-class")
>>> task.num_outputs, task.score_name
(3, 'f1')
>>> labels = np.zeros((8, 8), np.int64); labels[1:4, 1:7] = 3; labels[4:7, 1:7] = 9
>>> [target.shape for target in task.encode(labels)]
[(8, 8)]
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from ..data.io import atomic_write, write_image
from ..data.writers import write_label_file
from ..errors import ConfigError
from ..losses import bce_loss, build_loss, dice_loss
from ..options import check_choices
from ..visualize import overlay_picture
from . import postprocess, targets
from .measure import measure_objects, table_columns
from .scores import ObjectAccumulator

InstanceMethod = Literal["distance", "three-class", "border-weights"]
DEFAULT_METHOD: InstanceMethod = "distance"
OUTPUTS = {"distance": 2, "three-class": 3, "border-weights": 1}


@dataclass(frozen=True)
class InstanceTask:
    """Objects from instance label masks; ``threshold`` and ``min_size`` tune the post-processing.

    :meth:`encode` makes the targets a network learns from a label mask; :meth:`labels` turns its outputs back
    into objects. Outputs as good as the targets give the touching cells back apart:

    >>> from unetkit.instances.matching import match_instances
    >>> cells = np.zeros((10, 18), np.int32); cells[2:8, 2:9] = 1; cells[2:8, 9:16] = 2
    >>> task = InstanceTask(method="distance", min_size=20)
    >>> task.num_outputs, [target.shape for target in task.encode(cells)]
    (2, [(10, 18), (10, 18)])
    >>> match_instances(cells, task.labels(np.stack(task.encode(cells)))).f1
    1.0
    >>> InstanceTask(method="watershed")
    Traceback (most recent call last):
    ...
    unetkit.errors.ConfigError: unknown method 'watershed'
      fix: choose one of distance, three-class, border-weights
    """

    method: InstanceMethod = DEFAULT_METHOD
    threshold: float = 0.5  # foreground probability (and interior probability for three-class)
    seed_height: float = 0.1  # how far a hill top of the distance must rise above its saddle to seed an object
    min_size: int = 10  # objects of fewer pixels are dropped (three-class: seeds of fewer than a quarter of it)
    ignore_border_objects: bool = False  # scoring only: objects on the image border left out (scores.object_scores)
    name: ClassVar[str] = "instances"
    score_name: ClassVar[str] = "f1"
    # best.pt and the stopping rule follow the pixel Dice of the foreground: on a validation split
    # of one image (50 to 200 objects) F1 jumps by 0.02 to 0.04 from epoch to epoch, and runs
    # that read it kept worse models (BENCHMARKS.md, "When an instance model's run stops")
    selection_score: ClassVar[str] = "dice"
    validation_columns: ClassVar[tuple[str, ...]] = ("dice", "iou", "f1", "ap50")
    pixelwise: ClassVar[bool] = False

    def __post_init__(self) -> None:
        check_choices(self)
        if not 0 < self.threshold < 1 or not 0 < self.seed_height < 1:
            raise ConfigError(f"threshold and seed height must be in (0, 1), got {self.threshold}, {self.seed_height}")
        if self.min_size < 1:
            raise ConfigError(f"min_size must be at least 1 pixel, got {self.min_size}")

    @property
    def num_outputs(self) -> int:
        return OUTPUTS[self.method]

    def activation(self, logits: torch.Tensor) -> torch.Tensor:
        if self.method == "three-class":
            return torch.softmax(logits, dim=1)
        return torch.sigmoid(logits)

    def labels(self, outputs: np.ndarray) -> np.ndarray:
        outputs = np.asarray(outputs, np.float32)
        if self.method == "distance":
            return postprocess.labels_from_distance(outputs, self.threshold, self.seed_height, self.min_size)
        if self.method == "three-class":
            return postprocess.labels_from_three_class(outputs, self.threshold, self.min_size)
        return postprocess.labels_from_border_gaps(outputs, self.threshold, self.min_size)

    def objects_before_size_filter(self, outputs: np.ndarray) -> int:
        """How many objects :meth:`labels` finds when none is dropped for its size (to say why an
        image came out empty under a large ``min_size``)."""
        return int(replace(self, min_size=1).labels(outputs).max(initial=0))

    def objects_the_size_emptied(self, outputs: np.ndarray, labels: np.ndarray) -> int:
        """How many objects the minimum size dropped where it left ``labels`` (those of ``outputs``) without any
        (0: the labels hold objects, there was nothing to drop, or no minimum size)."""
        if self.min_size <= 1 or labels.any():
            return 0
        return self.objects_before_size_filter(outputs)

    def emptied_note(self, name: str, outputs: np.ndarray, labels: np.ndarray) -> str | None:
        """What to say of ``name`` when :meth:`labels` left it without objects that the minimum size dropped
        (None: it has objects, or had none to drop)."""
        found = self.objects_the_size_emptied(outputs, labels)
        return size_emptied_note(name, found, self.min_size) if found else None

    def mask_mode(self, requested: str | None) -> str:
        return "labels"  # object ids, kept

    def encode(self, mask: np.ndarray) -> tuple[np.ndarray, ...]:
        labels = np.asarray(mask)
        if self.method == "distance":
            return targets.distance_target(labels)
        if self.method == "three-class":
            return (targets.three_class_target(labels),)
        return targets.border_weight_target(labels)

    def build_loss(self, loss_name: str | None, ignore_index: int | None):
        if loss_name is not None:
            raise ConfigError(f"--loss {loss_name} is for semantic models; each instance method has its own loss",
                              fix="leave --loss out with --task instances")
        if self.method == "three-class":
            loss = build_loss("dice+ce", 3)
            return lambda logits, batch: loss(logits, batch[0])
        if self.method == "distance":
            return distance_loss

        def border_weight_loss(logits: torch.Tensor, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
            foreground, weights = batch
            return dice_loss(logits, foreground) + bce_loss(logits, foreground, weights.float())
        return border_weight_loss

    def error_masks(self, predicted: np.ndarray, truth: np.ndarray):  # -> report.pictures.ErrorMasks
        """Objects, for the HTML report: matched predictions (IoU >= 0.5) are true positives,
        unmatched predictions false positives, unmatched true objects false negatives."""
        from ..report.pictures import ErrorMasks
        from .matching import matched_pairs
        from .scores import without_border_objects

        if self.ignore_border_objects:
            predicted, truth = without_border_objects(predicted, truth)
        true_ids, pred_ids = matched_pairs(truth, predicted)
        matched_prediction = np.isin(predicted, pred_ids) & (predicted > 0)
        return ErrorMasks(
            true_positive=matched_prediction,
            false_positive=(predicted > 0) & ~matched_prediction,
            false_negative=(truth > 0) & ~np.isin(truth, true_ids) & (predicted == 0),
            unit="objects",
        )

    def new_accumulator(self, ignore_index: int | None) -> ObjectAccumulator:
        return ObjectAccumulator(self.ignore_border_objects)

    def output_files(self, stem: str, label_format: str, overlay: bool) -> dict[str, str]:
        ending = "ome.zarr" if label_format == "ome-zarr" else "tif"  # ids past 255: never PNG
        files = {"labels": f"{stem}_instances.{ending}", "objects": f"{stem}_objects.csv"}
        if overlay:
            files["overlay"] = f"{stem}_overlay.png"
        return files

    def write_outputs(self, files: dict[str, Path], raw: Any, image: Any, labels: Any, replace: bool,
                      pixel_size: tuple[float, float, str] | None = None) -> None:
        if "labels" in files:
            write_label_file(files["labels"], labels, pixel_size=pixel_size, overwrite=replace)
        if "objects" in files:
            write_objects_csv(files["objects"], measure_objects(labels, raw, pixel_size=pixel_size), replace,
                              table_columns(raw, pixel_size))
        if "overlay" in files:
            write_image(files["overlay"], overlay_picture(image, labels, objects=True, raw=raw),
                        overwrite=replace)

    def to_dict(self) -> dict[str, Any]:
        """What a model stores: the post-processing, not how one command scores (border objects).

        Leaving the scoring-only option out keeps models loadable by unetkit versions that
        did not have it.

        >>> sorted(InstanceTask(ignore_border_objects=True).to_dict())
        ['method', 'min_size', 'name', 'seed_height', 'threshold']
        """
        stored = asdict(self)
        del stored["ignore_border_objects"]
        return {"name": self.name, **stored}


def distance_loss(logits: torch.Tensor, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Dice + BCE on the foreground, plus BCE on the distance inside the foreground only.

    The distance is read only where the foreground is, and averaging its loss over every
    pixel let the easy background drown the hills and valleys inside touching nuclei: on the
    sample, the previous loss's distances stayed flat across touching pairs (merged), this
    one's dip between them (BENCHMARKS.md, "Objects").
    """
    foreground, distance = batch
    fg_logits = logits[:, :1]
    per_pixel = torch.nn.functional.binary_cross_entropy_with_logits(logits[:, 1], distance.float(), reduction="none")
    inside = foreground.float()
    distance_term = (per_pixel * inside).sum() / inside.sum().clamp(min=1.0)
    return dice_loss(fg_logits, foreground) + bce_loss(fg_logits, foreground) + distance_term


def write_objects_csv(path: Path, rows: list[dict[str, object]], replace: bool, columns: list[str]) -> None:
    """The per-object table of :func:`~unetkit.instances.measure.object_columns`, atomically (a header only when
    there is no object: the same header as the tables of images with objects, so that tables concatenate)."""
    def write(target: Path) -> None:
        with open(target, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)

    atomic_write(path, write, overwrite=replace)


def size_emptied_note(name: str, found: int, min_size: int) -> str:
    """The note on an image whose ``found`` objects the minimum object size all dropped.

    >>> size_emptied_note("a.tif", 3, 400)
    'a.tif: no objects left: the 3 found are all smaller than the minimum object size of 400 px (--min-object-size)'
    """
    return (f"{name}: no objects left: the {found} found are all smaller than the minimum object size of "
            f"{min_size} px (--min-object-size)")
