"""What a model is trained to do, in one place: the seam between pixels and objects.

A task says how many outputs the network has, how its logits become per-pixel outputs
(the activation, run by every backend), how masks are read and turned into training
targets, which loss trains it, how outputs become a label image, how a prediction is
scored, and which files ``predict`` writes. Training, prediction, evaluation and export ask
the task; none of them branches on its name.

- :class:`SemanticTask`: one class (sigmoid) or several (softmax); labels are class indices.
- :class:`~unetkit.instances.task.InstanceTask`: objects (touching ones separated); labels are
  object ids (see :mod:`unetkit.instances`).

The task is stored with the model (:func:`task_to_dict`) so that prediction repeats it.

>>> import numpy as np
>>> task = SemanticTask(num_classes=1)
>>> task.num_outputs, task.score_name
(1, 'dice')
>>> task.labels(np.array([[[0.2, 0.9]]], np.float32)).tolist()
[[0, 1]]
>>> task_from_dict(task_to_dict(task), num_classes=1) == task
True
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Protocol

import numpy as np
import torch

from .data.io import write_image
from .data.writers import write_label_file
from .errors import ConfigError
from .losses import build_loss, default_loss_name
from .metrics import MetricAccumulator
from .model import labels_from_probabilities, probabilities_from_logits
from .visualize import overlay_picture

TargetLoss = Callable[[torch.Tensor, tuple[torch.Tensor, ...]], torch.Tensor]


class ScoreAccumulator(Protocol):
    """Per-image scores of predictions against truths, and their means."""

    def update(self, prediction: np.ndarray, truth: np.ndarray) -> Any: ...

    def rows(self) -> list[dict[str, float]]: ...

    def means(self) -> dict[str, float]: ...


class Task(Protocol):
    """The parts of training and inference that depend on what the model predicts."""

    name: ClassVar[str]
    score_name: ClassVar[str]  # the main score of a report: worst images first (a column of the accumulator)
    selection_score: ClassVar[str]  # the validation score that picks best.pt and ends a default run
    validation_columns: ClassVar[tuple[str, ...]]  # the accumulator's columns that training logs
    pixelwise: ClassVar[bool]  # True if a pixel's label depends on its own outputs alone

    @property
    def num_outputs(self) -> int: ...

    def activation(self, logits: torch.Tensor) -> torch.Tensor:
        """Per-pixel outputs (N, K, H, W) from logits: what the tiler blends."""
        ...

    def labels(self, outputs: np.ndarray) -> np.ndarray:
        """A label image (H, W) from blended outputs (K, H, W)."""
        ...

    def mask_mode(self, requested: str | None) -> str | None:
        """How this task reads mask files (a :data:`~unetkit.data.masks.MaskMode`)."""
        ...

    def encode(self, mask: np.ndarray) -> tuple[np.ndarray, ...]:
        """The training targets of one (augmented) mask patch."""
        ...

    def build_loss(self, loss_name: str | None, ignore_index: int | None) -> TargetLoss:
        """The loss of logits (N, K, H, W) against a batch of targets (what :meth:`encode` gives, stacked)."""
        ...

    def new_accumulator(self, ignore_index: int | None) -> ScoreAccumulator: ...

    def output_files(self, stem: str, label_format: str, overlay: bool) -> dict[str, str]:
        """The file names ``predict`` writes for an image, by kind; "labels" always among them.
        ``label_format`` is ``png``, ``tif`` or ``ome-zarr``."""
        ...

    def write_outputs(self, files: dict[str, Path], raw: Any, image: Any, labels: Any, replace: bool,
                      pixel_size: tuple[float, float, str] | None = None) -> None:
        """Write the outputs named in ``files`` (the label image, the task's others: overlay,
        tables), each atomically; a kind left out of ``files`` is not written.

        ``raw`` is the image as read (``(H, W[, C])``), ``image`` the normalised ``(C, H, W)``,
        ``labels`` the ``(H, W)`` label image: arrays, or array-likes read band by band for
        images larger than memory."""
        ...

    def to_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class SemanticTask:
    """Pixels into classes: ``num_classes`` outputs (1: sigmoid, foreground/background).

    >>> task = SemanticTask(num_classes=3)
    >>> probabilities = np.array([[[0.7, 0.1]], [[0.2, 0.3]], [[0.1, 0.6]]], np.float32)  # (K, H, W)
    >>> labels = task.labels(probabilities)
    >>> labels.tolist(), labels.dtype
    ([[0, 2]], dtype('uint8'))
    >>> task.output_files("cells", "tif", overlay=True)
    {'labels': 'cells_labels.tif', 'overlay': 'cells_overlay.png'}
    """

    num_classes: int = 1
    name: ClassVar[str] = "semantic"
    score_name: ClassVar[str] = "dice"
    selection_score: ClassVar[str] = "dice"
    validation_columns: ClassVar[tuple[str, ...]] = ("dice", "iou")
    pixelwise: ClassVar[bool] = True

    @property
    def num_outputs(self) -> int:
        return self.num_classes

    def activation(self, logits: torch.Tensor) -> torch.Tensor:
        return probabilities_from_logits(logits)

    def labels(self, outputs: np.ndarray) -> np.ndarray:
        """Class indices: probability > 0.5 for one class, argmax for several (uint8 or uint16)."""
        labels = labels_from_probabilities(torch.from_numpy(np.asarray(outputs))[None])[0].numpy()
        return labels.astype(np.uint8 if self.num_classes < 256 else np.uint16)

    def mask_mode(self, requested: str | None) -> str | None:
        return requested

    def encode(self, mask: np.ndarray) -> tuple[np.ndarray, ...]:
        return (mask,)

    def build_loss(self, loss_name: str | None, ignore_index: int | None) -> TargetLoss:
        loss = build_loss(loss_name or default_loss_name(self.num_classes), self.num_classes, ignore_index=ignore_index)
        return lambda logits, targets: loss(logits, targets[0])

    def new_accumulator(self, ignore_index: int | None) -> ScoreAccumulator:
        return MetricAccumulator(max(2, self.num_classes), ignore_index)

    def output_files(self, stem: str, label_format: str, overlay: bool) -> dict[str, str]:
        files = {"labels": f"{stem}_labels.{label_suffix(label_format)}"}
        if overlay:
            files["overlay"] = f"{stem}_overlay.png"
        return files

    def write_outputs(self, files: dict[str, Path], raw: Any, image: Any, labels: Any, replace: bool,
                      pixel_size: tuple[float, float, str] | None = None) -> None:
        if "labels" in files:
            write_label_file(files["labels"], labels, pixel_size=pixel_size, overwrite=replace)
        if "overlay" in files:
            write_image(files["overlay"], overlay_picture(image, labels, raw=raw), overwrite=replace)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name}


TASK_NAMES = ("semantic", "instances")
LABEL_FORMATS = ("png", "tif", "ome-zarr")


def label_suffix(label_format: str) -> str:
    """The file ending of a label format: ``png``, ``tif`` or ``ome.zarr``."""
    return "ome.zarr" if label_format == "ome-zarr" else label_format


def task_to_dict(task: Task) -> dict[str, Any]:
    """The task as plain values, to store with the model."""
    return task.to_dict()


def task_from_dict(values: dict[str, Any] | None, num_classes: int) -> Task:
    """The task stored with a model (None, from models of unetkit 0.1: semantic)."""
    values = dict(values or {"name": "semantic"})
    name = values.pop("name", "semantic")
    if name == "semantic":
        if values:
            raise ConfigError(f"unknown semantic task options {sorted(values)}")
        return SemanticTask(num_classes)
    if name == "instances":
        from .instances.task import InstanceTask
        from .options import from_dict

        values.pop("seed_fraction", None)  # models before the hill-top seeds: they get today's seeds
        task = from_dict(InstanceTask, values)
        if task.num_outputs != num_classes:
            raise ConfigError(f"instance method {task.method!r} has {task.num_outputs} outputs, "
                              f"the network {num_classes}")
        return task
    raise ConfigError(f"unknown task {name!r}", fix=f"choose one of {', '.join(TASK_NAMES)}; "
                      "a model of a newer unetkit needs that version")


def task_for(name: str, num_classes: int = 1, **options: Any) -> Task:
    """The task called ``name`` (``semantic`` or ``instances``) with its options."""
    if name == "semantic":
        return SemanticTask(num_classes)
    if name == "instances":
        from .instances.task import InstanceTask

        return InstanceTask(**options)
    raise ConfigError(f"unknown task {name!r}", fix=f"choose one of {', '.join(TASK_NAMES)}")


def replace_options(task: Task, **changes: Any) -> Task:
    """The task with some of its options changed (post-processing thresholds, say)."""
    return dataclasses.replace(task, **changes)  # type: ignore[type-var]
