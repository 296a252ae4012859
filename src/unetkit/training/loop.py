"""The training loop: patches in, checkpoints, logs and curves out; exact resume; DDP-ready.

One step: draw this rank's share of the global batch (a pure function of seed, epoch and
step), forward under autocast, loss, backward, clip, optimiser and scheduler step. Each
``checkpoint_every`` steps and at each epoch's end, ``last.pt`` is written atomically with
everything needed to continue bit for bit; each epoch ends with a whole-image validation,
a CSV row, a redrawn curve and, when the validation Dice improves, ``best.pt``.

>>> import tempfile, numpy as np
>>> from unetkit.training.config import TrainConfig
>>> out = tempfile.mkdtemp() + "/run"
>>> result = train(TrainConfig(out=out, depth=2, base_width=4, epochs=1, steps_per_epoch=2,
...     batch_size=1, patch_size=32, progress=False, val_tile_size=64), report=lambda text: None)
>>> result.epochs_completed, (result.run_dir / "best.pt").is_file()
(1, True)
"""

from __future__ import annotations

import json
import queue
import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from tqdm import tqdm

from ..checkpoint import check_same_config, make_checkpoint, read_checkpoint, save_checkpoint
from ..data.augment import augment_preset
from ..data.dataset import DataOptions, Sample, load_labelled, split_validation
from ..data.normalize import Normalization
from ..data.sample import resolve_data_source
from ..data.sampling import PatchSampler, SamplingOptions
from ..errors import ConfigError, OutputExistsError
from ..losses import build_loss, default_loss_name
from ..model import UNet, preset
from ..precision import autocast_context, resolve_precision
from ..tiling import TileOptions
from ..evaluation import evaluate_samples
from .config import TrainConfig
from .distributed import DistributedContext, init_distributed
from .history import append_row, plot_curves, truncate_after
from .optim import build_optimizer, build_scheduler

LAST = "last.pt"
BEST = "best.pt"
LOG = "log.csv"
CURVE = "curves.png"

Report = Callable[[str], None]


@dataclass
class TrainResult:
    run_dir: Path
    best_dice: float | None
    epochs_completed: int
    global_step: int
    stopped: str  # completed | early-stopping | time-limit | signal


@dataclass
class Position:
    """Where training stands: the next step to run, and what the run has seen so far."""

    epoch: int = 0
    step: int = 0
    global_step: int = 0
    best_dice: float | None = None
    epochs_without_improvement: int = 0
    elapsed_s: float = 0.0


def _report_to_stderr(text: str) -> None:
    tqdm.write(text, file=sys.stderr)


def check_new_run_dir(run_dir: Path) -> None:
    """A run directory is never silently reused."""
    if run_dir.exists() and any(run_dir.iterdir()):
        raise OutputExistsError(
            "run directory exists and is not empty",
            path=run_dir,
            fix=f"continue it with --resume {run_dir}, or choose another --out",
        )


def load_training_data(
    config: TrainConfig, notes: list[str]
) -> tuple[list[Sample], list[Sample], DataOptions]:
    """Training and validation samples, validated, and the data options to store."""
    source, sample_mask_mode = resolve_data_source(config.data)
    data_options = DataOptions(
        num_classes=config.num_classes,
        mask_mode=config.mask_mode or sample_mask_mode or "classes",
        ignore_index=config.ignore_index,
        normalization=Normalization(mode=config.normalization),
    )
    samples = load_labelled(source, data_options, notes)
    if config.val_data is not None:
        val_source, _ = resolve_data_source(config.val_data)
        val_samples = load_labelled(val_source, data_options, notes, in_channels=samples[0].image.shape[0])
        return samples, val_samples, data_options
    train_samples, val_samples = split_validation(samples, config.val_fraction, config.seed)
    return train_samples, val_samples, data_options


def build_model(config: TrainConfig, in_channels: int) -> UNet:
    return UNet(preset(config.preset, in_channels=in_channels, **config.model_overrides()))


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """Turn SIGINT/SIGTERM into a flag the loop checks after each step (main thread only)."""
    requested = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield requested
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda number, frame: requested.set())
    try:
        yield requested
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class BatchPrefetcher:
    """Prepares the next batches in a background thread while the model trains."""

    def __init__(self, sampler: PatchSampler, positions: list[tuple[int, int]], indices: range, depth: int = 2):
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(sampler, positions, indices), daemon=True)
        self._thread.start()

    def _run(self, sampler: PatchSampler, positions: list[tuple[int, int]], indices: range) -> None:
        try:
            for epoch, step in positions:
                batch = sampler.batch(epoch, step, indices)
                while not self._stop.is_set():
                    try:
                        self._queue.put(batch, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if self._stop.is_set():
                    return
        except BaseException as exc:  # hand the error to the training thread
            self._queue.put(exc)

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        item = self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _rng_state(device: torch.device) -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def resume_config(run_dir: str | Path, **changes: Any) -> TrainConfig:
    """The options a run was started with (from its ``last.pt``), with some changed."""
    payload = read_checkpoint(Path(run_dir) / LAST)
    if "training" not in payload:
        raise ConfigError(f"{Path(run_dir) / LAST} holds no training state to resume")
    values = dict(payload["training"]["config"])
    values.update({k: v for k, v in changes.items() if v is not None})
    values["out"] = str(run_dir)
    return TrainConfig.from_dict(values)


class Trainer:
    """Holds the state of one run; :func:`train` is the way to use it."""

    def __init__(self, config: TrainConfig, context: DistributedContext, report: Report):
        self.config = config
        self.context = context
        self.report = report if context.is_main else (lambda text: None)
        self.run_dir = Path(config.out)
        self.device = context.device
        self.autocast_dtype = resolve_precision(config.precision, self.device)
        notes: list[str] = []
        self.train_samples, self.val_samples, self.data_options = load_training_data(config, notes)
        for note in notes:
            self.report(f"note: {note}")
        torch.manual_seed(config.seed)
        self.model = build_model(config, self.train_samples[0].image.shape[0])
        if config.init_checkpoint:
            payload = read_checkpoint(config.init_checkpoint)
            check_same_config(payload, self.model.config, config.init_checkpoint)
            self.model.load_state_dict(payload["model_state"])
        self.model = self.model.to(self.device)
        self.memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        self.model = self.model.to(memory_format=self.memory_format)
        self.network: torch.nn.Module = self.model
        if context.active:
            self.network = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        self.total_steps = config.epochs * config.steps_per_epoch
        self.optimizer = build_optimizer(
            config.optimizer, self.model.parameters(), lr=config.lr,
            weight_decay=config.weight_decay, momentum=config.momentum,
        )
        self.scheduler = build_scheduler(config.schedule, self.optimizer, self.total_steps)
        self.scaler = torch.amp.GradScaler(
            self.device.type, enabled=self.autocast_dtype == torch.float16
        )
        self.loss_fn = build_loss(
            config.loss or default_loss_name(config.num_classes), config.num_classes,
            ignore_index=config.ignore_index,
        )
        self.sampler = PatchSampler(
            self.train_samples,
            SamplingOptions(config.patch_size, config.foreground_fraction, augment_preset(config.augment)),
            seed=config.seed,
        )
        self.position = Position()
        self.data_wait_s = 0.0  # this epoch: seconds spent waiting for batches ...
        self.step_s = 0.0  # ... out of the seconds spent in training steps

    # --- checkpoints -------------------------------------------------------------------
    def training_state(self) -> dict[str, Any]:
        p = self.position
        return {
            "config": self.config.to_dict(),
            "epoch": p.epoch, "step": p.step, "global_step": p.global_step,
            "best_dice": p.best_dice, "epochs_without_improvement": p.epochs_without_improvement,
            "elapsed_s": p.elapsed_s,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": _rng_state(self.device),
        }

    def save_last(self) -> None:
        if self.context.is_main:
            payload = make_checkpoint(self.model, self.data_options, self.training_state())
            save_checkpoint(self.run_dir / LAST, payload, overwrite=True)

    def restore(self) -> None:
        path = self.run_dir / LAST
        payload = read_checkpoint(path)
        check_same_config(payload, self.model.config, path)
        state = payload["training"]
        self.model.load_state_dict(payload["model_state"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        _set_rng_state(state["rng"], self.device)
        self.position = Position(
            state["epoch"], state["step"], state["global_step"], state["best_dice"],
            state["epochs_without_improvement"], state["elapsed_s"],
        )
        if self.context.is_main:
            truncate_after(self.run_dir / LOG, self.position.epoch)
        self.report(f"resumed {self.run_dir} at epoch {self.position.epoch + 1}, step {self.position.step}")

    # --- one step, one epoch --------------------------------------------------------------
    def train_step(self, images: torch.Tensor, masks: torch.Tensor) -> float:
        images = images.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        masks = masks.to(self.device, non_blocking=True)
        self.optimizer.zero_grad(set_to_none=True)
        with autocast_context(self.device, self.autocast_dtype):
            logits = self.network(images)
        loss = self.loss_fn(logits.float(), masks)
        self.scaler.scale(loss).backward()
        if self.config.grad_clip:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.config.schedule != "plateau":
            self.scheduler.step()
        return float(loss.detach())

    def validate(self) -> tuple[float | None, float | None]:
        """Mean per-image Dice and IoU over the validation images, all ranks together."""
        if not self.val_samples:
            return None, None
        shard = self.val_samples[self.context.rank :: self.context.world_size]
        tile = TileOptions(tile_size=self.config.val_tile_size)
        accumulator = evaluate_samples(
            self.model, shard, tile, self.autocast_dtype, self.config.ignore_index
        )
        dice_sum = sum(s.mean_dice for s in accumulator.per_image)
        iou_sum = sum(s.mean_iou for s in accumulator.per_image)
        dice_sum, iou_sum, count = self.context.all_sum([dice_sum, iou_sum, len(shard)])
        return dice_sum / count, iou_sum / count

    def end_epoch(self, losses: list[float]) -> bool:
        """Validate, log, save; True if early stopping says stop."""
        dice, iou = self.validate()
        p = self.position
        improved = dice is not None and (p.best_dice is None or dice > p.best_dice)
        if improved:
            p.best_dice, p.epochs_without_improvement = dice, 0
        elif dice is not None:
            p.epochs_without_improvement += 1
        if self.config.schedule == "plateau" and dice is not None:
            self.scheduler.step(dice)
        loss_sum, loss_count = self.context.all_sum([sum(losses), float(len(losses))])
        if self.context.is_main:
            append_row(self.run_dir / LOG, {
                "epoch": p.epoch + 1, "step": p.global_step, "loss": f"{loss_sum / max(loss_count, 1):.5f}",
                "val_dice": "" if dice is None else f"{dice:.5f}",
                "val_iou": "" if iou is None else f"{iou:.5f}",
                "lr": f"{self.optimizer.param_groups[0]['lr']:.3g}",
                "seconds": f"{p.elapsed_s:.1f}",
                "data_wait": f"{self.data_wait_s / max(self.step_s, 1e-9):.3f}",
            })
            plot_curves(self.run_dir / LOG, self.run_dir / CURVE)
            if improved or dice is None:
                save_checkpoint(self.run_dir / BEST, make_checkpoint(self.model, self.data_options), overwrite=True)
        self.report(
            f"epoch {p.epoch + 1}/{self.config.epochs}: loss {loss_sum / max(loss_count, 1):.4f}"
            + ("" if dice is None else f", validation Dice {dice:.4f}, IoU {iou:.4f}")
            + (" (best)" if improved else "")
        )
        patience = self.config.early_stopping
        return patience is not None and p.epochs_without_improvement >= patience

    def run(self, stop_requested: threading.Event) -> TrainResult:
        config, p = self.config, self.position
        per_rank = config.batch_size
        indices = range(self.context.rank * per_rank, (self.context.rank + 1) * per_rank)
        positions = [(e, s) for e in range(p.epoch, config.epochs)
                     for s in range(p.step if e == p.epoch else 0, config.steps_per_epoch)]
        prefetcher = BatchPrefetcher(self.sampler, positions, indices)
        stopped = "completed"
        self.network.train()
        try:
            while p.epoch < config.epochs:
                losses: list[float] = []
                self.data_wait_s, self.step_s = 0.0, 0.0
                bar = tqdm(total=config.steps_per_epoch, initial=p.step, desc=f"epoch {p.epoch + 1}",
                           disable=not (config.progress and self.context.is_main), leave=False, file=sys.stderr)
                while p.step < config.steps_per_epoch:
                    step_start = time.perf_counter()
                    images, masks = prefetcher.next()
                    self.data_wait_s += time.perf_counter() - step_start
                    losses.append(self.train_step(images, masks))
                    p.step += 1
                    p.global_step += 1
                    step_seconds = time.perf_counter() - step_start
                    self.step_s += step_seconds
                    p.elapsed_s += step_seconds
                    bar.update(1)
                    bar.set_postfix(loss=f"{losses[-1]:.4f}")
                    out_of_time = config.max_time_s is not None and p.elapsed_s >= config.max_time_s
                    if self.context.any(stop_requested.is_set()):
                        stopped = "signal"
                        break
                    if out_of_time:
                        stopped = "time-limit"
                        break
                    if config.checkpoint_every and p.global_step % config.checkpoint_every == 0:
                        self.save_last()
                bar.close()
                if stopped == "signal":
                    self.save_last()
                    self.report(f"stopped by a signal; saved {self.run_dir / LAST} (resume with --resume {self.run_dir})")
                    break
                early = self.end_epoch(losses)
                if p.step == config.steps_per_epoch:  # a time limit mid-epoch keeps the position
                    p.epoch, p.step = p.epoch + 1, 0
                self.save_last()
                if stopped == "time-limit":
                    self.report(f"time limit of {config.max_time_s:.0f} s reached")
                    break
                if early:
                    stopped = "early-stopping"
                    self.report(f"early stopping: no better validation Dice for {config.early_stopping} epochs")
                    break
        finally:
            prefetcher.close()
        return TrainResult(self.run_dir, p.best_dice, p.epoch, p.global_step, stopped)


def train(
    config: TrainConfig,
    *,
    resume: bool = False,
    report: Report = _report_to_stderr,
) -> TrainResult:
    """Train a U-Net as ``config`` says; ``resume=True`` continues ``config.out``'s last.pt.

    Under ``torchrun`` every rank calls this; rank 0 alone writes files.
    """
    context = init_distributed(config.device)
    run_dir = Path(config.out)
    try:
        if resume:
            if not (run_dir / LAST).is_file():
                raise ConfigError(f"nothing to resume: {run_dir / LAST} does not exist")
        else:
            check_new_run_dir(run_dir)
        context.barrier()
        trainer = Trainer(config, context, report)
        if context.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "config.json").write_text(json.dumps(config.to_dict(), indent=2))
        if resume:
            trainer.restore()
        else:
            trainer.report(
                f"training on {len(trainer.train_samples)} image(s), validating on {len(trainer.val_samples)}; "
                f"{trainer.device}, precision {trainer.autocast_dtype or 'fp32'}, world size {context.world_size}"
            )
        with stop_on_signals() as stop_requested:
            result = trainer.run(stop_requested)
        context.barrier()
        return result
    finally:
        context.close()
