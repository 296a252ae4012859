"""``unetkit inspect``: what a user should know about a dataset before training.

It reads every pair with exactly the checks training runs (:func:`~unetkit.data.dataset.read_pair`),
but collects the problems instead of stopping at the first, and reports pairs, unmatched
files, sizes, dtypes, class pixel fractions, the images training's validation split would hold out
(the same seeded draw) and warnings. It says "ready to train" only when training would accept the data.

>>> from unetkit.data.sample import sample_path
>>> report = inspect_dataset(sample_path("heldout"), DataOptions(mask_mode="instances"))
>>> report.pair_count, report.plane_count, report.errors
(1, 2, [])
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .data.dataset import (DataOptions, Sample, ValSplit, absent_classes, foreground_all_held_out,
                           held_out_foreground_note, nothing_to_score, read_pair,
                           source_file_of, split_validation)
from .data.masks import NO_BACKGROUND_FIX, learnable_foreground, missing_background
from .data.pairing import find_pairs, pairing_hint
from .errors import UnetkitError


@dataclass(frozen=True)
class SplitPreview:
    """How ``unetkit train`` would hold out validation images of the data (``--val-fraction``, ``--seed``,
    ``--val-split``): the same draw, so that a split that starves training is seen before a run."""

    fraction: float = 0.2
    seed: int = 0
    by: ValSplit = "files"


@dataclass
class DatasetReport:
    source: str
    pair_count: int = 0
    plane_count: int = 0
    images_without_mask: list[str] = field(default_factory=list)
    masks_without_image: list[str] = field(default_factory=list)
    sizes: Counter = field(default_factory=Counter)
    dtypes: Counter = field(default_factory=Counter)
    channels: Counter = field(default_factory=Counter)
    channel_examples: dict = field(default_factory=dict)  # a channel count: the first image that has it
    class_pixels: Counter = field(default_factory=Counter)
    ignore_index: int | None = None  # the --ignore-index value: its pixels are shown apart, not as a class
    objects: int | None = None  # label ids over all masks, when they are read as objects (--task instances)
    validation: str = ""  # the images the split holds out, in words ("" where there is no split)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def text(self) -> str:
        total = sum(self.class_pixels.values()) or 1
        lines = [
            f"dataset {self.source}",
            f"  pairs: {self.pair_count} file(s), {self.plane_count} 2D image(s)",
            f"  images without a mask: {len(self.images_without_mask)}"
            + (f" ({', '.join(self.images_without_mask[:5])})" if self.images_without_mask else ""),
            f"  masks without an image: {len(self.masks_without_image)}"
            + (f" ({', '.join(self.masks_without_image[:5])})" if self.masks_without_image else ""),
        ]
        lines += ["  sizes (HxW): " + ", ".join(f"{s} x{n}" for s, n in self.sizes.most_common(6))] if self.sizes else []
        lines += ["  image dtypes: " + ", ".join(f"{d} x{n}" for d, n in self.dtypes.items())] if self.dtypes else []
        lines += ["  channels: " + ", ".join(f"{c} x{n}" for c, n in self.channels.items())] if self.channels else []
        lines += ["  class pixel fractions: " + ", ".join(f"{self._value_name(c)}: {n / total:.3f}"
                                                        for c, n in sorted(self.class_pixels.items()))] \
            if self.class_pixels else []
        lines += [f"  objects: {self.objects} (label ids, counted per image)"] if self.objects is not None else []
        lines += [f"  validation: {self.validation}"] if self.validation else []
        if len(self.dtypes) > 1:  # percentile normalisation takes them all; one divisor cannot
            lines.append(f"  note: the images are of {len(self.dtypes)} types: train --normalization scale refuses them "
                         "unless --scale-divisor gives the one divisor for all; the default percentile normalisation "
                         "takes them")
        lines += [f"  note: {n}" for n in self.notes]
        lines += [f"  warning: {w}" for w in self.warnings]
        lines += [f"  error: {e}" for e in self.errors]
        lines.append("  ready to train" if not self.errors else f"  {len(self.errors)} error(s): fix them before training")
        return "\n".join(lines)

    def _value_name(self, value: int) -> str:
        return f"ignored (--ignore-index {value})" if value == self.ignore_index else f"class {value}"


def inspect_dataset(source: str | Path, options: DataOptions, split: SplitPreview = SplitPreview()) -> DatasetReport:
    """Read and check every pair; collect (rather than raise) per-file problems; preview the validation split."""
    listing = find_pairs(source)
    report = DatasetReport(str(source), pair_count=len(listing.pairs), ignore_index=options.ignore_index)
    listing.note_subfolders(report.notes)
    report.images_without_mask = [p.name for p in listing.images_without_mask]
    report.masks_without_image = [p.name for p in listing.masks_without_image]
    stand_ins: list[Sample] = []  # a name and files for each plane: what the split draws from (no pixels kept)
    foreground: dict[str, int] = {}  # learnable foreground pixels of each plane, by name
    scored: dict[str, bool] = {}  # whether a plane holds any pixel other than --ignore-index, by name
    for pair in listing.pairs:
        try:
            planes = read_pair(pair, options, report.notes)
        except UnetkitError as exc:
            report.errors.append(str(exc).replace("\n", " "))
            continue
        for plane in planes:
            report.plane_count += 1
            report.sizes[f"{plane.raw.shape[0]}x{plane.raw.shape[1]}"] += 1
            report.dtypes[str(plane.raw.dtype)] += 1
            channels = 1 if plane.raw.ndim == 2 else plane.raw.shape[2]
            report.channels[channels] += 1
            report.channel_examples.setdefault(channels, pair.image.name)
            labels = options.mask_mode == "labels"  # object ids (--task instances): foreground, and objects counted
            values, counts = np.unique((plane.mask > 0).astype(np.uint8) if labels else plane.mask, return_counts=True)
            report.class_pixels.update(dict(zip(values.tolist(), counts.tolist())))
            if labels:
                report.objects = (report.objects or 0) + int(np.unique(plane.mask[plane.mask > 0]).size)
            stand_ins.append(Sample(plane.name, np.zeros((1, 1, 1), np.float32), None, files=(pair.image, pair.mask)))
            foreground[plane.name] = int(np.count_nonzero(learnable_foreground(plane.mask, options.ignore_index)))
            scored[plane.name] = bool(foreground[plane.name]) or bool(np.any(plane.mask == 0))
    for unmatched, what in ((report.images_without_mask, "image(s) without a mask"),
                            (report.masks_without_image, "mask(s) without an image")):
        if unmatched:
            report.errors.append(f"{len(unmatched)} {what}: {', '.join(unmatched[:5])} (training refuses them)")
    hint = pairing_hint(listing.images_without_mask, listing.masks_without_image)
    if hint:
        report.errors.append(hint)
    _add_warnings(report, options)
    if not report.errors:
        _preview_split(report, stand_ins, foreground, scored, split, options.ignore_index)
    return report


def _preview_split(report: DatasetReport, planes: list[Sample], foreground: dict[str, int], scored: dict[str, bool],
                   split: SplitPreview, ignore_index: int | None = None) -> None:
    """Name the images training would hold out for validation, and say so if they hold much of the foreground;
    a split that training refuses (every training mask background, every validation mask ``ignore_index``
    everywhere) is an error, as there."""
    if split.fraction <= 0 or len(planes) < 2:
        return
    train, val = split_validation(planes, split.fraction, split.seed, report.notes, by=split.by)
    named = ", ".join(s.name for s in val[:5]) + (f" and {len(val) - 5} more" if len(val) > 5 else "")
    report.validation = (f"{len(val)} of {len(planes)} image(s) held out ({named}) with --val-fraction "
                         f"{split.fraction:g} --seed {split.seed}, as unetkit train would")
    note = held_out_foreground_note([foreground[s.name] for s in val], [foreground[s.name] for s in train],
                                    [source_file_of(s) for s in val])
    if note is not None:
        report.notes.append(note)
    held = [s.name for s in val]
    for refusal in (foreground_all_held_out(any(foreground[s.name] for s in train),
                                            any(foreground[s.name] for s in val), held),
                    nothing_to_score(any(scored[s.name] for s in val), held, ignore_index, val_given=False)):
        if refusal is not None:
            report.errors.append(f"{refusal[0]}; training refuses this split: {refusal[1]}")


def _add_warnings(report: DatasetReport, options: DataOptions) -> None:
    total = sum(report.class_pixels.values())
    if total:
        learnable = set(report.class_pixels) - {0, options.ignore_index}
        if not learnable and options.ignore_index in report.class_pixels:
            report.errors.append(f"no mask has any foreground besides --ignore-index {options.ignore_index}: there "
                                 "is nothing to learn (training refuses this)")
        absent = absent_classes(report.class_pixels, options)
        if absent:
            report.warnings.append(f"class(es) {', '.join(map(str, absent))} of --classes {options.num_classes} are "
                                   "in no mask: a model cannot learn them (training warns of this too)")
        for label, count in sorted(report.class_pixels.items()):
            if label not in (0, options.ignore_index) and count / total < 0.01:
                report.warnings.append(
                    f"class {label} covers {count / total:.2%} of pixels: consider training with a higher "
                    "--foreground-fraction (unetkit train)"
                )
        if set(report.class_pixels) <= {0}:
            report.errors.append("no mask has any foreground: there is nothing to learn (training refuses this)")
        verdict = None if report.class_pixels.get(0) else missing_background(options.mask_mode, options.num_classes)
        if verdict is not None:
            refused, problem = verdict
            if refused:
                report.errors.append(f"{problem} (training refuses this; {NO_BACKGROUND_FIX})")
            else:
                report.warnings.append(problem)
    if len(report.channels) > 1:
        examples = ", ".join(f"{count} ({report.channel_examples[count]} ...)" for count in sorted(report.channels))
        report.errors.append(f"images have different channel counts: {examples}; training needs one count (it "
                             "refuses this)")
    if report.plane_count and report.plane_count < 2:
        report.warnings.append("a single image: no validation split is possible; train with --val-data")
