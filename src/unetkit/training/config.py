"""Every training option in one typed, validated object, saved with each run.

>>> config = TrainConfig(out="runs/a", epochs=2, lr=3e-4)
>>> TrainConfig.from_dict(config.to_dict()) == config
True
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..data.augment import AUGMENT_PRESETS, DEFAULT_AUGMENT
from ..data.masks import MASK_MODES
from ..data.normalize import NORMALIZATION_MODES
from ..errors import ConfigError
from ..losses import LOSS_NAMES
from ..model import PRESETS
from ..precision import PRECISIONS

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine", "poly", "plateau")


@dataclass(frozen=True)
class TrainConfig:
    """Options of ``unetkit train``; defaults are the measured recommendations (README)."""

    out: str
    data: str | None = None  # None: the embedded sample's training split
    val_data: str | None = None  # a separate validation folder; else a split of ``data``
    val_fraction: float = 0.2
    # model
    preset: str = "keras-reference"
    num_classes: int = 1
    base_width: int | None = None
    depth: int | None = None
    padding: str | None = None
    upsampling: str | None = None
    batch_norm: bool | None = None
    dropout: float | None = None
    # data
    mask_mode: str | None = None  # None: 'classes' (the sample: 'instances')
    ignore_index: int | None = None
    normalization: str = "percentile"
    patch_size: int = 256
    foreground_fraction: float = 0.33
    augment: str = DEFAULT_AUGMENT
    # optimisation
    loss: str | None = None  # None: dice+bce for one class, dice+ce for several
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.99  # SGD (Nesterov) only
    schedule: str = "cosine"
    grad_clip: float | None = 1.0
    epochs: int = 20
    steps_per_epoch: int = 50
    batch_size: int = 4  # per process
    early_stopping: int | None = None  # patience in epochs, on validation Dice
    max_time_s: float | None = None  # stop (and save) after this much training time
    init_checkpoint: str | None = None  # start from these weights (same model options)
    # machinery
    seed: int = 0
    precision: str = "auto"
    channels_last: bool = True
    device: str = "auto"
    checkpoint_every: int = 50  # steps; 0: only at the end of each epoch
    val_tile_size: int = 512
    progress: bool = True

    def __post_init__(self) -> None:
        choices = {
            "preset": (self.preset, tuple(PRESETS)),
            "optimizer": (self.optimizer, OPTIMIZERS),
            "schedule": (self.schedule, SCHEDULES),
            "augment": (self.augment, tuple(AUGMENT_PRESETS)),
            "normalization": (self.normalization, NORMALIZATION_MODES),
            "precision": (self.precision, PRECISIONS),
        }
        if self.mask_mode is not None:
            choices["mask_mode"] = (self.mask_mode, MASK_MODES)
        if self.loss is not None:
            choices["loss"] = (self.loss, LOSS_NAMES)
        for name, (value, allowed) in choices.items():
            if value not in allowed:
                raise ConfigError(f"unknown {name} {value!r}", fix=f"choose one of {', '.join(allowed)}")
        positive = {
            "epochs": self.epochs, "steps_per_epoch": self.steps_per_epoch,
            "batch_size": self.batch_size, "patch_size": self.patch_size, "lr": self.lr,
            "num_classes": self.num_classes, "val_tile_size": self.val_tile_size,
        }
        for name, value in positive.items():
            if value <= 0:
                raise ConfigError(f"{name} must be positive, got {value}")
        if not 0 <= self.val_fraction < 1:
            raise ConfigError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.checkpoint_every < 0:
            raise ConfigError(f"checkpoint_every must be 0 or more, got {self.checkpoint_every}")

    def model_overrides(self) -> dict[str, Any]:
        """The model options given explicitly (None means: the preset's)."""
        names = ("base_width", "depth", "padding", "upsampling", "batch_norm", "dropout")
        overrides = {name: getattr(self, name) for name in names if getattr(self, name) is not None}
        overrides["num_classes"] = self.num_classes
        return overrides

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {field.name for field in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})
