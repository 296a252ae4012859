"""Overlap-tile prediction of images of any size, in memory bounded by the tile batch.

The image is cut into overlapping tiles; where a tile reaches past the image, the image is
extended by mirroring (the U-Net paper's overlap-tile strategy); every tile is predicted
and the tiles' probabilities are blended back by Gaussian (default) or uniform weights.
For a valid-padding network each tile's input carries the context its output needs.

The tiler knows nothing of the model: it takes a
:class:`~unetkit.inference.predictor.Predictor` (a callable from a batch of tiles to their
outputs, with the network's :class:`~unetkit.sizes.SizeRule`), as MONAI's
``sliding_window_inference`` takes a predictor and a window size. The image is anything
that slices like a ``(C, H, W)`` array (NumPy, a CPU tensor, a lazily read array): only the
region of each tile is read from it.

The predictor's device only ever holds one batch of tiles. Outputs are accumulated on
the CPU, in RAM or, for outputs larger than RAM, in a memory-mapped file. The blending
weights are separable (row weight x column weight), so their sum is two 1D arrays, not a
second image-sized array.

>>> import torch
>>> from unetkit.model import UNet
>>> model = UNet(depth=3, base_width=4).eval()
>>> probabilities = predict_tiled(model, torch.rand(1, 150, 90), TileOptions(tile_size=64))
>>> probabilities.shape
(1, 150, 90)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Literal

import numpy as np
import torch

from .errors import ConfigError
from .inference.predictor import Predictor, TorchPredictor
from .mirror import mirror_indices
from .model import UNet
from .sizes import SizeRule

Blend = Literal["gaussian", "uniform"]


@dataclass(frozen=True)
class TileOptions:
    """How an image is tiled.

    ``tile_size`` is the output side of a tile; ``overlap`` is a fraction of it (< 1) or
    pixels (>= 1); ``tiles_per_batch`` tiles run through the model at once (None: 1 on the
    CPU, where one 512 px tile runs faster per pixel than a batch of four, and 4 on a GPU);
    ``tta`` averages the 8 flips and 90-degree rotations (8x the cost); ``border`` extends
    the image by this many mirrored pixels for 'same'-padding models, so that border pixels
    see mirrored context rather than zero padding (valid models always get the context
    their output needs).

    >>> TileOptions(tile_size=256).overlap_pixels(256), TileOptions(tile_size=256, overlap=32).overlap_pixels(256)
    (64, 32)
    >>> TileOptions(blend="linear")
    Traceback (most recent call last):
    ...
    unetkit.errors.ConfigError: blend must be 'gaussian' or 'uniform', got 'linear'
    """

    tile_size: int = 512
    overlap: float = 0.25
    tiles_per_batch: int | None = None
    blend: Blend = "gaussian"
    tta: bool = False
    border: int = 0

    def __post_init__(self) -> None:
        if self.tile_size < 1:
            raise ConfigError(f"tile size must be positive, got {self.tile_size}")
        if not math.isfinite(self.overlap) or self.overlap < 0 or (self.overlap >= 1 and self.overlap >= self.tile_size):
            raise ConfigError(f"overlap must be a fraction in [0, 1) or pixels below the tile size, got {self.overlap}")
        if self.tiles_per_batch is not None and self.tiles_per_batch < 1:
            raise ConfigError(f"tiles per batch must be at least 1, got {self.tiles_per_batch}")
        if self.blend not in ("gaussian", "uniform"):
            raise ConfigError(f"blend must be 'gaussian' or 'uniform', got {self.blend!r}")
        if not 0 <= self.border < self.tile_size:
            raise ConfigError(f"border must be 0 or more and below the tile size, got {self.border}")

    def overlap_pixels(self, tile: int) -> int:
        return int(round(self.overlap * tile)) if self.overlap < 1 else int(self.overlap)


def tile_starts(size: int, tile: int, step: int, border: int = 0, align: int = 1) -> list[int]:
    """Start positions of tiles of side ``tile`` covering ``[-border, size + border)``.

    Steps are spread evenly, at most ``step`` before alignment; the first tile starts at
    ``-border``. With ``align > 1`` every start is a multiple of ``align`` (``border`` is
    rounded up to one), so that each tile meets the network's pooling grid where the whole
    image would: the last tile may then reach past the end (its extra output is dropped),
    and steps may exceed ``step`` by up to twice ``align``, never the tile.

    >>> tile_starts(10, 4, 3)
    [0, 3, 6]
    >>> tile_starts(3, 4, 2)
    [0]
    >>> tile_starts(77, 32, 22, align=4)
    [0, 16, 32, 48]
    """
    if step < 1 or align < 1:
        raise ValueError(f"step and align must be at least 1, got {step}, {align}")
    border = -(-border // align) * align
    span = size + 2 * border
    if span <= tile:
        return [-border]
    count = math.ceil((span - tile) / step) + 1
    last = -(-(span - tile) // align) * align
    while True:
        positions = sorted({int(round(p / align)) * align for p in np.linspace(0, last, count)})
        if all(b - a <= tile for a, b in zip(positions, positions[1:])):
            return [p - border for p in positions]
        count += 1


def blend_weights(tile: int, blend: Blend, sigma_scale: float = 0.125) -> np.ndarray:
    """1D blending weights of a tile side: a Gaussian (sigma = tile / 8) or ones.

    The 2D weight is the outer product of the row and column weights. The Gaussian is
    scaled to a maximum of 1 and floored at 1e-3 so that every pixel keeps some weight.

    >>> w = blend_weights(9, "gaussian")
    >>> float(w.max()), bool(w[0] < w[4])
    (1.0, True)
    """
    if blend == "uniform":
        return np.ones(tile, np.float32)
    center = (tile - 1) / 2
    sigma = max(tile * sigma_scale, 1e-6)
    weights = np.exp(-((np.arange(tile) - center) ** 2) / (2 * sigma**2))
    return np.maximum(weights / weights.max(), 1e-3).astype(np.float32)


@dataclass(frozen=True)
class TileGeometry:
    """Sizes for one image: output tile side, input context, and the tile starts."""

    tile_height: int
    tile_width: int
    context: int
    row_starts: list[int]
    col_starts: list[int]

    @property
    def tile_count(self) -> int:
        return len(self.row_starts) * len(self.col_starts)


def plan_tiles(rule: SizeRule | UNet, height: int, width: int, options: TileOptions) -> TileGeometry:
    """Where the tiles of an image go, for a network's size rule and these options.

    >>> plan_tiles(SizeRule(16, 16), 300, 200, TileOptions(tile_size=128)).row_starts
    [0, 96, 176]
    """
    rule = rule.size_rule if isinstance(rule, UNet) else rule
    if rule.halo:
        # Each tile's input carries the context its output needs: the halo.
        tile_h = tile_w = rule.output_size(rule.input_size_for(options.tile_size))
        context, border = rule.halo, 0
    else:
        tile = rule.round_down(options.tile_size)
        # A small image is one tile, rounded up to a size the network takes unpadded.
        tile_h = min(tile, rule.input_size_for(height))
        tile_w = min(tile, rule.input_size_for(width))
        context, border = 0, options.border
    overlap_h = min(options.overlap_pixels(tile_h), tile_h - 1)
    overlap_w = min(options.overlap_pixels(tile_w), tile_w - 1)
    border_h = border if height > tile_h else 0
    border_w = border if width > tile_w else 0
    return TileGeometry(
        tile_h,
        tile_w,
        context,
        tile_starts(height, tile_h, tile_h - overlap_h, border_h, rule.step),
        tile_starts(width, tile_w, tile_w - overlap_w, border_w, rule.step),
    )


def _weight_sum(size: int, starts: list[int], weights: np.ndarray) -> np.ndarray:
    total = np.zeros(size, np.float32)
    for start in starts:
        lo, hi = max(start, 0), min(start + len(weights), size)
        if hi > lo:
            total[lo:hi] += weights[lo - start : hi - start]
    return total


DIHEDRAL: list[tuple[int, bool]] = [(k, flip) for flip in (False, True) for k in range(4)]


def as_predictor(model: Predictor | UNet) -> Predictor:
    """A predictor for a plain :class:`~unetkit.model.UNet` (fp32, sigmoid/softmax), else itself."""
    return TorchPredictor(model) if isinstance(model, UNet) else model


def _predict_batch(predictor: Predictor, batch: torch.Tensor, tta: bool) -> torch.Tensor:
    transforms = DIHEDRAL if tta else DIHEDRAL[:1]
    total = None
    for turns, flip in transforms:
        view = batch.flip(-1) if flip else batch
        view = torch.rot90(view, turns, dims=(-2, -1))
        outputs = predictor(view).float()
        outputs = torch.rot90(outputs, -turns, dims=(-2, -1))
        outputs = outputs.flip(-1) if flip else outputs
        total = outputs if total is None else total + outputs
    assert total is not None
    return (total / len(transforms)).cpu()


def read_window(image: Any, top: int, bottom: int, left: int, right: int) -> torch.Tensor:
    """``image[:, top:bottom, left:right]`` as a float32 tensor, mirrored where it leaves the image.

    Only the part of the image under the window is read (one slice), so ``image`` may be a
    lazily read array.

    >>> read_window(np.arange(4, dtype=np.float32).reshape(1, 1, 4), 0, 1, -2, 3).tolist()
    [[[1.0, 0.0, 0.0, 1.0, 2.0]]]
    """
    height, width = image.shape[-2:]
    if top >= 0 and left >= 0 and bottom <= height and right <= width:
        return _as_tensor(image[:, top:bottom, left:right])  # inside the image: a plain slice
    rows, cols = mirror_indices(top, bottom, height), mirror_indices(left, right, width)
    row0, col0 = int(rows.min()), int(cols.min())
    block = _as_tensor(image[:, row0 : int(rows.max()) + 1, col0 : int(cols.max()) + 1])
    return block[:, torch.from_numpy(rows - row0)[:, None], torch.from_numpy(cols - col0)[None, :]]


def _as_tensor(region: Any) -> torch.Tensor:
    if isinstance(region, torch.Tensor):
        return region.float()
    return torch.from_numpy(np.ascontiguousarray(region, dtype=np.float32))


def _tiles(image: Any, geometry: TileGeometry) -> Iterator[tuple[int, int, torch.Tensor]]:
    c = geometry.context
    for row in geometry.row_starts:
        for col in geometry.col_starts:
            window = read_window(image, row - c, row + geometry.tile_height + c, col - c, col + geometry.tile_width + c)
            yield row, col, window


def predict_tiled(
    predictor: Predictor | UNet,
    image: Any,
    options: TileOptions = TileOptions(),
    *,
    output: np.ndarray | None = None,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Outputs ``(K, H, W)`` float32 (class probabilities, say) of a normalised ``(C, H, W)`` image.

    ``predictor`` is a :class:`~unetkit.inference.predictor.Predictor` (a plain ``UNet`` is
    run in fp32). ``output``, if given, is a ``(K, H, W)`` float32 array to fill (a memory
    map, say) and is returned; ``progress`` is called with the number of tiles done after
    each batch. For outputs that should not be held at all, see :func:`tiled_bands`.

    >>> from unetkit.model import UNet
    >>> model, image = UNet(depth=2, base_width=2), np.zeros((1, 100, 60), np.float32)
    >>> done = []  # progress gets each batch's count of tiles
    >>> outputs = predict_tiled(model, image, TileOptions(tile_size=32), progress=done.append)
    >>> outputs.shape, outputs.dtype, bool(0 <= outputs.min() and outputs.max() <= 1), sum(done)
    ((1, 100, 60), dtype('float32'), True, 12)
    >>> held = np.zeros((1, 100, 60), np.float32)  # a memory map (np.lib.format.open_memmap), say
    >>> predict_tiled(model, image, TileOptions(tile_size=32), output=held) is held
    True
    """
    predictor = as_predictor(predictor)
    height, width = image.shape[-2:]
    shape = (predictor.num_outputs, height, width)
    if output is None:
        output = np.zeros(shape, np.float32)
    elif output.shape != shape:
        raise ValueError(f"output must have shape {shape}, got {output.shape}")
    for top, band in tiled_bands(predictor, image, options, progress=progress):
        output[:, top : top + band.shape[1]] = band
    return output


def tiled_bands(
    predictor: Predictor | UNet,
    image: Any,
    options: TileOptions = TileOptions(),
    *,
    progress: Callable[[int], None] | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """The outputs of a normalised ``(C, H, W)`` image as full-width bands, top to bottom.

    Yields ``(top, band)`` with ``band`` of shape ``(K, h, W)``: rows ``top .. top + h`` of the
    blended outputs, final once yielded. Tiles are predicted row of tiles by row of tiles,
    and only the rows that later tiles still overlap are held, so memory is about two tile
    heights times the image width, whatever the image's height.

    >>> from unetkit.model import UNet
    >>> bands = list(tiled_bands(UNet(depth=2, base_width=2), np.random.rand(1, 100, 30), TileOptions(tile_size=32)))
    >>> [top for top, _ in bands][:3], sum(band.shape[1] for _, band in bands)
    ([0, 22, 46], 100)
    """
    predictor = as_predictor(predictor)
    if len(image.shape) != 3:
        raise ValueError(f"expected a (C, H, W) image, got shape {tuple(image.shape)}")
    if image.shape[0] != predictor.in_channels:
        last = " (channels last? np.moveaxis(image, -1, 0) puts them first)" \
            if image.shape[-1] == predictor.in_channels else ""
        raise ValueError(f"expected a (C, H, W) image of {predictor.in_channels} channel(s), the model's, got shape "
                         f"{tuple(image.shape)}{last}")
    height, width = image.shape[-2:]
    if min(height, width) < predictor.size_rule.step:  # mirrored up to one pooling window it works; below, noise
        raise ValueError(f"image is {height}x{width}, smaller than the network's minimum side "
                         f"{predictor.size_rule.step} (predict and evaluate refuse it too)")
    geometry = plan_tiles(predictor.size_rule, height, width, options)
    weights_h = blend_weights(geometry.tile_height, options.blend)
    weights_w = blend_weights(geometry.tile_width, options.blend)
    tile_weight = torch.from_numpy(np.outer(weights_h, weights_w))
    row_total = _weight_sum(height, geometry.row_starts, weights_h)
    col_total = _weight_sum(width, geometry.col_starts, weights_w)
    tiles_per_batch = options.tiles_per_batch or (1 if predictor.device.type == "cpu" else 4)
    span = 2 * geometry.tile_height  # rows held: the current row of tiles and what the next may still add to
    held = np.zeros((predictor.num_outputs, span, width), np.float32)
    held_top = geometry.row_starts[0]  # image row of held[:, 0]; may be negative (a mirrored border)
    c = geometry.context
    for index, row in enumerate(geometry.row_starts):
        windows = [(col, read_window(image, row - c, row + geometry.tile_height + c,
                                     col - c, col + geometry.tile_width + c)) for col in geometry.col_starts]
        for first in range(0, len(windows), tiles_per_batch):
            chunk = windows[first : first + tiles_per_batch]
            outputs = _predict_batch(predictor, torch.stack([tile for _, tile in chunk]), options.tta) * tile_weight
            for (col, _), tile_outputs in zip(chunk, outputs.numpy()):
                _accumulate(held, tile_outputs, row - held_top, col)
            if progress is not None:
                progress(len(chunk))
        final_until = geometry.row_starts[index + 1] if index + 1 < len(geometry.row_starts) else held_top + span
        final_until = min(final_until, height)
        top = max(held_top, 0)
        if final_until > top:
            band = held[:, top - held_top : final_until - held_top]
            yield top, band / (row_total[top:final_until, None] * col_total[None, :])
        shift = max(final_until, top) - held_top
        held = np.concatenate([held[:, shift:], np.zeros((held.shape[0], shift, width), np.float32)], axis=1)
        held_top += shift


def _accumulate(output: np.ndarray, tile: np.ndarray, row: int, col: int) -> None:
    height, width = output.shape[-2:]
    top, left = max(row, 0), max(col, 0)
    bottom, right = min(row + tile.shape[-2], height), min(col + tile.shape[-1], width)
    if bottom > top and right > left:  # a tile wholly in a mirrored border adds nothing
        output[:, top:bottom, left:right] += tile[:, top - row : bottom - row, left - col : right - col]


def predict_whole(predictor: Predictor | UNet, image: torch.Tensor | np.ndarray) -> np.ndarray:
    """Outputs ``(K, H, W)`` of an image in one forward pass (networks without a halo)."""
    from .inference.predictor import run_padded

    predictor = as_predictor(predictor)
    batch = torch.as_tensor(np.asarray(image, dtype=np.float32) if isinstance(image, np.ndarray) else image)[None]
    return run_padded(predictor, batch, predictor.size_rule)[0].cpu().numpy()


def open_probability_memmap(path: str | Path, shape: tuple[int, int, int]) -> np.ndarray:
    """A float32 memory-mapped TIFF (BigTIFF when large) to receive probabilities on disk."""
    import tifffile

    nbytes = int(np.prod(shape)) * 4
    return tifffile.memmap(str(path), shape=shape, dtype=np.float32, bigtiff=nbytes > 2**31)
