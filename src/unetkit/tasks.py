"""What a model is trained to do, in one place: the seam between pixels and objects.

A task says how many outputs the network has, how its logits become per-pixel outputs
(the activation, run by every backend), how a mask file becomes a training target, which
loss trains it, how outputs become a label image, and how a prediction is scored. Training,
prediction, evaluation and export ask the task; none of them branches on the task's name.

- :class:`SemanticTask`: one class (sigmoid) or several (softmax); labels are class indices.

The task is stored with the model (``task_to_dict``) so that prediction repeats it.

>>> import torch, numpy as np
>>> task = SemanticTask(num_classes=1)
>>> task.num_outputs
1
>>> task.labels(np.array([[[0.2, 0.9]]], np.float32)).tolist()
[[0, 1]]
>>> task_from_dict(task_to_dict(task), num_classes=1) == task
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np
import torch

from .errors import ConfigError
from .model import labels_from_probabilities, probabilities_from_logits


class Task(Protocol):
    """The parts of training and inference that depend on what the model predicts."""

    name: ClassVar[str]

    @property
    def num_outputs(self) -> int: ...

    def activation(self, logits: torch.Tensor) -> torch.Tensor:
        """Per-pixel outputs (N, K, H, W) from logits: what the tiler blends."""
        ...

    def labels(self, outputs: np.ndarray) -> np.ndarray:
        """A label image (H, W) from blended outputs (K, H, W)."""
        ...


@dataclass(frozen=True)
class SemanticTask:
    """Pixels into classes: ``num_classes`` outputs (1: sigmoid, foreground/background)."""

    num_classes: int = 1
    name: ClassVar[str] = "semantic"

    @property
    def num_outputs(self) -> int:
        return self.num_classes

    def activation(self, logits: torch.Tensor) -> torch.Tensor:
        return probabilities_from_logits(logits)

    def labels(self, outputs: np.ndarray) -> np.ndarray:
        """Class indices: probability > 0.5 for one class, argmax for several (uint8 or uint16)."""
        labels = labels_from_probabilities(torch.from_numpy(np.asarray(outputs))[None])[0].numpy()
        return labels.astype(np.uint8 if self.num_classes < 256 else np.uint16)


TASK_NAMES = ("semantic",)


def task_to_dict(task: Task) -> dict[str, Any]:
    """The task as plain values, to store with the model."""
    return {"name": task.name}


def task_from_dict(values: dict[str, Any] | None, num_classes: int) -> Task:
    """The task stored with a model (None, from models of unetkit 0.1: semantic)."""
    values = dict(values or {"name": "semantic"})
    name = values.pop("name", "semantic")
    if name == "semantic":
        if values:
            raise ConfigError(f"unknown semantic task options {sorted(values)}")
        return SemanticTask(num_classes)
    raise ConfigError(f"unknown task {name!r}", fix=f"choose one of {', '.join(TASK_NAMES)}; "
                      "a model of a newer unetkit needs that version")
