"""Predicting one image plane larger than memory: read, computed and written region by region.

:func:`predict_large` never holds the whole image, nor its outputs:

1. the input is read lazily (:func:`~unetkit.data.chunked.open_image`: a (Big)TIFF, tiled or
   pyramidal OME-TIFF, or OME-Zarr), normalised with statistics from a bounded sample of it;
2. the tiler yields finished full-width bands (:func:`~unetkit.tiling.tiled_bands`), about two
   tile heights at a time;
3. a pixelwise task (semantic) turns each band into labels at once; an instance task first
   stores the outputs on disk (a temporary zarr array), then finds objects block by block
   (:func:`~unetkit.instances.blocks.label_in_blocks`);
4. labels go into a temporary zarr array, from which the task writes its files band by band:
   the label image (tiled BigTIFF, or OME-Zarr with a pyramid), the objects table, and an
   overlay downscaled to at most 8,192 px on its longer side
   (:func:`~unetkit.visualize.overlay_picture`).

The temporary arrays live in a ``.<name>.<host>-<pid>.*.partial-work`` folder beside the outputs and are
removed at the end, whatever happens. What is held grows only with the image's width (two
tile heights of it in the tiler, bands of at most 16 Mpixel for the overlay): the whole
command peaked at 0.96 GiB on a 16,384 x 16,384 uint16 image (BENCHMARKS.md, "Beyond RAM").

>>> import tempfile, tifffile, numpy as np
>>> from unetkit.model import UNet
>>> from unetkit.inference.loading import LoadedPredictor
>>> from unetkit.inference.predictor import TorchPredictor
>>> from unetkit.data.dataset import DataOptions
>>> from unetkit.tasks import SemanticTask
>>> folder = Path(tempfile.mkdtemp())
>>> tifffile.imwrite(folder / "big.tif", np.random.randint(0, 255, (300, 200), np.uint8), tile=(64, 64))
>>> loaded = LoadedPredictor(TorchPredictor(UNet(depth=2, base_width=2)), DataOptions(), SemanticTask())
>>> files = {"labels": folder / "big_labels.tif"}
>>> predict_large(loaded, folder / "big.tif", 0, files, TileOptions(tile_size=64))
>>> tifffile.imread(folder / "big_labels.tif").shape
(300, 200)
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .data.chunked import NormalizedImage, is_zarr, open_image, pixel_size
from .data.io import TIFF_SUFFIXES, read_planes
from .data.partials import temporary_folder
from .data.writers import write_ome_zarr, write_tiled_tiff
from .errors import InputError
from .inference.input_notes import input_notes
from .inference.loading import LoadedPredictor
from .instances.blocks import label_in_blocks
from .instances.task import size_emptied_note
from .tiling import TileOptions, tiled_bands


class _RawView:
    """The image as read, sliced by rows: ``view[top:bottom]`` is ``(h, W[, C])``."""

    def __init__(self, reader):
        self.reader = reader
        self.dtype = reader.dtype
        self.shape = (reader.height, reader.width) if reader.channels == 1 else \
            (reader.height, reader.width, reader.channels)

    def __getitem__(self, rows: slice) -> np.ndarray:
        region = self.reader.read(rows.start or 0, rows.stop, 0, self.reader.width)
        return region[..., 0] if self.reader.channels == 1 else region


class _AsType:
    """An array-like read as another integer type (labels that fit a narrower one)."""

    def __init__(self, array, dtype):
        self.array, self.dtype, self.shape = array, np.dtype(dtype), array.shape

    def __getitem__(self, key) -> np.ndarray:
        return np.asarray(self.array[key]).astype(self.dtype)


def predict_large(
    loaded: LoadedPredictor, path: Path, plane: int, files: dict[str, Path], tile: TileOptions,
    replace: bool = False, kept_labels: Path | None = None, report: Callable[[str], None] = print,
) -> None:
    """Write the task's outputs (``files``, by kind; plus ``probabilities`` if asked) for one
    plane of an image file, in bounded memory (see the module docstring). ``kept_labels``: the label image an
    earlier run wrote (``--skip-existing`` keeps it), which the objects table and overlay then describe."""
    import zarr

    predictor, task = loaded.predictor, loaded.task
    reader = open_image(path, plane)
    image = NormalizedImage(reader, loaded.data_options.normalization)
    for note in input_notes(loaded.data_options.normalization, path.name, image.input_range, reader.dtype):
        report(note)
    height, width = reader.height, reader.width
    size = pixel_size(path)
    kept = _kept_label_view(kept_labels, (height, width)) if kept_labels is not None else None
    work = temporary_folder(Path(next(iter(files.values()))), suffix=".partial-work")  # beside the outputs
    try:
        chunks = (min(1024, height), min(1024, width))
        labels = zarr.open_array(str(work / "labels.zarr"), mode="w", shape=(height, width),
                                 dtype=np.uint16 if task.pixelwise and task.num_outputs >= 256 else
                                 np.uint8 if task.pixelwise else np.uint32, chunks=chunks)
        keep_outputs = (not task.pixelwise and kept is None) or "probabilities" in files
        outputs = zarr.open_array(str(work / "outputs.zarr"), mode="w", dtype=np.float32,
                                  shape=(predictor.num_outputs, height, width),
                                  chunks=(1, *chunks)) if keep_outputs else None
        for top, band in tiled_bands(predictor, image, tile) if keep_outputs or kept is None else ():
            rows = slice(top, top + band.shape[1])
            if outputs is not None:
                outputs[:, rows, :] = band
            if task.pixelwise and kept is None:
                labels[rows, :] = task.labels(band)
        notes: list[str] = []
        written = labels
        if kept is not None:
            written = kept
        elif not task.pixelwise:
            count = label_in_blocks(outputs, labels, task, notes=notes)
            written = labels if count >= 2**16 else _AsType(labels, np.uint16)  # as in memory: uint16 if it fits
            if count == 0 and task.min_size > 1:  # as in memory: an image the minimum size emptied says so
                unfiltered = zarr.open_array(str(work / "unfiltered.zarr"), mode="w", shape=(height, width),
                                             dtype=np.uint32, chunks=chunks)
                found = label_in_blocks(outputs, unfiltered, dataclasses.replace(task, min_size=1))
                if found:
                    report(size_emptied_note(str(path), found, task.min_size))
            for note in notes:
                report(f"{path}: {note}")
        task_files = {kind: path for kind, path in files.items() if kind != "probabilities"}
        task.write_outputs(task_files, _RawView(reader), image, written, replace, pixel_size=size)
        if "probabilities" in files and outputs is not None:
            target = Path(files["probabilities"])
            if target.name.endswith(".zarr"):
                write_ome_zarr(target, outputs, labels=False, pixel_size=size, overwrite=replace)
            else:
                write_tiled_tiff(target, outputs, pixel_size=size, overwrite=replace, compression=None)
    except BaseException:
        remove_folder(work, settle_s=0.25)  # a stop (Ctrl-C) may leave a zarr write in flight
        raise
    else:
        shutil.rmtree(work, ignore_errors=True)  # every write has returned


def remove_folder(folder: Path, settle_s: float, give_up_s: float = 5.0) -> None:
    """Remove ``folder`` and what is in it, again while something still writes into it, until it has stayed gone
    for ``settle_s``: a stop (Ctrl-C) can land while zarr's own I/O thread finishes a chunk, which then reappears
    after the first removal (2 stops in 10 left a folder of float outputs behind, the whole image's worth at worst)."""
    deadline = time.monotonic() + give_up_s
    while True:
        shutil.rmtree(folder, ignore_errors=True)
        time.sleep(settle_s)
        if not folder.exists() or time.monotonic() > deadline:
            return


def kept_labels(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """The label image an earlier run wrote (``--skip-existing`` keeps it), whole, checked to be this image's."""
    labels = read_planes(path)[0]
    labels = labels[..., 0] if labels.ndim == 3 and labels.shape[-1] == 1 else labels
    if labels.shape != tuple(shape):
        raise _not_this_images(path, labels.shape, shape)
    return labels


def _kept_label_view(path: Path, shape: tuple[int, int]) -> _RawView | np.ndarray:
    """The kept label image, read band by band (a TIFF or OME-Zarr; other files whole: :func:`kept_labels`),
    checked to be this image's size."""
    if not (is_zarr(path) or path.suffix.lower() in TIFF_SUFFIXES):
        return kept_labels(path, shape)
    reader = open_image(path)
    found = (reader.height, reader.width) if reader.channels == 1 else (reader.height, reader.width, reader.channels)
    if found != tuple(shape):
        raise _not_this_images(path, found, shape)
    return _RawView(reader)


def _not_this_images(path: Path, found: tuple[int, ...], shape: tuple[int, ...]) -> InputError:
    return InputError(f"the label image kept from an earlier run is {tuple(found)}, not this image's {tuple(shape)}",
                      path=path, fix="pass --overwrite to redo it, or choose another --out")
