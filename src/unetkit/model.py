"""The U-Net: its blocks, its configuration, presets and size helpers.

The default ``UNet()`` is the classic Keras U-Net layer for layer: two 3x3 'same'
convolutions + ReLU per level with 32-64-128-256-512 filters, 2x2 max-pooling, 2x2
stride-2 transposed convolutions, concatenation ``[upsampled, skip]``, a 1x1 head.
It has 7,759,521 parameters for one input channel.

>>> import torch
>>> model = UNet()
>>> count_parameters(model)
7759521
>>> logits = model(torch.zeros(1, 1, 97, 131))   # any size: padded and cropped back
>>> tuple(logits.shape)
(1, 1, 97, 131)

The model returns logits. :func:`probabilities_from_logits` and
:func:`labels_from_probabilities` turn them into probabilities and labels, the same way
for every caller (sigmoid + 0.5 for one class, softmax + argmax for several).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, get_args

import torch
from torch import nn

from .errors import ConfigError
from .mirror import pad_bottom_right
from .options import from_dict, to_dict
from .sizes import SizeRule

Padding = Literal["same", "valid"]
Upsampling = Literal["transpose", "bilinear"]


@dataclass(frozen=True)
class UNetConfig:
    """Everything needed to rebuild a :class:`UNet`; stored in every checkpoint.

    >>> UNetConfig(base_width=16, depth=3).widths()
    (16, 32, 64)
    """

    in_channels: int = 1
    num_classes: int = 1
    base_width: int = 32
    depth: int = 5
    padding: Padding = "same"
    upsampling: Upsampling = "transpose"
    batch_norm: bool = False
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.in_channels < 1:
            raise ConfigError(f"in_channels must be at least 1, got {self.in_channels}")
        if self.num_classes < 1:
            raise ConfigError(f"num_classes must be at least 1, got {self.num_classes}")
        if self.depth < 2:
            raise ConfigError(f"depth must be at least 2 (one pooling), got {self.depth}")
        if self.base_width < 1:
            raise ConfigError(f"base_width must be at least 1, got {self.base_width}")
        if self.padding not in ("same", "valid"):
            raise ConfigError(f"padding must be 'same' or 'valid', got {self.padding!r}")
        if self.upsampling not in ("transpose", "bilinear"):
            raise ConfigError(
                f"upsampling must be 'transpose' or 'bilinear', got {self.upsampling!r}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")

    def widths(self) -> tuple[int, ...]:
        """Filters per level, from the top (full resolution) to the bottleneck."""
        return tuple(self.base_width * 2**level for level in range(self.depth))

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> UNetConfig:
        return from_dict(cls, values)


PresetName = Literal["keras-reference", "paper-2015"]

PRESETS: dict[str, UNetConfig] = {
    # The Keras U-Net that unetkit reproduces (7,759,521 parameters).
    "keras-reference": UNetConfig(),
    # Ronneberger et al. 2015: 64 to 1024 filters, valid convolutions, two-class softmax.
    "paper-2015": UNetConfig(base_width=64, padding="valid", num_classes=2),
}


assert set(PRESETS) == set(get_args(PresetName)), "PresetName must list PRESETS"


def preset(name: str, **overrides: Any) -> UNetConfig:
    """A named configuration, with some fields replaced.

    >>> preset("paper-2015").base_width
    64
    >>> preset("keras-reference", in_channels=3).in_channels
    3
    """
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}", fix=f"choose one of {sorted(PRESETS)}")
    return dataclasses.replace(PRESETS[name], **overrides)


class DoubleConv(nn.Module):
    """Two 3x3 convolutions, each followed by [batch norm] and ReLU, then [dropout]."""

    def __init__(
        self, in_channels: int, out_channels: int, padding: Padding, batch_norm: bool,
        dropout: float = 0.0,
    ):
        super().__init__()
        pad = 1 if padding == "same" else 0
        layers: list[nn.Module] = []
        for channels_in in (in_channels, out_channels):
            layers.append(
                nn.Conv2d(channels_in, out_channels, 3, padding=pad, bias=not batch_norm)
            )
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_channels))
            layers.append(nn.ReLU(inplace=True))
        if dropout > 0:
            layers.append(nn.Dropout2d(dropout))
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class Down(nn.Module):
    """2x2 max-pooling, then a :class:`DoubleConv`."""

    def __init__(self, in_channels: int, out_channels: int, config: UNetConfig, dropout: float):
        super().__init__()
        self.pool = nn.MaxPool2d(2)
        self.conv = DoubleConv(
            in_channels, out_channels, config.padding, config.batch_norm, dropout
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.pool(x))


class Up(nn.Module):
    """Up-sample x2 to half the channels, concatenate ``[upsampled, skip]``, DoubleConv."""

    def __init__(self, in_channels: int, out_channels: int, config: UNetConfig):
        super().__init__()
        if config.upsampling == "transpose":
            self.up: nn.Module = nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2)
        else:
            self.up = nn.Sequential(
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                nn.Conv2d(in_channels, out_channels, 1),
            )
        self.conv = DoubleConv(2 * out_channels, out_channels, config.padding, config.batch_norm)
        self.same_padding = config.padding == "same"

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)
        if self.same_padding:  # pooling an odd side drops its last row: the up-sampled map covers the skip's top-left
            skip = skip[..., : x.shape[-2], : x.shape[-1]]
        else:  # valid padding loses a border on every side: the paper's centre crop
            skip = center_crop(skip, x.shape[-2], x.shape[-1])
        return self.conv(torch.cat([x, skip], dim=1))


def center_crop(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The central ``height x width`` window of ``x`` (a no-op when sizes already match)."""
    top = (x.shape[-2] - height) // 2
    left = (x.shape[-1] - width) // 2
    return x[..., top : top + height, left : left + width]


class UNet(nn.Module):
    """A configurable 2D U-Net that returns logits, one score map per class.

    Its weights start as PyTorch's layers draw them; :func:`unetkit.weight_init.initialize_weights`
    draws them as the U-Net paper or the Keras reference does (``unetkit train --weight-init``).
    Build it with keyword options or a :class:`UNetConfig`:

    >>> UNet(num_classes=3, depth=3, base_width=8).config.num_classes
    3
    >>> UNet.from_config(preset("paper-2015")).output_size(572)
    388
    """

    def __init__(self, config: UNetConfig | None = None, **options: Any):
        super().__init__()
        if config is None:
            config = UNetConfig(**options)
        elif options:
            config = dataclasses.replace(config, **options)
        self.config = config
        widths = config.widths()
        deep_dropout = config.dropout  # the paper's drop-out at the end of the contracting path
        self.inc = DoubleConv(config.in_channels, widths[0], config.padding, config.batch_norm)
        self.downs = nn.ModuleList(
            Down(widths[i], widths[i + 1], config, deep_dropout if i >= config.depth - 3 else 0.0)
            for i in range(config.depth - 1)
        )
        self.ups = nn.ModuleList(
            Up(widths[i + 1], widths[i], config) for i in reversed(range(config.depth - 1))
        )
        self.head = nn.Conv2d(widths[0], config.num_classes, 1)

    @classmethod
    def from_config(cls, config: UNetConfig) -> UNet:
        return cls(config)

    @property
    def size_multiple(self) -> int:
        """Input sizes the network takes without padding ('same' mode): multiples of this."""
        return 2 ** (self.config.depth - 1)

    @property
    def size_rule(self) -> SizeRule:
        """The sizes the network proper takes (before :meth:`forward`'s padding) and returns."""
        return size_rule(self.config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.config.in_channels:
            raise ValueError(
                f"expected input of shape (N, {self.config.in_channels}, H, W), "
                f"got {tuple(x.shape)}"
            )
        if self.config.padding == "valid":
            check_valid_input_size(x.shape[-2:], self.config.depth)
            return self._forward_unpadded(x)
        height, width = x.shape[-2:]
        multiple = self.size_multiple
        padded = pad_bottom_right(x, -(-height // multiple) * multiple, -(-width // multiple) * multiple)
        return self._forward_unpadded(padded)[..., :height, :width]

    def _forward_unpadded(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        x = skips.pop()
        for up in self.ups:
            x = up(x, skips.pop())
        return self.head(x)

    def output_size(self, input_size: int) -> int:
        """Side of the output for an input side (equal for 'same' padding)."""
        if self.config.padding == "same":
            return input_size
        return valid_output_size(input_size, self.config.depth)

    def input_size_for(self, output_size: int) -> int:
        """Smallest input side whose output covers ``output_size`` (valid or same padding)."""
        if self.config.padding == "same":
            multiple = self.size_multiple
            return -(-output_size // multiple) * multiple
        return valid_input_size(output_size, self.config.depth)


def valid_output_size(input_size: int, depth: int) -> int:
    """Output side of a valid-padding U-Net for an input side.

    >>> valid_output_size(572, 5)
    388
    """
    size = input_size
    for _ in range(depth - 1):
        size -= 4
        if size <= 0 or size % 2:
            raise ValueError(
                f"input side {input_size} does not fit a valid-padding U-Net of depth {depth}; "
                f"use valid_input_size() to choose one"
            )
        size //= 2
    size -= 4
    if size <= 0:
        raise ValueError(f"input side {input_size} is too small for depth {depth}")
    for _ in range(depth - 1):
        size = size * 2 - 4
    return size


def valid_input_size(output_size: int, depth: int) -> int:
    """Smallest valid input side whose output side is at least ``output_size``.

    The context each side needs is ``(input - output) // 2`` (92 for the paper network).

    >>> valid_input_size(388, 5)
    572
    """
    bottom = 1
    while _output_from_bottom(bottom, depth) < output_size:
        bottom += 1
    size = bottom + 4
    for _ in range(depth - 1):
        size = size * 2 + 4
    return size


def _output_from_bottom(bottom: int, depth: int) -> int:
    size = bottom
    for _ in range(depth - 1):
        size = size * 2 - 4
    return size


def size_rule(config: UNetConfig) -> SizeRule:
    """The :class:`~unetkit.sizes.SizeRule` of a U-Net configuration.

    >>> size_rule(preset("paper-2015"))
    SizeRule(minimum=188, step=16, halo=92)
    >>> size_rule(UNetConfig())
    SizeRule(minimum=16, step=16, halo=0)
    """
    step = 2 ** (config.depth - 1)
    if config.padding == "same":
        return SizeRule(minimum=step, step=step)
    minimum = valid_input_size(1, config.depth)
    return SizeRule(minimum=minimum, step=step, halo=(minimum - valid_output_size(minimum, config.depth)) // 2)


def check_valid_input_size(shape: torch.Size | tuple[int, ...], depth: int) -> None:
    for side in shape:
        valid_output_size(int(side), depth)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters.

    >>> count_parameters(UNet(depth=2, base_width=2))
    431
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def probabilities_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Sigmoid for one class, softmax over the class axis (dim 1) for several.

    >>> probabilities_from_logits(torch.zeros(1, 1, 2, 2)).flatten().tolist()
    [0.5, 0.5, 0.5, 0.5]
    >>> probabilities_from_logits(torch.zeros(3, 8, 8))
    Traceback (most recent call last):
    ...
    ValueError: expected (N, K, H, W) logits, got shape (3, 8, 8): one image's are logits[None]
    """
    if not isinstance(logits, torch.Tensor) or logits.ndim != 4:  # (K, H, W) would be softmaxed over H
        shape = tuple(getattr(logits, "shape", ()))
        raise ValueError(f"expected (N, K, H, W) logits, got shape {shape}: one image's are logits[None]"
                         + ("" if isinstance(logits, torch.Tensor) else " (a torch tensor: torch.from_numpy)"))
    if logits.shape[1] == 1:
        return torch.sigmoid(logits)
    return torch.softmax(logits, dim=1)


def labels_from_probabilities(probabilities: torch.Tensor) -> torch.Tensor:
    """Integer labels (N, H, W): probability > 0.5 for one class, argmax for several.

    >>> labels_from_probabilities(torch.tensor([[[[0.2, 0.7]]]])).tolist()
    [[[0, 1]]]
    """
    if not isinstance(probabilities, torch.Tensor) or probabilities.ndim != 4:
        shape = tuple(getattr(probabilities, "shape", ()))
        raise ValueError(f"expected a tensor of shape (N, K, H, W), got {type(probabilities).__name__} of shape "
                         f"{shape}: for one image of predict_tiled's (K, H, W), pass torch.from_numpy(array)[None]")
    if probabilities.shape[1] == 1:
        return (probabilities[:, 0] > 0.5).long()
    return probabilities.argmax(dim=1)


def labels_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Integer labels straight from logits; the same answer as via probabilities.

    >>> labels_from_logits(torch.tensor([[[[-1.0, 2.0]]]])).tolist()  # one class: foreground where the logit is > 0
    [[[0, 1]]]
    >>> three_classes = torch.tensor([[[[0.1, 3.0]], [[2.0, -1.0]], [[0.5, 0.0]]]])  # (N, K, H, W) = (1, 3, 1, 2)
    >>> labels = labels_from_logits(three_classes)
    >>> labels.tolist(), labels.dtype
    ([[[1, 0]]], torch.int64)
    """
    return labels_from_probabilities(probabilities_from_logits(logits))
