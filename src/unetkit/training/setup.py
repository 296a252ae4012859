"""Building the parts of a training run from its options: data, model, optimiser, loss, sampler.

:func:`build_run` is the one factory; the loop (:mod:`unetkit.training.loop`) only runs what
it is given. A new task or data source changes what is built here, not how training runs.

>>> from unetkit.training.config import TrainConfig
>>> from unetkit.training.distributed import DistributedContext
>>> parts = build_run(TrainConfig(out="unused", depth=2, base_width=2, patch_size=32), DistributedContext(),
...                   report=lambda text: None)
>>> len(parts.train_samples), len(parts.val_samples), type(parts.optimizer).__name__
(3, 1, 'Adam')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..checkpoint import check_finite_weights, check_same_config, read_checkpoint
from ..data.augment import augment_preset
from ..data.dataset import (DataOptions, Sample, absent_classes, decoded_dataset_bytes, foreground_all_held_out,
                            held_out_foreground_note, load_training_data, nothing_to_score, scale_divisor_of,
                            source_file_of, split_validation)
from ..data.sources import GRID, FileSource, scan_file_sources
from ..data.masks import NO_BACKGROUND_FIX, check_ignore_index, learnable_foreground, missing_background
from ..data.memory import readable_bytes
from ..data.normalize import Normalization
from ..data.sample import resolve_data_source, resolve_mask_mode
from ..data.sampling import PatchSampler, SamplingOptions
from ..errors import CheckpointError, ConfigError, InputError
from ..model import UNet, UNetConfig, preset, size_rule
from ..precision import resolve_precision
from ..tasks import Task, TargetLoss, task_for
from ..weight_init import initialize_weights
from .config import TrainConfig
from .averaging import AveragedModel, weight_average
from .data_identity import data_identity
from .distributed import DistributedContext
from .optim import build_optimizer, build_scheduler

Report = Callable[[str], None]


@dataclass
class RunParts:
    """Everything a training run is made of, built by :func:`build_run`."""

    config: TrainConfig
    context: DistributedContext
    task: Task
    data_options: DataOptions
    train_samples: list[Sample]
    val_samples: list[Sample]
    model: UNet  # the network itself (checkpoints, validation)
    network: torch.nn.Module  # what the steps call: the model, or DDP around it
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler
    loss_fn: TargetLoss
    sampler: PatchSampler
    autocast_dtype: torch.dtype | None
    memory_format: torch.memory_format
    averaged: AveragedModel | None = None  # the moving average of the weights (``--ema``), if any
    data_identity: dict[str, Any] = field(default_factory=dict)  # what it trains on: a resume checks it

    @property
    def device(self) -> torch.device:
        return self.context.device

    @property
    def evaluated_model(self) -> UNet:
        """The weights that validation scores and ``best.pt`` keeps: the average, or the model."""
        return self.model if self.averaged is None else self.averaged.module


def task_of(config: TrainConfig) -> Task:
    """What the run trains the model to do."""
    if config.task == "instances":
        fixed = {} if config.min_object_size is None else {"min_size": config.min_object_size}
        return task_for("instances", method=config.instance_method, **fixed)
    return task_for("semantic", config.num_classes)


def sampling_options_of(config: TrainConfig) -> SamplingOptions:
    """How this run draws training patches; the normalisation jitter only where the
    normalisation is the percentiles' (the others do not depend on an image's content)."""
    jitter = config.normalization_jitter if config.normalization == "percentile" else 0.0
    return SamplingOptions(config.patch_size, config.foreground_fraction, augment_preset(config.augment),
                           normalization_jitter=jitter, ignore_index=config.ignore_index)


def normalization_of(config: TrainConfig) -> Normalization:
    """The run's normalisation: ``--upper-percentile`` is the percentile mode's upper bound;
    ``scale`` divides by ``--scale-divisor``, else by the full scale of the images' type."""
    if config.normalization == "percentile":
        return Normalization(mode="percentile", high=config.upper_percentile)
    if config.normalization == "scale":
        divisor = config.scale_divisor
        if divisor is None:
            sources = [resolve_data_source(config.data)[0]]
            if config.val_data is not None:
                sources.append(resolve_data_source(config.val_data)[0])
            divisor = scale_divisor_of(*sources)
        return Normalization(mode="scale", high=divisor)
    return Normalization(mode=config.normalization)


def data_options_for(config: TrainConfig) -> DataOptions:
    """How this run reads masks and normalises images (stored with the model)."""
    mask_mode = resolve_mask_mode(config.data, task_of(config).mask_mode(config.mask_mode))
    check_ignore_index(config.ignore_index, config.num_classes, mask_mode)
    return DataOptions(
        num_classes=config.num_classes,
        mask_mode=mask_mode,
        ignore_index=config.ignore_index,
        normalization=normalization_of(config),
    )


def build_model(config: TrainConfig, in_channels: int, init: dict[str, Any] | None = None) -> UNet:
    """The network of ``config``, initialised by ``config.weight_init`` from the run's seed (or
    ``init``: the ``--init`` checkpoint, as :func:`~unetkit.checkpoint.read_checkpoint` read it)."""
    torch.manual_seed(config.seed)
    outputs = task_of(config).num_outputs
    model = UNet(preset(config.preset, in_channels=in_channels, **config.model_overrides(outputs)))
    initialize_weights(model, config.weight_init)
    if init is not None:
        check_init_task(init, config, model.config.num_classes)
        check_same_config(init, model.config, config.init_checkpoint)
        check_finite_weights(init["model_state"], config.init_checkpoint)
        model.load_state_dict(init["model_state"])
    return model


def check_init_task(init: dict[str, Any], config: TrainConfig, outputs: int) -> None:
    """Refuse an ``--init`` checkpoint of the other task whose number of outputs differs from the run's (``outputs``),
    naming both tasks; one of the same number (a one-output object model, a one-class pixel model) may start it."""
    stored = init.get("task") or {"name": "semantic"}  # models of unetkit 0.1 hold none: semantic
    stored_outputs = init["model_config"].get("num_classes")
    if stored.get("name") == config.task or stored_outputs == outputs:
        return
    method = f" --instance-method {stored['method']}" if "method" in stored else ""
    raise CheckpointError(
        f"the --init checkpoint is a model of --task {stored.get('name')} ({stored_outputs} outputs), this run trains "
        f"--task {config.task} ({outputs})", path=config.init_checkpoint,
        fix=f"pass --task {stored.get('name')}{method}, or start from a checkpoint of --task {config.task}")


def check_patch_fits(patch_size: int, network: UNetConfig) -> None:
    """Refuse training patches the network cannot learn from: smaller than its smallest input (a 'same'-padding
    network would pad them, and its deepest levels would see padding only), or, with 'valid' padding, of a side it
    does not take.

    >>> check_patch_fits(128, preset("keras-reference"))
    >>> try:
    ...     check_patch_fits(128, preset("paper-2015"))
    ... except ConfigError as error:
    ...     print(error.fix)
    --patch-size 188, or a larger side of that list
    """
    rule = size_rule(network)
    if rule.accepts(patch_size) or (rule.pads_any_size and patch_size >= rule.minimum):
        return
    shape = f"{network.padding} padding, depth {network.depth}"
    if rule.pads_any_size:
        raise ConfigError(
            f"patches of {patch_size} px are smaller than this network's smallest input, {rule.minimum} px "
            f"({shape}): its deepest level would see padding only",
            fix=f"--patch-size {rule.minimum} or more, or a smaller --depth",
        )
    sides = ", ".join(str(rule.minimum + n * rule.step) for n in range(3))
    fitting = rule.input_size_for(max(patch_size - 2 * rule.halo, 1))
    raise ConfigError(
        f"patches of {patch_size} px do not fit this network ({shape}): it takes sides {sides}, ... "
        f"({rule.minimum} + {rule.step} n) and returns the centre, {rule.halo} px in from each side",
        fix=f"--patch-size {fitting}, or a larger side of that list",
    )


MAX_STREAMED_VALIDATION_IMAGES = 16


def load_samples(config: TrainConfig, options: DataOptions, report: Report) -> tuple[list, list]:
    """The run's training and validation samples, with notes and warnings reported.

    A dataset whose decoded size exceeds the memory budget (``--memory-budget``) is not
    loaded: it trains from :class:`~unetkit.data.sources.FileSource` s, read window by window,
    and validates on at most :data:`MAX_STREAMED_VALIDATION_IMAGES` images, one at a time.
    """
    notes: list[str] = []
    source, _ = resolve_data_source(config.data)
    val_source = resolve_data_source(config.val_data)[0] if config.val_data is not None else None
    needed = decoded_dataset_bytes(source) + (decoded_dataset_bytes(val_source) if val_source else 0)
    budget = config.memory_budget_bytes
    held_note: str | None = None  # a split that holds out much of the foreground, said after the notes
    if needed > budget:
        report(f"the dataset needs about {readable_bytes(needed)} decoded, over the memory budget of "
               f"{readable_bytes(budget)}: patches are read from the files as they are drawn")
        train_samples = scan_file_sources(source, options, notes)
        if val_source is not None:
            val_samples = scan_file_sources(val_source, options, notes)
        else:
            train_samples, val_samples = split_validation(train_samples, config.val_fraction, config.seed, notes,
                                                          by=config.val_split)
            held_note = _held_out_note(train_samples, val_samples, options)  # of every held-out image
        val_samples = val_samples[:MAX_STREAMED_VALIDATION_IMAGES]
        foreground = any(s.learnable for s in train_samples)
        val_foreground = any(s.learnable for s in val_samples)
        val_scored = any(s.learnable or s.has_background for s in val_samples)
        background = any(s.has_background for s in train_samples + val_samples)
    else:
        train_samples, val_samples = load_training_data(
            source, options, val_source=val_source, val_fraction=config.val_fraction, seed=config.seed, notes=notes,
            val_split=config.val_split,
        )
        held_note = None if val_source is not None else _held_out_note(train_samples, val_samples, options)
        foreground = any(np.any(learnable_foreground(s.mask, options.ignore_index)) for s in train_samples)
        val_foreground = any(np.any(learnable_foreground(s.mask, options.ignore_index)) for s in val_samples)
        val_scored = val_foreground or any(np.any(s.mask == 0) for s in val_samples)
        background = any(np.any(s.mask == 0) for s in train_samples + val_samples)
        report_absent_classes(train_samples, options, report)
    for note in notes:
        report(f"note: {note}")
    if val_source is not None and Path(val_source).resolve() == Path(source).resolve():
        report("warning: --val-data is DATA itself: the validation score says how well the model fits its training "
               "images, not how it does on others, so the stopping rule and best.pt read a flattering score")
    held = [s.name for s in val_samples]
    refusal = None if val_source is not None else foreground_all_held_out(foreground, val_foreground, held)
    if refusal is not None:
        raise InputError(refusal[0], path=source, fix=refusal[1])
    if not foreground:
        raise InputError(
            "no training mask has any foreground: every pixel is background"
            + ("" if options.ignore_index is None else f" or --ignore-index {options.ignore_index}")
            + ", so there is nothing to learn",
            path=source,
            fix="check that the masks are the right files and hold objects (0 = background, 1.. = classes)",
        )
    verdict = None if background else missing_background(options.mask_mode, options.num_classes)
    if verdict is not None:
        refused, problem = verdict
        if refused:
            raise InputError(problem, path=source, fix=NO_BACKGROUND_FIX)
        report(f"warning: {problem}")
    refusal = nothing_to_score(val_scored, held, options.ignore_index, val_given=val_source is not None)
    if refusal is not None:
        raise InputError(refusal[0], path=val_source or source, fix=refusal[1])
    if val_samples and not val_foreground:
        report("warning: no validation mask has any foreground; an empty prediction scores Dice 1.0 there, "
               "so the validation score says little (pass --val-data with labelled objects)")
    if held_note is not None:
        report(f"note: {held_note}")
    return train_samples, val_samples


def _held_out_note(train_samples: list, val_samples: list, options: DataOptions) -> str | None:
    """:func:`~unetkit.data.dataset.held_out_foreground_note` of a drawn split."""
    return held_out_foreground_note([foreground_amount(s, options.ignore_index) for s in val_samples],
                                    [foreground_amount(s, options.ignore_index) for s in train_samples],
                                    [source_file_of(s) for s in val_samples])


def foreground_amount(sample: Sample | FileSource, ignore_index: int | None) -> int:
    """Pixels of learnable foreground in a training sample's mask; for a sample streamed from its file, the
    pixels of its 16-px cells that hold foreground (what the file scan keeps; close enough to compare files)."""
    if isinstance(sample, FileSource):
        return len(sample.grid) * GRID * GRID
    return int(np.count_nonzero(learnable_foreground(sample.mask, ignore_index)))


def report_absent_classes(samples: list[Sample], options: DataOptions, report: Report) -> None:
    """Warn of the classes of ``--classes K`` that no training mask holds (:func:`~unetkit.data.dataset.absent_classes`):
    the model cannot learn them."""
    if options.mask_mode != "classes":
        return
    present = {k for k in range(1, options.num_classes)
               if any(s.mask is not None and np.any(s.mask == k) for s in samples)}
    absent = absent_classes(present, options)
    if absent:
        report(f"warning: class{'es' if len(absent) > 1 else ''} {', '.join(map(str, absent))} of --classes "
               f"{options.num_classes} (0 to {options.num_classes - 1}) {'are' if len(absent) > 1 else 'is'} in no "
               "training mask: the model cannot learn them; check --classes against the masks' values")


def report_dim_scale(samples: list, divisor: float, report: Report) -> None:
    """Say so when ``--normalization scale`` leaves the training images dim: 12-bit data in
    16-bit files divided by 65535 reach 0.06 at most, a range the network learns slowly in."""
    loaded = [sample.image for sample in samples if isinstance(sample, Sample)]  # not read whole when streamed
    brightest = max((float(image.max()) for image in loaded), default=1.0)
    if brightest < 0.25:
        report(f"note: the brightest training pixel is {brightest * divisor:g}, {brightest:.1%} of the divisor "
               f"{divisor:g}; pass --scale-divisor {brightest * divisor:g} (or the camera's full scale, 4095 for "
               "12 bits) to use the input's range")


def report_init_normalization(checkpoint: str, init: dict[str, Any], normalization: Normalization,
                              report: Report) -> None:
    """Say so when ``--init`` weights (``init``, read from ``checkpoint``) were trained on images
    normalised otherwise than this run's (a model of the 99.8th percentile fine-tuned with the pixel
    default, the 99th, say): the run goes on, as the user may mean it, but not silently."""
    stored = init.get("data", {}).get("normalization")
    trained = None if stored is None else Normalization.from_dict(stored)
    if trained is not None and trained != normalization:
        report(f"note: {checkpoint} was trained on images normalised as {trained}; "
               f"this run normalises as {normalization} (--normalization, --upper-percentile set it)")


def build_run(config: TrainConfig, context: DistributedContext, report: Report, resuming: bool = False) -> RunParts:
    """Read and check the data, then build the model (DDP-wrapped under torchrun) and its optimiser; ``resuming``
    (from a ``last.pt``, whose weights replace them) skips reading the ``--init`` weights, which may have moved."""
    check_patch_fits(config.patch_size, preset(config.preset, **config.model_overrides(task_of(config).num_outputs)))
    data_options = data_options_for(config)
    train_samples, val_samples = load_samples(config, data_options, report)
    if data_options.normalization.mode == "scale":
        # stored with the run's options, so that a resume divides by the same number whatever the data is by then
        config = config.replace(scale_divisor=data_options.normalization.high)
        report(f"images are divided by {config.scale_divisor:g} (--normalization scale)")
        report_dim_scale(train_samples, config.scale_divisor, report)
    task = task_of(config)
    device = context.device
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    channels = train_samples[0].channels if isinstance(train_samples[0], FileSource) else train_samples[0].image.shape[0]
    init = read_checkpoint(config.init_checkpoint) if config.init_checkpoint and not resuming else None
    model = build_model(config, channels, init).to(device).to(memory_format=memory_format)
    if init is not None:
        report_init_normalization(config.init_checkpoint, init, data_options.normalization, report)
    network: torch.nn.Module = model
    if context.active:
        network = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    optimizer = build_optimizer(config.optimizer, model.parameters(), lr=config.lr,
                                weight_decay=config.weight_decay, momentum=config.momentum)
    autocast_dtype = resolve_precision(config.precision, device)
    return RunParts(
        config=config,
        context=context,
        task=task,
        data_options=data_options,
        train_samples=train_samples,
        val_samples=val_samples,
        model=model,
        network=network,
        optimizer=optimizer,
        scheduler=build_scheduler(config.resolved_schedule, optimizer, config.planned_epochs * config.steps_per_epoch),
        scaler=torch.amp.GradScaler(device.type, enabled=autocast_dtype == torch.float16),
        loss_fn=task.build_loss(config.loss, config.ignore_index),
        sampler=PatchSampler(
            train_samples,
            sampling_options_of(config),
            seed=config.seed,
            encode=task.encode,
        ),
        autocast_dtype=autocast_dtype,
        memory_format=memory_format,
        averaged=weight_average(model, config.ema),
        data_identity=data_identity(train_samples, val_samples),
    )
