"""Writing images larger than memory: band by band into tiled BigTIFF or OME-Zarr.

Both writers take the image from a zarr array (or anything that slices like one) and read
it band by band, so the image is never in memory as a whole:

- :func:`write_tiled_tiff`: a tiled (Big)OME-TIFF, written tile by tile from bands, with its
  axes (``YX``, or ``CYX`` for a stack of probability maps, so that Fiji's Bio-Formats and
  napari show channels, not slices) and the pixel size, in the OME metadata and the
  resolution tags;
- :func:`write_ome_zarr`: an OME-Zarr image (OME-NGFF 0.5, zarr v3, or 0.4 with zarr v2)
  with a multiscale pyramid (each level half the last: nearest for labels, mean for
  intensities) down to ``min_side`` pixels, the pixel size as the scale of level 0, and
  ``image-label`` metadata for labels, so that napari and other OME-NGFF viewers open it.

Each writes into a temporary sibling first and moves it into place when complete.

>>> import tempfile, tifffile
>>> folder = Path(tempfile.mkdtemp())
>>> labels = np.arange(300 * 200, dtype=np.uint32).reshape(300, 200) % 7
>>> write_tiled_tiff(folder / "l.tif", labels, band=64)
>>> bool((tifffile.imread(folder / "l.tif") == labels).all())
True
>>> write_tiled_tiff(folder / "p.tif", np.zeros((2, 300, 200), np.float32), pixel_size=(0.5, 0.5, "micrometer"))
>>> with tifffile.TiffFile(folder / "p.tif") as tif:
...     print(tif.series[0].axes, 'PhysicalSizeX="0.5"' in tif.ome_metadata)
CYX True
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import tifffile

from ..errors import OutputExistsError
from .io import current_umask, ensure_can_write
from .partials import temporary_file, temporary_folder

TILE = 256


def _bands(array: Any, band: int) -> Iterator[tuple[int, np.ndarray]]:
    height = array.shape[-2]
    for top in range(0, height, band):
        yield top, np.asarray(array[..., top : min(top + band, height), :])


#: a pixel size's unit: how many of it make a centimetre (the resolution tags' unit), and OME's symbol for it
TIFF_UNITS = {"micrometer": (1e4, "µm"), "µm": (1e4, "µm"), "millimeter": (10.0, "mm"), "nanometer": (1e7, "nm"),
              "centimeter": (1.0, "cm")}


def write_tiled_tiff(
    path: Path, array: Any, *, band: int = 2048, pixel_size: tuple[float, float, str] | None = None,
    overwrite: bool = False, compression: str | None = "zlib",
) -> None:
    """Write a ``(H, W)`` or ``(K, H, W)`` array-like as a tiled (Big)OME-TIFF, ``band`` rows at a time.

    The OME metadata names the axes (``YX`` or ``CYX``: channels, as Fiji's Bio-Formats and napari
    should show a stack of probability maps) and the pixel size, which the resolution tags hold as well.
    """
    path = Path(path)
    ensure_can_write(path, overwrite)
    shape, dtype = tuple(array.shape), np.dtype(array.dtype)
    band = max(TILE, band // TILE * TILE)

    def tiles() -> Iterator[np.ndarray]:
        planes = [array] if len(shape) == 2 else [_Plane(array, k) for k in range(shape[0])]
        for plane in planes:
            for _, rows in _bands(plane, band):
                for top in range(0, rows.shape[0], TILE):
                    for left in range(0, rows.shape[1], TILE):
                        tile = np.zeros((TILE, TILE), dtype)
                        piece = rows[top : top + TILE, left : left + TILE]
                        tile[: piece.shape[0], : piece.shape[1]] = piece
                        yield tile

    resolution = None
    unit = None
    metadata: dict[str, Any] = {"axes": "YX" if len(shape) == 2 else "CYX"}
    if pixel_size is not None:
        size_y, size_x, unit_name = pixel_size
        known = TIFF_UNITS.get(unit_name)
        if known is not None:
            per_centimetre, ome_unit = known
            resolution, unit = (per_centimetre / size_x, per_centimetre / size_y), "CENTIMETER"
            metadata |= {"PhysicalSizeX": _decimal(size_x), "PhysicalSizeY": _decimal(size_y),
                         "PhysicalSizeXUnit": ome_unit, "PhysicalSizeYUnit": ome_unit}
    nbytes = int(np.prod(shape)) * dtype.itemsize
    temporary = _temporary(path)
    try:
        tifffile.imwrite(temporary, tiles(), shape=shape, dtype=dtype, tile=(TILE, TILE), bigtiff=nbytes > 2**31,
                         photometric="minisblack", compression=compression, resolution=resolution,
                         resolutionunit=unit, ome=True, metadata=metadata)
        _publish(temporary, path, overwrite)
    finally:
        temporary.unlink(missing_ok=True)


def _decimal(size: float) -> float:
    """A pixel size as a person wrote it (0.65, not the 0.6499999999999999 its resolution tag gives back)."""
    return float(f"{size:.10g}")


class _Plane:
    """Plane ``k`` of a (K, H, W) array-like, sliced like a (H, W) one."""

    def __init__(self, array: Any, k: int):
        self.array, self.k = array, k
        self.shape = tuple(array.shape[1:])

    def __getitem__(self, key: Any) -> np.ndarray:
        return np.asarray(self.array[(self.k, *key[1:])] if key[0] is Ellipsis else self.array[self.k][key])


def _temporary(path: Path) -> Path:
    return temporary_file(path)


def _publish(temporary: Path, path: Path, overwrite: bool) -> None:
    os.chmod(temporary, 0o666 & ~current_umask())
    if overwrite or not path.exists():
        os.replace(temporary, path)
    else:
        raise OutputExistsError("output appeared while it was being written", path=path)


def write_ome_zarr(
    path: Path, array: Any, *, labels: bool, pixel_size: tuple[float, float, str] | None = None,
    band: int = 2048, min_side: int = 256, overwrite: bool = False, name: str | None = None,
) -> None:
    """Write a ``(H, W)`` (labels) or ``(K, H, W)`` (probabilities) array-like as an OME-Zarr image."""
    import zarr

    path = Path(path)
    ensure_can_write(path, overwrite, zarr_folder=True)
    shape, dtype = tuple(array.shape), np.dtype(array.dtype)
    temporary = temporary_folder(path)
    try:
        root = zarr.open_group(str(temporary), mode="w")
        chunks = (1024, 1024) if len(shape) == 2 else (1, 1024, 1024)
        level = root.create_array("0", shape=shape, dtype=dtype, chunks=tuple(min(c, s) for c, s in zip(chunks, shape)))
        band = max(2, band // 2 * 2)
        for top, rows in _bands(array, band):
            level[..., top : top + rows.shape[-2], :] = rows
        levels = [level]
        while min(levels[-1].shape[-2:]) >= 2 * min_side:
            levels.append(_downsample(root, levels[-1], str(len(levels)), labels, band))
        _write_ngff_metadata(root, len(levels), len(shape) == 3, labels, pixel_size,
                             name or path.name.removesuffix(".zarr").removesuffix(".ome"))
        if path.exists() and overwrite:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        os.replace(temporary, path)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def _downsample(root: Any, source: Any, name: str, labels: bool, band: int) -> Any:
    """Half the resolution of ``source``: every second pixel (labels) or 2x2 means."""
    shape = (*source.shape[:-2], source.shape[-2] // 2, source.shape[-1] // 2)
    chunks = tuple(min(c, s) for c, s in zip(source.chunks, shape))
    target = root.create_array(name, shape=shape, dtype=source.dtype, chunks=chunks)
    for top, rows in _bands(source, band):
        rows = rows[..., : rows.shape[-2] // 2 * 2, : shape[-1] * 2]
        if labels:
            half = rows[..., ::2, ::2]
        else:
            half = rows.reshape(*rows.shape[:-2], rows.shape[-2] // 2, 2, shape[-1], 2).mean(axis=(-3, -1))
        target[..., top // 2 : top // 2 + half.shape[-2], :] = half.astype(source.dtype)
    return target


def _write_ngff_metadata(root: Any, levels: int, has_channels: bool, labels: bool,
                         pixel_size: tuple[float, float, str] | None, name: str) -> None:
    size_y, size_x, unit = pixel_size if pixel_size is not None else (1.0, 1.0, "")
    axes: list[dict[str, str]] = [{"name": "c", "type": "channel"}] if has_channels else []
    axes += [{"name": n, "type": "space", **({"unit": unit} if unit else {})} for n in ("y", "x")]
    datasets = []
    for level in range(levels):
        scale = ([1.0] if has_channels else []) + [size_y * 2**level, size_x * 2**level]
        datasets.append({"path": str(level), "coordinateTransformations": [{"type": "scale", "scale": scale}]})
    multiscales = {"version": "0.5", "name": name, "axes": axes, "datasets": datasets}
    attributes: dict[str, Any] = {"multiscales": [multiscales], "version": "0.5"}
    if labels:
        attributes["image-label"] = {"version": "0.5", "source": {"image": "../../"}}
    if getattr(root.metadata, "zarr_format", 3) == 2:  # OME-NGFF 0.4: attributes at the top level
        multiscales["version"] = "0.4"
        attributes = {"multiscales": [multiscales]}
        if labels:
            attributes["image-label"] = {"version": "0.4"}
        root.attrs.update(attributes)
    else:
        root.attrs.update({"ome": attributes})


def downscaled(array: Any, factor: int, band: int = 2048) -> np.ndarray:
    """Every ``factor``-th pixel of a ``(H, W[, C])`` array-like, read band by band."""
    height = array.shape[0]
    band = max(factor, band // factor * factor)
    rows = [np.asarray(array[top : min(top + band, height)])[::factor, ::factor] for top in range(0, height, band)]
    return np.concatenate(rows)


LARGE_PIXELS = 64 * 2**20  # label images larger than this (8192 x 8192) are written band by band


def write_label_file(path: Path, labels: Any, *, pixel_size: tuple[float, float, str] | None = None,
                     overwrite: bool = False) -> None:
    """A label image (array or array-like) to ``path``: PNG, tiled TIFF (BigTIFF when large;
    written band by band, with the pixel size) or OME-Zarr (``.ome.zarr``, with a pyramid),
    by the name's ending."""
    from .io import write_image

    path = Path(path)
    name = path.name.lower()
    if name.endswith(".zarr"):
        write_ome_zarr(path, labels, labels=True, pixel_size=pixel_size, overwrite=overwrite)
    elif path.suffix.lower() in (".tif", ".tiff"):
        write_tiled_tiff(path, labels, pixel_size=pixel_size, overwrite=overwrite)
    else:
        write_image(path, np.asarray(labels), overwrite=overwrite)
