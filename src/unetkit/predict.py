"""Predicting files: label masks, colour overlays and (on request) probability maps.

Every output path is worked out and checked before the first prediction, so a run that
would overwrite something stops before doing anything. Each output is written atomically;
if writing fails (disk full, permissions) or the run is interrupted (SIGINT, SIGTERM),
the outputs of the image in progress are removed and the error says which images were
finished.

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
from .data.io import PlaneShape, atomic_write, ensure_can_write, plane_shape, write_image
from .data.pairing import image_files
from .data.sample import resolve_data_source
from .errors import ConfigError, InputError, UnetkitError
from .inference.loading import BACKENDS, LoadedPredictor, load_predictor
from .inference.predictor import Predictor
from .signals import Interrupted, raise_on_stop_signals
from .tasks import Task
from .tiling import TileOptions, open_probability_memmap, predict_tiled
from .visualize import overlay

Report = Callable[[str], None]


@dataclass(frozen=True)
class PredictOptions:
    tile: TileOptions = field(default_factory=TileOptions)
    overlay: bool = True
    probabilities: bool = False
    probabilities_on_disk: bool = False  # accumulate into a memory-mapped TIFF (outputs larger than RAM)
    label_format: str = "png"  # png or tif
    overwrite: bool = False
    precision: str = "auto"
    device: str = "auto"
    backend: str = "torch"  # torch or onnxruntime

    def __post_init__(self) -> None:
        if self.label_format not in ("png", "tif"):
            raise ConfigError(f"label format must be png or tif, got {self.label_format!r}")
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")


@dataclass
class PredictionRecord:
    source: str
    labels: Path
    overlay: Path | None
    probabilities: Path | None


@dataclass(frozen=True)
class _Job:
    image_path: Path
    plane_index: int
    plane_count: int
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
        count = shape.count
        for index in range(count):
            stem = path.stem if count == 1 else f"{path.stem}_{index:03d}"
            jobs.append(_Job(path, index, count, stem))
    stems = [job.stem for job in jobs]
    duplicates = sorted({s for s in stems if stems.count(s) > 1})
    if duplicates:
        raise InputError(
            f"several inputs would write outputs named {duplicates[:3]}",
            fix="predict files with the same name into different --out folders",
        )
    return jobs


def _outputs(job: _Job, out_dir: Path, options: PredictOptions) -> PredictionRecord:
    return PredictionRecord(
        source=f"{job.image_path}" + (f"[{job.plane_index}]" if job.plane_count > 1 else ""),
        labels=out_dir / f"{job.stem}_labels.{options.label_format}",
        overlay=out_dir / f"{job.stem}_overlay.png" if options.overlay else None,
        probabilities=out_dir / f"{job.stem}_probabilities.tif"
        if options.probabilities or options.probabilities_on_disk else None,
    )


def predict_files(
    checkpoint: str | Path,
    inputs: list[str | Path],
    out_dir: str | Path,
    options: PredictOptions = PredictOptions(),
    report: Report = lambda text: print(text, file=sys.stderr),
) -> list[PredictionRecord]:
    """Predict every image plane of ``inputs`` into ``out_dir``; returns what was written."""
    out_dir = Path(out_dir)
    loaded = load_predictor(checkpoint, backend=options.backend, device=options.device, precision=options.precision)
    normalization = loaded.data_options.normalization
    jobs = _plan_jobs(collect_inputs(inputs), loaded.predictor)
    records = [_outputs(job, out_dir, options) for job in jobs]
    for record in records:
        for path in (record.labels, record.overlay, record.probabilities):
            if path is not None:
                ensure_can_write(path, options.overwrite)
    out_dir.mkdir(parents=True, exist_ok=True)
    done: list[PredictionRecord] = []
    planes: tuple[Path | None, list] = (None, [])  # the planes of the file in hand, read once
    with raise_on_stop_signals():
        for job, record in zip(jobs, records):
            try:
                if planes[0] != job.image_path:
                    planes = (job.image_path, load_image_planes(job.image_path, normalization))
                name, _, image = planes[1][job.plane_index]
                _predict_one(loaded, name, image, job, record, options, report)
            except (OSError, Interrupted) as exc:
                _remove_outputs(record)
                finished = ", ".join(str(r.labels.name) for r in done) or "none"
                if isinstance(exc, Interrupted):
                    raise Interrupted(f"{exc}; finished images: {finished}") from exc
                raise UnetkitError(
                    f"could not write the outputs of {record.source}: {exc.strerror or exc}; "
                    f"its partial outputs were removed; finished images: {finished}",
                    path=out_dir,
                ) from exc
            done.append(record)
    return done


def _remove_outputs(record: PredictionRecord) -> None:
    for path in (record.labels, record.overlay, record.probabilities):
        if path is not None:
            path.unlink(missing_ok=True)


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
            fix="upsample the image, or train a shallower network (--depth)",
        )


def _predict_one(
    loaded: LoadedPredictor, name: str, image: np.ndarray,
    job: _Job, record: PredictionRecord, options: PredictOptions, report: Report,
) -> None:
    predictor, task = loaded.predictor, loaded.task
    height, width = image.shape[-2:]
    if max(height, width) > options.tile.tile_size:
        report(f"{name}: {height}x{width} is larger than the tile size {options.tile.tile_size}: predicting tile by tile")
    if options.probabilities_on_disk:
        _predict_to_disk(loaded, image, record, options)
        return
    probabilities = predict_tiled(predictor, image, options.tile)
    _write_labels_and_overlay(image, task.labels(probabilities), record, options)
    if record.probabilities is not None:
        import tifffile

        atomic_write(
            record.probabilities,
            lambda target: tifffile.imwrite(target, probabilities, photometric="minisblack", compression="zlib"),
            overwrite=options.overwrite,
        )


def _write_labels_and_overlay(image: np.ndarray, labels: np.ndarray, record: PredictionRecord, options: PredictOptions) -> None:
    write_image(record.labels, labels, overwrite=options.overwrite)
    if record.overlay is not None:
        write_image(record.overlay, overlay(image, labels), overwrite=options.overwrite)


def _labels_in_bands(task: Task, outputs: np.ndarray, band: int = 1024) -> np.ndarray:
    """The task's labels of (K, H, W) outputs, computed band by band (no float image in RAM)."""
    first = task.labels(np.asarray(outputs[:, :band]))
    labels = np.empty(outputs.shape[-2:], first.dtype)
    labels[:band] = first
    for top in range(band, labels.shape[0], band):
        labels[top : top + band] = task.labels(np.asarray(outputs[:, top : top + band]))
    return labels


def _predict_to_disk(loaded: LoadedPredictor, image: np.ndarray, record: PredictionRecord, options: PredictOptions) -> None:
    """Probabilities accumulate in a memory-mapped (Big)TIFF next to the output, renamed when done."""
    assert record.probabilities is not None
    temporary = record.probabilities.with_name(f".{record.probabilities.stem}.partial.tif")
    try:
        probabilities = open_probability_memmap(temporary, (loaded.predictor.num_outputs, *image.shape[-2:]))
        predict_tiled(loaded.predictor, image, options.tile, output=probabilities)
        labels = _labels_in_bands(loaded.task, probabilities)
        probabilities.flush()
        del probabilities
        _write_labels_and_overlay(image, labels, record, options)
        ensure_can_write(record.probabilities, options.overwrite)
        os.replace(temporary, record.probabilities)
    finally:
        temporary.unlink(missing_ok=True)
