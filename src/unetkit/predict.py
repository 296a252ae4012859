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
import signal
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from .checkpoint import load_model
from .data.dataset import DataOptions, load_image_planes
from .data.io import atomic_write, count_planes, ensure_can_write, write_image
from .data.pairing import image_files
from .data.sample import resolve_data_source
from .errors import ConfigError, InputError, UnetkitError
from .model import UNet, labels_from_probabilities
from .precision import resolve_device, resolve_precision
from .tiling import TileOptions, open_probability_memmap, predict_tiled
from .visualize import overlay

Report = Callable[[str], None]


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; finished outputs are complete, the one in progress removed.

    A KeyboardInterrupt, not an Exception, so that no ``except Exception`` on the way (a
    reader turning any failure into "cannot be read") can mistake it for bad input.
    """


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
        if self.backend not in ("torch", "onnxruntime"):
            raise ConfigError(f"backend must be torch or onnxruntime, got {self.backend!r}")


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


def _plan_jobs(files: list[Path]) -> list[_Job]:
    jobs = []
    for path in files:
        count = count_planes(path)
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


@contextmanager
def _signals_raise() -> Iterator[None]:
    """SIGTERM and SIGINT raise :class:`Interrupted` so that clean-up code runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(number: int, frame: object) -> None:
        raise Interrupted(f"interrupted by signal {signal.Signals(number).name}")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def load_predictor(checkpoint: str | Path, options: PredictOptions) -> tuple[UNet, DataOptions, torch.dtype | None]:
    """The model ready for inference (torch or ONNX Runtime backend), its data options
    (normalisation, mask mode, ignore label) and autocast dtype; predict and evaluate use it."""
    if str(checkpoint).endswith(".onnx") or options.backend == "onnxruntime":
        from .export import OnnxRuntimeModel

        if str(checkpoint).endswith(".onnx"):
            runtime = OnnxRuntimeModel.from_file(checkpoint)
        else:
            model, data_options = load_model(checkpoint)
            runtime = OnnxRuntimeModel.from_model(model, data_options)
        return runtime, runtime.data_options, None  # type: ignore[return-value]
    device = resolve_device(options.device)
    model, data_options = load_model(checkpoint, device)
    model = model.to(memory_format=torch.channels_last)
    return model, data_options, resolve_precision(options.precision, device)


def predict_files(
    checkpoint: str | Path,
    inputs: list[str | Path],
    out_dir: str | Path,
    options: PredictOptions = PredictOptions(),
    report: Report = lambda text: print(text, file=sys.stderr),
) -> list[PredictionRecord]:
    """Predict every image plane of ``inputs`` into ``out_dir``; returns what was written."""
    out_dir = Path(out_dir)
    model, data_options, autocast_dtype = load_predictor(checkpoint, options)
    normalization = data_options.normalization
    jobs = _plan_jobs(collect_inputs(inputs))
    records = [_outputs(job, out_dir, options) for job in jobs]
    for record in records:
        for path in (record.labels, record.overlay, record.probabilities):
            if path is not None:
                ensure_can_write(path, options.overwrite)
    out_dir.mkdir(parents=True, exist_ok=True)
    done: list[PredictionRecord] = []
    planes: tuple[Path | None, list] = (None, [])  # the planes of the file in hand, read once
    with _signals_raise():
        for job, record in zip(jobs, records):
            try:
                if planes[0] != job.image_path:
                    planes = (job.image_path, load_image_planes(job.image_path, normalization))
                name, _, image = planes[1][job.plane_index]
                _predict_one(model, autocast_dtype, name, image, job, record, options, report)
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


def _predict_one(
    model: UNet, autocast_dtype: torch.dtype | None, name: str, image: np.ndarray,
    job: _Job, record: PredictionRecord, options: PredictOptions, report: Report,
) -> None:
    if image.shape[0] != model.config.in_channels:
        raise InputError(
            f"image has {image.shape[0]} channel(s), the model takes {model.config.in_channels}",
            path=job.image_path,
        )
    height, width = image.shape[-2:]
    minimum = 2 ** (model.config.depth - 1)
    if min(height, width) < minimum:
        raise InputError(
            f"image is {height}x{width}, smaller than the network's minimum side {minimum}",
            path=job.image_path,
            fix="upsample the image, or train a shallower network (--depth)",
        )
    if max(height, width) > options.tile.tile_size:
        report(f"{name}: {height}x{width} is larger than the tile size {options.tile.tile_size}: predicting tile by tile")
    if options.probabilities_on_disk:
        _predict_to_disk(model, image, autocast_dtype, record, options)
        return
    probabilities = predict_tiled(model, image, options.tile, autocast_dtype=autocast_dtype)
    labels = labels_from_probabilities(torch.from_numpy(probabilities)[None])[0].numpy()
    _write_labels_and_overlay(image, labels, record, options)
    if record.probabilities is not None:
        import tifffile

        atomic_write(
            record.probabilities,
            lambda target: tifffile.imwrite(target, probabilities, photometric="minisblack", compression="zlib"),
            overwrite=options.overwrite,
        )


def _write_labels_and_overlay(image: np.ndarray, labels: np.ndarray, record: PredictionRecord, options: PredictOptions) -> None:
    labels = labels.astype(np.uint8 if labels.max(initial=0) < 256 else np.uint16)
    write_image(record.labels, labels, overwrite=options.overwrite)
    if record.overlay is not None:
        write_image(record.overlay, overlay(image, labels), overwrite=options.overwrite)


def _predict_to_disk(
    model: UNet, image: np.ndarray, autocast_dtype: torch.dtype | None, record: PredictionRecord, options: PredictOptions
) -> None:
    """Probabilities accumulate in a memory-mapped (Big)TIFF next to the output, renamed when done."""
    assert record.probabilities is not None
    temporary = record.probabilities.with_name(f".{record.probabilities.stem}.partial.tif")
    try:
        probabilities = open_probability_memmap(temporary, (model.config.num_classes, *image.shape[-2:]))
        predict_tiled(model, image, options.tile, autocast_dtype=autocast_dtype, output=probabilities)
        labels = np.empty(image.shape[-2:], np.int64)
        for top in range(0, labels.shape[0], 1024):  # labels band by band: no float image in RAM
            band = torch.from_numpy(np.asarray(probabilities[:, top : top + 1024]))[None]
            labels[top : top + 1024] = labels_from_probabilities(band)[0].numpy()
        probabilities.flush()
        del probabilities
        _write_labels_and_overlay(image, labels, record, options)
        ensure_can_write(record.probabilities, options.overwrite)
        os.replace(temporary, record.probabilities)
    finally:
        temporary.unlink(missing_ok=True)
