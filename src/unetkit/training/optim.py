"""Optimisers and learning-rate schedules, by name.

Schedules step once per training step, except ``plateau``, which steps once per epoch on
the validation Dice.

>>> import torch
>>> parameters = [torch.nn.Parameter(torch.zeros(1))]
>>> optimizer = build_optimizer("adam", parameters, lr=1e-3)
>>> scheduler = build_scheduler("cosine", optimizer, total_steps=10)
>>> for _ in range(10): optimizer.step(); scheduler.step()
>>> optimizer.param_groups[0]["lr"] < 1e-5
True
"""

from __future__ import annotations

import math
from typing import Iterable

import torch
from torch.torch_version import TorchVersion

from ..errors import ConfigError


def fused_adam_devices(version: str | None = None) -> tuple[str, ...]:
    """The devices on which unetkit asks for Adam's fused kernel: CUDA, and the CPU from torch 2.4 on (2.3, which
    pyproject.toml allows, has it on CUDA only and refuses ``fused=True`` for a CPU parameter).

    >>> fused_adam_devices("2.3.1"), fused_adam_devices("2.4.0")
    (('cuda',), ('cpu', 'cuda'))
    """
    return ("cpu", "cuda") if TorchVersion(version or torch.__version__) >= (2, 4) else ("cuda",)


def build_optimizer(
    name: str,
    parameters: Iterable[torch.nn.Parameter],
    *,
    lr: float,
    weight_decay: float = 0.0,
    momentum: float = 0.99,
) -> torch.optim.Optimizer:
    """The optimizer ``name`` over ``parameters``. Adam and AdamW use PyTorch's fused kernel (one pass
    over each tensor) where every parameter lies on a device that has it (CPU from torch 2.4, CUDA): the same update to
    rounding, 4 % off the reference network's step on a 2-core CPU in bf16 (BENCHMARKS.md, "Adam's fused kernel").

    >>> build_optimizer("adam", [torch.nn.Parameter(torch.zeros(2))], lr=1e-3).defaults["fused"]
    True
    """
    parameters = list(parameters)
    if name in ("adam", "adamw"):
        fused = all(parameter.device.type in fused_adam_devices() for parameter in parameters) or None
        adam = torch.optim.Adam if name == "adam" else torch.optim.AdamW
        return adam(parameters, lr=lr, weight_decay=weight_decay, fused=fused)
    if name == "sgd":
        return torch.optim.SGD(parameters, lr=lr, momentum=momentum, nesterov=True, weight_decay=weight_decay)
    raise ConfigError(f"unknown optimizer {name!r}", fix="choose adam, adamw or sgd")


#: the parameter-group settings that pick an implementation of the same update, not the update itself
KERNEL_CHOICES = ("fused", "foreach", "capturable")


def load_optimizer_state(optimizer: torch.optim.Optimizer, saved: dict) -> None:
    """Load a checkpoint's optimizer state, keeping the kernel ``optimizer`` was built with (:data:`KERNEL_CHOICES`):
    that is this machine's choice, not the run's. A run saved with Adam's loop (before unetkit fused it, or on a
    device without the fused kernel) resumes fused here, and a run saved fused resumes where the fused kernel is
    missing (torch 2.3 on a CPU) with the loop; the moments and step counts carry over either way.

    >>> parameters = [torch.nn.Parameter(torch.zeros(2))]
    >>> looped = torch.optim.Adam(parameters, lr=1e-3, fused=None)
    >>> fused = build_optimizer("adam", parameters, lr=1e-3)
    >>> load_optimizer_state(fused, looped.state_dict())
    >>> fused.param_groups[0]["fused"]
    True
    """
    groups = [{**group, **{key: built[key] for key in KERNEL_CHOICES if key in built}}
              for group, built in zip(saved["param_groups"], optimizer.param_groups)]
    optimizer.load_state_dict({**saved, "param_groups": groups})  # torch moves each step count where the kernel wants it


WARMUP_STEPS = 25


def build_scheduler(
    name: str, optimizer: torch.optim.Optimizer, total_steps: int
) -> torch.optim.lr_scheduler.LRScheduler | torch.optim.lr_scheduler.ReduceLROnPlateau:
    """``warmup-constant``: a linear warm-up over :data:`WARMUP_STEPS` steps, then constant (for
    runs whose end is decided on the way; the stopping rule may lower it on a plateau)."""
    total_steps = max(1, total_steps)
    if name == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    if name == "warmup-constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / WARMUP_STEPS))
    if name in ("cosine", "poly"):
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: schedule_factor(name, step, total_steps))
    if name == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.5, patience=3)
    raise ConfigError(f"unknown schedule {name!r}", fix="choose constant, warmup-constant, cosine, poly or plateau")


def schedule_factor(name: str, step: int, total_steps: int) -> float:
    """The share of the learning rate that a schedule falling to its end (``cosine``, ``poly``) gives at
    ``step`` of ``total_steps``.

    >>> schedule_factor("cosine", 5, 10), schedule_factor("poly", 10, 10)
    (0.5, 0.0)
    """
    done = min(step, total_steps) / max(1, total_steps)
    return 0.5 * (1 + math.cos(math.pi * done)) if name == "cosine" else (1 - done) ** 0.9


def scale_learning_rate(optimizer: torch.optim.Optimizer, scheduler: object, factor: float) -> None:
    """Multiply the learning rate by ``factor`` from now on (the scheduler's base too, so that it
    keeps the change and a checkpoint of its state holds it)."""
    for group in optimizer.param_groups:
        group["lr"] *= factor
    base = getattr(scheduler, "base_lrs", None)
    if base is not None:
        scheduler.base_lrs = [value * factor for value in base]  # type: ignore[attr-defined]
