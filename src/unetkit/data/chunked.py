"""Images larger than memory: read region by region, from (Big)TIFF or OME-Zarr.

:func:`open_image` gives a :class:`RegionReader` over one 2D plane of a file, reading only
the region asked for: a (Big)TIFF, tiled or not, and pyramidal OME-TIFF through tifffile's
zarr store (the full-resolution level), or an OME-Zarr image (zarr v2 or v3; OME-NGFF 0.4 or
0.5 metadata). Nothing of the file is read until a region is.

:class:`NormalizedImage` puts the model's normalisation on top: it slices like a normalised
``(C, H, W)`` array, which is what the tiler reads windows from. A huge image's statistics
(its percentiles, say) come from a bounded sample of it: :func:`sample_pixels` reads up to
``max_pixels`` pixels (64 Mi by default, 8,192 x 8,192) in evenly spread windows; an image no larger than
that is read whole, so that lazy and eager reading agree exactly there.

>>> import tempfile, tifffile
>>> path = Path(tempfile.mkdtemp()) / "big.tif"
>>> tifffile.imwrite(path, np.arange(64 * 80, dtype=np.uint16).reshape(64, 80), tile=(32, 32))
>>> reader = open_image(path)
>>> (reader.height, reader.width, reader.channels), reader.read(10, 12, 0, 3)[..., 0].tolist()
((64, 80, 1), [[800, 801, 802], [880, 881, 882]])
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..errors import InputError
from .dataset import check_image_values, plane_name
from .io import CHANNEL_AXES, TIFF_SUFFIXES, series_axes, uniform_series, unnamed_axes
from .normalize import working_type

DEFAULT_SAMPLE_PIXELS = 64 * 2**20  # = the largest image predicted in memory: up to it, statistics are exact
ZARR_SUFFIXES = (".zarr",)


class RegionReader(Protocol):
    """One 2D plane of an image file, read region by region."""

    height: int
    width: int
    channels: int
    dtype: np.dtype
    path: Path

    def read(self, top: int, bottom: int, left: int, right: int) -> np.ndarray:
        """Pixels ``[top:bottom, left:right]`` as ``(h, w, C)``, in the file's type."""
        ...


def is_zarr(path: str | Path) -> bool:
    """True for an OME-Zarr (or plain zarr) folder."""
    path = Path(path)
    return path.suffix.lower() in ZARR_SUFFIXES or (path.is_dir() and any(
        (path / name).exists() for name in ("zarr.json", ".zattrs", ".zgroup", ".zarray")))


@dataclass
class ArrayRegionReader:
    """A plane of an N-D array-like (a zarr array, a NumPy array) whose axes are named."""

    array: Any
    axes: str  # e.g. "TCZYX", "YXS", "QYX"
    path: Path
    plane: int = 0  # which 2D plane, counting the stack axes (all but Y, X and channels) in C order

    def __post_init__(self) -> None:
        if len(self.axes) != len(self.array.shape):
            raise InputError(f"axes {self.axes!r} do not match the shape {tuple(self.array.shape)}", path=self.path)
        if "Y" not in self.axes or "X" not in self.axes:
            raise InputError(f"the image has no Y and X axes (axes {self.axes!r})", path=self.path)
        sizes = dict(zip(self.axes, self.array.shape))
        self.height, self.width = int(sizes["Y"]), int(sizes["X"])
        self._channel_axes = [i for i, a in enumerate(self.axes) if a in CHANNEL_AXES]
        if len(self._channel_axes) > 1:
            raise InputError(f"two channel axes ({self.axes})", path=self.path)
        self.channels = int(self.array.shape[self._channel_axes[0]]) if self._channel_axes else 1
        stack_axes = [i for i, a in enumerate(self.axes) if a not in CHANNEL_AXES | {"Y", "X"}]
        stack_shape = [int(self.array.shape[i]) for i in stack_axes]
        count = int(np.prod(stack_shape, dtype=np.int64)) if stack_axes else 1
        if not 0 <= self.plane < count:
            raise InputError(f"plane {self.plane} asked for, the file has {count}", path=self.path)
        self._stack_index = dict(zip(stack_axes, np.unravel_index(self.plane, stack_shape) if stack_axes else ()))
        self.dtype = np.dtype(self.array.dtype)
        self.count = count

    def read(self, top: int, bottom: int, left: int, right: int) -> np.ndarray:
        index: list[Any] = []
        for i, axis in enumerate(self.axes):
            if axis == "Y":
                index.append(slice(top, bottom))
            elif axis == "X":
                index.append(slice(left, right))
            elif i in self._stack_index:
                index.append(int(self._stack_index[i]))
            else:
                index.append(slice(None))
        try:
            region = np.asarray(self.array[tuple(index)])
        except (MemoryError, OSError):
            raise  # the machine's (memory, disk, network), not the file's
        except Exception as exc:  # a truncated file, a damaged tile: zarr, tifffile and the codecs raise their own
            raise InputError(f"rows {top} to {bottom}, columns {left} to {right} cannot be read "
                             f"({type(exc).__name__}: {exc})", path=self.path,
                             fix="check that the file is complete (a copy or download cut short?) and "
                                 "export it again") from exc
        kept = [a for i, a in enumerate(self.axes) if i not in self._stack_index]  # Y, X and the channels
        order = [kept.index("Y"), kept.index("X")] + [k for k, a in enumerate(kept) if a in CHANNEL_AXES]
        region = np.transpose(region, order)
        return region if region.ndim == 3 else region[..., None]


def open_image(path: str | Path, plane: int = 0) -> ArrayRegionReader:
    """A region reader over plane ``plane`` of a (Big)TIFF or OME-Zarr image; reads nothing yet."""
    path = Path(path)
    if is_zarr(path):
        return _open_zarr(path, plane)
    if path.suffix.lower() not in TIFF_SUFFIXES:
        raise InputError(f"only TIFF and OME-Zarr images are read in chunks, not {path.suffix!r}", path=path,
                         fix="convert the image to a (tiled) TIFF or OME-Zarr, or predict it as a whole")
    import tifffile
    import zarr

    try:
        with tifffile.TiffFile(path) as tif:
            all_series = uniform_series(tif, path)
            axes = series_axes(all_series[0])
            per_series = int(np.prod([s for s, a in zip(all_series[0].shape, axes)
                                      if a not in CHANNEL_AXES | {"Y", "X"}], dtype=np.int64))
        series, plane = divmod(plane, per_series) if plane < per_series * len(all_series) else (0, plane)
        store = tifffile.imread(path, aszarr=True, series=series, level=0)
        array = zarr.open(store, mode="r")
        if hasattr(array, "keys") and not hasattr(array, "shape"):  # a pyramid: its first (full) level
            array = array[sorted(array.keys())[0]]
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"cannot be read in chunks ({type(exc).__name__}: {exc})", path=path,
                         fix="check that the file is a complete TIFF") from exc
    return ArrayRegionReader(array, axes, path, plane)


def _open_zarr(path: Path, plane: int) -> ArrayRegionReader:
    import zarr

    try:
        node = zarr.open(str(path), mode="r")
    except Exception as exc:
        raise InputError(f"not a readable zarr store ({type(exc).__name__}: {exc})", path=path) from exc
    if hasattr(node, "shape"):  # a bare array: its last two axes are Y and X, or (Y, X, up to 4 channels)
        axes = unnamed_axes("Q" * (len(node.shape) - 2) + "YX", tuple(node.shape))
        return ArrayRegionReader(node, axes, path, plane)
    multiscales = _multiscales(node.attrs.asdict())
    if multiscales is None:
        raise InputError("zarr group without OME-NGFF multiscales metadata", path=path,
                         fix="write the image as OME-Zarr (an image group with 'multiscales')")
    names = [axis["name"] if isinstance(axis, dict) else axis for axis in multiscales.get("axes", ["y", "x"])]
    axes = "".join({"c": "C", "y": "Y", "x": "X", "z": "Z", "t": "T"}.get(n.lower(), "Q") for n in names)
    return ArrayRegionReader(node[multiscales["datasets"][0]["path"]], axes, path, plane)


def _multiscales(attributes: dict[str, Any]) -> dict[str, Any] | None:
    """The first multiscales entry of OME-NGFF 0.4 (top level) or 0.5 (under 'ome') attributes."""
    found = attributes.get("ome", attributes).get("multiscales")
    return found[0] if found else None


def pixel_size(path: str | Path) -> tuple[float, float, str] | None:
    """The (y, x) pixel size and its unit, where the file records it (OME-TIFF, an ImageJ/Fiji TIFF's
    calibration, TIFF resolution tags in inches or centimetres, OME-Zarr); None otherwise.

    Lengths come back in micrometres whatever unit each axis was recorded in (OME lets Y's unit
    differ from X's: 0.5 µm by 500 nm is a square pixel); a unit that is not a length ("pixel")
    is kept as recorded when both axes share it, else the size is unknown (None)."""
    found = _recorded_pixel_size(Path(path))
    if found is None:
        return None
    (y, y_unit), (x, x_unit) = found
    y_unit, x_unit = y_unit or x_unit, x_unit or y_unit  # an axis without a unit shares the other's
    y_factor, x_factor = MICROMETRES_PER_UNIT.get(_ome_unit(y_unit)), MICROMETRES_PER_UNIT.get(_ome_unit(x_unit))
    if y_factor is not None and x_factor is not None:
        return y * y_factor, x * x_factor, "micrometer"
    if _ome_unit(y_unit) == _ome_unit(x_unit):
        return y, x, _ome_unit(x_unit)
    return None


#: how many micrometres one of each length unit (as OME names it) is
MICROMETRES_PER_UNIT = {"angstrom": 1e-4, "nanometer": 1e-3, "micrometer": 1.0, "millimeter": 1e3,
                        "centimeter": 1e4, "meter": 1e6}


def _recorded_pixel_size(path: Path) -> tuple[tuple[float, str], tuple[float, str]] | None:
    """((y, its unit), (x, its unit)) as the file records them; None where it records none."""
    try:
        if is_zarr(path):
            import zarr

            group = zarr.open_group(str(path), mode="r")
            multiscales = _multiscales(group.attrs.asdict())
            if multiscales is None:
                return None
            names = [a["name"] if isinstance(a, dict) else a for a in multiscales["axes"]]
            units = [a.get("unit", "") if isinstance(a, dict) else "" for a in multiscales["axes"]]
            scale = next(t["scale"] for t in multiscales["datasets"][0]["coordinateTransformations"]
                         if t["type"] == "scale")
            y, x = names.index("y"), names.index("x")
            return (float(scale[y]), units[y] or ""), (float(scale[x]), units[x] or "")
        import tifffile

        with tifffile.TiffFile(path) as tif:
            if tif.is_ome:
                import xml.etree.ElementTree as ET

                pixels = next(e for e in ET.fromstring(tif.ome_metadata).iter() if e.tag.endswith("Pixels"))
                if "PhysicalSizeX" in pixels.attrib:
                    x = float(pixels.attrib["PhysicalSizeX"])
                    x_unit = pixels.attrib.get("PhysicalSizeXUnit", "µm")  # OME's default unit
                    if "PhysicalSizeY" not in pixels.attrib:
                        return (x, x_unit), (x, x_unit)
                    return (float(pixels.attrib["PhysicalSizeY"]), pixels.attrib.get("PhysicalSizeYUnit", "µm")), \
                        (x, x_unit)
            page = tif.pages[0]
            tags = page.tags
            imagej = (tif.imagej_metadata or {}) if tif.is_imagej else {}
            imagej_unit = _ome_unit(str(imagej.get("unit", "")))
            y_unit = _ome_unit(str(imagej.get("yunit", imagej_unit)))  # Fiji may give Y its own unit
            if imagej_unit in IMAGEJ_UNITS:  # Fiji: pixels per its own unit (ResolutionUnit NONE)
                per_unit, unit = 1.0, imagej_unit
            else:  # pixels per inch or per centimetre
                resolution_unit = int(tags["ResolutionUnit"].value) if "ResolutionUnit" in tags else 0
                per_unit, unit = {2: 25400.0, 3: 10000.0}.get(resolution_unit, 0.0), "micrometer"
                y_unit = unit
            if "XResolution" in tags and per_unit:
                numerator, denominator = tags["XResolution"].value
                y_num, y_den = tags["YResolution"].value if "YResolution" in tags else (numerator, denominator)
                if numerator and not (per_unit > 1 and _screen_resolution(numerator / denominator, per_unit)):
                    size = denominator / numerator * per_unit
                    return ((y_den / y_num * per_unit if y_num else size), y_unit), (size, unit)
    except Exception:
        return None
    return None


#: the lengths a Fiji calibration may be in (its unit as :func:`_ome_unit` names it): EM's angstroms too
IMAGEJ_UNITS = tuple(MICROMETRES_PER_UNIT)
#: dots per inch that screens, screenshots and image editors' defaults record (GIMP, Photoshop, PIL's ``dpi=``):
#: no microscope's pixel size (72 dpi would be 353 micrometres a pixel); a scanner's 300 or 600 dpi is kept
SCREEN_DPI = (72, 96)


def _screen_resolution(pixels_per_unit: float, micrometres_per_unit: float) -> bool:
    """True if a resolution tag (pixels per inch or per centimetre) is one of :data:`SCREEN_DPI`.

    >>> _screen_resolution(72.0, 25400.0), _screen_resolution(37.795, 10000.0), _screen_resolution(600.0, 25400.0)
    (True, True, False)
    """
    dpi = pixels_per_unit * 25400.0 / micrometres_per_unit
    return any(abs(dpi - common) < 0.05 for common in SCREEN_DPI)


def _ome_unit(symbol: str) -> str:
    """A unit as OME and OME-Zarr name it, from OME's or ImageJ's symbol for it.

    >>> _ome_unit("micron"), _ome_unit("\\u00B5m"), _ome_unit("\\u00C5"), _ome_unit("pixel")
    ('micrometer', 'micrometer', 'angstrom', 'pixel')
    """
    symbol = re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m[1], 16)), symbol)  # ImageJ's escapes: µ, Å
    symbol = symbol.replace("\u03bc", "µ")
    return {"µm": "micrometer", "um": "micrometer", "micron": "micrometer", "microns": "micrometer",
            "nm": "nanometer", "mm": "millimeter", "cm": "centimeter", "m": "meter", "Å": "angstrom"}.get(symbol, symbol)


def _check_region(pixels: np.ndarray, reader: RegionReader, top: int, bottom: int, left: int, right: int,
                  whole: bool = False) -> None:
    """:func:`check_image_values` on pixels read from ``reader``, the message saying where they
    are: ``a.tif[2]`` (for a stack), ``rows 0-512, columns 0-700`` (unless ``whole``)."""
    count = getattr(reader, "count", 1)
    plane = plane_name(Path(reader.path), getattr(reader, "plane", 0), count) if count > 1 else ""
    region = "" if whole else f"rows {top}-{bottom}, columns {left}-{right}"
    check_image_values(pixels, reader.path, ", ".join(part for part in (plane, region) if part))


def sample_pixels(reader: RegionReader, max_pixels: int = DEFAULT_SAMPLE_PIXELS, window: int = 256) -> np.ndarray:
    """A ``(C, N)`` float sample of the plane's pixels (float64 for types float32 would round:
    :func:`~unetkit.data.normalize.working_type`): all of them if there are at most
    ``max_pixels``, else windows of ``window`` px on an even grid over the image. The windows
    are copied into one array as they are read, so memory is the sample and one window.

    >>> import tempfile, tifffile
    >>> path = Path(tempfile.mkdtemp()) / "x.tif"
    >>> tifffile.imwrite(path, np.arange(600 * 800, dtype=np.uint32).reshape(600, 800), tile=(64, 64))
    >>> sample_pixels(open_image(path), max_pixels=20_000, window=64).shape
    (1, 16384)
    """
    height, width, channels = reader.height, reader.width, reader.channels
    if height * width <= max_pixels:
        whole = reader.read(0, height, 0, width)
        _check_region(whole, reader, 0, height, 0, width, whole=True)
        return whole.reshape(-1, channels).T.astype(working_type(reader.dtype))
    count = max(1, max_pixels // (window * window))
    rows = max(1, round(math.sqrt(count * height / width)))
    cols = max(1, count // rows)
    tops = np.linspace(0, max(height - window, 0), rows).astype(int)
    lefts = np.linspace(0, max(width - window, 0), cols).astype(int)
    heights = [min(top + window, height) - top for top in tops]
    widths = [min(left + window, width) - left for left in lefts]
    sample = np.empty((channels, sum(heights) * sum(widths)), working_type(reader.dtype))
    filled = 0
    for top, tall in zip(tops, heights):
        for left, wide in zip(lefts, widths):
            piece = reader.read(top, top + tall, left, left + wide)
            _check_region(piece, reader, top, top + tall, left, left + wide)
            piece = piece.reshape(-1, channels)
            sample[:, filled : filled + len(piece)] = piece.T
            filled += len(piece)
    return sample


class NormalizedImage:
    """A region reader seen as a normalised ``(C, H, W)`` float32 array: what the tiler slices.

    ``normalizer`` must offer ``fitted(sample)`` (a :class:`~unetkit.data.normalize.Normalization`
    does); its numbers come from :func:`sample_pixels`.
    """

    def __init__(self, reader: RegionReader, normalizer: Any, max_pixels: int = DEFAULT_SAMPLE_PIXELS):
        fit = getattr(normalizer, "fitted", None)
        if fit is None:
            raise InputError(
                "this model's preprocessing needs the whole image at once, so the image cannot be read in chunks",
                path=reader.path, fix="crop the image, or use a unetkit model (its normalisation works on a sample)")
        self.reader = reader
        sample = sample_pixels(reader, max_pixels)
        extremes = np.stack([sample.min(axis=1), sample.max(axis=1)], axis=1)[:, :, None]
        self.scaling = fit(sample[:, :, None], scratch=True)
        #: ``(C, 2, 1)``: the sample's lowest and highest pixel of each channel, normalised (the inputs' range)
        self.input_range = self.scaling.apply(extremes)
        self.shape = (reader.channels, reader.height, reader.width)

    def __getitem__(self, key: tuple[slice, slice, slice]) -> np.ndarray:
        _, rows, cols = key
        top, left = rows.start or 0, cols.start or 0
        region = self.reader.read(top, rows.stop, left, cols.stop)
        _check_region(region, self.reader, top, rows.stop, left, cols.stop)
        return self.scaling.apply(np.moveaxis(region, -1, 0))

    def raw(self, top: int, bottom: int, left: int, right: int) -> np.ndarray:
        """The region as read (``(h, w, C)``, the file's type): for measurements and overlays."""
        return self.reader.read(top, bottom, left, right)


def describe_ome_zarr(path: str | Path) -> dict[str, Any]:
    """The OME-NGFF attributes of an OME-Zarr image group, as plain values (for tests and tools)."""
    import zarr

    return json.loads(json.dumps(zarr.open_group(str(path), mode="r").attrs.asdict()))
