"""Where a run stands, saved in ``last.pt`` and restored bit for bit.

``last.pt`` holds the weights and the whole training state: optimiser, scheduler, gradient
scaler, the weight average (``--ema``), RNG states, the position in the data order (epoch, step) and the stopping state.
The data order itself is not stored: each batch is a pure function of (seed, epoch, step).

>>> position = Position(epoch=2, step=5)
>>> Position.from_state(position.to_state()) == position
True
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..checkpoint import check_same_config, make_checkpoint, read_checkpoint, save_checkpoint
from ..data.io import atomic_write
from ..data.sample import SAMPLE_PREFIX
from ..errors import CheckpointError, ConfigError, TrainingDiverged
from ..losses import default_loss_name
from ..options import field_cli, flag_of
from ..tasks import task_from_dict
from .config import TrainConfig
from .data_identity import check_same_data
from .history import CONFIG
from .optim import load_optimizer_state
from .setup import RunParts

LAST = "last.pt"
BEST = "best.pt"
BEFORE_CUT = ".best-before-cut.pt"  # best.pt as it was before a time limit's part-epoch model replaced it


@dataclass
class Position:
    """The next step to run, and what the run has seen so far."""

    epoch: int = 0
    step: int = 0
    global_step: int = 0
    best_score: float | None = None  # the best validation score so far
    kept_score: float | None = None  # the validation score of the model best.pt holds (training/selection.py) ...
    kept_step: int | None = None  # ... and the step it was trained to (None: not recorded, runs before 2026-12-06)
    reference_score: float | None = None  # the stopping rule's state (see training/stopping.py) ...
    reference_loss: float | None = None
    epochs_without_improvement: int = 0
    lr_drops: int = 0  # ... up to here
    elapsed_s: float = 0.0
    score_name: str | None = None  # the validation column best_score and reference_score are in
    # how an image's Dice of several classes was averaged: over the classes in its mask or prediction ("present"),
    # or, in states saved before 2026-12-07 (from_state), over every class, an absent one as 1.0
    class_mean: str = "present"
    epoch_loss_sum: float = 0.0  # the epoch in progress: the sum of its steps' losses (mean over ranks) ...
    epoch_loss_steps: int = 0  # ... and their number, so that a resumed epoch's mean counts every step
    # best_score, kept_score and kept_step as they were before a time limit cut an epoch and its part-epoch model
    # was scored: a resume that trains on puts them back (and best.pt, from BEFORE_CUT), so that the finished
    # epoch is judged as in a run that was never cut (None: no cut epoch's scores in this state)
    selection_before_cut: list | None = None

    @property
    def epoch_mean_loss(self) -> float:
        """The mean training loss of the epoch in progress (0 before its first step)."""
        return self.epoch_loss_sum / max(self.epoch_loss_steps, 1)

    def next_epoch(self) -> None:
        """Move to the start of the next epoch."""
        self.epoch, self.step = self.epoch + 1, 0
        self.epoch_loss_sum, self.epoch_loss_steps = 0.0, 0

    def to_state(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Position:
        values = dict(state)
        if "best_dice" in values:  # last.pt of unetkit 0.1
            values["best_score"] = values.pop("best_dice")
        values.setdefault("class_mean", "every")  # saved before an image's mean left absent classes out
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


def seed_step(seed: int, rank: int, global_step: int, device: torch.device | None = None) -> None:
    """Seed torch's generators of the CPU and of ``device`` (the one the process trains on; other GPUs are left
    alone) for one training step's random layers (drop-out), from the run's seed, the process's rank and the step.

    Every rank draws its own masks (seeded once with the run's seed, all ranks drew the same ones, which
    is one mask on a batch ``world size`` times larger), and a resumed run draws those an uncut run
    draws without relying on the generator state that ``last.pt`` carries (rank 0's alone).

    >>> seed_step(0, rank=0, global_step=5); a = torch.rand(2)
    >>> seed_step(0, rank=1, global_step=5); b = torch.rand(2)
    >>> seed_step(0, rank=0, global_step=5); bool((torch.rand(2) == a).all()), bool((a == b).all())
    (True, False)
    """
    entropy = np.random.SeedSequence((seed, rank, global_step)).generate_state(1, np.uint64)[0]
    value = int(entropy) >> 1  # a positive int64: every generator takes it
    torch.default_generator.manual_seed(value)
    if device is not None and device.type == "cuda":
        with torch.cuda.device(device):
            torch.cuda.manual_seed(value)
    elif device is not None and device.type == "mps":
        torch.mps.manual_seed(value)


def rng_state(device: torch.device) -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def training_state(parts: RunParts, position: Position) -> dict[str, Any]:
    """Everything besides the weights that exact resume needs."""
    return {
        "config": parts.config.to_dict(),
        **position.to_state(),
        "optimizer": parts.optimizer.state_dict(),
        "scheduler": parts.scheduler.state_dict(),
        "scaler": parts.scaler.state_dict(),
        "rng": rng_state(parts.device),
        "world_size": parts.context.world_size,  # with batch_size, the global batch: a resume keeps it
        "data_identity": parts.data_identity,  # what it trained on: a resume refuses other data
        **({} if parts.averaged is None else {"averaged": parts.averaged.state_dict()}),
    }


def weights_are_finite(model: torch.nn.Module) -> bool:
    """True when every parameter and floating-point buffer (batch-norm statistics) is finite."""
    tensors = [*model.parameters(), *(b for b in model.buffers() if b.is_floating_point())]
    return all(torch.isfinite(t).all() for t in tensors)


def save_last(parts: RunParts, position: Position, run_dir: Path) -> None:
    """Write ``last.pt`` atomically (rank 0); never with NaN or infinite weights."""
    if not parts.context.is_main:
        return
    if not all(weights_are_finite(model) for model in {parts.model, parts.evaluated_model}):  # one, without --ema
        raise TrainingDiverged(
            f"the weights became NaN or infinite at step {position.global_step}; last.pt was not "
            "overwritten and holds the last good state",
            path=run_dir,
            fix="train again with a lower --lr (or --grad-clip 1.0), or --resume from last.pt with a lower --lr "
                "in a new run: --init RUN/last.pt",
        )
    payload = make_checkpoint(parts.model, parts.data_options, training_state(parts, position), task=parts.task)
    save_checkpoint(run_dir / LAST, payload, overwrite=True)


def save_best(parts: RunParts, run_dir: Path) -> None:
    """Write ``best.pt`` (the evaluated weights, data options and task only), atomically, rank 0."""
    model = parts.evaluated_model
    if parts.context.is_main and weights_are_finite(model):
        save_checkpoint(run_dir / BEST, make_checkpoint(model, parts.data_options, task=parts.task), overwrite=True)


def remember_selection_before_cut(position: Position, run_dir: Path, replaces_best: bool, is_main: bool) -> None:
    """Before a part-epoch model (a time limit mid-epoch) is scored: keep what the selection was, and the
    best.pt it may replace, for :func:`undo_cut_selection`."""
    position.selection_before_cut = [position.best_score, position.kept_score, position.kept_step]
    if not is_main:
        return
    if replaces_best and (run_dir / BEST).is_file():  # a copy, written whole or not at all: best.pt is never missing
        atomic_write(run_dir / BEFORE_CUT, lambda target: shutil.copyfile(run_dir / BEST, target), overwrite=True)
    else:  # best.pt stays: one set aside by a cut that a kill kept out of last.pt must not come back later
        (run_dir / BEFORE_CUT).unlink(missing_ok=True)


def undo_cut_selection(position: Position, run_dir: Path, is_main: bool) -> None:
    """A resume that trains on: put back the selection (and best.pt) from before the cut epoch's part-model
    was scored. The resumed run finishes that epoch and judges it as a run never cut does: exact resume."""
    if position.selection_before_cut is not None:
        position.best_score, position.kept_score, position.kept_step = position.selection_before_cut
        position.selection_before_cut = None
    # the file without a record in last.pt: a kill came between the cut's copy and its last.pt, which this resume
    # does not know of; the best.pt it set aside is the one the checkpoint's selection goes with, so it comes back
    if is_main and (run_dir / BEFORE_CUT).is_file():
        os.replace(run_dir / BEFORE_CUT, run_dir / BEST)


def restore(parts: RunParts, run_dir: Path) -> tuple[Position, TrainConfig]:
    """Load ``last.pt`` into the run's parts; the position to continue from, and the options the run was trained
    with (:func:`stretched_schedule_note` compares them with the resume's)."""
    path = run_dir / LAST
    payload = read_checkpoint(path)
    check_same_config(payload, parts.model.config, path)
    state = payload["training"]
    stored_world = state.get("world_size", parts.context.world_size)  # not stored before 2026-12
    if stored_world != parts.context.world_size:
        raise ConfigError(
            f"the run was trained by {stored_world} process(es) and would resume with {parts.context.world_size}: "
            f"its batch of {parts.config.batch_size} per process would make a global batch of "
            f"{parts.config.batch_size * parts.context.world_size} instead of "
            f"{parts.config.batch_size * stored_world}, and the run would no longer continue the same computation",
            path=path,
            fix=f"resume with --nproc {stored_world} (or torchrun --nproc_per_node {stored_world}), or start a "
                f"new run from these weights with --init {path}",
        )
    check_same_data(state.get("data_identity"), parts.data_identity, path, parts.config.data or "sample:train")
    parts.model.load_state_dict(payload["model_state"])
    load_optimizer_state(parts.optimizer, state["optimizer"])
    parts.scheduler.load_state_dict(state["scheduler"])
    parts.scaler.load_state_dict(state["scaler"])
    if parts.averaged is not None and "averaged" in state:
        parts.averaged.load_state_dict(state["averaged"])
    elif parts.averaged is not None:  # a last.pt without one (an API caller added --ema): it starts here
        parts.averaged.update_parameters(parts.model)
    set_rng_state(state["rng"], parts.device)
    stored_task = payload.get("task") or {}
    if stored_task.get("name") == "instances" and parts.config.min_object_size is None:  # the size validation chose
        parts.task = task_from_dict(stored_task, parts.model.config.num_classes)
    position = Position.from_state(state)
    # runs saved before score_name was stored kept best.pt by the task's main score (instances: F1)
    stored = position.score_name or parts.task.score_name
    several_classes = parts.task.pixelwise and parts.task.num_outputs > 2
    if stored != parts.task.selection_score or (several_classes and position.class_mean != Position.class_mean):
        # an F1 is no bar for a Dice, nor a mean that counted absent classes as 1.0: the comparison starts again
        position.best_score = position.reference_score = position.kept_score = position.kept_step = None
        position.epochs_without_improvement = 0
        position.selection_before_cut = None  # a cut epoch's scores from before would bring the old bar back
    position.score_name, position.class_mean = parts.task.selection_score, Position.class_mean
    return position, _with_old_defaults(state["config"])


def stored_config(run_dir: str | Path) -> TrainConfig:
    """The options a run was started with: from ``last.pt``, or from ``config.json`` if the
    run stopped before its first checkpoint."""
    return _stored_run(run_dir)[0]


#: options that a run may leave to the model preset (stored as None), whose value last.pt's model records
MODEL_OPTIONS = ("base_width", "depth", "padding", "upsampling", "batch_norm", "dropout")


def _stored_run(run_dir: str | Path) -> tuple[TrainConfig, bool, dict[str, Any]]:
    """:func:`stored_config`; whether a resume of the run checks its data (``last.pt`` holds the data's identity,
    as runs since 2026-12-07 do, or there is no ``last.pt`` and the run starts again from step 0); and the values
    the run computes with for the options it left to the preset or the data (stored as None): one read of
    ``last.pt``, which holds the weights and the optimiser's state too."""
    run_dir = Path(run_dir)
    if (run_dir / LAST).is_file():
        payload = read_checkpoint(run_dir / LAST)
        if "training" not in payload:
            raise CheckpointError("holds no training state to resume (it is a best.pt-style checkpoint)",
                                  path=run_dir / LAST, fix="start a new run with --init")
        model, data = payload.get("model_config") or {}, payload.get("data") or {}
        effective = {name: model[name] for name in MODEL_OPTIONS if name in model}
        if data.get("mask_mode") in ("classes", "instances"):
            effective["mask_mode"] = data["mask_mode"]
        config = _with_old_defaults(payload["training"]["config"])
        return config, "data_identity" in payload["training"], effective
    if (run_dir / CONFIG).is_file():
        try:
            return _with_old_defaults(json.loads((run_dir / CONFIG).read_text())), True, {}
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"cannot read the run's options ({exc})", path=run_dir / CONFIG) from exc
    if run_dir.is_file():
        raise ConfigError("nothing to resume: this is a file, not a run directory", path=run_dir,
                          fix="give the run's folder (the --out it was started with)")
    if not run_dir.is_dir():
        raise ConfigError("nothing to resume: the run directory does not exist", path=run_dir,
                          fix="check the path, or start a new run with --out")
    raise ConfigError("nothing to resume: the folder holds neither last.pt nor config.json", path=run_dir,
                      fix="start a new run with --out")


#: options added since unetkit 0.1 with a default that differs from what older runs did: a run
#: saved without them resumes as it started
OLD_RUN_VALUES = {"ema": 0.0, "patch_size": 256, "steps_per_epoch": 50,  # every run before 2026-12-04
                  "normalization_jitter": 0.0,  # every run before --normalization-jitter (2026-12-05)
                  "foreground_fraction": 0.33,  # every run before the share followed the task (2026-12-05)
                  "upper_percentile": 99.8,  # every run before --upper-percentile (2026-12-05)
                  "keep_within": 0.0,  # every run before best.pt kept the latest model within a margin (2026-12-06)
                  "val_split": "planes"}  # every run before validation held out a stack's planes together (2026-12-07)
#: what ``--normalization scale`` divided by before runs stored their divisor (2026-12-05):
#: the percentile mode's upper bound, which the scale mode then shared by mistake
OLD_SCALE_DIVISOR = 99.8
#: the stopping rule's patience for every run that decided its own length before its config
#: recorded the patience (2026-12-06)
OLD_PATIENCE = 3


def _with_old_defaults(values: dict[str, Any]) -> TrainConfig:
    if not isinstance(values, dict):
        return TrainConfig.from_dict(values)  # refused there, with its message
    if values.get("normalization") == "scale" and values.get("scale_divisor") is None:
        values = {**values, "scale_divisor": OLD_SCALE_DIVISOR}
    if values.get("normalization", "percentile") != "percentile" and values.get("normalization_jitter"):
        # runs of 2026-12-05 stored the jitter's default with the other modes, which trained without it
        values = {**values, "normalization_jitter": 0.0}
    if values.get("epochs") is None and values.get("early_stopping") is None:
        # a run that decided its length before its patience was stored (2026-12-06) had patience 3
        values = {**values, "early_stopping": OLD_PATIENCE}
    return TrainConfig.from_dict({**OLD_RUN_VALUES, **values})


#: options a resumed run may change: they decide when it stops or how it reports, not what it computes
RESUMABLE_OPTIONS = ("epochs", "max_time_s", "early_stopping", "keep_within", "progress", "checkpoint_every")


def resume_config(run_dir: str | Path, **given: Any) -> TrainConfig:
    """The options a run was started with, updated by ``given`` where a resume allows it.

    Options in :data:`RESUMABLE_OPTIONS` may change. Any other option must equal the stored
    one (as when torchrun restarts the same command with ``--auto-resume``); a different
    value would silently break exact resume, so it is refused. ``--epochs N`` on a run that
    decided its own length runs exactly N epochs in all (the stopping rule's patience, stored
    with the run, is dropped unless ``--early-stopping`` is given again).
    """
    config, checks_data, effective = _stored_run(run_dir)
    effective["schedule"] = config.resolved_schedule
    if config.task == "semantic":
        effective["loss"] = default_loss_name(config.num_classes)
    changes = {}
    refused = []
    for name, value in given.items():
        if value is None:
            continue
        if name in RESUMABLE_OPTIONS:
            changes[name] = value
        elif name == "out":
            if Path(value).resolve() != Path(run_dir).resolve():
                refused.append(f"--out {value} (the run is {run_dir})")
        elif name in ("data", "val_data") and checks_data:
            changes[name] = value  # the data moved, say: restore() refuses it unless it is the same data
        elif name == "memory_budget_gib" and checks_data:  # loaded or streamed: restore() refuses it unless the
            changes[name] = value  # run reads the same data (what its refusal asks for: the first machine's budget)
        elif not _same_option(name, getattr(config, name), value, effective.get(name)):
            stored = getattr(config, name)
            has = f"{stored!r}" if stored is not None or name not in effective else f"{effective[name]!r}, its default"
            refused.append(f"{_typed_as(name)} {value!r} (the run has {has})")
    if refused:
        raise ConfigError(
            "these options cannot change when a run resumes, because the resumed run would no longer "
            "continue the same computation: " + "; ".join(refused),
            path=run_dir,
            fix="leave them out (a resume may change only --epochs, --max-time, --early-stopping, "
                "--keep-within, --checkpoint-every and --progress), or start a new run from these weights with "
                f"--init {Path(run_dir) / LAST}",
        )
    for name in ("data", "val_data"):
        if name not in changes:
            check_data_still_there(run_dir, name, getattr(config, name), checks_data)
    if config.decides_length and changes.get("epochs") is not None and config.schedule is None:
        # --epochs N on a run that decided its length would resolve the schedule anew (cosine over N epochs,
        # at once near its end): the run goes on with the schedule it trained with
        changes["schedule"] = config.resolved_schedule
    if config.decides_length and changes.get("epochs") is not None and "early_stopping" not in changes:
        changes["early_stopping"] = None  # --epochs N means exactly N epochs unless --early-stopping comes with it
    return config.replace(out=str(run_dir), **changes)


def stretched_schedule_note(stored: TrainConfig, resumed: TrainConfig, step: int) -> str | None:
    """What a resume that moves the end of a schedule which falls to it (``--epochs`` changed on a cosine run)
    does to the learning rate after ``step`` (the steps done): said, so that a warm restart is not silent. The
    next step trains at the rate the optimiser's state holds (the old plan's); the new end rules from the one after.

    >>> stored = TrainConfig(out="run", epochs=2, steps_per_epoch=5)
    >>> print(stretched_schedule_note(stored, stored.replace(epochs=4), 10))
    --epochs 4 stretches the run's cosine schedule from 2 to 4 epochs (10 to 20 steps): from step 12 the learning rate follows the new end (0.00042 there, against 0 as planned: a warm restart); to end as planned, resume with --epochs 2
    """
    from .optim import schedule_factor

    before, after = stored.schedule_steps, resumed.schedule_steps
    if before is None or after is None or before == after:
        return None
    name = resumed.resolved_schedule
    planned, now = (config.lr * schedule_factor(name, step + 1, total)
                    for config, total in ((stored, before), (resumed, after)))
    verb = "stretches" if after > before else "shortens"
    return (f"--epochs {resumed.epochs} {verb} the run's {name} schedule from {stored.planned_epochs} to "
            f"{resumed.planned_epochs} epochs ({before} to {after} steps): from step {step + 2} the learning rate "
            f"follows the new end ({now:.2g} there, against {planned:.2g} as planned"
            f"{': a warm restart' if now > planned else ''}); to end as planned, resume with --epochs "
            f"{stored.planned_epochs}")


def check_data_still_there(run_dir: str | Path, name: str, path: str | None, checks_data: bool) -> None:
    """Raise a :class:`ConfigError` that says how to go on when a resumed run's data (``name``: ``data`` or
    ``val_data``) is no longer at the ``path`` it recorded (``checks_data``: whether the resume would check data
    at another path, :func:`_stored_run`)."""
    if path is None or str(path).startswith(SAMPLE_PREFIX) or Path(path).exists():
        return
    what, given = ("data", "NEW_PATH") if name == "data" else ("validation data", "--val-data NEW_PATH")
    raise ConfigError(
        f"the run's {what} is no longer at {path}",
        path=run_dir,
        fix=f"if it moved, give its new path: unetkit train --resume {run_dir} {given} (the resume checks that it is "
            "the same data)" if checks_data else
            f"move it back to {path}: this run was saved before runs kept their data's identity, so a resume "
            "cannot check data at another path",
    )


def _typed_as(name: str) -> str:
    """How an option of :class:`TrainConfig` is typed on the command line: its flag (``--classes``, not the
    field's name), or the positional argument's name (data)."""
    field = next(field for field in dataclasses.fields(TrainConfig) if field.name == name)
    return name if (field_cli(field) or {}).get("positional") else flag_of(field)


def _same_option(name: str, stored: Any, given: Any, effective: Any = None) -> bool:
    """True when ``given`` is what the run computes with: its stored value, or where it left the option to the
    preset or the data (None), the ``effective`` value that followed."""
    if stored is None and effective is not None:
        return given == effective
    if name in ("data", "val_data", "init_checkpoint") and stored is not None and given is not None:
        if str(stored).startswith("sample:") or str(given).startswith("sample:"):
            return str(stored) == str(given)
        return Path(stored).resolve() == Path(given).resolve()
    return stored == given
