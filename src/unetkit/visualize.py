"""Pictures for people: label overlays and grids of training samples.

>>> import numpy as np
>>> picture = overlay(np.zeros((1, 4, 4), np.float32), np.eye(4, dtype=np.uint8))
>>> picture.shape, picture.dtype
((4, 4, 3), dtype('uint8'))
"""

from __future__ import annotations

import numpy as np

# One colour per class (class 0, background, is left uncoloured).
CLASS_COLOURS = np.array(
    [[0, 0, 0], [255, 64, 64], [64, 200, 64], [64, 128, 255], [255, 200, 0],
     [200, 64, 255], [0, 220, 220], [255, 128, 0], [160, 160, 160]],
    dtype=np.float32,
)


def display_image(image: np.ndarray) -> np.ndarray:
    """A normalised (C, H, W) image as (H, W, 3) floats in [0, 1] (first channel, or RGB)."""
    if image.shape[0] >= 3:
        rgb = np.moveaxis(image[:3], 0, -1)
    else:
        rgb = np.repeat(image[0][..., None], 3, axis=-1)
    low, high = np.percentile(rgb, [0.5, 99.5])
    return np.clip((rgb - low) / max(high - low, 1e-6), 0, 1)


def overlay(image: np.ndarray, labels: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """The image in grey (or colour) with each class's pixels tinted in its own colour."""
    picture = display_image(image) * 255
    for label in np.unique(labels):
        if label == 0:
            continue
        colour = CLASS_COLOURS[1 + (int(label) - 1) % (len(CLASS_COLOURS) - 1)]
        where = labels == label
        picture[where] = (1 - alpha) * picture[where] + alpha * colour
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


def object_colours(count: int) -> np.ndarray:
    """``count + 1`` distinct RGB colours (row 0, the background, black), golden-ratio hues.

    >>> object_colours(2).shape
    (3, 3)
    """
    import colorsys

    hues = (np.arange(1, count + 1) * 0.618033988749895) % 1.0
    colours = [colorsys.hsv_to_rgb(h, 0.75, 1.0) for h in hues]
    return np.vstack([np.zeros((1, 3)), np.array(colours).reshape(-1, 3)]).astype(np.float32) * 255


def object_overlay(image: np.ndarray, labels: np.ndarray, alpha: float = 0.4) -> np.ndarray:
    """The image with each object tinted in its own colour and its outline drawn in white.

    >>> labels = np.zeros((6, 6), np.uint16); labels[1:5, 1:5] = 1
    >>> picture = object_overlay(np.zeros((1, 6, 6), np.float32), labels)
    >>> picture[1, 1].tolist(), picture[0, 0].tolist()
    ([255, 255, 255], [0, 0, 0])
    """
    from skimage.segmentation import find_boundaries

    picture = display_image(image) * 255
    labels = np.asarray(labels)
    inside = labels > 0
    if inside.any():
        ids, compact = np.unique(labels, return_inverse=True)
        compact = compact.reshape(labels.shape) + (0 if ids[0] == 0 else 1)
        colours = object_colours(int(compact.max()))
        picture[inside] = (1 - alpha) * picture[inside] + alpha * colours[compact[inside]]
        picture[find_boundaries(labels, mode="inner") & inside] = 255
    return picture.astype(np.uint8)
