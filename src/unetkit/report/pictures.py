"""The report's pictures of one image: where the prediction agrees with the truth and where it errs.

Errors are found by an :data:`ErrorFinder`, a function ``(predicted, truth) -> ErrorMasks``.
The default, :func:`pixel_errors`, compares pixel by pixel; a task whose labels are objects
supplies its own as ``task.error_masks`` (whole false-positive and false-negative objects,
``unit="objects"``), and the colouring and the legend follow (:func:`error_finder`).

Size bound: a picture is at most :data:`LARGE_SIDE` (1024) pixels on its longer side, a
thumbnail at most :data:`THUMBNAIL_SIDE` (256); both are JPEG (quality 85, no chroma
subsampling, so thin coloured edges stay sharp). A 700 x 1100 microscopy image takes
about 0.3 MB in the report, whatever the size of the original.

>>> predicted = np.array([[1, 1, 0, 0]])
>>> truth = np.array([[1, 0, 1, 0]])
>>> errors = pixel_errors(predicted, truth)
>>> errors.true_positive.tolist(), errors.false_positive.tolist(), errors.false_negative.tolist()
([[True, False, False, False]], [[False, True, False, False]], [[False, False, True, False]])
"""

from __future__ import annotations

import base64
import heapq
import io
from dataclasses import dataclass, fields
from typing import Callable

import numpy as np
from PIL import Image

from ..data.dataset import Sample
from ..data.io import read_planes
from ..errors import InputError
from ..metrics import dice_iou
from ..visualize import colour_picture, display_picture

LARGE_SIDE = 1024
THUMBNAIL_SIDE = 256
JPEG_QUALITY = 85


@dataclass(frozen=True)
class ErrorMasks:
    """Boolean (H, W) masks of a prediction against the truth; each pixel in at most one.

    ``wrong_class``: foreground predicted as another foreground class (several classes).
    ``unit`` says what the masks mark, for the legend: ``"pixels"``, or ``"objects"`` where a
    task marks whole objects.
    """

    true_positive: np.ndarray
    false_positive: np.ndarray
    false_negative: np.ndarray
    wrong_class: np.ndarray | None = None
    unit: str = "pixels"


ErrorFinder = Callable[[np.ndarray, np.ndarray], ErrorMasks]

# Mask name -> (RGB colour, opacity on the image, legend text). Agreement is faint, errors loud.
ERROR_STYLE: dict[str, tuple[tuple[int, int, int], float, str]] = {
    "true_positive": ((0, 200, 0), 0.35, "true positive {unit}: predicted and true"),
    "false_positive": ((255, 0, 255), 0.8, "false positive {unit}: predicted, not true"),
    "false_negative": ((0, 255, 255), 0.8, "false negative {unit}: true, missed"),
    "wrong_class": ((255, 150, 0), 0.8, "{unit} of the wrong class"),
}


def pixel_errors(predicted: np.ndarray, truth: np.ndarray, ignore_index: int | None = None) -> ErrorMasks:
    """Pixel-wise agreement of two label images (0 is background); ``ignore_index`` pixels of
    the truth count nowhere.

    >>> errors = pixel_errors(np.array([[2, 1, 0]]), np.array([[1, 1, 9]]), ignore_index=9)
    >>> errors.wrong_class.tolist(), errors.true_positive.tolist(), bool(errors.false_negative.any())
    ([[True, False, False]], [[False, True, False]], False)
    """
    counted = np.ones(truth.shape, bool) if ignore_index is None else truth != ignore_index
    predicted_foreground = (predicted != 0) & counted
    true_foreground = (truth != 0) & counted
    both = predicted_foreground & true_foreground
    return ErrorMasks(
        true_positive=both & (predicted == truth),
        false_positive=predicted_foreground & ~true_foreground,
        false_negative=true_foreground & ~predicted_foreground,
        wrong_class=both & (predicted != truth),
    )


def error_finder(task: object, ignore_index: int | None = None) -> ErrorFinder:
    """The task's own ``error_masks(predicted, truth)`` if it has one, else :func:`pixel_errors`.

    >>> from unetkit.tasks import SemanticTask
    >>> error_finder(SemanticTask())(np.array([[1]]), np.array([[0]])).false_positive.tolist()
    [[True]]
    """
    custom = getattr(task, "error_masks", None)
    if custom is not None:
        return custom
    return lambda predicted, truth: pixel_errors(predicted, truth, ignore_index)


def error_picture(image: np.ndarray, errors: ErrorMasks, raw: np.ndarray | None = None) -> np.ndarray:
    """The (C, H, W) image in grey (or colour; an 8-bit RGB picture ``raw`` in its own colours), each error mask
    tinted in its colour: (H, W, 3) uint8.

    >>> errors = pixel_errors(np.array([[1, 0]]), np.array([[0, 1]]))
    >>> error_picture(np.zeros((1, 1, 2), np.float32), errors).tolist()
    [[[204, 0, 204], [0, 204, 204]]]
    """
    return _tinted(display_picture(image, raw), errors)


def _tinted(shown: np.ndarray, errors: ErrorMasks) -> np.ndarray:
    """A displayed picture (``(H, W, 3)`` in [0, 1]) with each error mask tinted in its colour, as uint8."""
    picture = shown * 255
    for name, (colour, opacity, _) in ERROR_STYLE.items():
        where = getattr(errors, name)
        if where is not None:
            where = np.asarray(where, bool)
            picture[where] = (1 - opacity) * picture[where] + opacity * np.array(colour, np.float32)
    return np.round(picture).astype(np.uint8)


def legend(errors: ErrorMasks) -> tuple[tuple[str, str], ...]:
    """(CSS colour, text) of each kind of mark in a picture: agreement and both errors always,
    the wrong class only where it occurs.

    >>> legend(pixel_errors(np.array([[1]]), np.array([[1]])))[1]
    ('#ff00ff', 'false positive pixels: predicted, not true')
    """
    entries = []
    for name, (colour, _, text) in ERROR_STYLE.items():
        where = getattr(errors, name)
        if where is not None and (name != "wrong_class" or where.any()):
            entries.append(("#{:02x}{:02x}{:02x}".format(*colour), text.format(unit=errors.unit)))
    return tuple(entries)


def jpeg_data_uri(picture: np.ndarray, longest_side: int) -> str:
    """An (H, W, 3) uint8 picture, shrunk (never enlarged) to ``longest_side``, as a JPEG data URI.

    >>> jpeg_data_uri(np.zeros((600, 300, 3), np.uint8), 256)[:23]
    'data:image/jpeg;base64,'
    """
    shrunk = Image.fromarray(picture)
    shrunk.thumbnail((longest_side, longest_side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    shrunk.save(buffer, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


@dataclass(frozen=True)
class ImagePictures:
    """One image in the report, as data URIs: the errors as a thumbnail and large, the plain image
    large; and the legend of the errors."""

    thumbnail: str
    errors: str
    image: str
    legend: tuple[tuple[str, str], ...]

    @property
    def size(self) -> int:
        """Characters the pictures add to the report."""
        return sum(len(getattr(self, f.name)) for f in fields(self) if f.name != "legend")


def image_pictures(
    image: np.ndarray, predicted: np.ndarray, truth: np.ndarray, find_errors: ErrorFinder = pixel_errors,
    raw: np.ndarray | None = None,
) -> ImagePictures:
    """The report's pictures of one normalised (C, H, W) image and its labels (``raw``: the image as read, which
    an 8-bit RGB picture is shown as, in its own colours).

    Errors are coloured at full resolution, then shrunk, so that a thin error stays visible.

    >>> pictures = image_pictures(np.zeros((1, 40, 60), np.float32), np.eye(40, 60, dtype=int), np.zeros((40, 60), int))
    >>> pictures.thumbnail.startswith("data:image/jpeg"), len(pictures.legend)
    (True, 3)
    """
    errors = find_errors(predicted, truth)
    shown = display_picture(image, raw)  # once: the plain picture and the tinted one start from it
    coloured = _tinted(shown, errors)
    return ImagePictures(
        thumbnail=jpeg_data_uri(coloured, THUMBNAIL_SIDE),
        errors=jpeg_data_uri(coloured, LARGE_SIDE),
        image=jpeg_data_uri((shown * 255).astype(np.uint8), LARGE_SIDE),
        legend=legend(errors),
    )


def colour_as_read(sample: Sample) -> np.ndarray | None:
    """A sample's image as its file stores it where that is one 8-bit RGB picture (an H&E tile: shown in its own
    colours, not as its channels normalised one by one); None otherwise."""
    if not sample.files or sample.image.shape[0] != 3:
        return None
    try:
        planes = read_planes(sample.files[0])
    except (OSError, InputError):
        return None
    if len(planes) != 1 or not colour_picture(planes[0]) or planes[0].shape[:2] != sample.image.shape[1:]:
        return None
    return planes[0]


class WorstImagePictures:
    """An ``on_image`` callback for :func:`~unetkit.scoring.evaluate_samples` that keeps the
    pictures of the ``limit`` images of lowest score (``score(labels, truth)``: the task's
    main score, Dice by default; ties by their order of arrival; images without a score, n/a, last).

    Only images that may be kept are drawn, and at most ``limit`` are held, so memory and the
    report's size stay bounded however many images are scored.

    >>> keep = WorstImagePictures(limit=1)
    >>> for name, predicted in [("good", 1), ("bad", 0)]:
    ...     keep(Sample(name, np.zeros((1, 8, 8), np.float32), np.ones((8, 8), int)), np.full((8, 8), predicted))
    >>> list(keep.pictures())
    [1]
    """

    def __init__(
        self, limit: int, score: Callable[[np.ndarray, np.ndarray], float] | None = None,
        find_errors: ErrorFinder | None = None,
    ):
        self.limit = limit
        self.score = score or (lambda labels, truth: dice_iou(labels, truth,
                                                              int(max(truth.max(), labels.max())) + 1).mean_dice)
        self.find_errors = find_errors or error_finder(None)
        self._seen = 0
        self._kept: list[tuple[float, int, ImagePictures]] = []  # a heap: the best kept image first

    def __call__(self, sample: Sample, labels: np.ndarray) -> None:
        index, self._seen = self._seen, self._seen + 1
        if self.limit <= 0 or sample.mask is None:
            return
        score = self.score(labels, sample.mask)
        if score != score:  # n/a (a mask all --ignore-index, objects all on the border): last, as the table sorts it;
            score = float("inf")  # a NaN rank compares false with everything and pushed the worst image out
        rank = (-score, -index)
        if len(self._kept) >= self.limit and rank <= self._kept[0][:2]:
            return
        entry = (*rank, image_pictures(sample.image, labels, sample.mask, self.find_errors, colour_as_read(sample)))
        if len(self._kept) < self.limit:
            heapq.heappush(self._kept, entry)
        else:
            heapq.heapreplace(self._kept, entry)

    def pictures(self) -> dict[int, ImagePictures]:
        """The kept pictures by the index of their image, in order of arrival."""
        return {-index: pictures for _, index, pictures in sorted(self._kept, key=lambda e: -e[1])}
