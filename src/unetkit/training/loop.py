"""The training loop: steps, epochs and the decision to stop; exact resume; DDP-ready.

One step: this rank's share of the global batch (a pure function of seed, epoch and step),
forward under autocast, loss, backward, clip, optimiser and scheduler step. Each
``checkpoint_every`` steps and at each epoch's end, ``last.pt`` is written atomically with
everything needed to continue bit for bit; each epoch ends with a whole-image validation,
a CSV row, a redrawn curve and, when the validation score is the best so far or within
``--keep-within`` of it (:mod:`~unetkit.training.selection`), ``best.pt``.

The parts come from :func:`~unetkit.training.setup.build_run`; :func:`run_epoch` runs one
epoch and says why the run must stop, if it must (:class:`StopReason`).

>>> import tempfile
>>> from unetkit.training.config import TrainConfig
>>> out = tempfile.mkdtemp() + "/run"
>>> result = train(TrainConfig(out=out, depth=2, base_width=4, epochs=1, steps_per_epoch=2,
...     batch_size=1, patch_size=32, progress=False, val_tile_size=64), report=lambda text: None)
>>> result.epochs_completed, result.stopped.value, (result.run_dir / "best.pt").is_file()
(1, 'completed', True)
"""

from __future__ import annotations

import math
import shlex
import sys
import threading
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Callable

import torch
from tqdm import tqdm

from ..cores import spare_core
from ..data.partials import sweep_stale
from ..data.prefetch import BatchPrefetcher, InlineBatches, batch_feed
from ..data.sources import as_sample
from ..errors import ConfigError, TrainingDiverged
from ..inference.predictor import TorchPredictor
from ..instances.calibrate import calibration_for
from ..precision import autocast_context, to_device
from ..scoring import evaluate_samples
from ..signals import flag_on_stop_signals
from ..tasks import replace_options
from ..tiling import TileOptions
from .averaging import follow
from .config import TrainConfig
from .distributed import init_distributed
from .history import (LOG, RESULT, EpochLog, check_rows, drop_time_limit_note, missing_epochs, note_last_row,
                      time_limit_reason, truncate_after, write_result)
from .optim import scale_learning_rate
from .progress import RunBar
from .run_dir import check_new_run_dir, claim_run_dir, hold_run_dir, update_config_file
from .setup import RunParts, build_run
from .selection import keeps
from .state import (BEST, LAST, Position, remember_selection_before_cut, restore, save_best, save_last, seed_step,
                    stretched_schedule_note, undo_cut_selection)
from .stopping import DROP_LR, STOP


Report = Callable[[str], None]
EpochCallback = Callable[[dict[str, str]], None]

__all__ = ["BEST", "LAST", "StopReason", "TrainResult", "run_epoch", "train"]


class StopReason(str, Enum):
    """Why a run ended (its value is what log files and the CLI print)."""

    COMPLETED = "completed"
    EARLY_STOPPING = "early-stopping"
    EPOCH_LIMIT = "epoch-limit"  # the stopping rule's cap, when the run decides its length
    TIME_LIMIT = "time-limit"
    SIGNAL = "signal"


@dataclass
class TrainResult:
    run_dir: Path
    best_score: float | None  # the best validation score of any epoch
    epochs_completed: int
    global_step: int
    stopped: StopReason
    why: str = ""  # in words: "no validation improvement above 0.003 for 5 epochs", "time limit of 300 s reached"
    kept_score: float | None = None  # the validation score of the model best.pt holds (None without validation) ...
    kept_step: int | None = None  # ... the step it was trained to, and the epoch that step is in, from 1 (None for
    kept_epoch: int | None = None  # a run saved before 2026-12-06 that has kept no model since it resumed)

    def summary(self, seconds: float) -> dict[str, object]:
        """What ``result.json`` records: why and when the run ended, its best score, and best.pt's."""
        return {"stopped": self.stopped.value, "why": self.why, "epochs_completed": self.epochs_completed,
                "steps": self.global_step, "best_score": self.best_score, "kept_score": self.kept_score,
                "kept_step": self.kept_step, "kept_epoch": self.kept_epoch, "training_seconds": round(seconds, 1)}

    def kept_label(self, digits: int = 4) -> str:
        """Where ``best.pt``'s model comes from, for a closing line ("" when not recorded).

        >>> TrainResult(Path("r"), 0.95, 3, 600, StopReason.COMPLETED, kept_score=0.948, kept_step=600,
        ...             kept_epoch=3).kept_label(3)
        'best.pt: step 600, in epoch 3, 0.948'
        """
        if self.kept_step is None or self.kept_score is None:
            return ""
        return f"best.pt: step {self.kept_step}, in epoch {self.kept_epoch}, {self.kept_score:.{digits}f}"

    @property
    def length(self) -> str:
        """How far the run trained, in words: its steps and whole epochs (a run cut by a time limit or a
        stop inside an epoch trained, and validated, part of the next one too).

        >>> TrainResult(Path("r"), 0.95, 3, 717, StopReason.TIME_LIMIT).length
        '717 steps, 3 whole epoch(s)'
        """
        return f"{self.global_step} step{'' if self.global_step == 1 else 's'}, {self.epochs_completed} whole epoch(s)"

    @property
    def best_dice(self) -> float | None:
        """The best validation score (Dice, for semantic models)."""
        return self.best_score


def _report_to_stderr(text: str) -> None:
    tqdm.write(text, file=sys.stderr)


def centre_crop(tensor: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    """The centre ``size`` of the last two dimensions: the pixels a valid-padding network's output covers.

    >>> centre_crop(torch.arange(16).reshape(1, 4, 4), (2, 2)).tolist()
    [[[5, 6], [9, 10]]]
    """
    height, width = tensor.shape[-2:]
    top, left = (height - size[0]) // 2, (width - size[1]) // 2
    return tensor[..., top:top + size[0], left:left + size[1]]


def train_step(parts: RunParts, images: torch.Tensor, targets: tuple[torch.Tensor, ...]) -> float:
    """One optimiser step on a batch; returns the loss (NaN if it was not finite on any rank: no update)."""
    images = to_device(images, parts.device).contiguous(memory_format=parts.memory_format)
    targets = tuple(to_device(t, parts.device) for t in targets)
    parts.optimizer.zero_grad(set_to_none=True)
    with autocast_context(parts.device, parts.autocast_dtype):
        logits = parts.network(images)
    targets = tuple(centre_crop(target, logits.shape[-2:]) for target in targets)  # valid padding: the centre
    loss = parts.loss_fn(logits.float(), targets)
    # decided by all ranks before the backward pass: a rank that skipped it alone would leave the others waiting
    # in DDP's gradient all-reduce while it joins the step's all-reduce (a collective mismatch, not this message)
    if parts.context.any(not bool(torch.isfinite(loss))):
        return math.nan
    parts.scaler.scale(loss).backward()
    if parts.config.grad_clip:
        parts.scaler.unscale_(parts.optimizer)
        torch.nn.utils.clip_grad_norm_(parts.model.parameters(), parts.config.grad_clip)
    parts.scaler.step(parts.optimizer)
    parts.scaler.update()
    if parts.config.schedule != "plateau":
        parts.scheduler.step()
    if parts.averaged is not None:
        follow(parts.averaged, parts.model, parts.context)
    return float(loss.detach())


VALIDATION_LOG_COLUMNS = ("dice", "iou", "f1", "ap50")  # log.csv's val_* columns (blank where a task has none)


def validate(parts: RunParts) -> dict[str, float]:
    """Mean per-image validation scores (the task's ``validation_columns``) of the evaluated
    model (the weight average, with ``--ema``), all ranks together."""
    if not parts.val_samples:
        return {}
    shard = (as_sample(s) for s in parts.val_samples[parts.context.rank :: parts.context.world_size])  # one at a time
    model = parts.evaluated_model
    # batch-norm statistics are each rank's own since its last forward (DDP sends rank 0's at the next one):
    # every rank scores with rank 0's, those of the model that best.pt keeps (the weight average's already are)
    parts.context.broadcast_from_main(list(model.buffers()))
    predictor = TorchPredictor(model, parts.autocast_dtype, parts.task.activation)
    calibration = calibration_for(parts.task, parts.config.min_object_size)
    task = parts.task if calibration is None else replace_options(parts.task, min_size=1)
    on_image = None if calibration is None else (lambda sample, labels: calibration.add(labels, sample.mask))
    accumulator = evaluate_samples(predictor, shard, TileOptions(tile_size=parts.config.val_tile_size),
                                   parts.config.ignore_index, on_image=on_image, task=task)  # in eval mode
    rows, columns = accumulator.rows(), parts.task.validation_columns
    if calibration is not None:  # the objects' minimum size, chosen on these images: best.pt keeps it
        chosen = calibration.choose(parts.context.all_sum(calibration.totals()))
        parts.task = replace_options(parts.task, min_size=calibration.sizes[chosen])
        rows = calibration.rows[chosen]
    sums = [sum(float(row[name]) for row in rows if not math.isnan(float(row[name]))) for name in columns]
    counts = [sum(1 for row in rows if not math.isnan(float(row[name]))) for name in columns]
    totals = parts.context.all_sum(sums + counts)
    return {name: totals[i] / max(totals[len(columns) + i], 1) for i, name in enumerate(columns)}


@dataclass
class EpochMeter:
    """Timings of the epoch in progress, since this process started it or resumed it (its
    losses are in the :class:`Position`, which a checkpoint keeps)."""

    data_wait_s: float = 0.0  # seconds spent waiting for batches (making them, without a batch thread) ...
    step_s: float = 0.0  # ... out of the seconds spent in training steps


def run_epoch(
    parts: RunParts,
    position: Position,
    prefetcher: BatchPrefetcher | InlineBatches,
    stop_requested: threading.Event,
    run_dir: Path,
    bar: RunBar,
) -> tuple[EpochMeter, StopReason | None]:
    """Train from ``position`` to the end of its epoch, or until a signal or the time limit."""
    config = parts.config
    meter = EpochMeter()
    while position.step < config.steps_per_epoch:
        step_start = time.perf_counter()
        images, *targets = prefetcher.next()
        meter.data_wait_s += time.perf_counter() - step_start
        seed_step(config.seed, parts.context.rank, position.global_step, parts.device)
        loss = train_step(parts, images, tuple(targets))
        step_seconds = time.perf_counter() - step_start
        # every rank counts the same time and loss (the ranks' means), so that all stop at the same
        # step, and the epoch's mean loss, which a checkpoint keeps, is the same on every rank
        signal_flag, non_finite, seconds_sum, loss_sum = parts.context.all_sum(
            [float(stop_requested.is_set()), float(math.isnan(loss)), step_seconds, 0.0 if math.isnan(loss) else loss])
        if non_finite:
            kept = (f"{run_dir / LAST} holds the last good state" if (run_dir / LAST).is_file()
                    else "no checkpoint had been written yet")
            raise TrainingDiverged(
                f"the loss became NaN or infinite at step {position.global_step + 1}; the weights of that step "
                f"were not applied and {kept}",
                path=run_dir,
                fix="lower --lr, keep --grad-clip (1.0 by default), check the images for extreme values; "
                    "or start a new run from the last good weights with --init",
            )
        position.epoch_loss_sum += loss_sum / parts.context.world_size
        position.epoch_loss_steps += 1
        position.step += 1
        position.global_step += 1
        meter.step_s += step_seconds
        position.elapsed_s += seconds_sum / parts.context.world_size
        bar.spent_s = position.elapsed_s
        bar.update(1)
        # the budget first: a stop that came in the step that spent it ends the run as the budget does (its part
        # epoch scored, best.pt, the log's row), since a resume of a spent budget trains and scores nothing
        if config.max_time_s is not None and position.elapsed_s >= config.max_time_s:
            return meter, StopReason.TIME_LIMIT
        if signal_flag:
            return meter, StopReason.SIGNAL
        if config.checkpoint_every and position.global_step % config.checkpoint_every == 0:
            save_last(parts, position, run_dir)
    return meter, None


@dataclass
class EpochOutcome:
    """What the end of an epoch decided."""

    stop: bool
    note: str = ""
    by_rule: bool = False  # the stopping rule ended the run (not the time limit or the epoch cap)


def end_epoch(
    parts: RunParts, position: Position, meter: EpochMeter, run_dir: Path, log: EpochLog, report: Report,
    on_epoch: EpochCallback | None = None, ending: str = "",
) -> EpochOutcome:
    """Validate, keep the model (best.pt) as ``--keep-within`` says, apply the stopping rule, log, tell
    ``on_epoch`` the log row.

    ``ending``: why the run ends after this epoch whatever the rule says (a time limit, the
    last planned epoch), written to the row's note.
    """
    scores = validate(parts)
    score = scores.get(parts.task.selection_score)
    mean_loss = position.epoch_mean_loss
    improved = score is not None and (position.best_score is None or score > position.best_score)
    # best.pt's model: within --keep-within of the best score so far; without validation, every epoch's
    kept = score is None or keeps(score, position.best_score, parts.config.keep_within)
    whole_epoch = position.step == parts.config.steps_per_epoch  # not a --max-time stop mid-epoch
    if not whole_epoch:  # a resume puts back the selection as it was, and judges the finished epoch then
        remember_selection_before_cut(position, run_dir, replaces_best=kept, is_main=parts.context.is_main)
    if improved:
        position.best_score = score
    if kept:
        position.kept_score, position.kept_step = score, position.global_step
    outcome = EpochOutcome(stop=False, note=ending)
    rule = parts.config.stopping_rule()
    if rule is not None and whole_epoch:  # a resumed run finishes that epoch and decides then, once
        decision = rule.decide(position, score, mean_loss if score is None else None)
        if decision == DROP_LR:
            scale_learning_rate(parts.optimizer, parts.scheduler, rule.lr_factor)
            outcome.note = f"plateau: learning rate x{rule.lr_factor:g}"
        elif decision == STOP:
            outcome = EpochOutcome(stop=True, note=f"stopped: {rule.reason(position)}", by_rule=True)
    if ending and not outcome.stop:
        outcome = EpochOutcome(stop=True, note=ending)
    if parts.config.resolved_schedule == "plateau" and score is not None and whole_epoch:
        parts.scheduler.step(score)
    object_size = getattr(parts.task, "min_size", None) if scores else None  # instances: what validation kept
    row = {
        "epoch": str(position.epoch + 1), "step": str(position.global_step), "loss": f"{mean_loss:.5f}",
        **{f"val_{name}": "" if name not in scores else f"{scores[name]:.5f}" for name in VALIDATION_LOG_COLUMNS},
        "min_object_size": "" if object_size is None else str(object_size),
        "best": "" if position.best_score is None else f"{position.best_score:.5f}",
        "kept_step": "" if position.kept_step is None else str(position.kept_step),
        "lr": f"{parts.optimizer.param_groups[0]['lr']:.3g}",
        "seconds": f"{position.elapsed_s:.1f}",
        "data_wait": f"{meter.data_wait_s / max(meter.step_s, 1e-9):.3f}",
        "note": outcome.note,
    }
    if parts.context.is_main:
        log.add(row)
        if kept:
            save_best(parts, run_dir)
        if on_epoch is not None:
            on_epoch(row)
    limit = f"/{parts.config.epochs}" if parts.config.epochs else f" (at most {parts.config.planned_epochs})"
    report(
        f"epoch {position.epoch + 1}{limit}: loss {mean_loss:.4f}"
        + "".join(f", validation {name} {value:.4f}" for name, value in scores.items())
        + (f" (objects of {object_size} px or more)"
           if object_size is not None and calibration_for(parts.task, parts.config.min_object_size) else "")
        + (" (best)" if improved else f" (kept: within {parts.config.keep_within:g} of the best, "
           f"{position.best_score:.4f})" if kept and score is not None else "")
        + (f"; {outcome.note}" if outcome.note else "")
    )
    return outcome


def _ending(config: TrainConfig, position: Position, reason: StopReason | None) -> str:
    """The note for an epoch after which the run ends whatever the stopping rule says."""
    if reason is StopReason.TIME_LIMIT:
        return f"stopped: {time_limit_reason(config.max_time_s)}"
    if config.decides_length and position.epoch + 1 == config.planned_epochs:
        return f"stopped: the limit of {config.planned_epochs} epochs"
    return ""


def _run_bar(parts: RunParts, position: Position) -> RunBar:
    """One progress bar for the whole run (its total is the planned or the largest number of steps;
    its label names the limits that may end it sooner, and its time left heeds the time budget)."""
    config = parts.config
    total = config.planned_epochs * config.steps_per_epoch
    limits = [] if config.epochs else [f"≤{config.planned_epochs} epochs"]
    if config.max_time_s is not None:
        limits.append(f"≤{config.max_time_s:g} s of training")
    bar = RunBar(total=total, initial=position.global_step, unit="step", file=sys.stderr, dynamic_ncols=True,
                 desc="training" + (f" ({', '.join(limits)})" if limits else ""), budget_s=config.max_time_s,
                 disable=not (config.progress and parts.context.is_main))
    bar.spent_s = position.elapsed_s
    return bar


def _budget_spent(config: TrainConfig, position: Position) -> bool:
    """True when the run's training time has reached ``--max-time`` (a resume then trains nothing)."""
    return config.max_time_s is not None and position.elapsed_s >= config.max_time_s


def _resumed_note(run_dir: Path, position: Position) -> str:
    """Where a resumed run goes on: inside an epoch, or after its last whole one (a run that had
    finished is not said to resume at an epoch it will never train)."""
    if position.step:
        return f"resumed {run_dir} at epoch {position.epoch + 1}, step {position.step}"
    return f"resumed {run_dir} after epoch {position.epoch}"


def check_not_past_the_end(config: TrainConfig, position: Position, run_dir: Path) -> None:
    """Refuse a resume whose ``--epochs`` ends before where the run already is (nothing is written)."""
    planned = config.planned_epochs
    if position.epoch > planned or (position.epoch == planned and position.step > 0):
        raise ConfigError(
            f"the run has trained {position.epoch} whole epoch(s) and {position.global_step} steps, past the "
            f"end of the {planned} epoch(s) that --epochs asks for",
            path=run_dir,
            fix=f"pass --epochs {position.epoch + 1} or more to train it further, or leave --epochs out",
        )


def _say_if_the_rule_had_not_ended_it(config: TrainConfig, position: Position, run_dir: Path, report: Report) -> None:
    """After a run that decides its length was cut by its time budget: say that the stopping rule,
    which ends a run when more training no longer pays, had not found that point yet (on a sparse set
    3 minutes were 0.05 Dice short of where the rule ended; BENCHMARKS.md, "Training length")."""
    rule = config.stopping_rule()
    if not config.decides_length or rule is None:  # --epochs N: the user chose the length, not the rule
        return
    if position.epoch >= config.planned_epochs:  # at the cap of a run that decides its length: nothing follows
        return
    hours = max(1, math.ceil(2 * config.max_time_s / 3600))  # a budget the resume has not spent yet
    report(f"note: the time budget ended the run before the stopping rule did (the rule ends a run after "
           f"{rule.patience} epochs in a row without a gain above its margin; the run had "
           f"{position.epochs_without_improvement}), so more training may still pay: "
           f"unetkit train --resume {shlex.quote(str(run_dir))} --max-time {hours}h trains on until the rule ends it")


def _already_stopped(parts: RunParts, position: Position) -> bool:
    """A resumed run whose stopping rule had already ended it stays ended."""
    rule = parts.config.stopping_rule()
    return (rule is not None and position.epoch > 0 and position.step == 0
            and position.epochs_without_improvement >= rule.patience and position.lr_drops >= rule.lr_drops)


def run(
    parts: RunParts, position: Position, stop_requested: threading.Event, run_dir: Path, report: Report,
    on_epoch: EpochCallback | None = None,
) -> tuple[StopReason, str]:
    """Epochs until the planned end, the stopping rule, a signal or the time limit; why it ended."""
    config = parts.config
    planned = config.planned_epochs
    if _already_stopped(parts, position):
        why = config.stopping_rule().reason(position)
        further = "--epochs N" if config.decides_length else "a larger --early-stopping"
        report(f"{run_dir} had already stopped ({why}); pass {further} to train it further")
        if parts.context.is_main:  # a smaller --early-stopping given to the resume ends it here: its last row says so
            try:
                note_last_row(run_dir / LOG, f"stopped: {why}")
            except PermissionError as error:  # the run is over either way: result.json says why
                report(f"warning: {run_dir / LOG} cannot be written ({error.strerror or error}; open in another "
                       "program?): its last row does not say why the run stopped")
        return StopReason.EARLY_STOPPING, why
    if _budget_spent(config, position):  # a resume within a spent budget
        report(f"{run_dir} has had its {config.max_time_s:g} s of training already ({position.elapsed_s:.1f} s); "
               "pass a larger --max-time to train it further")
        return StopReason.TIME_LIMIT, time_limit_reason(config.max_time_s)
    if position.epoch >= planned:  # a resume of a run that has trained every epoch it may
        if config.decides_length:
            report(f"{run_dir} had already trained {planned} epochs, the most a run that decides its length "
                   "trains; pass --epochs N to train it further")
            return StopReason.EPOCH_LIMIT, f"the limit of {planned} epochs"
        report(f"{run_dir} had already trained all {planned} epoch(s) asked for; pass a larger --epochs to "
               "train it further")
        return StopReason.COMPLETED, f"all {planned} epoch(s) asked for"
    undo_cut_selection(position, run_dir, parts.context.is_main)  # it trains on: judge the cut epoch when whole
    per_rank = config.batch_size
    indices = range(parts.context.rank * per_rank, (parts.context.rank + 1) * per_rank)
    positions = [(e, s) for e in range(position.epoch, planned)
                 for s in range(position.step if e == position.epoch else 0, config.steps_per_epoch)]
    prefetcher = batch_feed(parts.sampler, positions, indices, background=spare_core(parts.device.type))
    parts.network.train()
    bar = _run_bar(parts, position)
    log = EpochLog(run_dir, report)
    try:
        while position.epoch < planned:
            meter, reason = run_epoch(parts, position, prefetcher, stop_requested, run_dir, bar)
            if reason is StopReason.SIGNAL:
                save_last(parts, position, run_dir)
                report(f"stopped by a signal; saved {run_dir / LAST} (resume with --resume {run_dir})")
                return reason, "stopped by a signal"
            if reason is StopReason.TIME_LIMIT and position.step == config.steps_per_epoch \
                    and position.epoch + 1 == planned:
                reason = None  # the budget ran out with the last step planned: the run is complete, not cut
            ending = _ending(config, position, reason)
            outcome = end_epoch(parts, position, meter, run_dir, log, report, on_epoch, ending)
            bar.set_postfix_str(f"epoch {position.epoch + 1}, best {parts.task.selection_score} "
                                + ("n/a" if position.best_score is None else f"{position.best_score:.4f}"))
            if position.step == config.steps_per_epoch:  # a time limit mid-epoch keeps the position
                position.next_epoch()
            save_last(parts, position, run_dir)
            more = not outcome.stop and position.epoch < planned  # a stop after the last epoch changes nothing
            if more and parts.context.all_sum([float(stop_requested.is_set())])[0]:
                report(f"stopped by a signal; saved {run_dir / LAST} (resume with --resume {run_dir})")  # one that
                return StopReason.SIGNAL, "stopped by a signal"  # came in validation: no step after it
            if outcome.stop:
                bar.set_postfix_str(f"{bar.postfix}; {outcome.note}")  # the epoch's report has said it
                why = outcome.note.removeprefix("stopped: ")
                if outcome.by_rule:
                    return StopReason.EARLY_STOPPING, why
                if reason is StopReason.TIME_LIMIT:
                    _say_if_the_rule_had_not_ended_it(config, position, run_dir, report)
                    return StopReason.TIME_LIMIT, why
                return StopReason.EPOCH_LIMIT, why
        return StopReason.COMPLETED, f"all {planned} epoch(s) asked for"
    finally:
        bar.close()
        prefetcher.close()
        log.close()


def _cut_log_back(log: Path, epoch: int) -> None:
    """Drop the log's rows after ``epoch`` (the resumed run redoes them), and a time limit's reason from the last
    row it keeps (the budget, now larger, no longer ends the run there); a log another program holds open is
    refused before anything of the run changes, since the rows it keeps would stand twice."""
    try:
        truncate_after(log, epoch)
        drop_time_limit_note(log)
    except PermissionError as error:
        raise ConfigError(
            f"the log cannot be rewritten ({error.strerror or error}; open in another program?), and the resumed "
            f"run must drop its rows after epoch {epoch}, which it trains again",
            path=log, fix="close the log in that program (Excel locks a CSV it shows), then resume again",
        ) from None


def _counted(samples: list, named: int = 5) -> str:
    """``2 (images/a.png, images/b.png)``: the count, with the names when there are at most ``named``."""
    return f"{len(samples)} ({', '.join(s.name for s in samples)})" if 0 < len(samples) <= named else str(len(samples))


def train(
    config: TrainConfig,
    *,
    resume: bool = False,
    report: Report = _report_to_stderr,
    stop: threading.Event | None = None,
    on_epoch: EpochCallback | None = None,
) -> TrainResult:
    """Train a U-Net as ``config`` says; ``resume=True`` continues ``config.out``.

    A resumed run continues from ``last.pt``, or starts again from step 0 if it stopped
    before writing one. Under ``torchrun`` every rank calls this; rank 0 alone writes files.

    ``stop``: an event another thread may set (a GUI's stop button) to end the run after the
    current step, as SIGINT/SIGTERM do in the main thread; ``on_epoch`` receives each epoch's
    log row (``log.csv``'s columns) as each epoch ends, also while a locked log.csv waits for it.
    torch's CPU random generator (and the current
    GPU's, if CUDA was in use before the call) is as it was before the call (the run seeds its own),
    so that later draws in a notebook do not repeat the run's seed.

    A run stopped after its first step, then resumed to its end:

    >>> import tempfile
    >>> config = TrainConfig(out=tempfile.mkdtemp() + "/run", depth=2, base_width=4, epochs=1, steps_per_epoch=2,
    ...                      batch_size=1, patch_size=32, progress=False, val_tile_size=64)
    >>> stop = threading.Event(); stop.set()  # as a GUI's stop button would
    >>> first = train(config, report=lambda text: None, stop=stop)
    >>> first.global_step, first.stopped.value, (first.run_dir / "last.pt").is_file()
    (1, 'signal', True)
    >>> rows = []
    >>> done = train(config, resume=True, report=lambda text: None, on_epoch=rows.append)
    >>> done.global_step, done.stopped.value, [(row["epoch"], row["step"]) for row in rows]
    (2, 'completed', [('1', '2')])
    """
    in_use = [torch.cuda.current_device()] if torch.cuda.is_available() and torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=in_use):  # not every GPU: that would open a context on each (under DDP)
        return _train(config, resume, report, stop, on_epoch)


def _train(config: TrainConfig, resume: bool, report: Report, stop: threading.Event | None,
           on_epoch: EpochCallback | None) -> TrainResult:
    context = init_distributed(config.device)
    run_dir = Path(config.out)
    report = report if context.is_main else (lambda text: None)
    release: Callable[[], None] = lambda: None  # noqa: E731 (the run folder's lock, once held)
    try:
        config = config.with_absolute_paths()  # a resume from another working directory reads the same files
        if not resume:
            config.check_schedule_has_an_end()
            check_new_run_dir(run_dir)
        elif context.is_main:
            release = hold_run_dir(run_dir)  # before anything of the run is read or changed
        context.barrier()
        continues = resume and (run_dir / LAST).is_file()  # else a new run, or one killed before its first checkpoint
        parts = build_run(config, context, report, resuming=continues)
        config = parts.config  # with what the data decided (a scale divisor) filled in, for config.json
        position = Position(score_name=parts.task.selection_score)
        if continues:
            position, trained_with = restore(parts, run_dir)
            check_not_past_the_end(config, position, run_dir)
            report(_resumed_note(run_dir, position))
            stretched = stretched_schedule_note(trained_with, config, position.global_step)
            if stretched is not None:
                report(f"note: {stretched}")
        elif resume:
            report(f"{run_dir} stopped before its first checkpoint: starting it again from step 0")
        if context.is_main:
            if resume:
                check_rows(run_dir / LOG)  # a hand-edited log is named before anything of the run changes
                if not _budget_spent(config, position):  # else the cut epoch's row stays: it is the last
                    _cut_log_back(run_dir / LOG, position.epoch)
                sweep_stale(run_dir)  # a checkpoint half-written when the run was killed outright
                update_config_file(run_dir, config)
                lacking = missing_epochs(run_dir / LOG, position.epoch)
                if lacking:  # a run killed while another program held the log open: its rows were in memory only
                    report(f"warning: {run_dir / LOG} lacks the rows of epoch(s) {', '.join(map(str, lacking))} "
                           "(a run killed while the log was locked?); the resumed run adds its own after them")
            else:
                claim_run_dir(run_dir, config)
                release = hold_run_dir(run_dir)
        context.barrier()
        if not continues:  # a run starting from step 0 says what it trains on
            report(
                f"training on {len(parts.train_samples)} image(s), validating on {_counted(parts.val_samples)}; "
                f"{parts.device}, precision {parts.autocast_dtype or 'fp32'}, world size {context.world_size}"
            )
        with flag_on_stop_signals(report, stop) as stop_requested:  # until result.json is written: a signal
            stopped, why = run(parts, position, stop_requested, run_dir, report, on_epoch)  # there is only said
            kept_epoch = None if position.kept_step is None else -(-position.kept_step // config.steps_per_epoch)
            result = TrainResult(run_dir, position.best_score, position.epoch, position.global_step, stopped, why,
                                 position.kept_score, position.kept_step, kept_epoch)
            if context.is_main:
                write_result(run_dir / RESULT, result.summary(position.elapsed_s))
        context.barrier()
        return result
    finally:
        release()
        context.close()
