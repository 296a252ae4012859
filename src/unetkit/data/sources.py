"""Where training patches come from: images in memory, or read from their files on demand.

A :class:`PatchSource` is one training image plane with its mask. It gives windows
(``window(top, bottom, left, right)``: the normalised image ``(C, h, w)`` and the mask ``(h, w)``,
mirrored beyond the edges) and draws patch centres on foreground. Two kinds:

- :class:`InMemorySource`: the decoded image and mask, held (the fast path, for datasets
  that fit the memory budget);
- :class:`FileSource`: nothing held but a few numbers; each window is read from the files
  (TIFF and OME-Zarr region by region; other formats whole, then cropped), normalised with
  statistics taken once from a bounded sample of the image, and its mask converted by the
  rule found when the whole mask was checked. Foreground centres come from a coarse grid
  (cells of 16 px) that holds foreground.

:func:`scan_file_sources` checks every pair as :func:`~unetkit.data.dataset.read_pair` does
(every mask whole; a sample of every image) and builds the file sources; datasets larger
than memory train through them, and under ``torchrun`` each rank reads only what it samples.

>>> image = np.arange(12, dtype=np.float32).reshape(1, 3, 4)
>>> mirrored_window(torch.from_numpy(image), -1, 2, 2, 5)[0].tolist()
[[2.0, 3.0, 3.0], [2.0, 3.0, 3.0], [6.0, 7.0, 7.0]]
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from ..errors import InputError
from ..mirror import mirror_indices
from .chunked import open_image, sample_pixels
from .dataset import (DataOptions, Sample, check_all_matched, check_image_values, check_same_plane_count,
                      note_blank_image, plane_name)
from .io import check_not_a_colour_palette, plane_shape, read_planes
from .jitter import quantile_table
from .masks import MaskRule, check_mask_matches_image, learnable_foreground, mask_rule
from .normalize import FixedScaling, to_channels_first
from .pairing import find_pairs

GRID = 16  # px: the cells of a file source's foreground grid
MAX_FOREGROUND_POINTS = 20_000  # per in-memory image, enough to centre patches on any object


def mirrored_window(array: torch.Tensor, top: int, bottom: int, left: int, right: int) -> torch.Tensor:
    """``array[..., top:bottom, left:right]`` of a ``(..., H, W)`` tensor, mirrored beyond its edges."""
    height, width = array.shape[-2:]
    if top >= 0 and left >= 0 and bottom <= height and right <= width:
        return array[..., top:bottom, left:right]
    rows = torch.from_numpy(mirror_indices(top, bottom, height))
    cols = torch.from_numpy(mirror_indices(left, right, width))
    return array[..., rows[:, None], cols[None, :]]


class PatchSource(Protocol):
    """One training image plane and its mask, as patches are drawn from it."""

    name: str
    height: int
    width: int
    channels: int

    def window(self, top: int, bottom: int, left: int, right: int) -> tuple[torch.Tensor, torch.Tensor]: ...

    def foreground_centre(self, rng: np.random.Generator) -> tuple[int, int] | None:
        """A random foreground pixel (row, column), or None if the mask holds none."""
        ...

    @property
    def quantiles(self) -> np.ndarray:
        """The normalised image's percentiles at :data:`~unetkit.data.jitter.LEVELS`, ``(C, L)``
        (for the normalisation jitter)."""
        ...


class InMemorySource:
    """A decoded sample: windows are slices of tensors held in memory."""

    def __init__(self, sample: Sample, ignore_index: int | None = None):
        self.name = sample.name
        self.image = torch.from_numpy(np.ascontiguousarray(sample.image))
        self.mask = torch.from_numpy(np.asarray(sample.mask).astype(np.int64))
        self.channels, self.height, self.width = self.image.shape
        points = np.flatnonzero(learnable_foreground(np.asarray(sample.mask), ignore_index))  # centres to draw
        if len(points) > MAX_FOREGROUND_POINTS:
            points = points[:: len(points) // MAX_FOREGROUND_POINTS + 1]
        self.points = points

    def window(self, top: int, bottom: int, left: int, right: int) -> tuple[torch.Tensor, torch.Tensor]:
        return mirrored_window(self.image, top, bottom, left, right), mirrored_window(self.mask, top, bottom, left, right)

    def foreground_centre(self, rng: np.random.Generator) -> tuple[int, int] | None:
        if not len(self.points):
            return None
        return divmod(int(self.points[rng.integers(len(self.points))]), self.width)

    @cached_property
    def quantiles(self) -> np.ndarray:
        return quantile_table(self.image.numpy().reshape(self.channels, -1))


@dataclass
class FileSource:
    """A training plane read from its files window by window (nothing decoded is held)."""

    name: str
    image_path: Path
    mask_path: Path
    plane: int
    height: int
    width: int
    channels: int
    scaling: FixedScaling  # the image's normalisation, fitted to a sample of it
    rule: MaskRule
    grid: np.ndarray  # flat indices of the GRID x GRID cells that hold foreground
    quantiles: np.ndarray  # the normalised sample's percentiles (jitter.quantile_table)
    learnable: bool = True  # its mask holds foreground besides --ignore-index (else nothing to learn from it)
    has_background: bool = True  # its mask holds class 0 somewhere

    @property
    def files(self) -> tuple[Path, Path]:
        """The image and mask files it is read from (as :attr:`Sample.files`)."""
        return self.image_path, self.mask_path

    def _read(self, path: Path, top: int, bottom: int, left: int, right: int) -> np.ndarray:
        """The file's plane in [top:bottom, left:right] clipped to the plane, ``(h, w, C)``."""
        top, bottom = max(top, 0), min(bottom, self.height)
        left, right = max(left, 0), min(right, self.width)
        try:
            return open_image(path, self.plane).read(top, bottom, left, right)
        except InputError:  # PNG, JPEG: the plane whole, then cropped
            plane = read_planes(path, mask=path == self.mask_path)[self.plane]
            plane = plane if plane.ndim == 3 else plane[..., None]
            return plane[top:bottom, left:right]

    def window(self, top: int, bottom: int, left: int, right: int) -> tuple[torch.Tensor, torch.Tensor]:
        rows = mirror_indices(top, bottom, self.height)
        cols = mirror_indices(left, right, self.width)
        row0, col0 = int(rows.min()), int(cols.min())
        row1, col1 = int(rows.max()) + 1, int(cols.max()) + 1
        image = self._read(self.image_path, row0, row1, col0, col1)[rows - row0][:, cols - col0]
        mask = self._read(self.mask_path, row0, row1, col0, col1)[rows - row0][:, cols - col0]
        normalised = self.scaling.apply(np.moveaxis(image, -1, 0))
        return torch.from_numpy(np.ascontiguousarray(normalised)), torch.from_numpy(self.rule.apply(mask).astype(np.int64))

    def foreground_centre(self, rng: np.random.Generator) -> tuple[int, int] | None:
        if not len(self.grid):
            return None
        cell_row, cell_col = divmod(int(self.grid[rng.integers(len(self.grid))]), -(-self.width // GRID))
        row = min(cell_row * GRID + int(rng.integers(GRID)), self.height - 1)
        col = min(cell_col * GRID + int(rng.integers(GRID)), self.width - 1)
        return row, col


def as_sample(item: Sample | FileSource) -> Sample:
    """A whole-image sample (a file source's plane read whole: for validation, one at a time)."""
    if isinstance(item, Sample):
        return item
    image, mask = item.window(0, item.height, 0, item.width)
    return Sample(item.name, image.numpy(), mask.numpy())


def foreground_grid(mask: np.ndarray) -> np.ndarray:
    """Flat indices of the GRID x GRID cells of a label map (or a foreground map) that hold foreground."""
    height, width = mask.shape
    padded = np.zeros((-(-height // GRID) * GRID, -(-width // GRID) * GRID), bool)
    padded[:height, :width] = mask > 0
    cells = padded.reshape(padded.shape[0] // GRID, GRID, padded.shape[1] // GRID, GRID).any(axis=(1, 3))
    return np.flatnonzero(cells)


def scan_file_sources(
    source: str | Path, options: DataOptions, notes: list[str] | None = None, max_sample_pixels: int = 2**18,
) -> list[FileSource]:
    """Check every pair (each mask whole, each image by a bounded sample) and describe it for
    reading on demand; the dataset itself is never held."""
    listing = find_pairs(source)
    check_all_matched(listing)
    listing.note_subfolders(notes)
    sources: list[FileSource] = []
    for pair in listing.pairs:
        check_not_a_colour_palette(pair.image)
        image_shape, mask_shape = plane_shape(pair.image), plane_shape(pair.mask)
        check_same_plane_count(pair, image_shape.count, mask_shape.count)
        for plane in range(image_shape.count):
            mask = _plane_of(pair.mask, plane, mask=True)
            rule = mask_rule(mask, pair.mask, num_classes=options.num_classes, mode=options.mask_mode,
                             ignore_index=options.ignore_index, notes=notes)
            labels = rule.apply(mask)
            learnable = learnable_foreground(labels, options.ignore_index)
            check_mask_matches_image(labels, (image_shape.height, image_shape.width), pair.mask, pair.image)
            sample = _sample_of(pair.image, plane, max_sample_pixels)
            check_image_values(sample, pair.image)
            if notes is not None:  # a sample spread over the image, of up to 2**18 pixels: one value is a blank image
                note_blank_image(sample, labels, plane_name(pair.image, plane, image_shape.count),
                                 options.ignore_index, notes)
            scaling = options.normalization.fitted(sample[:, :, None])
            sources.append(FileSource(
                name=f"{pair.image.parent.name}/{plane_name(pair.image, plane, image_shape.count)}",
                image_path=pair.image, mask_path=pair.mask, plane=plane, height=image_shape.height,
                width=image_shape.width, channels=image_shape.channels,
                scaling=scaling, rule=rule, grid=foreground_grid(learnable),
                quantiles=quantile_table(scaling.apply(sample[:, :, None])),
                learnable=bool(learnable.any()), has_background=bool(np.any(labels == 0))))
    channels = {s.channels for s in sources}
    if len(channels) > 1:
        raise InputError(f"images have different channel counts {sorted(channels)}", path=source,
                         fix="convert all images to the same number of channels (grey or RGB)")
    return sources


def _plane_of(path: Path, plane: int, mask: bool = False) -> np.ndarray:
    try:
        reader = open_image(path, plane)
        region = reader.read(0, reader.height, 0, reader.width)
        return region[..., 0] if region.shape[-1] == 1 else region
    except InputError:
        return read_planes(path, mask)[plane]


def _sample_of(path: Path, plane: int, max_pixels: int) -> np.ndarray:
    """A ``(C, N)`` sample of a plane's pixels (all of them for small planes)."""
    try:
        return sample_pixels(open_image(path, plane), max_pixels)
    except InputError:
        channels_first = to_channels_first(read_planes(path)[plane])
        return channels_first.reshape(channels_first.shape[0], -1)
