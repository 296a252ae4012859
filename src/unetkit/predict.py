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

import collections
import concurrent.futures
import contextlib
import dataclasses
import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
from tqdm import tqdm

from .cores import spare_core as spare_core_on
from .data.dataset import load_image_planes
from .data.io import (
    PlaneShape,
    check_output_folder,
    ensure_can_write,
    image_stem,
    is_image_file,
    plane_shape,
)
from .data.memory import check_fits_in_memory, fits_in_memory
from .data.pairing import image_files
from .data.partials import sweep_stale
from .data.sample import resolve_data_source
from .errors import ConfigError, InputError, OutputExistsError, UnetkitError
from .inference.loading import BACKENDS, LoadedPredictor, load_predictor, with_object_options
from .inference.input_notes import input_notes
from .inference.predictor import Predictor, check_fits_predictor
from .instances.task import InstanceTask
from .signals import Interrupted, raise_on_stop_signals
from .data.chunked import is_zarr, pixel_size
from .data.writers import LARGE_PIXELS, write_ome_zarr, write_tiled_tiff
from .predict_large import kept_labels, predict_large
from .tasks import LABEL_FORMATS, Task
from .tiling import TileOptions, plan_tiles, predict_tiled

Report = Callable[[str], None]


@dataclass(frozen=True)
class PredictOptions:
    """How :func:`predict_files` tiles, runs and writes: ``unetkit predict``'s options (each field's comment
    says what it does). Options that contradict each other are refused when made.

    >>> PredictOptions(tile=TileOptions(tile_size=256), label_format="tif").tile.overlap_pixels(256)
    64
    >>> PredictOptions(overwrite=True, skip_existing=True)
    Traceback (most recent call last):
    ...
    unetkit.errors.ConfigError: --overwrite and --skip-existing contradict each other
      fix: choose one
    """

    tile: TileOptions = field(default_factory=TileOptions)
    overlay: bool = True
    probabilities: bool = False
    probabilities_on_disk: bool = False  # predict region by region, outputs on disk (images larger than RAM)
    label_format: str = "png"  # png, tif or ome-zarr (images past LARGE_PIXELS: tif instead of png)
    overwrite: bool = False
    skip_existing: bool = False  # skip images whose outputs all exist (continue a stopped batch)
    precision: str = "auto"
    device: str = "auto"
    backend: str = "torch"  # torch or onnxruntime
    shard: tuple[int, int] | None = None  # (i, N): files i, i + N, ... (default: torchrun's rank and world size)
    min_object_size: int | None = None  # instance models: drop smaller objects (default: the model's setting)
    overlap: bool | None = None  # read ahead and write behind in threads (None: where a core is idle; see spare_core)
    progress: bool = True  # a bar over the images on stderr, with the time left (--no-progress: none)

    def __post_init__(self) -> None:
        if self.shard is not None and not (self.shard[1] >= 1 and 0 <= self.shard[0] < self.shard[1]):
            raise ConfigError(f"shard {self.shard[0]}/{self.shard[1]} does not exist",
                              fix="give --shard I/N with 0 <= I < N (SLURM: $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT)")
        if self.label_format not in LABEL_FORMATS:
            raise ConfigError(f"label format must be one of {', '.join(LABEL_FORMATS)}, got {self.label_format!r}")
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.min_object_size is not None and self.min_object_size < 1:
            raise ConfigError(f"--min-object-size must be at least 1 pixel, got {self.min_object_size}")
        if self.overwrite and self.skip_existing:
            raise ConfigError("--overwrite and --skip-existing contradict each other", fix="choose one")


@dataclass
class PredictionRecord:
    """One image plane's source and its output files, by kind (labels, overlay, probabilities)."""

    source: str
    outputs: dict[str, Path]
    image_path: Path | None = None
    kept: frozenset[str] = frozenset()  # kinds whose files exist and stay (--skip-existing, a partial set)

    @property
    def to_write(self) -> dict[str, Path]:
        """The outputs this run writes: all but the :attr:`kept` ones."""
        return {kind: path for kind, path in self.outputs.items() if kind not in self.kept}

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
        """Remove the outputs written so far (never a :attr:`kept` one); one that cannot be (a disk
        turned read-only) stays, and :meth:`existing` then names it."""
        for path in self.to_write.values():
            if path.is_dir() and not path.is_symlink():  # an OME-Zarr output
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    path.unlink(missing_ok=True)


@dataclass(frozen=True)
class _Job:
    image_path: Path
    plane_index: int
    shape: PlaneShape
    stem: str
    file_fits: bool = True  # whether the file's planes, decoded together, fit in the memory free when it was planned


def input_folders(inputs: list[str | Path]) -> list[Path | None]:
    """For each input, the folder whose images it stands for (its ``images/`` if it has one);
    None for a file or an OME-Zarr image."""
    folders: list[Path | None] = []
    for item in inputs:
        path, sample_mode = resolve_data_source(item)
        if sample_mode is not None:
            path = path / "images"
        folders.append((path / "images" if (path / "images").is_dir() else path)
                       if path.is_dir() and not is_zarr(path) else None)
    return folders


def collect_inputs(inputs: list[str | Path]) -> list[Path]:
    """Image files from files, folders and ``sample:SPLIT`` names, in order."""
    files: list[Path] = []
    for item, folder in zip(inputs, input_folders(inputs)):
        path, _ = resolve_data_source(item)
        if folder is not None:
            files.extend(image_files(folder))
        elif path.is_file() or is_zarr(path):
            files.append(path)
        else:
            raise InputError("input not found", path=path)
    if not files:
        raise InputError("no input images given")
    return files


def case_key(name: str) -> str:
    """``name`` as a case-insensitive file system compares it: each letter by its one-letter capital (Windows'
    upcase table), not by ``str.casefold``, which also folds ß into ss and ligatures into letters: Windows holds
    Straße.tif and STRASSE.tif apart.

    >>> case_key("a_001") == case_key("A_001"), case_key("Straße") == case_key("STRASSE")
    (True, False)
    """
    return "".join(letter.upper() if len(letter.upper()) == 1 else letter for letter in name)


def check_unique_stems(files_or_stems: list[Path] | list[str]) -> None:
    """Raise if two inputs (files, or image planes by their stems) would write outputs of the same name."""
    stems = [image_stem(item) if isinstance(item, Path) else item for item in files_or_stems]
    counts = collections.Counter(case_key(stem) for stem in stems)  # macOS and Windows: A_labels.tif is a_labels.tif
    duplicates = sorted({stem for stem in stems if counts[case_key(stem)] > 1})
    if not duplicates:
        return
    files = [item for item in files_or_stems
             if isinstance(item, Path) and case_key(image_stem(item)) == case_key(duplicates[0])]
    if len(files) > 1 and len({same.resolve() for same in files}) == 1:
        raise InputError(f"the same image is given {len(files)} times", path=files[0],
                         fix="name each image once (a folder and a file in it name that file twice)")
    in_case_only = len(set(duplicates)) > len({case_key(stem) for stem in duplicates})
    raise InputError(
        f"several inputs would write outputs named {duplicates[:3]}"
        + (" (names that differ in case only are one file on macOS and Windows)" if in_case_only else ""),
        fix="predict files with the same name into different --out folders",
    )


def _plan_jobs(files: list[Path], predictor: Predictor) -> list[_Job]:
    """One job per image plane, each input checked against the model from its header first."""
    jobs = []
    for path in files:
        shape = plane_shape(path)
        check_fits_predictor(shape, predictor, path)
        fits = fits_in_memory(shape, np.dtype(shape.dtype), float_copies=3 * shape.count)  # decided once: free
        for index in range(shape.count):                                               # memory changes as it runs
            stem = image_stem(path) if shape.count == 1 else f"{image_stem(path)}_{index:03d}"
            jobs.append(_Job(path, index, shape, stem, fits))
    check_unique_stems([job.stem for job in jobs])
    return jobs


#: the stem of a stack's plane output: the file's stem, ``_``, the plane's number (``a_001``)
PLANE_STEM = re.compile(r"^(?P<base>.+)_(?P<plane>\d{3,})$")


def check_kept_outputs_are_this_images(jobs: list[_Job], records: list[PredictionRecord]) -> None:
    """Refuse to keep (``--skip-existing``) outputs that another image in the same folder writes under the same name:
    plane 1 of a stack ``a.tif`` and a file ``a_001.tif`` both write ``a_001_*``, and predicted by two commands
    into one folder, the second would keep the first's outputs as its own. (Within one command
    :func:`check_unique_stems` refuses them already.)"""
    listings: dict[Path, dict[str, list[Path]]] = {}
    for job, record in zip(jobs, records):
        if not record.existing():
            continue
        folder = job.image_path.parent
        if folder not in listings:
            by_stem: dict[str, list[Path]] = collections.defaultdict(list)
            for sibling in folder.iterdir():
                if is_image_file(sibling) or is_zarr(sibling):
                    by_stem[image_stem(sibling)].append(sibling)
            listings[folder] = by_stem
        other = _other_writer(job, listings[folder])
        if other is not None:
            raise InputError(
                f"outputs named {job.stem} exist, and {other} beside this image writes outputs of that name too: "
                "which of the two wrote them cannot be told", path=job.image_path,
                fix="predict these images into separate --out folders (or remove the outputs and predict again)")


def _other_writer(job: _Job, by_stem: dict[str, list[Path]]) -> str | None:
    """The other image (a stack's plane, or a file) whose outputs take ``job``'s name, or None."""
    if job.shape.count > 1:  # a stack's plane: a file named as the plane is
        files = [path for path in by_stem.get(job.stem, []) if path != job.image_path]
        return files[0].name if files else None
    match = PLANE_STEM.match(job.stem)
    if match is None:
        return None
    plane = int(match["plane"])
    if job.stem != f"{match['base']}_{plane:03d}":  # a_0001 is no plane's name: planes are a_001, a_1000
        return None
    for stack in by_stem.get(match["base"], []):
        try:
            if plane_shape(stack).count > plane:
                return f"plane {plane} of {stack.name}"
        except UnetkitError:
            continue
    return None


def is_large(job: _Job, options: PredictOptions) -> bool:
    """Whether a plane is predicted region by region (:mod:`unetkit.predict_large`): on every machine
    (:func:`is_large_anywhere`), or in a file whose planes together do not fit in free memory (a long movie: the
    in-memory path reads a file's planes at once)."""
    return is_large_anywhere(job, options) or (_chunkable(job) and not job.file_fits)


def is_large_anywhere(job: _Job, options: PredictOptions) -> bool:
    """Whether a plane is predicted region by region whatever the machine's free memory: above
    :data:`~unetkit.data.writers.LARGE_PIXELS` pixels (8,192 x 8,192), or on request (``--probabilities-on-disk``),
    in a file that can be read in chunks (TIFF, OME-Zarr)."""
    return _chunkable(job) and (options.probabilities_on_disk or job.shape.height * job.shape.width > LARGE_PIXELS)


def _chunkable(job: _Job) -> bool:
    return job.image_path.suffix.lower() in (".tif", ".tiff") or is_zarr(job.image_path)


def _record(job: _Job, out_dir: Path, options: PredictOptions, task: Task) -> PredictionRecord:
    label_format = options.label_format
    if label_format == "png" and is_large_anywhere(job, options):
        # a PNG is written whole; a tiled TIFF band by band. Not by the memory free now (a movie that does not fit
        # is predicted region by region): the same command must name its outputs the same, or a --skip-existing
        # resume on a busier machine redoes them beside the first ones
        label_format = "tif"
    files = task.output_files(job.stem, label_format, options.overlay)
    outputs = {kind: out_dir / name for kind, name in files.items()}
    if options.probabilities or options.probabilities_on_disk:
        ending = "ome.zarr" if options.label_format == "ome-zarr" else "tif"
        outputs["probabilities"] = out_dir / f"{job.stem}_probabilities.{ending}"
    source = f"{job.image_path}" + (f"[{job.plane_index}]" if job.shape.count > 1 else "")
    return PredictionRecord(source, outputs, job.image_path)


def check_out_is_not_an_input_folder(inputs: list[str | Path], out_dir: Path) -> None:
    """Outputs written among the input images would be read as images by the next command
    over that folder (a ``--skip-existing`` resume among them)."""
    for folder in input_folders(inputs):
        if folder is not None and folder.resolve() == out_dir.resolve():
            raise ConfigError("--out is the folder of the input images: the next command over that folder "
                              "would read the outputs as images", path=out_dir, fix="choose another --out")


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


def _select(records: list[PredictionRecord], options: PredictOptions,
            report: Report) -> list[PredictionRecord | None]:
    """The records to predict (None: skipped), each knowing which of its outputs it keeps; raise
    before any work if one would overwrite without consent. With ``--skip-existing`` an image with
    some of its outputs (a batch stopped between them, or another output asked for now) gets the
    missing ones only: no file is replaced without ``--overwrite``."""
    todo: list[PredictionRecord | None] = []
    partial = 0
    for record in records:
        existing = record.existing()
        if options.skip_existing and len(existing) == len(record.outputs):
            todo.append(None)
            continue
        if options.skip_existing and existing:
            record = dataclasses.replace(record, kept=frozenset(kind for kind, path in record.outputs.items()
                                                                if path in existing))
            partial += 1
        elif existing and not options.overwrite:
            for path in existing:  # a link or a device in the way is said as such, not as "pass --overwrite"
                ensure_can_write(path, overwrite=True, zarr_folder=True)
            raise OutputExistsError(
                "output exists already", path=existing[0],
                fix="pass --skip-existing to continue a stopped batch, --overwrite to redo it, "
                    "or choose another --out",
            )
        for path in record.to_write.values():
            ensure_can_write(path, overwrite=True, zarr_folder=True)  # a folder in the way, an unwritable folder
        todo.append(record)
    skipped = todo.count(None)
    if skipped:
        report(f"skipping {skipped} image(s) whose outputs all exist (--skip-existing)")
    if partial:
        report(f"{partial} image(s) have some of their outputs: only the missing ones are written, the others "
               "kept as they are (--overwrite redoes them)")
    return todo


def predict_files(
    checkpoint: str | Path,
    inputs: list[str | Path] | str | Path,
    out_dir: str | Path,
    options: PredictOptions = PredictOptions(),
    report: Report = lambda text: tqdm.write(text, file=sys.stderr),
) -> list[PredictionRecord]:
    """Predict every image plane of ``inputs`` into ``out_dir``; returns the records written now.

    Reading the next file, predicting the current one and writing the previous one's outputs
    overlap (two helper threads) where that pays: on a GPU, or where the CPU has a core that
    the network's threads leave idle (:func:`spare_core`; ``options.overlap`` decides
    otherwise). Under ``torchrun`` (or with ``options.shard``) this process
    predicts its share of the files only: files ``i, i + N, i + 2N, ...`` for shard i of N.

    >>> import tempfile, tifffile
    >>> from unetkit.checkpoint import make_checkpoint, save_checkpoint
    >>> from unetkit.model import UNet
    >>> folder = Path(tempfile.mkdtemp())
    >>> save_checkpoint(folder / "m.pt", make_checkpoint(UNet(depth=2, base_width=2)))
    >>> tifffile.imwrite(folder / "cells.tif", np.random.default_rng(0).integers(0, 255, (2, 48, 64), np.uint8))
    >>> options = PredictOptions(label_format="tif", overlay=False, progress=False)
    >>> records = predict_files(folder / "m.pt", folder / "cells.tif", folder / "out", options)
    >>> [record.labels.name for record in records], tifffile.imread(records[0].labels).shape
    (['cells_000_labels.tif', 'cells_001_labels.tif'], (48, 64))
    >>> again = dataclasses.replace(options, skip_existing=True)  # continue a stopped batch: nothing left to do
    >>> predict_files(folder / "m.pt", folder / "cells.tif", folder / "out", again, report=print)
    skipping 2 image(s) whose outputs all exist (--skip-existing)
    []
    """
    if isinstance(inputs, (str, Path)):  # one image or folder: not a list of its characters
        inputs = [inputs]
    out_dir = Path(out_dir)
    check_output_folder(out_dir)
    loaded = load_predictor(checkpoint, backend=options.backend, device=options.device, precision=options.precision)
    loaded = with_object_options(loaded, checkpoint, options.min_object_size)
    files = collect_inputs(inputs)
    index, count = options.shard or shard_from_environment()
    check_unique_stems(files)  # over all shards: two shards must not write the same names
    mine = files[index::count]
    jobs = _plan_jobs(mine, loaded.predictor) if mine else []
    records = [_record(job, out_dir, options, loaded.task) for job in jobs]
    check_outputs_are_not_inputs(records, files)
    check_out_is_not_an_input_folder(inputs, out_dir)
    if options.skip_existing:
        check_kept_outputs_are_this_images(jobs, records)
    todo = _select(records, options, report)
    if count > 1:
        report(f"shard {index + 1} of {count}: {len(mine)} of {len(files)} file(s)")
    made_here = not out_dir.exists() and count == 1  # shards share the folder: none removes it
    out_dir.mkdir(parents=True, exist_ok=True)
    sweep_stale(out_dir)  # what a run killed outright (SIGKILL) left half-written here
    wanted = [(job, record) for job, record in zip(jobs, todo) if record is not None]
    in_memory = [None if is_large(job, options) else job.image_path for job, _ in wanted]
    overlap = spare_core(loaded) if options.overlap is None else options.overlap
    bar = tqdm(total=len(wanted), unit="image", desc="predict", file=sys.stderr, dynamic_ncols=True,
               disable=not options.progress or shard_from_environment()[0] != 0, leave=False)  # torchrun: rank 0's
    try:
        with raise_on_stop_signals(), _Pipeline(loaded, options, out_dir, report, overlap) as pipeline:
            for (job, record), following in zip(wanted, next_different(in_memory)):
                upcoming = [job.image_path] + ([following] if following is not None else [])
                pipeline.predict(job, record, upcoming=upcoming)
                bar.update()
    except BaseException:
        if made_here:
            _remove_if_empty(out_dir)  # a batch that failed on its first image leaves no empty folder behind
        raise
    finally:
        bar.close()
    return pipeline.done


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()  # refuses a folder that holds anything
    except OSError:
        pass


def next_different(paths: list[Path | None]) -> list[Path | None]:
    """For each position, the first later path that is not None and differs from this one's
    (the file to read ahead), in one pass from the end: a batch of thousands of files stays
    linear (asking each job for all the files after it cost a batch of 2,000 files 17 s).

    >>> next_different(["a", "a", None, "b", "c", None])
    ['b', 'b', 'b', 'c', None, None]
    """
    result: list[Path | None] = [None] * len(paths)
    nearest: Path | None = None  # the first non-None path after the current position
    beyond: Path | None = None  # the first non-None path after the run of ``nearest``
    for index in range(len(paths) - 1, -1, -1):
        path = paths[index]
        result[index] = nearest if nearest != path else beyond
        if path is not None and path != nearest:
            beyond, nearest = nearest, path
    return result


def shard_from_environment() -> tuple[int, int]:
    """(this process's rank, world size) under torchrun; (0, 1) otherwise."""
    return int(os.environ.get("RANK", "0")), max(1, int(os.environ.get("WORLD_SIZE", "1")))


def spare_core(loaded: LoadedPredictor) -> bool:
    """Whether reading and writing in helper threads can overlap the network
    (:func:`unetkit.cores.spare_core` on the predictor's device: a GPU, or more usable cores
    than torch's threads). ``PredictOptions(overlap=...)`` decides instead.

    >>> import torch
    >>> from unetkit.cores import usable_cores
    >>> on_the_cpu = LoadedPredictor(predictor=None, data_options=None, task=None)
    >>> spare_core(on_the_cpu) == (usable_cores() > torch.get_num_threads())
    True
    """
    device = getattr(loaded.predictor, "device", None)
    return spare_core_on(getattr(device, "type", "cpu"))


class _InlineExecutor:
    """An executor that does the work when it is submitted: the pipeline without helper threads."""

    def submit(self, function: Callable[..., Any], *args: Any) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        try:
            future.set_result(function(*args))
        except BaseException as error:  # noqa: BLE001 (kept for the caller, as a thread pool does)
            future.set_exception(error)
        return future

    def shutdown(self, wait: bool = True) -> None:
        pass


class _Pipeline:
    """Reads ahead in one thread, writes behind in another, predicts in the caller's (or, with
    ``overlap=False``, does each in turn in the caller's); keeps the promise of the module: a
    record is in ``done`` only once all its outputs are written, and the outputs of a record
    that failed are removed."""

    def __init__(self, loaded: LoadedPredictor, options: PredictOptions, out_dir: Path, report: Report,
                 overlap: bool = True):
        from concurrent.futures import ThreadPoolExecutor

        self.loaded, self.options, self.out_dir, self.report = loaded, options, out_dir, report
        self.overlap = overlap
        self.reader = ThreadPoolExecutor(1, thread_name_prefix="unetkit-read") if overlap else _InlineExecutor()
        self.writer = ThreadPoolExecutor(1, thread_name_prefix="unetkit-write") if overlap else _InlineExecutor()
        self.reads: dict[Path, Any] = {}
        self.writing: tuple[PredictionRecord, Any] | None = None
        self.done: list[PredictionRecord] = []

    def __enter__(self) -> _Pipeline:
        return self

    def __exit__(self, kind: Any, error: Any, traceback: Any) -> None:
        try:
            self._close(finish=error is None)
        except Interrupted as arrived:  # a signal while the write in progress ended or the threads shut down
            if error is None:
                if isinstance(arrived, BatchInterrupted):  # the write in progress said what is finished
                    raise
                error = arrived  # after every image
            elif not isinstance(error, Interrupted):
                return  # the batch's own error (a failed write, a bad file) stands: the stop is not its cause
        if isinstance(error, Interrupted) and not isinstance(error, BatchInterrupted):
            # a signal between two images (the loop's own steps, a write being handed over) or after the
            # last: nothing is half-made, and the write in progress has ended
            raise BatchInterrupted(f"{error}; finished images: {_finished(self.done)}; continue with "
                                   "--skip-existing") from error

    def _close(self, finish: bool) -> None:
        """End the write in progress (``finish``: an error there stops the batch), then the threads."""
        try:
            if finish:
                self._finish_write()
            else:
                self._settle_write()
        except BaseException:
            with contextlib.suppress(Interrupted):  # a signal now must not hide the write's own error
                self._end_threads()
            raise
        self._end_threads()

    def _end_threads(self) -> None:
        for future in self.reads.values():
            future.cancel()
        try:
            self.reader.shutdown(wait=True)
        finally:  # a signal while the reader ends still lets the writer end
            self.writer.shutdown(wait=True)

    def _read(self, job: _Job) -> Any:
        check_fits_in_memory(job.shape, np.dtype(job.shape.dtype), job.image_path, float_copies=3 * job.shape.count,
                             fix="save it as a tiled (Big)TIFF or OME-Zarr and predict it in chunks")
        return load_image_planes(job.image_path, self.loaded.data_options.normalization)

    def _planes(self, job: _Job, upcoming: list[Path]) -> list:
        """The planes of the job's file; ``upcoming``: the files still to predict in memory, in order
        (this one first). Files done are let go; the next one is read while this one is predicted."""
        if job.image_path not in self.reads:
            self.reads[job.image_path] = self.reader.submit(self._read, job)
        for path in list(self.reads):
            if path not in upcoming:
                del self.reads[path]  # a file whose planes are all done
        following = [path for path in upcoming if path != job.image_path]
        if self.overlap and following and following[0] not in self.reads:
            self.reads[following[0]] = self.reader.submit(self._read, _next_job_like(job, following[0]))
        return self.reads[job.image_path].result()

    def predict(self, job: _Job, record: PredictionRecord, upcoming: list[Path]) -> None:
        options = self.options
        replace = options.overwrite  # --skip-existing writes only the missing outputs (record.to_write)
        try:
            if is_large(job, options):
                self._finish_write()
                self.report(f"{record.source}: {job.shape.height}x{job.shape.width}, predicted region by region")
                predict_large(self.loaded, job.image_path, job.plane_index, record.to_write, options.tile, replace,
                              kept_labels=record.labels if "labels" in record.kept else None, report=self.report)
                self.done.append(record)
                return
            name, raw, image = self._planes(job, upcoming)[job.plane_index]
            height, width = image.shape[-2:]
            self._say_tiles(name, height, width)
            for note in input_notes(self.loaded.data_options.normalization, name, image, raw.dtype):
                self.report(note)
            outputs = predict_tiled(self.loaded.predictor, image, options.tile)
            labels = self.loaded.task.labels(outputs)
            if "labels" in record.kept:  # the overlay and object table added now describe the labels kept
                labels = kept_labels(record.labels, labels.shape)
            self._say_if_size_emptied(name, outputs, labels)
        except (OSError, UnetkitError, Interrupted) as exc:
            self._settle_write()
            record.remove()
            raise _batch_error(exc, record, self.done, self.out_dir) from exc
        self._finish_write()
        self.writing = (record, self.writer.submit(_write_outputs, self.loaded.task, raw, image, labels, outputs,
                                                   record, replace))
        if not self.overlap:  # written already: report a failure (or a signal) now, not after the next image
            self._finish_write()

    def _say_tiles(self, name: str, height: int, width: int) -> None:
        """An image cut into tiles says into how many, of which size: a tile count in the thousands
        (``--overlap 0.99``, a tiny ``--tile-size``) is then seen, not a bar that seems stuck."""
        geometry = plan_tiles(self.loaded.predictor.size_rule, height, width, self.options.tile)
        if geometry.tile_count > 1:
            self.report(f"{name}: {height}x{width}, predicted in {geometry.tile_count} tiles of "
                        f"{geometry.tile_height}x{geometry.tile_width} px (--tile-size, --overlap)")

    def _say_if_size_emptied(self, name: str, outputs: np.ndarray, labels: np.ndarray) -> None:
        """An instance image left without objects by the minimum object size says so (it is not silent)."""
        if isinstance(self.loaded.task, InstanceTask):
            note = self.loaded.task.emptied_note(name, outputs, labels)
            if note is not None:
                self.report(note)

    def _finish_write(self) -> None:
        """Wait for the write in progress; an error there stops the batch, naming that image."""
        self._end_write(raise_errors=True)

    def _settle_write(self) -> None:
        """After a failure elsewhere: let the write in progress end (it is atomic), keep it if it succeeded."""
        self._end_write(raise_errors=False)

    def _end_write(self, raise_errors: bool) -> None:
        if self.writing is None:
            return
        record, future = self.writing
        self.writing = None
        interrupted: Interrupted | None = None
        while True:  # a signal while waiting does not stop the write: wait for it to end, then report
            try:
                concurrent.futures.wait([future])
                break
            except Interrupted as signal_arrived:
                interrupted = signal_arrived
        error = future.exception()
        if isinstance(error, Interrupted):  # a signal during an inline write (overlap=False)
            interrupted = error
        if error is None:
            self.done.append(record)
        elif not isinstance(error, OutputExistsError):  # that one is another command's output: kept
            record.remove()
        if interrupted is not None:
            raise _batch_error(interrupted, record, self.done, self.out_dir)
        if error is not None and raise_errors:  # (an Interrupted was raised above)
            if isinstance(error, (OSError, UnetkitError)):
                raise _batch_error(error, record, self.done, self.out_dir) from error
            raise error


def _next_job_like(job: _Job, path: Path) -> _Job:
    """A job for reading ``path`` ahead (its header is read again for the memory check)."""
    return _Job(path, 0, plane_shape(path), job.stem)


def _write_outputs(task: Task, raw: np.ndarray, image: np.ndarray, labels: np.ndarray, outputs: np.ndarray,
                   record: PredictionRecord, replace: bool) -> None:
    files = {kind: path for kind, path in record.to_write.items() if kind != "probabilities"}
    size = pixel_size(record.image_path) if record.image_path is not None else None
    task.write_outputs(files, raw, image, labels, replace, pixel_size=size)
    probabilities = record.to_write.get("probabilities")
    if probabilities is not None:
        if probabilities.name.endswith(".zarr"):
            write_ome_zarr(probabilities, outputs, labels=False, pixel_size=size, overwrite=replace)
        else:  # as the label image: tiled, with the input's pixel size
            write_tiled_tiff(probabilities, outputs, pixel_size=size, overwrite=replace)


class BatchInterrupted(Interrupted):
    """A signal stopped a batch; the message says which images are finished."""


def _finished(done: list[PredictionRecord]) -> str:
    """The finished images, in words (the first ten by name)."""
    names = ", ".join(r.labels.name for r in done[:10]) + (f" and {len(done) - 10} more" if len(done) > 10 else "")
    return names or "none"


def _batch_error(exc: BaseException, record: PredictionRecord, done: list[PredictionRecord], out_dir: Path) -> BaseException:
    """The error of a batch that stopped at ``record``: what happened, what is finished, how to go on."""
    left = [path for path in record.existing() if path in record.to_write.values()]  # kept files are not partial
    if isinstance(exc, OutputExistsError):
        removed = "the existing file was left as it is"
    elif left:
        removed = (f"its partial outputs could not be removed ({', '.join(path.name for path in left)}; "
                   "--skip-existing writes the rest of that image)")
    else:
        removed = "its partial outputs were removed"
    state = f"{removed}; finished images: {_finished(done)}"
    if isinstance(exc, Interrupted):
        return BatchInterrupted(f"{exc}; {state}; continue with --skip-existing")
    if isinstance(exc, UnetkitError):
        return type(exc)(f"{exc.problem}; {state}", path=exc.path,
                         fix=(exc.fix + "; then " if exc.fix else "") + "continue the batch with --skip-existing")
    assert isinstance(exc, OSError)
    return UnetkitError(f"could not write the outputs of {record.source}: {exc.strerror or exc}; {state}",
                        path=out_dir, fix="free space or fix permissions, then continue with --skip-existing")
