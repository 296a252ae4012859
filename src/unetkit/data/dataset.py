"""Loading and validating a labelled dataset before any training starts.

Each 2D plane becomes a :class:`Sample`: the normalised image ``(C, H, W)`` float32 and
its mask ``(H, W)`` of class indices. All masks are checked first (values, size, page
count), so a bad file stops the run at once with its name, not after an hour.

>>> from unetkit.data.sample import sample_path
>>> samples = load_labelled(sample_path("heldout"), DataOptions(mask_mode="instances"))
>>> len(samples), samples[0].image.shape, sorted(set(samples[0].mask.ravel().tolist()))
(2, (1, 700, 1100), [0, 1])
"""

from __future__ import annotations

from collections import Counter

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Literal, Sequence, cast

import numpy as np

from ..errors import InputError
from .io import (LOSSY_SUFFIXES, check_not_a_colour_palette, check_pixel_type, layout_hint, plane_shape,
                 read_planes)
from .memory import check_fits_in_memory
from .masks import MaskMode, check_mask_matches_image, prepare_mask
from .normalize import FULL_SCALE_TYPES, ImageNormalizer, Normalization, full_scale_of, to_channels_first
from .pairing import Pair, PairListing, find_pairs, pairing_hint


@dataclass
class Sample:
    """One 2D training or evaluation example."""

    name: str
    image: np.ndarray  # (C, H, W) float32, normalised
    mask: np.ndarray | None  # (H, W) class indices, or None for unlabelled images
    files: tuple[Path, ...] = ()  # the image and mask files it was read from (none: made in memory)


@dataclass(frozen=True)
class DataOptions:
    """How masks are read and images normalised; stored with the model."""

    num_classes: int = 1
    mask_mode: MaskMode = "classes"
    ignore_index: int | None = None
    normalization: ImageNormalizer = field(default_factory=Normalization)  # a package's: its preprocessing


def absent_classes(present: Iterable[int], options: DataOptions) -> list[int]:
    """The classes 1..K-1 of ``--classes K`` (K of 3 or more) that are not in ``present`` and are not
    ``--ignore-index``: no model can learn them, and the mean Dice scores each 1.0 wherever prediction and mask
    both lack it. Empty for other mask modes, and for K of 2 (no class 1 is "no foreground", refused elsewhere).

    >>> absent_classes({0, 1}, DataOptions(num_classes=4, ignore_index=3))
    [2]
    """
    if options.mask_mode != "classes" or options.num_classes < 3:
        return []
    found = set(present)
    return [k for k in range(1, options.num_classes) if k not in found and k != options.ignore_index]


def plane_name(path: Path, index: int, count: int) -> str:
    """``a.tif`` for a single plane, ``a.tif[3]`` for page 3 of a stack."""
    return path.name if count == 1 else f"{path.name}[{index}]"


def check_image_values(plane: np.ndarray, path: Path, where: str = "") -> None:
    """Raise for NaN or infinite pixels, counting as infinite the float64 values beyond float32's
    range: the network reads float32, where they become infinite (and the outputs empty).
    ``where``: which part of the image ``plane`` is, for the message ("rows 0-512"). Complex or
    non-numeric pixels are refused too (a cast to float32 would drop the imaginary part)."""
    check_pixel_type(plane.dtype, path)
    if plane.dtype.kind != "f":
        return
    usable = np.isfinite(plane)
    if plane.dtype.itemsize > 4:
        usable &= np.abs(plane) <= np.finfo(np.float32).max
    bad = int(np.size(plane) - np.count_nonzero(usable))
    if bad:
        raise InputError(
            f"image holds {bad} NaN or infinite pixel(s){' in ' + where if where else ''} "
            "(as float32, the network's type)",
            path=path,
            fix="replace them (with 0 or the background value) before training or prediction",
        )


def load_image_planes(
    path: Path, normalization: ImageNormalizer
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(name, raw plane, normalised (C, H, W))`` for each plane of an image file."""
    path = Path(path)
    check_not_a_colour_palette(path)
    planes = read_planes(path)
    result = []
    for index, plane in enumerate(planes):
        name = plane_name(path, index, len(planes))
        check_image_values(plane, path, name if len(planes) > 1 else "")
        result.append((name, plane, normalization.apply(to_channels_first(plane))))
    return result


def check_channels(samples: list[Sample], expected: int | None, source: str | Path) -> int:
    """All samples must have the same channel count (and ``expected``, if given). Without ``expected`` the count
    most images have is the norm, so that the odd image is the one named (an RGBA tile among RGB ones, a grey
    tile among colour ones, wherever it sorts), with the hint on how its file was read."""
    if not samples:
        raise InputError("no images found", path=source)
    # the most common count; of equally common ones, the first met (most_common keeps the order of insertion)
    channels = expected if expected is not None else Counter(s.image.shape[0] for s in samples).most_common(1)[0][0]
    usual = next(sample for sample in samples if sample.image.shape[0] == channels) if expected is None else None
    for sample in samples:
        if sample.image.shape[0] != channels:
            raise InputError(
                f"image has {sample.image.shape[0]} channel(s) but "
                + (f"the model expects {channels}" if usual is None else f"{usual.name} has {channels}")
                + (layout_hint(sample.files[0]) if sample.files else ""),
                path=sample.files[0] if sample.files else sample.name,  # the file itself, wherever DATA is
                fix="convert all images to the same number of channels (grey or RGB)",
            )
    return channels


@dataclass(frozen=True)
class LabelledPlane:
    """One image plane as read (before normalisation) and its validated mask."""

    name: str
    raw: np.ndarray  # (H, W) or (H, W, C), as stored
    mask: np.ndarray  # (H, W) class indices


def check_all_matched(listing: PairListing) -> None:
    """Raise if an image has no mask or a mask no image."""
    hint = pairing_hint(listing.images_without_mask, listing.masks_without_image)
    for unmatched, what, other in (
        (listing.images_without_mask, "image(s) without a mask", "masks/"),
        (listing.masks_without_image, "mask(s) without an image", "images/"),
    ):
        if unmatched:
            raise InputError(
                f"{len(unmatched)} {what}: " + ", ".join(p.name for p in unmatched[:5]) + (f"; {hint}" if hint else ""),
                path=unmatched[0].parent,
                fix=f"add the missing files to {other} under the same name, or move these out "
                "('unetkit inspect' lists every unmatched file)",
            )


def check_same_plane_count(pair: Pair, image_planes: int, mask_planes: int) -> None:
    """Raise unless the pair's image and mask hold as many planes (saying how a TIFF without axes was read)."""
    if image_planes != mask_planes:
        raise InputError(
            f"mask has {mask_planes} plane(s) but its image {pair.image} has {image_planes}"
            f"{layout_hint(pair.image) or layout_hint(pair.mask)}",
            path=pair.mask,
            fix="give every image plane exactly one mask plane",
        )


def read_pair(
    pair: Pair, options: DataOptions, notes: list[str] | None = None, options_can_change: bool = True
) -> list[LabelledPlane]:
    """Every plane of one image/mask pair, read and checked as training checks it.

    The one place that decides whether a pair is usable: training, evaluation and
    ``unetkit inspect`` all call it.
    """
    if pair.mask.suffix.lower() in LOSSY_SUFFIXES:
        raise InputError(
            "JPEG masks are not accepted: lossy compression changes label values",
            path=pair.mask,
            fix="save masks as PNG or TIFF",
        )
    shape = plane_shape(pair.image)
    check_fits_in_memory(shape, np.dtype(shape.dtype), pair.image, float_copies=3 * shape.count,
                         fix="crop it into smaller images for training")
    check_not_a_colour_palette(pair.image)
    images = read_planes(pair.image)
    masks = read_planes(pair.mask, mask=True)
    check_same_plane_count(pair, len(images), len(masks))
    planes = []
    for index, (raw, mask_plane) in enumerate(zip(images, masks)):
        check_image_values(raw, pair.image)
        mask = prepare_mask(
            mask_plane,
            pair.mask,
            num_classes=options.num_classes,
            mode=options.mask_mode,
            ignore_index=options.ignore_index,
            notes=notes,
            options_can_change=options_can_change,
        )
        check_mask_matches_image(mask, raw.shape[:2], pair.mask, pair.image)
        name = f"{pair.image.parent.name}/{plane_name(pair.image, index, len(images))}"
        planes.append(LabelledPlane(name, raw, mask))
    return planes


def load_labelled(
    source: str | Path,
    options: DataOptions,
    notes: list[str] | None = None,
    in_channels: int | None = None,
    options_can_change: bool = True,
) -> list[Sample]:
    """Every image/mask plane pair of a folder or CSV, validated and normalised.

    ``options_can_change=False`` when the masks must suit a trained model (evaluate): error
    messages then do not suggest mask options.
    """
    listing = find_pairs(source)
    check_all_matched(listing)
    listing.note_subfolders(notes)
    samples = []
    for pair in listing.pairs:
        for plane in read_pair(pair, options, notes, options_can_change):
            if notes is not None:
                note_blank_image(plane.raw, plane.mask, plane.name, options.ignore_index, notes)
            samples.append(Sample(plane.name, options.normalization.apply(to_channels_first(plane.raw)), plane.mask,
                                  files=(pair.image, pair.mask)))
    check_channels(samples, in_channels, source)
    if notes is not None:
        _deduplicate(notes)
    return samples


def note_blank_image(raw: np.ndarray, mask: np.ndarray, name: str, ignore_index: int | None, notes: list[str]) -> None:
    """Add a note when an image holds one value everywhere but its mask marks objects: a blank frame or a file
    saved wrongly, which trains the network that objects can be anywhere (not an error: a user may mean it).

    >>> notes = []
    >>> note_blank_image(np.zeros((4, 4)), np.eye(4, dtype=np.uint8), "a1.tif", None, notes)
    >>> notes
    ['image a1.tif holds one value (0) everywhere, yet its mask marks objects (a blank or wrongly saved image?)']
    """
    if raw.size == 0 or raw.min() != raw.max():
        return
    marked = mask > 0 if ignore_index is None else (mask > 0) & (mask != ignore_index)
    if marked.any():
        notes.append(f"image {name} holds one value ({raw.flat[0]:g}) everywhere, yet its mask marks objects (a "
                     "blank or wrongly saved image?)")  # no ': ', which _deduplicate reads as one note for many files


def _deduplicate(notes: list[str]) -> None:
    """Collapse the repeated 0/255 note into one line with a count."""
    seen: dict[str, int] = {}
    for note in notes:
        key = note.split(": ", 1)[-1]
        seen[key] = seen.get(key, 0) + 1
    notes[:] = [f"{key} ({count} file(s))" if count > 1 else key for key, count in seen.items()]


#: how ``split_validation`` holds images out: whole files (a stack's planes together), or planes one by one (every
#: run before 2026-12-07, which a resume of such a run keeps)
ValSplit = Literal["files", "planes"]


def split_validation(
    samples: Sequence[Sample], fraction: float, seed: int, notes: list[str] | None = None, by: ValSplit = "files"
) -> tuple[list[Sample], list[Sample]]:
    """Hold out about ``fraction`` of the samples (at least one, if there are two or more).

    ``by="files"``: the planes of one stack (a movie's frames, a z-stack's slices) go to one side together, since a
    held-out plane between its neighbours in training would flatter the validation score that the stopping rule and
    ``best.pt`` read. Whole files are drawn until about ``fraction`` of the planes is held out; where every file is
    larger than that, the smallest file is held out if it holds at most twice that share, and otherwise planes are
    drawn one by one; ``notes`` says which. Single-plane files split as ``by="planes"`` does.

    >>> train, val = split_validation([Sample(str(i), np.zeros((1, 2, 2)), None) for i in range(5)], 0.2, 0)
    >>> len(train), len(val)
    (4, 1)
    >>> stacks = [Sample(f"{name}[{i}]", np.zeros((1, 2, 2)), None) for name in "abcde" for i in range(3)]
    >>> sorted({source_file_of(s) for s in split_validation(stacks, 0.2, 0)[1]})  # 3 of 15: one whole file
    ['c']
    """
    if fraction <= 0 or len(samples) < 2:
        return list(samples), []
    count = min(len(samples) - 1, max(1, round(fraction * len(samples))))
    rng = np.random.default_rng(seed)
    files = list(dict.fromkeys(source_file_of(s) for s in samples))  # in order of first appearance
    if by == "planes" or len(files) == len(samples):  # one plane a file: the seeded draw of every run so far
        held_index = set(rng.permutation(len(samples))[:count].tolist())
        return ([s for i, s in enumerate(samples) if i not in held_index],
                [s for i, s in enumerate(samples) if i in held_index])
    sizes = {file: 0 for file in files}
    for sample in samples:
        sizes[source_file_of(sample)] += 1
    order = [files[i] for i in rng.permutation(len(files)).tolist()]
    held: list[str] = []
    held_planes = 0
    for file in order:
        if held_planes + sizes[file] <= count:
            held.append(file)
            held_planes += sizes[file]
    if not held:
        smallest = min(order, key=lambda file: sizes[file])  # the first of the smallest, in the seeded order
        if len(files) >= 2 and sizes[smallest] <= 2 * count:  # at most twice the share asked for
            held = [smallest]
    if not held:
        if notes is not None:
            notes.append(f"validation holds out planes of {files[0] if len(files) == 1 else 'the stacks'}, whose "
                         "neighbours are in training, which flatters its score: pass --val-data (images of another "
                         "recording) for a fair one")
        return split_validation(samples, fraction, seed, by="planes")
    chosen = set(held)
    val = [s for s in samples if source_file_of(s) in chosen]
    if notes is not None:
        named = ", ".join(f"{Path(file).parent.name}/{Path(file).name}" for file in held[:5])
        notes.append(f"validation holds out whole files, a stack's planes together: {named}"
                     + (f" and {len(held) - 5} more" if len(held) > 5 else "") + f" ({len(val)} of {len(samples)} images)")
    return [s for s in samples if source_file_of(s) not in chosen], val



#: the split is said to starve training when validation holds at least this share of the labelled foreground ...
HELD_OUT_FOREGROUND_SHARE = 1 / 3
#: ... and at least this many times its share of the images
HELD_OUT_FOREGROUND_RATIO = 1.5


def held_out_foreground_note(val_amounts: Sequence[int], train_amounts: Sequence[int],
                             val_files: Sequence[str]) -> str | None:
    """A note when the validation split holds out much of the labelled foreground (``*_amounts``: foreground
    pixels per image; ``val_files``: the held-out images' files), else None. With few images of unequal crowding
    (a frame of 8 cells among frames of 2 or 3) a draw can leave training half the objects to learn from, which
    it then learns more slowly (BENCHMARKS.md: the bacteria at seed 2, whose seed also drew another start).

    >>> print(held_out_foreground_note([30], [10, 10, 10], ["images/d.tif"]))
    the validation image (d.tif) holds 50 % of the labelled foreground, though it is 1 of 4 images: training \
learns from the other 50 %; if the images differ this much, --seed N draws another split (and start), --val-data \
names other images to validate on, and --val-fraction 0 trains on all of them (without a validation score)
    >>> held_out_foreground_note([11], [10, 12], ["images/c.tif"]) is None
    True
    """
    held, total = sum(val_amounts), sum(val_amounts) + sum(train_amounts)
    if not val_amounts or not train_amounts or total == 0:
        return None
    share, image_share = held / total, len(val_amounts) / (len(val_amounts) + len(train_amounts))
    if share < HELD_OUT_FOREGROUND_SHARE or share < HELD_OUT_FOREGROUND_RATIO * image_share:
        return None
    files = list(dict.fromkeys(Path(file).name for file in val_files))
    named = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
    one, images = len(val_amounts) == 1, len(val_amounts) + len(train_amounts)
    return (f"the validation image{'' if one else 's'} ({named}) hold{'s' if one else ''} {share * 100:.0f} % of the "
            f"labelled foreground, though {'it is' if one else 'they are'} {len(val_amounts)} of {images} images: "
            f"training learns from the other {(1 - share) * 100:.0f} %; if the images differ this much, --seed N "
            "draws another split (and start), --val-data names other images to validate on, and --val-fraction 0 "
            "trains on all of them (without a validation score)")


def _named(names: Sequence[str], shown: int = 5) -> str:
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")


def foreground_all_held_out(train_foreground: bool, val_foreground: bool, held: Sequence[str]) -> tuple[str, str] | None:
    """The problem and fix of a split that holds out every mask with foreground (training would learn nothing),
    else None: refused by ``train`` and by ``inspect`` alike.

    >>> foreground_all_held_out(False, True, ["b.tif"])[0]
    'every mask with foreground was held out for validation (b.tif): the training masks are all background'
    """
    if train_foreground or not val_foreground:
        return None
    return (f"every mask with foreground was held out for validation ({_named(held)}): the training masks are all "
            "background", "train on them all with --val-fraction 0, hold out other images with --val-data, or draw "
                          "another split with --seed")


def nothing_to_score(val_scored: bool, held: Sequence[str], ignore_index: int | None,
                     val_given: bool) -> tuple[str, str] | None:
    """The problem and fix of validation images none of whose pixels is scored (every mask ``ignore_index``
    everywhere), else None: refused by ``train`` and by ``inspect`` alike.

    >>> nothing_to_score(True, ["a.tif"], 255, val_given=False) is None
    True
    """
    if val_scored or not held:
        return None
    fix = ("give a --val-data whose masks hold pixels other than --ignore-index, or leave --val-data out" if val_given
           else "hold out labelled images with --val-data, draw another split with --seed, or train on them all "
                "with --val-fraction 0")
    return (f"every validation mask is --ignore-index {ignore_index} everywhere ({_named(held)}): there is no pixel "
            "to score, so the stopping rule and best.pt would read a score of nothing", fix)


def source_file_of(sample: Sample) -> str:
    """The image file a :class:`Sample` (or a :class:`~unetkit.data.sources.FileSource`) was read from; for a
    sample made in memory, its name without a stack's ``[k]``.

    >>> source_file_of(Sample("images/movie.tif[4]", np.zeros((1, 2, 2)), None))
    'images/movie.tif'
    """
    return str(sample.files[0]) if sample.files else re.sub(r"\[\d+\]$", "", sample.name)


def load_training_data(
    source: str | Path,
    options: DataOptions,
    *,
    val_source: str | Path | None = None,
    val_fraction: float = 0.2,
    seed: int = 0,
    notes: list[str] | None = None,
    val_split: ValSplit = "files",
) -> tuple[list[Sample], list[Sample]]:
    """Training and validation samples: ``val_source`` if given, else a seeded split of ``source``."""
    samples = load_labelled(source, options, notes)
    if val_source is not None:
        val_samples = load_labelled(val_source, options, notes, in_channels=samples[0].image.shape[0])
        return samples, val_samples
    return split_validation(samples, val_fraction, seed, notes, by=val_split)


def decoded_dataset_bytes(source: str | Path) -> int:
    """Memory a labelled dataset takes decoded for training, from the files' headers: float32
    images and int64 masks (the patch sampler's tensors)."""
    total = 0
    for pair in find_pairs(source).pairs:
        shape = plane_shape(pair.image)
        total += shape.count * shape.height * shape.width * (4 * shape.channels + 8)
    return total


def scale_divisor_of(*sources: str | Path) -> float:
    """What ``--normalization scale`` divides the images of labelled datasets by: the largest
    value of their type (255 for 8-bit, 65,535 for 16-bit), from the files' headers. Images
    of different types, or of a type with no full scale (floats), are refused with the file
    named: they need an explicit divisor.

    >>> from unetkit.data.sample import sample_path
    >>> scale_divisor_of(sample_path("train"))  # the sample's HeLa frames are 16-bit
    65535.0
    """
    typed = [(pair.image, plane_shape(pair.image).dtype) for source in sources for pair in find_pairs(source).pairs]
    first, first_dtype = typed[0]  # find_pairs refuses a dataset without images
    for path, dtype in typed:
        if full_scale_of(dtype) is None:
            raise InputError(f"--normalization scale divides by the largest value of the image type, and "
                             f"{dtype} has none (only {', '.join(FULL_SCALE_TYPES)} do)", path=path,
                             fix="pass --scale-divisor (the value that should become 1), or use "
                                 "--normalization percentile")
        if dtype != first_dtype:
            raise InputError(f"the image is {dtype} but {first} is {first_dtype}: --normalization scale "
                             f"would divide them by different full scales", path=path,
                             fix="pass --scale-divisor (one value for all images), or convert the images to one type")
    return cast(float, full_scale_of(first_dtype))  # not None: checked in the loop
