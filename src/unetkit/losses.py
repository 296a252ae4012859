"""Segmentation losses: soft Dice (as the reference), BCE, CE and their sums.

Every loss takes the same three arguments:

- ``logits``: float tensor ``(N, C, H, W)``, what :class:`unetkit.UNet` returns;
- ``target``: integer tensor ``(N, H, W)`` of class indices, ``{0, 1}`` when ``C == 1``
  and ``0..C-1`` otherwise; pixels equal to ``ignore_index`` (if given) count nowhere;
- ``weights``: optional float tensor ``(N, H, W)`` of non-negative per-pixel weights
  (the paper's border weight map, for example).

Anything else is rejected with a message that names what was expected and what came.

>>> import torch
>>> loss = build_loss("dice+bce", num_classes=1)
>>> logits = torch.full((1, 1, 2, 2), 20.0)          # confident foreground everywhere
>>> float(loss(logits, torch.ones(1, 2, 2, dtype=torch.long))) < 1e-6
True
"""

from __future__ import annotations

from typing import Callable, Literal, Optional, get_args

import torch
import torch.nn.functional as F

from .errors import ConfigError

LossFunction = Callable[[torch.Tensor, torch.Tensor, Optional[torch.Tensor]], torch.Tensor]
LossName = Literal["dice", "bce", "ce", "dice+bce", "dice+ce"]
LOSS_NAMES: tuple[str, ...] = get_args(LossName)


def check_loss_inputs(
    logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None
) -> None:
    """Raise ValueError unless the shapes and dtypes follow the module's contract."""
    if logits.ndim != 4 or not logits.is_floating_point():
        raise ValueError(
            f"logits: expected a float tensor (N, C, H, W), got {logits.dtype} {tuple(logits.shape)}"
        )
    n, _, h, w = logits.shape
    if target.shape != (n, h, w):
        raise ValueError(
            f"target: expected shape {(n, h, w)} (N, H, W) to match logits {tuple(logits.shape)}, "
            f"got {tuple(target.shape)}"
        )
    if target.is_floating_point() or target.dtype == torch.bool:
        raise ValueError(
            f"target: expected an integer tensor of class indices, got {target.dtype}"
        )
    if weights is not None:
        if weights.shape != (n, h, w) or not weights.is_floating_point():
            raise ValueError(
                f"weights: expected a float tensor of shape {(n, h, w)}, "
                f"got {weights.dtype} {tuple(weights.shape)}"
            )


def _valid_weights(
    target: torch.Tensor, weights: torch.Tensor | None, ignore_index: int | None
) -> torch.Tensor:
    """Per-pixel weights with ignored pixels set to zero, as float (N, H, W)."""
    result = torch.ones(target.shape, dtype=torch.float32, device=target.device)
    if weights is not None:
        result = weights.float()
    if ignore_index is not None:
        result = result * (target != ignore_index)
    return result


def _clean_target(target: torch.Tensor, ignore_index: int | None) -> torch.Tensor:
    """Target with ignored pixels replaced by 0, so one-hot encoding stays in range."""
    target = target.long()
    if ignore_index is not None:
        target = torch.where(target == ignore_index, torch.zeros_like(target), target)
    return target


def _probabilities_and_one_hot(
    logits: torch.Tensor, target: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    logits = logits.float()
    if logits.shape[1] == 1:
        return torch.sigmoid(logits), target.unsqueeze(1).float()
    one_hot = F.one_hot(target, logits.shape[1]).permute(0, 3, 1, 2).float()
    return torch.softmax(logits, dim=1), one_hot


def dice_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    weights: torch.Tensor | None = None,
    *,
    smooth: float = 1.0,
    include_background: bool = False,
    ignore_index: int | None = None,
) -> torch.Tensor:
    """1 - soft Dice, summed over the whole batch as the reference does (smooth = 1).

    One class: ``(2 sum(p y) + s) / (sum(p) + sum(y) + s)`` on sigmoid probabilities.
    Several: the same per class on softmax probabilities against the one-hot target,
    averaged over the classes (without class 0 unless ``include_background``).

    >>> import torch
    >>> logits = torch.tensor([[[[10.0, -10.0]]]])              # p ~ [1, 0]
    >>> target = torch.tensor([[[1, 1]]])                        # y = [1, 1]
    >>> round(float(dice_loss(logits, target)), 4)               # 1 - (2*1+1)/(1+2+1)
    0.25
    """
    check_loss_inputs(logits, target, weights)
    pixel_weights = _valid_weights(target, weights, ignore_index).unsqueeze(1)
    probabilities, one_hot = _probabilities_and_one_hot(logits, _clean_target(target, ignore_index))
    dims = (0, 2, 3)
    intersection = (pixel_weights * probabilities * one_hot).sum(dims)
    total = (pixel_weights * probabilities).sum(dims) + (pixel_weights * one_hot).sum(dims)
    dice_per_class = (2 * intersection + smooth) / (total + smooth)
    if logits.shape[1] > 1 and not include_background:
        dice_per_class = dice_per_class[1:]
    return 1 - dice_per_class.mean()


def bce_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    weights: torch.Tensor | None = None,
    *,
    ignore_index: int | None = None,
) -> torch.Tensor:
    """Binary cross-entropy on one-class logits, the weighted mean over valid pixels.

    >>> import torch
    >>> round(float(bce_loss(torch.zeros(1, 1, 1, 1), torch.ones(1, 1, 1, dtype=torch.long))), 4)
    0.6931
    """
    check_loss_inputs(logits, target, weights)
    if logits.shape[1] != 1:
        raise ValueError(f"bce needs one-class logits (N, 1, H, W), got {tuple(logits.shape)}")
    pixel_weights = _valid_weights(target, weights, ignore_index)
    target = _clean_target(target, ignore_index)
    per_pixel = F.binary_cross_entropy_with_logits(
        logits[:, 0].float(), target.float(), reduction="none"
    )
    return (per_pixel * pixel_weights).sum() / pixel_weights.sum().clamp_min(1e-8)


def ce_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    weights: torch.Tensor | None = None,
    *,
    ignore_index: int | None = None,
) -> torch.Tensor:
    """Cross-entropy over C >= 2 classes, the weighted mean over valid pixels.

    >>> import torch
    >>> round(float(ce_loss(torch.zeros(1, 4, 1, 1), torch.zeros(1, 1, 1, dtype=torch.long))), 4)
    1.3863
    """
    check_loss_inputs(logits, target, weights)
    if logits.shape[1] < 2:
        raise ValueError(
            f"ce needs logits with 2 or more classes, got {tuple(logits.shape)}; use bce"
        )
    pixel_weights = _valid_weights(target, weights, ignore_index)
    per_pixel = F.cross_entropy(
        logits.float(), _clean_target(target, ignore_index), reduction="none"
    )
    return (per_pixel * pixel_weights).sum() / pixel_weights.sum().clamp_min(1e-8)


def default_loss_name(num_classes: int) -> str:
    """Dice + BCE for one class, Dice + CE for several: what training uses by default."""
    return "dice+bce" if num_classes == 1 else "dice+ce"


def build_loss(
    name: str, num_classes: int, *, ignore_index: int | None = None, smooth: float = 1.0
) -> LossFunction:
    """The loss called ``name`` for a network with ``num_classes`` outputs.

    >>> build_loss("ce", num_classes=1)
    Traceback (most recent call last):
    ...
    unetkit.errors.ConfigError: loss 'ce' needs 2 or more classes, the model has 1
      fix: use 'bce' or 'dice+bce' for one class
    """
    if name not in LOSS_NAMES:
        raise ConfigError(f"unknown loss {name!r}", fix=f"choose one of {', '.join(LOSS_NAMES)}")
    parts = set(name.split("+"))
    if "bce" in parts and num_classes != 1:
        raise ConfigError(
            f"loss {name!r} needs one class, the model has {num_classes}",
            fix="use 'ce' or 'dice+ce' for several classes",
        )
    if "ce" in parts and num_classes < 2:
        raise ConfigError(
            f"loss {name!r} needs 2 or more classes, the model has {num_classes}",
            fix="use 'bce' or 'dice+bce' for one class",
        )

    def loss(
        logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None
    ) -> torch.Tensor:
        total = logits.new_zeros((), dtype=torch.float32)
        if "dice" in parts:
            total = total + dice_loss(
                logits, target, weights, smooth=smooth, ignore_index=ignore_index
            )
        if "bce" in parts:
            total = total + bce_loss(logits, target, weights, ignore_index=ignore_index)
        if "ce" in parts:
            total = total + ce_loss(logits, target, weights, ignore_index=ignore_index)
        return total

    return loss
