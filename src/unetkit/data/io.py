"""Reading images as 2D planes and writing outputs atomically.

:func:`read_planes` reads PNG, JPEG and TIFF (8/16-bit, float, multi-page) into a list
of 2D planes, each ``(H, W)`` or ``(H, W, C)``; a stack of pages counts as several
images. Everything that can go wrong names the file.

:func:`atomic_write` writes through a temporary file in the same folder and renames it
into place, so an output is either complete or absent, and never replaces an existing
file unless asked to.

>>> import tempfile, numpy as np
>>> folder = Path(tempfile.mkdtemp())
>>> write_image(folder / "a.png", np.zeros((4, 6), np.uint8))
>>> [p.shape for p in read_planes(folder / "a.png")]
[(4, 6)]
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, cast

import numpy as np
import tifffile
from PIL import Image, UnidentifiedImageError

from ..errors import ConfigError, InputError, OutputExistsError
from .partials import NAME_MAX_BYTES, temporary_file

TIFF_SUFFIXES = {".tif", ".tiff"}
PIL_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}
IMAGE_SUFFIXES = TIFF_SUFFIXES | PIL_SUFFIXES
LOSSY_SUFFIXES = {".jpg", ".jpeg"}
# TIFF axes that hold the channels of one image; every other non-YX axis counts pages.
CHANNEL_AXES = {"C", "S"}


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def image_stem(path: str | Path) -> str:
    """The file's name without its image extension; ``.ome.tif`` counts as one extension.

    >>> image_stem("a.ome.tif"), image_stem("a.png"), image_stem("cell.v2.tiff"), image_stem("b.ome.zarr")
    ('a', 'a', 'cell.v2', 'b')
    """
    path = Path(path)
    stem = path.stem
    if path.suffix.lower() in TIFF_SUFFIXES | {".zarr"} and stem.lower().endswith(".ome"):
        stem = stem[: -len(".ome")]
    return stem


def read_planes(path: str | Path, mask: bool = False) -> list[np.ndarray]:
    """The 2D images in a file: one per page, each (H, W) or (H, W, C). A palette image (an indexed PNG)
    reads as its grey levels where its palette is grey, unless ``mask``: a mask's indices are its classes ({0, 1, 2}
    shown as black, grey and white), except where its palette's levels fall with the index (Pillow's ``quantize()``
    puts white first).

    Raises :class:`InputError` for a missing, unreadable, truncated or non-image file,
    an empty image, or a file with more than one stack axis (a 3D time-lapse, say).
    """
    path = Path(path)
    if path.name.lower().endswith(".zarr") and path.is_dir():  # OME-Zarr: every plane, whole
        from .chunked import open_image

        first = open_image(path)
        readers = [first] + [open_image(path, plane) for plane in range(1, first.count)]
        return [_squeezed(r.read(0, r.height, 0, r.width)) for r in readers]
    if not path.is_file():
        raise InputError("file not found", path=path)
    check_image_suffix(path)
    if path.stat().st_size == 0:  # readers say "substring not found" and the like
        raise InputError("the file is empty (0 bytes): a copy or save that did not finish?", path=path,
                         fix="save or copy it again, or remove it from the folder")
    suffix = path.suffix.lower()
    try:
        planes = _read_tiff(path) if suffix in TIFF_SUFFIXES else [_read_pil(path, mask)]
    except InputError:
        raise
    except PermissionError as exc:
        raise InputError("cannot read the file: permission denied", path=path,
                         fix="check the file's permissions (ls -l); unetkit only needs to read it") from exc
    except MemoryError as exc:
        raise InputError("the image does not fit in memory when decoded", path=path,
                         fix="predict it with the chunked reader (a tiled TIFF or OME-Zarr), or crop it") from exc
    except Exception as exc:  # the readers raise many types for corrupt input
        raise InputError(
            f"cannot be read as an image ({type(exc).__name__}: {exc}); "
            "the file may be corrupt, truncated, or not an image",
            path=path,
            fix="re-export the file, or remove it from the folder",
        ) from exc
    for plane in planes:
        if plane.size == 0 or plane.shape[0] == 0 or plane.shape[1] == 0:
            raise InputError(f"image is empty (shape {plane.shape})", path=path)
    return planes


def check_image_suffix(path: Path) -> None:
    """Refuse a file whose name ends in a format unetkit does not read (a GIF, say)."""
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise InputError(f"unsupported image format {suffix!r}", path=path,
                         fix=f"convert it to one of {', '.join(sorted(IMAGE_SUFFIXES))}")


def check_pixel_type(dtype: np.dtype, path: Path) -> None:
    """Refuse complex or non-numeric pixels: a cast to float32 would drop the imaginary part.

    >>> check_pixel_type(np.dtype("complex64"), Path("c.tif"))
    Traceback (most recent call last):
    ...
    unetkit.errors.InputError: c.tif: image pixels are complex numbers (complex64); unetkit reads real-valued images
      fix: save a real-valued image: the magnitude (numpy.abs) or the real part, for instance
    """
    if dtype.kind not in "biuf":
        kind = "complex numbers" if dtype.kind == "c" else "not numbers"
        raise InputError(f"image pixels are {kind} ({dtype}); unetkit reads real-valued images", path=path,
                         fix="save a real-valued image: the magnitude (numpy.abs) or the real part, for instance")


@dataclass(frozen=True)
class PlaneShape:
    """What :func:`read_planes` would return for a file, read from its header only."""

    count: int  # 2D planes in the file
    height: int
    width: int
    channels: int
    dtype: str = "uint8"


def plane_shape(path: str | Path) -> PlaneShape:
    """Plane count, height, width and channels of an image file, without reading its pixels.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> tifffile.imwrite(folder / "s.tif", np.zeros((3, 5, 7), np.uint8), photometric="minisblack")
    >>> plane_shape(folder / "s.tif")
    PlaneShape(count=3, height=5, width=7, channels=1, dtype='uint8')
    """
    path = Path(path)
    if path.name.lower().endswith(".zarr"):  # an OME-Zarr image: its metadata only
        from .chunked import open_image

        reader = open_image(path)
        return PlaneShape(reader.count, reader.height, reader.width, reader.channels, reader.dtype.name)
    check_image_suffix(path)
    try:
        if path.suffix.lower() in TIFF_SUFFIXES:
            with tifffile.TiffFile(path) as tif:
                all_series = uniform_series(tif, path)
                shape, axes, dtype = all_series[0].shape, series_axes(all_series[0]), all_series[0].dtype
            check_axes(axes, shape, path)
            check_pixel_type(np.dtype(dtype), path)
            sizes = dict(zip(axes, shape))
            channels = int(np.prod([shape[i] for i, a in enumerate(axes) if a in CHANNEL_AXES], dtype=np.int64))
            count = int(np.prod([shape[i] for i in _stack_axes(axes)], dtype=np.int64)) * len(all_series)
            return PlaneShape(count, int(sizes["Y"]), int(sizes["X"]), channels, np.dtype(dtype).name)
        if sixteen_bit_colour_png(path):  # Pillow would say 8 bits (and 4 bands for grey + alpha)
            header = cast(PngHeader, _png_header(path))
            if header.colour_type == 2:  # RGB: no alpha to decide on, no pixels to decode
                return PlaneShape(1, header.height, header.width, 3, "uint16")
            read = _read_pil(path)
            return PlaneShape(1, header.height, header.width, 1 if read.ndim == 2 else read.shape[-1], "uint16")
        with Image.open(path) as image:
            width, height = image.size
            bands = len(image.getbands())
            dtype = "uint16" if image.mode.startswith("I;16") else ("int32" if image.mode in ("I", "F") else "uint8")
            alpha = image.mode in ALPHA_MODES
        if alpha:  # whether the reader drops it depends on its values (an_alpha_to_drop)
            read = _read_pil(path)
            bands = 1 if read.ndim == 2 else read.shape[-1]
        return PlaneShape(1, height, width, bands, dtype)
    except InputError:
        raise  # it names what is wrong already (reading the file again would only repeat tifffile's warnings)
    except Exception:
        planes = read_planes(path)  # let the full reader name what is wrong (or answer)
        first = planes[0]
        return PlaneShape(len(planes), first.shape[0], first.shape[1], 1 if first.ndim == 2 else first.shape[2],
                          first.dtype.name)


def _squeezed(plane: np.ndarray) -> np.ndarray:
    return plane[..., 0] if plane.ndim == 3 and plane.shape[2] == 1 else plane


def count_planes(path: str | Path) -> int:
    """How many 2D images :func:`read_planes` would return, without reading the pixels."""
    return plane_shape(path).count


#: PIL modes with an alpha channel (RGBA, grey + alpha)
ALPHA_MODES = ("RGBA", "LA", "La", "RGBa", "PA")
#: an alpha channel at its opaque maximum in at least this share of the pixels is transparency, which the reader drops
OPAQUE_SHARE = 0.99


def an_alpha_to_drop(last: np.ndarray) -> bool:
    """True if the last channel of an image of an alpha mode is transparency rather than a measurement: the same
    value everywhere, or opaque (255) in at least :data:`OPAQUE_SHARE` of the pixels. An exported picture's alpha
    (RGBA with a few pixels not quite opaque) is dropped, so that one kind of file has one channel count; a numpy
    array of 2 or 4 channels, which PIL saves as LA or RGBA, keeps its last channel.

    >>> opaque = np.full((10, 10), 255, np.uint8); opaque[0, 0] = 254
    >>> an_alpha_to_drop(opaque), an_alpha_to_drop(np.arange(100, dtype=np.uint8).reshape(10, 10))
    (True, False)
    """
    opaque = np.iinfo(last.dtype).max if last.dtype.kind in "ui" else 255  # 65535 in a 16-bit PNG
    return bool(np.all(last == last.flat[0]) or np.mean(last == opaque) >= OPAQUE_SHARE)


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def sixteen_bit_colour_png(path: str | Path) -> bool:
    """True for a PNG of 16 bits a sample in colour or with alpha (PNG colour types 2, 4 and 6: what OpenCV's
    and MATLAB's ``imwrite`` save of a 16-bit RGB array). Pillow reads only the high byte of each of their
    samples (8-bit data in a 16-bit file reads as 0), so :func:`read_planes` decodes them with imagecodecs.

    >>> import tempfile, imagecodecs
    >>> path = Path(tempfile.mkdtemp()) / "rgb16.png"
    >>> _ = path.write_bytes(imagecodecs.png_encode(np.full((4, 4, 3), 200, np.uint16)))
    >>> sixteen_bit_colour_png(path), read_planes(path)[0][0, 0].tolist()
    (True, [200, 200, 200])
    """
    header = _png_header(path)
    return header is not None and header.bit_depth == 16 and header.colour_type in (2, 4, 6)


@dataclass(frozen=True)
class PngHeader:
    width: int
    height: int
    bit_depth: int
    colour_type: int  # 0 grey, 2 RGB, 3 palette, 4 grey + alpha, 6 RGBA


def _png_header(path: str | Path) -> PngHeader | None:
    """A PNG's IHDR fields; None for a file that is no PNG (or cannot be read)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(26)
    except OSError:
        return None
    if len(head) < 26 or head[:8] != PNG_SIGNATURE or head[12:16] != b"IHDR":
        return None
    return PngHeader(int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big"), head[24], head[25])


def _read_pil(path: Path, mask: bool = False) -> np.ndarray:
    if sixteen_bit_colour_png(path):
        import imagecodecs

        array = imagecodecs.png_decode(path.read_bytes())
        if array.ndim == 3 and array.shape[-1] in (2, 4) and an_alpha_to_drop(array[..., -1]):
            array = _squeezed(array[..., :-1])
        return array
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode in ("I;16", "I;16B", "I;16L"):
                return np.asarray(image).astype(np.uint16)
            if image.mode == "P" and has_grey_palette(image) and (not mask or _palette_levels_fall(image)):
                image = image.convert("L")  # its grey levels (for a mask, only where they fall with the index, as
                # Pillow's quantize() orders them, white first: its indices would swap the classes)
            array = np.asarray(image)  # a palette in colour reads as its indices: for masks, those are the labels
            mode = image.mode
    except UnidentifiedImageError as exc:
        raise InputError(
            "not an image file, although its name says so",
            path=path,
            fix="remove the file or give it its real extension",
        ) from exc
    if mode in ALPHA_MODES and array.ndim == 3 and an_alpha_to_drop(array[..., -1]):
        array = _squeezed(array[..., :-1])
    return array


def _palette_levels_fall(image: Image.Image) -> bool:
    """True if a grey palette's entries fall from the first on (as Pillow's ``quantize()`` orders them, white first,
    or an inverted display): such a mask means its grey levels, and its indices would swap the classes. Every other
    palette mask is read as its indices. The entries are the palette's own (black padding after its last grey
    dropped, up to the highest index the file uses), the same for every file of one palette whichever indices each
    uses."""
    levels = np.frombuffer(image.palette.tobytes(), np.uint8).reshape(-1, 3)[:, 0].astype(int)
    grey = np.flatnonzero(levels)
    end = max(int(np.asarray(image).max()) + 1, int(grey[-1]) + 1 if grey.size else 1)
    return bool(np.all(np.diff(levels[:end]) < 0))


def has_grey_palette(image: Image.Image) -> bool:
    """True if a palette image's colours are all grey (each entry's red, green and blue equal)."""
    entries = np.frombuffer(image.palette.tobytes(), np.uint8) if image.palette else np.zeros(0, np.uint8)
    if image.palette is None or image.palette.mode != "RGB" or entries.size % 3:
        return False
    rgb = entries.reshape(-1, 3)
    return bool(np.all(rgb == rgb[:, :1]))


def colour_palette(path: str | Path) -> bool:
    """True if ``path`` is a PNG (or other PIL format) of palette indices into colours: as an image it would read as
    the indices, which order nothing by brightness.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> picture = Image.fromarray(np.zeros((4, 4), np.uint8), "P")
    >>> picture.putpalette([255, 0, 0] * 256); picture.save(folder / "red.png")
    >>> picture.putpalette([7, 7, 7] * 256); picture.save(folder / "grey.png")
    >>> colour_palette(folder / "red.png"), colour_palette(folder / "grey.png")
    (True, False)
    """
    path = Path(path)
    if path.suffix.lower() in TIFF_SUFFIXES or not path.is_file():
        return False
    try:
        with Image.open(path) as image:
            return image.mode == "P" and not has_grey_palette(image)
    except (OSError, UnidentifiedImageError):
        return False


def check_not_a_colour_palette(path: str | Path) -> None:
    """Refuse a palette image in colour given as an image (a mask's palette indices are its classes)."""
    if colour_palette(path):
        raise InputError("image of palette indices (an indexed-colour PNG): read as it is, its pixels would be the "
                         "indices, not the colours' brightness", path=path,
                         fix="save it as grey or RGB (in Fiji: Image > Type > 8-bit or RGB Color)")


def layout_hint(path: str | Path) -> str:
    """A sentence on how a TIFF that records no axes was read, for messages about its channels or planes ("" for
    other files): tifffile saves a ``(3, Y, X)`` or ``(4, Y, X)`` array as one RGB(A) image whose colour samples
    are the planes, and a ``(2, Y, X)`` one as two planes; either may have been meant the other way.

    >>> import tempfile, warnings
    >>> folder = Path(tempfile.mkdtemp())
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     tifffile.imwrite(folder / "three.tif", np.zeros((3, 8, 8), np.uint16))
    >>> layout_hint(folder / "three.tif")[:63]
    ' (the file stores 3 planes as the colour samples of one RGB ima'
    """
    path = Path(path)
    if path.suffix.lower() not in TIFF_SUFFIXES:
        return _alpha_hint(path)
    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            alpha = any(kind in (1, 2) for kind in np.atleast_1d(getattr(page, "extrasamples", ()) or ()))
            recorded = tif.is_imagej or tif.is_ome  # its axes are recorded
            series = tif.series[0]
            axes, shape = series_axes(series), tuple(series.shape)
            planar_colour = page.planarconfig == 2 and page.photometric == 2 and page.samplesperpixel in (3, 4)
    except Exception:
        return ""
    if recorded:
        return ""
    if planar_colour:
        count = shape[axes.index("S")]
        return (f" (the file stores {count} planes as the colour samples of one RGB image, which is what "
                f"tifffile.imwrite writes for a ({count}, Y, X) array; if they are frames or slices, save them with "
                "photometric='minisblack', or as an ImageJ stack: imagej=True)")
    if len(shape) == 3 and axes[0] not in CHANNEL_AXES and 2 <= shape[0] <= MAX_UNLABELLED_CHANNELS:
        return (f" (read as a stack of {shape[0]} planes: the file records no axes, and a first axis is read as "
                "planes; if they are the channels of one image, save it as (Y, X, C), or with ImageJ axes: "
                "imagej=True, metadata={'axes': 'CYX'})")
    if alpha:
        return (" (the file marks its last channel as alpha: if it is transparency, save the image without it; "
                "if it is a measurement, save it with extrasamples unspecified)")
    return ""


def _alpha_hint(path: Path) -> str:
    """For a PNG whose alpha channel the reader kept (:func:`an_alpha_to_drop`): why it counts as a channel."""
    try:
        with Image.open(path) as image:
            alpha = image.mode in ALPHA_MODES
    except Exception:
        return ""
    if not alpha:
        return ""
    read = _read_pil(path)
    if read.ndim == 2 or read.shape[-1] not in (2, 4):
        return ""  # dropped
    return (f" (its last channel is its alpha, kept because under {OPAQUE_SHARE:.0%} of its pixels are opaque: "
            "transparent margins, say; flatten the image onto a background, or save it without alpha)")


def uniform_series(tif: tifffile.TiffFile, path: Path) -> list:
    """Every image series of a TIFF file; they must share shape, axes and type.

    A file written page by page (one ``write()`` call per plane) holds one series per page:
    all of them are read, none is dropped. Series of different shapes (a slide scanner's
    thumbnail and label images, say) are refused rather than guessed at.
    """
    series = list(tif.series)
    if not series:
        raise InputError("TIFF file holds no image", path=path)
    first = series[0]
    different = [s for s in series[1:] if (s.shape, s.axes, s.dtype) != (first.shape, first.axes, first.dtype)]
    if different:
        shapes = sorted({f"{s.axes} {tuple(s.shape)} {s.dtype}" for s in series})
        raise InputError(
            f"TIFF file holds {len(series)} image series of different shapes or types ({', '.join(shapes[:4])})",
            path=path,
            fix="save the images to segment as their own files, one shape per file",
        )
    return series


def _read_tiff(path: Path) -> list[np.ndarray]:
    with tifffile.TiffFile(path) as tif:
        planes = []
        for series in uniform_series(tif, path):
            planes.extend(_planes_from_axes(series.asarray(), series_axes(series), path))
    return planes


#: at most this many values on the last axis of a TIFF without axes metadata read as its channels (below)
MAX_UNLABELLED_CHANNELS = 4


def series_axes(series: Any) -> str:
    """A TIFF series' axes, as tifffile reads them, except that a numpy array (Y, X, C) of up to
    :data:`MAX_UNLABELLED_CHANNELS` channels written without axes metadata, which tifffile reads as a stack of
    C-pixel-wide planes ('QYX' with its shape metadata, 'IYX' with none; 3 and 4 channels of uint8 it reads as RGB
    already), reads as YXS: one image of those channels. Planes that narrow were never what such a file meant.

    >>> from types import SimpleNamespace
    >>> [series_axes(SimpleNamespace(axes=a, shape=s)) for a, s in (("QYX", (192, 192, 2)), ("IYX", (96, 80, 2)),
    ...                                                                ("QYX", (5, 64, 64)))]
    ['YXS', 'YXS', 'QYX']
    """
    return unnamed_axes(series.axes, tuple(series.shape))


def unnamed_axes(axes: str, shape: tuple[int, ...]) -> str:
    """``axes`` as guessed for an array stored without axis names (a TIFF series, a bare zarr array): a 3D one
    whose last axis is at most :data:`MAX_UNLABELLED_CHANNELS` long and the others longer is (Y, X, channels).

    >>> unnamed_axes("QYX", (300, 200, 3)), unnamed_axes("QYX", (3, 300, 200))
    ('YXS', 'QYX')
    """
    if (axes in ("QYX", "IYX") and shape[2] <= MAX_UNLABELLED_CHANNELS < shape[1]
            and shape[0] > MAX_UNLABELLED_CHANNELS):
        return "YXS"
    return axes


def _stack_axes(axes: str) -> list[int]:
    """Positions of the TIFF axes that count pages (neither channels nor Y, X)."""
    return [i for i, a in enumerate(axes) if a not in CHANNEL_AXES | {"Y", "X"}]


def check_axes(axes: str, shape: tuple[int, ...], path: Path) -> None:
    """Refuse a TIFF of more than one stack axis or channel axis (a z-stack over time, say).

    >>> check_axes("TZYX", (2, 3, 64, 64), Path("z.tif"))
    Traceback (most recent call last):
    ...
    unetkit.errors.InputError: z.tif: a 4D stack (axes TZYX, shape (2, 3, 64, 64)) where 2D images (or one stack of them) were expected
      fix: save each 2D plane (or one time/z series of 2D planes) as its own file
    """
    channel_axes = [a for a, size in zip(axes, shape) if a in CHANNEL_AXES and size > 1]
    stack_axes = [i for i in _stack_axes(axes) if shape[i] > 1]  # an axis of one (numpy's (N, H, W, 1)) counts none
    if len(stack_axes) > 1 or len(channel_axes) > 1:
        unnamed = sum(axes[i] in "QI" for i in stack_axes) > 1  # no axes recorded: numpy's (T, C, Y, X) reads so
        raise InputError(
            f"a {len(shape)}D stack (axes {axes}, shape {tuple(shape)}) where 2D images "
            "(or one stack of them) were expected"
            + (" (the file records no axes, so none of them is read as channels)" if unnamed else ""),
            path=path,
            fix="save each 2D plane (or one time/z series of 2D planes) as its own file"
            + ("; a time series of multi-channel frames, a (T, C, Y, X) array, reads as one with its axes recorded: "
               "tifffile.imwrite(path, array, metadata={'axes': 'TCYX'})" if unnamed else ""),  # ImageJ's format: 8/16-bit, float32
        )


def _planes_from_axes(array: np.ndarray, axes: str, path: Path) -> list[np.ndarray]:
    """Split a TIFF array into 2D planes (channels last), by its axes string."""
    if array.ndim != len(axes):
        raise InputError(f"TIFF axes {axes!r} do not match its shape {array.shape}", path=path)
    check_axes(axes, array.shape, path)
    ones = tuple(i for i, a in enumerate(axes) if array.shape[i] == 1 and a not in "YX")
    array, axes = array.squeeze(axis=ones), "".join(a for i, a in enumerate(axes) if i not in ones)
    channel_axes = [i for i, a in enumerate(axes) if a in CHANNEL_AXES]
    stack_axes = _stack_axes(axes)
    order = stack_axes + [axes.index("Y"), axes.index("X")] + channel_axes
    array = np.transpose(array, order)
    if not stack_axes:
        array = array[None]
    planes = [np.ascontiguousarray(plane) for plane in array]
    return [p[..., 0] if p.ndim == 3 and p.shape[2] == 1 else p for p in planes]


def ensure_can_write(path: Path, overwrite: bool, fix: str = "pass --overwrite, or choose another --out",
                     inputs: Iterable[str | Path] = (), zarr_folder: bool = False) -> None:
    """Raise unless ``path`` can be written: :class:`OutputExistsError` if it exists (or is a
    dangling link) and ``overwrite`` is False, or is a folder; even with ``overwrite``, if it is a
    link, a device or pipe, or one of the command's ``inputs`` (outputs are written beside and moved
    into place, which would replace any of these); :class:`ConfigError` if its folder cannot be
    created or written. ``fix`` says what the command offers instead; ``zarr_folder``: the output is an OME-Zarr
    image, a folder whose name ends in ``.zarr``.

    A check before the work: nothing is computed only to be refused at the end.

    >>> try:
    ...     ensure_can_write(Path("/dev/null"), overwrite=True)
    ... except OutputExistsError as error:
    ...     print(error.problem)
    output is not a regular file (a device, a pipe or a socket): writing it would put a new file in its place
    """
    path = Path(path)
    if len(path.name.encode()) > NAME_MAX_BYTES:
        raise ConfigError(f"the output's name is {len(path.name.encode())} bytes long, more than the "
                          f"{NAME_MAX_BYTES} a file name may have", path=path,
                          fix="give the input (or the output) a shorter name")
    if path.is_dir() and not (zarr_folder and path.name.lower().endswith(".zarr")):
        raise OutputExistsError("output path is a folder, not a file", path=path, fix="give a file name")
    if path.exists() or path.is_symlink():  # what --overwrite may not replace is said first, with or without it
        if path.is_symlink():
            raise OutputExistsError(
                f"output is a link (to {os.readlink(path)}): writing it would put a new file in the link's place, "
                "not write to the file it names", path=path, fix="give the file's own path, or remove the link")
        if not path.is_file() and not path.is_dir():
            raise OutputExistsError("output is not a regular file (a device, a pipe or a socket): writing it would "
                                    "put a new file in its place", path=path, fix="give the path of a regular file")
        if not overwrite:
            raise OutputExistsError("output exists already", path=path, fix=fix)
        if any(_same_file(path, Path(source)) for source in inputs):
            raise OutputExistsError("output is one of this command's inputs: --overwrite would replace it",
                                    path=path, fix="choose another output path")
    check_writable_folder(path.parent, path)


def _same_file(first: Path, second: Path) -> bool:
    try:
        return first.samefile(second)
    except OSError:  # either is missing or unreadable: not the same existing file
        return False


def same_path(first: str | Path, second: str | Path) -> bool:
    """True if two paths name one file, existing or not: through links in their folders, or hard links.

    >>> same_path("a/../b.csv", "b.csv"), same_path("b.csv", "c.csv")
    (True, False)
    """
    first, second = Path(first), Path(second)
    return first.resolve() == second.resolve() or _same_file(first, second)


def check_output_folder(folder: Path) -> None:
    """Raise unless ``folder`` (an ``--out``) is, or can be made, a folder this process can write into."""
    folder = Path(folder)
    if folder.is_symlink() and not folder.exists():
        raise ConfigError("--out is a link to nothing", path=folder, fix="remove the link or choose another --out")
    if folder.exists() and not folder.is_dir():
        raise ConfigError("--out is a file, not a folder", path=folder, fix="choose a folder for --out")
    check_writable_folder(folder)


def check_writable_folder(folder: Path, path: Path | None = None) -> None:
    """Raise :class:`ConfigError` unless ``folder`` is, or can be created as, a writable
    folder; the error names ``path`` (the output, default: the folder)."""
    existing = Path(folder)
    named = path or folder
    while not existing.exists() and existing != existing.parent:
        if existing.is_symlink():
            raise ConfigError(f"cannot write into {existing}: it is a link to nothing", path=named, fix="remove the link")
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"cannot write into {existing}: it is a file, not a folder", path=named,
                          fix="choose an output path inside a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        if on_read_only_file_system(existing):
            raise ConfigError(f"cannot write into {existing}: it is on a read-only file system", path=named,
                              fix="choose an output path on a writable disk")
        raise ConfigError(f"cannot write into {existing}: permission denied", path=named,
                          fix="choose an output path in a folder you can write to")


def on_read_only_file_system(path: Path) -> bool:
    """True if ``path`` lies on a file system mounted read-only (False where the system cannot tell).

    >>> import tempfile
    >>> on_read_only_file_system(Path(tempfile.gettempdir()))
    False
    """
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):  # AttributeError: no statvfs (Windows)
        return False


def current_umask() -> int:
    """The process's umask, read without changing it where the system tells it (Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore at once
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, write: Callable[[Path], None], overwrite: bool = False) -> None:
    """Call ``write(temporary_path)``, then move the result to ``path`` in one step.

    On any error the temporary file is removed and ``path`` is untouched. The file gets the
    permissions a plain ``open()`` would give it (0666 less the umask). Without
    ``overwrite``, a file that appears at ``path`` while writing (another process) is never
    replaced: the move is a hard link, which fails if the name exists.
    """
    path = Path(path)
    ensure_can_write(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary_path = temporary_file(path, suffix=f".partial{path.suffix}")  # the writer may read the suffix
    try:
        write(temporary_path)
        with open(temporary_path, "r+b") as written:  # Windows flushes only a handle open for writing (EBADF)
            os.fsync(written.fileno())
        os.chmod(temporary_path, 0o666 & ~current_umask())  # after: a umask without the owner's write bit
        if overwrite:
            os.replace(temporary_path, path)
        else:
            _move_without_replacing(temporary_path, path)
    except BaseException:
        temporary_path.unlink(missing_ok=True)
        raise


def _move_without_replacing(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except FileExistsError:
        raise OutputExistsError(
            "output appeared while it was being written (another process writes here?); it was left as it is",
            path=target, fix="give each run its own --out, or pass --overwrite",
        ) from None
    except OSError:  # a file system without hard links: check, then rename
        ensure_can_write(target, overwrite=False)
        os.replace(source, target)
        return
    source.unlink()


def write_image(path: str | Path, array: np.ndarray, overwrite: bool = False) -> None:
    """Write a 2D (or H x W x 3) array as PNG or TIFF, atomically, by the file's extension."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in TIFF_SUFFIXES:
        writer = lambda target: tifffile.imwrite(target, array, compression="zlib", photometric="rgb" if array.ndim == 3 else "minisblack")  # noqa: E731
    elif suffix == ".png":
        writer = lambda target: Image.fromarray(array).save(target, format="PNG")  # noqa: E731
    else:
        raise InputError(f"cannot write {suffix!r}", path=path, fix="use .png or .tif")
    atomic_write(path, writer, overwrite)
