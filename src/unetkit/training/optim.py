"""Optimisers and learning-rate schedules, by name.

Schedules step once per training step, except ``plateau``, which steps once per epoch on
the validation Dice. ``budget`` (the default of a run that decides its own length) also follows
the training time: with ``--max-time`` its learning rate falls linearly to zero at the budget.

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

from ..errors import ConfigError


def build_optimizer(
    name: str,
    parameters: Iterable[torch.nn.Parameter],
    *,
    lr: float,
    weight_decay: float = 0.0,
    momentum: float = 0.99,
) -> torch.optim.Optimizer:
    if name == "adam":
        return torch.optim.Adam(parameters, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(parameters, lr=lr, momentum=momentum, nesterov=True, weight_decay=weight_decay)
    raise ConfigError(f"unknown optimizer {name!r}", fix="choose adam, adamw or sgd")


WARMUP_STEPS = 25


def build_scheduler(
    name: str, optimizer: torch.optim.Optimizer, total_steps: int, budget_s: float | None = None
) -> torch.optim.lr_scheduler.LRScheduler | torch.optim.lr_scheduler.ReduceLROnPlateau:
    """``warmup-constant``: a linear warm-up over :data:`WARMUP_STEPS` steps, then constant (for
    runs whose end is decided on the way; the stopping rule may lower it on a plateau).
    ``budget``: the same, but with a time budget (``budget_s``, ``--max-time``) the rate then
    falls linearly to zero at the budget (:class:`WarmupThenBudget`)."""
    total_steps = max(1, total_steps)
    if name == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    if name == "budget":
        return WarmupThenBudget(optimizer, budget_s=budget_s)
    if name == "warmup-constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / WARMUP_STEPS))
    if name == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps))
        )
    if name == "poly":
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: (1 - min(step, total_steps) / total_steps) ** 0.9
        )
    if name == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.5, patience=3)
    raise ConfigError(f"unknown schedule {name!r}",
                      fix="choose budget, constant, warmup-constant, cosine, poly or plateau")


#: with a time budget, the learning rate falls linearly to zero over this last share of it
DECAY_SHARE = 1.0


class WarmupThenBudget(torch.optim.lr_scheduler.LRScheduler):
    """A linear warm-up over :data:`WARMUP_STEPS` steps, then constant; with a time budget, a
    linear decay to zero over the budget's last ``decay_share`` (:data:`DECAY_SHARE`), after
    the training time told by :meth:`follow_time`.

    A linear decay to the end of the budget is what "budgeted training" found best among
    schedules for a run of known length (Li, Yumer and Ramanan, ICLR 2020); here the length
    is wall time, so the run's end is known although its number of steps is not. The budget
    is the one of the run in progress, not a stored one: a resume with another ``--max-time``
    follows the new budget from its first step.

    >>> optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    >>> schedule = WarmupThenBudget(optimizer, warmup_steps=2, budget_s=100.0)
    >>> optimizer.step(); schedule.step()
    >>> schedule.follow_time(0.0); optimizer.param_groups[0]["lr"]
    1.0
    >>> schedule.follow_time(75.0); optimizer.param_groups[0]["lr"]
    0.25
    """

    def __init__(self, optimizer: torch.optim.Optimizer, warmup_steps: int = WARMUP_STEPS,
                 budget_s: float | None = None, decay_share: float | None = None) -> None:
        self.warmup_steps = warmup_steps
        self.budget_s = budget_s
        self.decay_share = DECAY_SHARE if decay_share is None else decay_share
        self.elapsed_s = 0.0
        super().__init__(optimizer)

    def factor(self) -> float:
        """The learning rate's multiplier now: warm-up, then 1, or what is left of the budget."""
        warm = min(1.0, (self.last_epoch + 1) / self.warmup_steps)
        if self.budget_s is None:
            return warm
        left = max(0.0, 1.0 - self.elapsed_s / self.budget_s)
        return warm * min(1.0, left / self.decay_share)

    def get_lr(self) -> list[float]:  # type: ignore[override]
        return [base * self.factor() for base in self.base_lrs]

    def follow_time(self, elapsed_s: float) -> None:
        """Set the training time spent so far and apply the learning rate it gives, at once."""
        self.elapsed_s = elapsed_s
        self._last_lr = self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, self._last_lr):
            group["lr"] = lr

    def load_state_dict(self, state_dict: dict) -> None:
        """The stored step count and base rates; the budget stays this run's (a resume may change it).
        A warm-up-then-constant ``LambdaLR``'s state, from a run saved before this schedule, loads too."""
        state = {key: value for key, value in state_dict.items() if key not in ("budget_s", "decay_share", "lr_lambdas")}
        self.__dict__.update(state)


def follow_training_time(scheduler: object, elapsed_s: float) -> None:
    """Tell a time-following schedule (:class:`WarmupThenBudget`) the training time so far; others ignore it."""
    if isinstance(scheduler, WarmupThenBudget):
        scheduler.follow_time(elapsed_s)


def scale_learning_rate(optimizer: torch.optim.Optimizer, scheduler: object, factor: float) -> None:
    """Multiply the learning rate by ``factor`` from now on (the scheduler's base too, so that it
    keeps the change and a checkpoint of its state holds it)."""
    for group in optimizer.param_groups:
        group["lr"] *= factor
    base = getattr(scheduler, "base_lrs", None)
    if base is not None:
        scheduler.base_lrs = [value * factor for value in base]  # type: ignore[attr-defined]
