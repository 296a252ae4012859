"""Predicting files: label masks, colour overlays and (on request) probability maps.

Everything that can be checked is checked before the first prediction: the inputs (from
their headers: readable, channels, size), the outputs (none would replace a file without
``--overwrite``, none is also an input, the folder can be written). Each output is written
atomically; if writing fails (disk full, permissions), an input turns out to be damaged, or
the run is interrupted (SIGINT, SIGTERM), the outputs of the image in progress are removed
and the error says which images were finished. ``--skip-existing`` continues such a batch:
an image whose outputs all exist is skipped (an output exists only once complete).

>>> import tempfile
>>> from unetkit.model import UNet
>>> from unetkit.checkpoint import make_checkpoint, save_checkpoint
>>> folder = Path(tempfile.mkdtemp())
>>> save_checkpoint(folder / "m.pt", make_checkpoint(UNet(depth=2, base_width=2)))
>>> records = predict_files(folder / "m.pt", ["sample:heldout"], folder / "out",
...                         PredictOptions(overlay=False), report=lambda text: None)
>>> [r.labels.name for r in records]
['hela_000_labels.png', 'hela_001_labels.png']
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .data.dataset import load_image_planes
from .data.io import (
    PlaneShape,
    atomic_write,
    check_output_folder,
    ensure_can_write,
    image_stem,
    plane_shape,
)
from .data.memory import check_fits_in_memory
from .data.pairing import image_files
from .data.sample import resolve_data_source
from .errors import ConfigError, InputError, OutputExistsError, UnetkitError
from .inference.loading import BACKENDS, LoadedPredictor, load_predictor
from .inference.predictor import Predictor
from .signals import Interrupted, raise_on_stop_signals
from .tasks import Task
from .tiling import TileOptions, open_probability_memmap, predict_tiled

Report = Callable[[str], None]


@dataclass(frozen=True)
class PredictOptions:
    tile: TileOptions = field(default_factory=TileOptions)
    overlay: bool = True
    probabilities: bool = False
    probabilities_on_disk: bool = False  # accumulate into a memory-mapped TIFF (outputs larger than RAM)
    label_format: str = "png"  # png or tif
    overwrite: bool = False
    skip_existing: bool = False  # skip images whose outputs all exist (continue a stopped batch)
    precision: str = "auto"
    device: str = "auto"
    backend: str = "torch"  # torch or onnxruntime

    def __post_init__(self) -> None:
        if self.label_format not in ("png", "tif"):
            raise ConfigError(f"label format must be png or tif, got {self.label_format!r}")
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.overwrite and self.skip_existing:
            raise ConfigError("--overwrite and --skip-existing contradict each other", fix="choose one")


@dataclass
class PredictionRecord:
    """One image plane's source and its output files, by kind (labels, overlay, probabilities)."""

    source: str
    outputs: dict[str, Path]

    @property
    def labels(self) -> Path:
        return self.outputs["labels"]

    @property
    def overlay(self) -> Path | None:
        return self.outputs.get("overlay")

    @property
    def probabilities(self) -> Path | None:
        return self.outputs.get("probabilities")

    def existing(self) -> list[Path]:
        return [path for path in self.outputs.values() if path.exists() or path.is_symlink()]

    def remove(self) -> None:
        for path in self.outputs.values():
            path.unlink(missing_ok=True)


@dataclass(frozen=True)
class _Job:
    image_path: Path
    plane_index: int
    shape: PlaneShape
    stem: str


def collect_inputs(inputs: list[str | Path]) -> list[Path]:
    """Image files from files, folders and ``sample:SPLIT`` names, in order."""
    files: list[Path] = []
    for item in inputs:
        path, sample_mode = resolve_data_source(item)
        if sample_mode is not None:
            path = path / "images"
        if path.is_dir():
            files.extend(image_files(path / "images" if (path / "images").is_dir() else path))
        elif path.is_file():
            files.append(path)
        else:
            raise InputError("input not found", path=path)
    if not files:
        raise InputError("no input images given")
    return files


def _plan_jobs(files: list[Path], predictor: Predictor) -> list[_Job]:
    """One job per image plane, each input checked against the model from its header first."""
    jobs = []
    for path in files:
        shape = plane_shape(path)
        check_fits_predictor(shape, predictor, path)
        for index in range(shape.count):
            stem = image_stem(path) if shape.count == 1 else f"{image_stem(path)}_{index:03d}"
            jobs.append(_Job(path, index, shape, stem))
    stems = [job.stem for job in jobs]
    duplicates = sorted({s for s in stems if stems.count(s) > 1})
    if duplicates:
        raise InputError(
            f"several inputs would write outputs named {duplicates[:3]}",
            fix="predict files with the same name into different --out folders",
        )
    return jobs


def _record(job: _Job, out_dir: Path, options: PredictOptions, task: Task) -> PredictionRecord:
    files = task.output_files(job.stem, options.label_format, options.overlay)
    outputs = {kind: out_dir / name for kind, name in files.items()}
    if options.probabilities or options.probabilities_on_disk:
        outputs["probabilities"] = out_dir / f"{job.stem}_probabilities.tif"
    source = f"{job.image_path}" + (f"[{job.plane_index}]" if job.shape.count > 1 else "")
    return PredictionRecord(source, outputs)


def check_outputs_are_not_inputs(records: list[PredictionRecord], files: list[Path]) -> None:
    """An output may never be an input of the same command (not even with --overwrite)."""
    inputs = {path.resolve() for path in files}
    for record in records:
        for path in record.outputs.values():
            if path.resolve() in inputs:
                raise InputError(
                    f"the output {path.name} of {record.source} would replace an input of this same command",
                    path=path,
                    fix="write the outputs into another --out folder than the inputs' (or move earlier "
                        "outputs out of the input folder)",
                )


def _select(records: list[PredictionRecord], options: PredictOptions, report: Report) -> list[bool]:
    """Which records to predict; raise before any work if one would overwrite without consent."""
    todo = []
    for record in records:
        existing = record.existing()
        if options.skip_existing and len(existing) == len(record.outputs):
            todo.append(False)
            continue
        if existing and not (options.overwrite or options.skip_existing):
            raise OutputExistsError(
                "output exists already", path=existing[0],
                fix="pass --skip-existing to continue a stopped batch, --overwrite to redo it, "
                    "or choose another --out",
            )
        for path in record.outputs.values():
            ensure_can_write(path, overwrite=True)  # a folder in the way, an unwritable folder
        todo.append(True)
    skipped = todo.count(False)
    if skipped:
        report(f"skipping {skipped} image(s) whose outputs all exist (--skip-existing)")
    return todo


def predict_files(
    checkpoint: str | Path,
    inputs: list[str | Path],
    out_dir: str | Path,
    options: PredictOptions = PredictOptions(),
    report: Report = lambda text: print(text, file=sys.stderr),
) -> list[PredictionRecord]:
    """Predict every image plane of ``inputs`` into ``out_dir``; returns the records written now."""
    out_dir = Path(out_dir)
    check_output_folder(out_dir)
    loaded = load_predictor(checkpoint, backend=options.backend, device=options.device, precision=options.precision)
    files = collect_inputs(inputs)
    jobs = _plan_jobs(files, loaded.predictor)
    records = [_record(job, out_dir, options, loaded.task) for job in jobs]
    check_outputs_are_not_inputs(records, files)
    todo = _select(records, options, report)
    out_dir.mkdir(parents=True, exist_ok=True)
    done: list[PredictionRecord] = []
    planes: tuple[Path | None, list] = (None, [])  # the planes of the file in hand, read once
    with raise_on_stop_signals():
        for job, record, wanted in zip(jobs, records, todo):
            if not wanted:
                continue
            replace = options.overwrite or bool(record.existing())  # --skip-existing redoes an incomplete set
            try:
                if planes[0] != job.image_path:
                    check_fits_in_memory(job.shape, np.dtype(job.shape.dtype), job.image_path,
                                         float_copies=3 * job.shape.count,
                                         fix="save it as a tiled (Big)TIFF or OME-Zarr and predict it in chunks")
                    planes = (job.image_path, load_image_planes(job.image_path, loaded.data_options.normalization))
                name, raw, image = planes[1][job.plane_index]
                _predict_one(loaded, name, raw, image, record, options, replace, report)
            except (OSError, UnetkitError, Interrupted) as exc:
                record.remove()
                raise _batch_error(exc, record, done, out_dir) from exc
            done.append(record)
    return done


def _batch_error(exc: BaseException, record: PredictionRecord, done: list[PredictionRecord], out_dir: Path) -> BaseException:
    """The error of a batch that stopped at ``record``: what happened, what is finished, how to go on."""
    finished = ", ".join(r.labels.name for r in done[:10]) + (f" and {len(done) - 10} more" if len(done) > 10 else "")
    state = f"its partial outputs were removed; finished images: {finished or 'none'}"
    if isinstance(exc, Interrupted):
        return Interrupted(f"{exc}; {state}; continue with --skip-existing")
    if isinstance(exc, UnetkitError):
        return type(exc)(f"{exc.problem}; {state}", path=exc.path,
                         fix=(exc.fix + "; then " if exc.fix else "") + "continue the batch with --skip-existing")
    assert isinstance(exc, OSError)
    return UnetkitError(f"could not write the outputs of {record.source}: {exc.strerror or exc}; {state}",
                        path=out_dir, fix="free space or fix permissions, then continue with --skip-existing")


def check_fits_predictor(shape: PlaneShape, predictor: Predictor, path: Path) -> None:
    """Raise unless the image's channels and size suit the model."""
    if shape.channels != predictor.in_channels:
        raise InputError(
            f"image has {shape.channels} channel(s), the model takes {predictor.in_channels}",
            path=path,
            fix="convert the image (grey or RGB as the training images were), or use a model trained on such images",
        )
    minimum = predictor.size_rule.step  # mirroring an image up to one pooling window works; below, it is noise
    if min(shape.height, shape.width) < minimum:
        raise InputError(
            f"image is {shape.height}x{shape.width}, smaller than the network's minimum side {minimum}",
            path=path,
            fix="upsample the image, or use a model with fewer levels (unetkit train --depth)",
        )


def _predict_one(
    loaded: LoadedPredictor, name: str, raw: np.ndarray, image: np.ndarray, record: PredictionRecord,
    options: PredictOptions, replace: bool, report: Report,
) -> None:
    predictor, task = loaded.predictor, loaded.task
    height, width = image.shape[-2:]
    if max(height, width) > options.tile.tile_size:
        report(f"{name}: {height}x{width} is larger than the tile size {options.tile.tile_size}: predicting tile by tile")
    if options.probabilities_on_disk:
        _predict_to_disk(loaded, raw, image, record, options.tile, replace)
        return
    probabilities = predict_tiled(predictor, image, options.tile)
    _write_task_outputs(task, raw, image, task.labels(probabilities), record, replace)
    if record.probabilities is not None:
        import tifffile

        atomic_write(
            record.probabilities,
            lambda target: tifffile.imwrite(target, probabilities, photometric="minisblack", compression="zlib"),
            overwrite=replace,
        )


def _write_task_outputs(
    task: Task, raw: np.ndarray, image: np.ndarray, labels: np.ndarray, record: PredictionRecord, replace: bool
) -> None:
    files = {kind: path for kind, path in record.outputs.items() if kind != "probabilities"}
    task.write_outputs(files, raw, image, labels, replace)


def _labels_in_bands(task: Task, outputs: np.ndarray, band: int = 1024) -> np.ndarray:
    """The task's labels of (K, H, W) outputs, computed band by band (no float image in RAM)
    where each pixel's label depends on its own outputs alone (semantic); objects need the
    whole image at once."""
    if not task.pixelwise:
        return task.labels(np.asarray(outputs))
    first = task.labels(np.asarray(outputs[:, :band]))
    labels = np.empty(outputs.shape[-2:], first.dtype)
    labels[:band] = first
    for top in range(band, labels.shape[0], band):
        labels[top : top + band] = task.labels(np.asarray(outputs[:, top : top + band]))
    return labels


def _predict_to_disk(
    loaded: LoadedPredictor, raw: np.ndarray, image: np.ndarray, record: PredictionRecord, tile: TileOptions,
    replace: bool,
) -> None:
    """Probabilities accumulate in a memory-mapped (Big)TIFF next to the output, renamed when done."""
    assert record.probabilities is not None
    temporary = record.probabilities.with_name(f".{record.probabilities.stem}.partial.tif")
    try:
        probabilities = open_probability_memmap(temporary, (loaded.predictor.num_outputs, *image.shape[-2:]))
        predict_tiled(loaded.predictor, image, tile, output=probabilities)
        labels = _labels_in_bands(loaded.task, probabilities)
        probabilities.flush()
        del probabilities
        _write_task_outputs(loaded.task, raw, image, labels, record, replace)
        ensure_can_write(record.probabilities, replace)
        os.replace(temporary, record.probabilities)
    finally:
        temporary.unlink(missing_ok=True)
