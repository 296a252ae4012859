"""A moving average of the weights (EMA), the model that validation scores and ``best.pt`` keeps.

At a constant learning rate, the weights of one step differ from the next by the noise of
their batch, and a model's validation score moves by 0.01 or more from one epoch to the
next. An exponential moving average of the weights over the last ``1 / (1 - decay)``
steps smooths that noise out without slowing training: the optimiser still steps the raw
weights, and the average only follows them. ``--ema DECAY`` sets the decay per step (0:
off); the default was chosen by measurement (BENCHMARKS.md, "Averaged weights").

The average is PyTorch's :class:`torch.optim.swa_utils.AveragedModel`; it starts as a copy
of the weights after the first step. Early in a run the weights change fast and an average
over 100 steps would lag far behind them, so the decay warms up: after ``n`` updates it is
``min(decay, (1 + n) / (10 + n))`` (0.5 after 8 steps, 0.9 after 80), as TensorFlow's
``ExponentialMovingAverage`` does when given the step count. Under DDP each rank keeps the
same average; batch-norm statistics, which differ between ranks until the next forward
pass, are taken from rank 0. ``last.pt`` holds the average beside the raw weights, so a resumed run goes on with it.

>>> import torch
>>> model = torch.nn.Linear(1, 1, bias=False)
>>> average = weight_average(model, decay=0.99)
>>> for value in (0.0, 1.0):
...     _ = model.weight.data.fill_(value); average.update_parameters(model)  # the first update copies
>>> round(float(average.module.weight.detach()), 4)  # decay after 1 update: 2 / 11
0.8182
"""

from __future__ import annotations

import torch
from torch.optim.swa_utils import AveragedModel

from ..errors import ConfigError

__all__ = ["AveragedModel", "check_decay", "follow", "warmed_up_decay", "weight_average"]


def check_decay(decay: float) -> None:
    """Refuse a decay outside [0, 1) (NaN too), naming ``--ema``: ``TrainConfig`` and
    :func:`weight_average` both check with this."""
    if not 0 <= decay < 1:
        raise ConfigError(f"--ema must be in [0, 1), got {decay}",
                          fix="0.99 averages about the last 100 steps; 0 turns the average off")


def warmed_up_decay(decay: float, updates: int) -> float:
    """The decay used after ``updates`` updates: ``min(decay, (1 + n) / (10 + n))``.

    >>> [round(warmed_up_decay(0.99, n), 3) for n in (0, 8, 80, 1000)]
    [0.1, 0.5, 0.9, 0.99]
    """
    return min(decay, (1 + updates) / (10 + updates))


def ema_update(decay: float):
    """AveragedModel's ``multi_avg_fn``: an EMA step with the warmed-up decay, on all tensors at once."""

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], updates: torch.Tensor) -> None:
        weight = 1.0 - warmed_up_decay(decay, int(updates))
        if torch.is_floating_point(averaged[0]):
            torch._foreach_lerp_(averaged, current, weight)
        else:  # integer buffers (a batch-norm's step count) follow the model
            for mine, theirs in zip(averaged, current):
                mine.copy_(theirs)

    return update


def weight_average(model: torch.nn.Module, decay: float) -> AveragedModel | None:
    """An exponential moving average of ``model``'s weights and buffers (None when ``decay`` is 0).

    Call ``update_parameters(model)`` after each optimiser step; ``.module`` is the averaged
    network, the same class as ``model``.
    """
    check_decay(decay)
    if decay == 0:
        return None
    return AveragedModel(model, multi_avg_fn=ema_update(decay), use_buffers=True)


def follow(average: AveragedModel, model: torch.nn.Module, context) -> None:
    """One update of ``average`` towards ``model`` after an optimiser step. Under DDP
    (``context``, a :class:`~unetkit.training.distributed.DistributedContext`) the weights are the
    same on every rank, but batch-norm statistics are local to a rank until DDP's next forward:
    rank 0's go into every rank's average, so that all ranks validate and resume the same model."""
    average.update_parameters(model)
    context.broadcast_from_main([buffer for buffer in average.module.buffers() if buffer.is_floating_point()])
