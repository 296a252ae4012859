"""Pictures for people: label overlays and grids of training samples.

>>> import numpy as np
>>> picture = overlay(np.zeros((1, 4, 4), np.float32), np.eye(4, dtype=np.uint8))
>>> picture.shape, picture.dtype
((4, 4, 3), dtype('uint8'))
"""

from __future__ import annotations

import numpy as np

# One colour per class (class 0, background, is left uncoloured): 19 apart, then they repeat.
CLASS_COLOURS = np.array(
    [[0, 0, 0], [255, 64, 64], [64, 200, 64], [64, 128, 255], [255, 200, 0],
     [200, 64, 255], [0, 220, 220], [255, 128, 0], [160, 160, 160],
     [255, 105, 180], [128, 128, 0], [0, 128, 128], [140, 86, 75], [40, 60, 160], [170, 255, 80],
     [128, 0, 0], [180, 160, 255], [250, 160, 120], [0, 110, 50], [220, 210, 120]],
    dtype=np.float32,
)


def display_bounds(image: np.ndarray, max_pixels: int = 2**22) -> tuple[float, float]:
    """The 0.5th and 99.5th percentiles of a (C, H, W) image's displayed channels (from a
    regular subsample of at most ``max_pixels`` pixels, so that huge images cost little)."""
    shown = np.asarray(image[:3] if image.shape[0] >= 3 else image[:1])
    step = max(1, int(np.ceil(np.sqrt(shown[0].size / max_pixels))))
    low, high = np.percentile(shown[:, ::step, ::step], [0.5, 99.5])
    return float(low), float(high)


def display_image(image: np.ndarray, bounds: tuple[float, float] | None = None) -> np.ndarray:
    """A normalised (C, H, W) image as (H, W, 3) float32 in [0, 1] (first channel, or RGB)."""
    low, high = bounds if bounds is not None else display_bounds(image)
    scale = np.float32(1.0 / max(high - low, 1e-6))
    if image.shape[0] >= 3:
        rgb = np.moveaxis(np.asarray(image[:3], np.float32), 0, -1)
    else:
        rgb = np.repeat(np.asarray(image[0], np.float32)[..., None], 3, axis=-1)
    return np.clip((rgb - np.float32(low)) * scale, 0, 1)


def overlay(image: np.ndarray, labels: np.ndarray, alpha: float = 0.45,
            bounds: tuple[float, float] | None = None) -> np.ndarray:
    """The image in grey (or colour) with each class's pixels tinted in its own colour."""
    picture = display_image(image, bounds) * 255
    labels = np.asarray(labels)
    tinted = labels > 0
    if tinted.any():
        colours = CLASS_COLOURS[1 + (labels[tinted].astype(np.int64) - 1) % (len(CLASS_COLOURS) - 1)]
        picture[tinted] = (1 - alpha) * picture[tinted] + alpha * colours
    return picture.astype(np.uint8)


def grid(pictures: list[np.ndarray], columns: int = 4, gap: int = 2) -> np.ndarray:
    """Tile equally sized (H, W, 3) pictures into one picture."""
    height, width = pictures[0].shape[:2]
    rows = -(-len(pictures) // columns)
    canvas = np.full((rows * (height + gap) - gap, columns * (width + gap) - gap, 3), 255, np.uint8)
    for index, picture in enumerate(pictures):
        row, column = divmod(index, columns)
        canvas[row * (height + gap) : row * (height + gap) + height,
               column * (width + gap) : column * (width + gap) + width] = picture
    return canvas


def object_colours(ids: np.ndarray) -> np.ndarray:
    """An RGB colour (0-255, float32) for each object id: golden-ratio hues, so that
    neighbouring ids differ and an id has the same colour wherever it is drawn.

    >>> object_colours(np.array([1, 2])).shape
    (2, 3)
    """
    hues = (np.asarray(ids, np.float64) * 0.618033988749895) % 1.0
    sector = (hues * 6).astype(int) % 6
    fraction = hues * 6 - np.floor(hues * 6)
    value, low = 1.0, 0.25  # saturation 0.75
    falling, rising = value - 0.75 * fraction, low + 0.75 * fraction
    table = np.stack([
        np.choose(sector, [value, falling, low, low, rising, value]),
        np.choose(sector, [rising, value, value, falling, low, low]),
        np.choose(sector, [low, low, rising, value, value, falling]),
    ], axis=-1)
    return (table * 255).astype(np.float32)


def object_overlay(image: np.ndarray, labels: np.ndarray, alpha: float = 0.4,
                   bounds: tuple[float, float] | None = None) -> np.ndarray:
    """The image with each object tinted in its own colour and its outline drawn in white.

    >>> labels = np.zeros((6, 6), np.uint16); labels[1:5, 1:5] = 1
    >>> picture = object_overlay(np.zeros((1, 6, 6), np.float32), labels)
    >>> picture[1, 1].tolist(), picture[0, 0].tolist()
    ([255, 255, 255], [0, 0, 0])
    """
    from skimage.segmentation import find_boundaries

    picture = display_image(image, bounds) * 255
    labels = np.asarray(labels)
    inside = labels > 0
    if inside.any():
        picture[inside] = (1 - alpha) * picture[inside] + alpha * object_colours(labels[inside])
        picture[find_boundaries(labels, mode="inner") & inside] = 255
    return picture.astype(np.uint8)


def colour_picture(raw) -> bool:
    """True for an image as read that is an 8-bit RGB picture, ``(H, W, 3)`` uint8 (a brightfield or H&E tile, a
    photograph): it is shown as it is stored, since normalising each channel on its own changes its colours (pink
    and purple turn beige and black)."""
    shape, dtype = getattr(raw, "shape", ()), getattr(raw, "dtype", None)
    return len(shape) == 3 and shape[2] == 3 and dtype is not None and np.dtype(dtype) == np.uint8


def shown_image(image, raw=None) -> tuple[object, tuple[float, float] | None]:
    """What a picture of a normalised (C, H, W) image is drawn from, and its display bounds (None: from its
    percentiles): an 8-bit RGB picture as read (``raw``, (H, W, 3)), 0 to 255, so its colours stay; else ``image``.

    >>> rgb = np.zeros((2, 3, 3), np.uint8); rgb[..., 0] = 200
    >>> shown, bounds = shown_image(np.zeros((3, 2, 3), np.float32), rgb)
    >>> np.asarray(shown[:, 0:1, :])[:, 0, 0].tolist(), bounds
    ([200, 0, 0], (0.0, 255.0))
    """
    if raw is not None and colour_picture(raw):
        return _ChannelsFirst(raw), (0.0, 255.0)
    return image, None


def display_picture(image: np.ndarray, raw: np.ndarray | None = None) -> np.ndarray:
    """:func:`display_image` of a normalised (C, H, W) image, or of an 8-bit RGB picture its own colours (``raw``,
    (H, W, 3) as read: :func:`colour_picture`)."""
    shown, bounds = shown_image(image, raw)
    return display_image(np.asarray(shown[:, :, :]), bounds)


class _ChannelsFirst:
    """An (H, W, C) array-like that reads by rows (``raw[top:bottom]``) seen as (C, H, W), for ``[c, rows, x]``."""

    def __init__(self, raw):
        self.raw = raw
        height, width, channels = raw.shape
        self.shape = (channels, height, width)

    def __getitem__(self, key):
        channels, rows, columns = key
        return np.moveaxis(np.asarray(self.raw[rows]), -1, 0)[channels, :, columns]


def overlay_picture(image, labels, objects: bool = False, max_side: int = 8192, band_pixels: int = 2**24,
                    raw=None) -> np.ndarray:
    """An overlay of array-likes too large to hold (a (C, H, W) normalised image and its (H, W)
    labels), drawn band by band; images longer than ``max_side`` are shown downscaled by a
    whole factor (every n-th pixel, outlines found at that scale), so that the picture stays
    small enough to view. Each band of about ``band_pixels`` input pixels is subsampled as it
    is read, so memory is one band and the picture, whatever the image's size. ``raw``: the
    image as read ((H, W[, C]), by rows), on which an 8-bit RGB picture is drawn in its own colours.

    >>> labels = np.zeros((40, 30), np.uint8); labels[5:9, 5:9] = 1
    >>> overlay_picture(np.zeros((1, 40, 30), np.float32), labels, max_side=20).shape
    (20, 15, 3)
    """
    height, width = labels.shape[-2:]
    factor = max(1, -(-max(height, width) // max_side))
    band = max(factor, band_pixels // width // factor * factor)  # a whole number of picture rows
    image, bounds = shown_image(image, raw)
    if bounds is None:
        bounds = display_bounds(_Subsampled(image))
    draw = object_overlay if objects else overlay
    picture = np.empty((-(-height // factor), -(-width // factor), 3), np.uint8)
    for top in range(0, height, band):
        bottom = min(top + band, height)
        # one picture row of context on each side: outlines need their neighbours
        first, last = max(top - factor, 0), min(bottom + factor, height)
        drawn = draw(np.asarray(image[:, first:last, :])[:, ::factor, ::factor],
                     np.asarray(labels[first:last])[::factor, ::factor], bounds=bounds)
        skip = (top - first) // factor
        picture[top // factor : -(-bottom // factor)] = drawn[skip : skip + -(-bottom // factor) - top // factor]
    return picture


class _Subsampled:
    """Every n-th row and column of a large (C, H, W) array-like, read in a few bands."""

    def __init__(self, image, max_pixels: int = 2**22):
        channels, height, width = image.shape
        step = max(1, int(np.ceil(np.sqrt(height * width / max_pixels))))
        rows = range(0, height, max(step, 1024 // step * step))
        # copies, not views: a view would keep its whole band of the image alive
        pieces = [np.asarray(image[:3, top : min(top + max(step, 1024 // step * step), height), :])[:, ::step, ::step].copy()
                  for top in rows]
        self.data = np.concatenate(pieces, axis=1)
        self.shape = self.data.shape

    def __getitem__(self, key):
        return self.data[key]
