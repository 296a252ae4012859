"""Turning mask files into class-index maps, and refusing masks that would train wrongly.

Peers guess which value means which class and produce "all-black predictions"; unetkit
checks every mask before training and says what it found.

- Class masks hold ``0..K-1`` (``{0, 1}`` for one foreground class).
- ``{0, 255}`` (8-bit) and ``{0, 65535}`` (16-bit) binary masks map to ``{0, 1}``, and a
  note says so.
- Instance label images (objects numbered 1..N) become foreground with ``mode="instances"``,
  or stay object ids with ``mode="labels"`` (instance segmentation, ``--task instances``),
  where a mask that is clearly binary or semantic is refused.
- Float masks, colour masks, other values, or a size that differs from the image are
  errors that name the file, the values found, and the fix.

>>> import numpy as np
>>> notes = []
>>> prepare_mask(np.array([[0, 255]], np.uint8), "m.png", num_classes=1, notes=notes).tolist()
[[0, 1]]
>>> notes[0]
'm.png: mask values {0, 255} read as background (0) and foreground (255)'
"""

from __future__ import annotations

from pathlib import Path
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np

from ..errors import ConfigError, InputError
from .io import layout_hint

MaskMode = Literal["classes", "instances", "labels"]
MASK_MODES: tuple[str, ...] = get_args(MaskMode)


def _format_values(values: np.ndarray, limit: int = 8) -> str:
    shown = ", ".join(str(v) for v in values[:limit].tolist())
    more = f", ... ({len(values)} values)" if len(values) > limit else ""
    return "{" + shown + more + "}"


def _single_channel(mask: np.ndarray, path: str | Path) -> np.ndarray:
    if mask.ndim == 2:
        return mask
    if mask.ndim == 3 and all(np.array_equal(mask[..., 0], mask[..., c]) for c in range(1, mask.shape[2])):
        return mask[..., 0]  # a grey mask saved as RGB
    raise InputError(
        f"mask has {mask.shape[2] if mask.ndim == 3 else mask.ndim} colour channels that differ{layout_hint(path)}",
        path=path,
        fix="save masks as single-channel label images (one integer class per pixel)",
    )


@dataclass(frozen=True)
class MaskRule:
    """How one (validated) mask file's values become training labels; applies to the whole
    mask or to any window of it (datasets read region by region).

    ``kind``: ``keep`` (class indices as they are), ``foreground`` (any object: 1),
    ``equals`` (``value`` is foreground: 0/255, 0/65535 binary masks), ``labels`` (object ids,
    int32).
    """

    kind: Literal["keep", "foreground", "equals", "labels"]
    value: int = 0

    def apply(self, mask: np.ndarray) -> np.ndarray:
        mask = np.asarray(mask)
        if mask.ndim == 3:
            mask = mask[..., 0]
        if self.kind == "foreground":
            return (mask > 0).astype(np.uint8)
        if self.kind == "equals":
            return (mask == self.value).astype(np.uint8)
        if self.kind == "labels":
            return label_ids(mask)
        # int64 where uint8 would wrap a value: past 255, or a negative --ignore-index (-1 would become 255)
        return mask.astype(np.uint8) if 0 <= mask.min(initial=0) and mask.max(initial=0) < 256 else mask.astype(np.int64)


def prepare_mask(mask: np.ndarray, path: str | Path, **options: Any) -> np.ndarray:
    """A validated (H, W) uint8 map of class indices (``ignore_index`` kept as is); the
    options are :func:`mask_rule`'s."""
    return mask_rule(mask, path, **options).apply(_single_channel(mask, path))


def mask_rule(
    mask: np.ndarray,
    path: str | Path,
    *,
    num_classes: int,
    mode: MaskMode = "classes",
    ignore_index: int | None = None,
    notes: list[str] | None = None,
    options_can_change: bool = True,
) -> MaskRule:
    """Check a whole mask and say how its values become labels.

    ``options_can_change``: the fix of an error may suggest other mask options (training,
    inspect); False when the masks must suit an existing model (evaluate), whose options
    are fixed.
    """
    mask = _single_channel(mask, path)
    if mask.dtype.kind not in "biu":
        kind = {"f": "floating point", "c": "complex numbers"}.get(mask.dtype.kind, "not numbers")
        raise InputError(
            f"mask is {kind} ({mask.dtype}); masks must hold integer class labels",
            path=path,
            fix="save the mask as an integer PNG or TIFF (0 = background, 1.. = classes)",
        )
    if mask.dtype == bool:
        mask = mask.astype(np.uint8)
    if mode == "labels":
        check_not_an_intensity_image(mask, path)  # first: the more telling error for a photo given as masks
        check_instance_labels(mask, path, options_can_change)
        return MaskRule("labels")
    if mode == "instances":
        check_not_an_intensity_image(mask, path)
        if num_classes != 1:
            raise InputError(
                "instance masks give one foreground class, but the model has "
                f"{num_classes} classes",
                path=path,
                fix="use --classes 1 with --instance-masks" if options_can_change
                else "evaluate this model on masks of class indices",
            )
        return MaskRule("foreground")
    values = np.unique(mask)
    allowed = set(range(max(2, num_classes)))
    if ignore_index is not None:
        allowed.add(ignore_index)
    found = set(values.tolist())
    if found <= allowed:
        return MaskRule("keep")
    binary_high = _binary_maximum(found)
    if num_classes == 1 and binary_high is not None:
        if notes is not None:
            notes.append(
                f"{path}: mask values {{0, {binary_high}}} read as background (0) and foreground ({binary_high})"
            )
        return MaskRule("equals", binary_high)
    if options_can_change:  # else the model's options are fixed and the error below says what it needs
        check_not_an_intensity_image(mask, path)
    raise InputError(
        f"mask has values {_format_values(values)}, expected {_format_values(np.array(sorted(allowed)))} "
        f"for {num_classes} class{'es' if num_classes > 1 else ''}",
        path=path,
        fix=_suggest_fix(values, num_classes) if options_can_change else
        f"the model was trained on masks of {num_classes} class{'es' if num_classes > 1 else ''}; "
        "evaluate it on masks of that kind (--ignore-index V leaves out pixels of a value V that marks them "
        "unlabelled)" + (", or, if these are object labels (0 background, objects 1..N), pass --instance-masks to "
                         "score them as foreground" if num_classes == 1 and mode == "classes" else ""),
    )


def check_instance_labels(mask: np.ndarray, path: str | Path, for_training: bool = True) -> None:
    """Raise an error if ``mask`` is not an instance label image (objects numbered 1..N, ids may skip) but clearly
    a binary or semantic mask, one whose ids repeat (each id on several separate objects: an 8-bit save of more
    than 255 objects wraps its ids, and object 256 becomes background), or one with outlines drawn in it
    (``for_training``: the fix may offer the semantic task; evaluate's masks must suit the object model it scores).
    :func:`label_ids` gives the ids to work in.

    >>> check_instance_labels(np.array([[0, 1, 1, 0, 2, 2]]), "labels.tif")     # two objects: fine
    >>> check_instance_labels(np.array([[1, 1, 0, 1, 1, 0, 1, 1]]), "binary.tif")
    Traceback (most recent call last):
    ...
    unetkit.errors.InputError: binary.tif: mask looks binary: 1 value(s) {1} cover 3 separate objects, but instance segmentation needs each object numbered on its own
      fix: save a label image with one id per object (0 = background), or train the default semantic task (leave --task instances out)
    """
    if mask.min(initial=0) < 0:
        raise InputError("instance labels must not be negative", path=path, fix="number objects 1..N, background 0")
    ids = np.unique(mask[mask > 0])
    _check_no_boundary_value(mask, ids, path)
    if not ids.size:
        return
    fix = "save a label image with one id per object (0 = background)"
    if ids.size <= REPEATED_IDS_FROM:
        pieces_per_id = _pieces_per_id(mask, ids)
        pieces, fragmented = int(pieces_per_id.sum()), int(np.count_nonzero(pieces_per_id > 1))
        binary = ids.size == 1 and pieces >= 2
        semantic = ids.size >= 2 and fragmented >= ids.size / 2 and pieces >= ids.size + 2
        if binary or semantic:
            kind = "binary" if ids.size == 1 else "semantic (a class per value)"
            raise InputError(
                f"mask looks {kind}: {ids.size} value(s) {_format_values(ids)} cover {pieces} separate "
                "objects, but instance segmentation needs each object numbered on its own",
                path=path,
                fix=fix + (", or train the default semantic task (leave --task instances out)" if for_training else
                           ": an object model is scored against objects"),
            )
        return
    bits = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}.get(mask.dtype)
    if bits is None or int(ids[-1]) < 2**bits - 1 - WRAP_SLACK:
        return  # ids cannot have wrapped: an id on several pieces is a cell cut by the plane, not a repeat
    pieces_per_id = _pieces_per_id(mask, ids, connectivity=2)
    fragmented_ids = ids[pieces_per_id > 1]
    fragmented = int(fragmented_ids.size)
    lowest = fragmented and float(np.median(fragmented_ids)) <= 0.75 * fragmented + 1  # a wrap repeats ids 1, 2, ...
    if lowest and fragmented >= max(REPEATED_IDS_MIN, REPEATED_IDS_SHARE * ids.size):
        raise InputError(
            f"{fragmented} of the {ids.size} object ids each cover separate objects ({int(pieces_per_id.sum())} "
            f"pieces in all) in {'an' if bits == 8 else 'a'} {bits}-bit file whose ids reach {int(ids[-1])}: ids wrapped past "
            f"{2**bits - 1} when it was saved, so objects would be merged, and object {2**bits} became background",
            path=path,
            fix=fix + f", saved with more bits ({2 * bits} or 32) than {bits} when there are more than "
                      f"{2**bits - 1} objects",
        )


#: label images of up to this many ids are checked for binary or semantic masks; of more, for wrapped ids: ...
REPEATED_IDS_FROM = 10
#: ... an 8- or 16-bit file whose ids reach within this of the type's maximum ...
WRAP_SLACK = 5
#: ... is refused when at least this many ids, and this share of them, each cover several separate objects, and they
#: are the lowest ids (an 8-bit save of 400 objects: ids 1 to 144 of 255; legit label images have some, spread over
#: their ids: slices of 3D cells cover two pieces for 11 of 61 ids, the public sets' label images at most 1 of 9 to 195)
REPEATED_IDS_MIN = 3
REPEATED_IDS_SHARE = 0.1


def _pieces_per_id(mask: np.ndarray, ids: np.ndarray, connectivity: int = 1) -> np.ndarray:
    """How many separate pieces (4-connected; ``connectivity=2``: 8-connected) each of ``ids`` (the sorted non-zero
    values of ``mask``) covers, strays not counted (:data:`STRAY_PIXELS`, :data:`STRAY_SHARE`).

    >>> _pieces_per_id(np.array([[1, 0, 1, 2, 2, 0, 3]]), np.array([1, 2, 3])).tolist()
    [2, 1, 1]
    >>> cell = np.zeros((80, 80), int); cell[:60, :60] = 1; cell[70, 70] = 1        # 3,600 px and a 1-px stray
    >>> small = cell.copy(); small[62:80, 62:80] = 1                                 # and a cell of 324 px
    >>> _pieces_per_id(cell, np.array([1])).tolist(), _pieces_per_id(small, np.array([1])).tolist()
    ([1], [2])
    """
    from scipy import ndimage as ndi
    from skimage.measure import label

    if ids.size <= REPEATED_IDS_FROM:  # few ids: one int32 labelling each, not an int64 one of the whole mask
        structure = ndi.generate_binary_structure(2, connectivity)
        counts = []
        for value in ids:
            areas = np.bincount(ndi.label(mask == value, structure)[0].ravel())[1:]
            counts.append(int(np.count_nonzero((areas > STRAY_PIXELS) | (areas >= STRAY_SHARE * areas.max()))))
        return np.array(counts)
    pieces = label(mask, background=0, connectivity=connectivity).ravel()
    areas = np.bincount(pieces)[1:]
    id_of_piece = np.zeros(areas.size + 1, mask.dtype)
    id_of_piece[pieces] = mask.ravel()  # every pixel of a piece holds its id
    id_index = np.searchsorted(ids, id_of_piece[1:])
    largest = np.zeros(ids.size, np.int64)
    np.maximum.at(largest, id_index, areas)
    sizeable = (areas > STRAY_PIXELS) | (areas >= STRAY_SHARE * largest[id_index])
    return np.bincount(id_index[sizeable], minlength=ids.size)


#: a label value drawn as lines whose inside lies at most this far from their edge (lines up to about 4 px wide) ...
BOUNDARY_WIDTH = 2.5
#: ... along at least this many other objects, ...
BOUNDARY_NEIGHBOURS = 10
#: ... enclosing at least as much again as the lines themselves (outlines close around their objects; an id of small
#: objects repeated by an 8-bit save is thin and touches many others too, but encloses nothing), is a boundary drawn
#: between objects, not an object
BOUNDARY_ENCLOSES = 2.0
#: the values checked: those whose bounding boxes are the largest (outlines span the objects they close around)
BOUNDARY_CANDIDATES = 3


def _check_no_boundary_value(mask: np.ndarray, ids: np.ndarray, path: str | Path) -> None:
    """Refuse label images with outlines drawn in them as one value (some annotation tools export a 'boundary'
    value, 65535 say, around every object): scored as truth, that net became one object, and every object lost its
    rim (Dice 0.76 for a prediction of 0.96). The values of the largest bounding boxes are checked: thin lines along
    many objects that close around them. A confluent tissue's cells are each wider than lines.

    >>> from skimage.segmentation import find_boundaries
    >>> yy, xx = np.mgrid[:60, :60]
    >>> cells = (yy // 12) * 5 + xx // 12 + 1                        # 25 touching squares
    >>> outlined = np.where(find_boundaries(cells), 65535, cells)
    >>> _check_no_boundary_value(cells, np.unique(cells), "cells.tif")   # fine
    >>> _check_no_boundary_value(outlined, np.unique(outlined), "outlined.tif")
    Traceback (most recent call last):
    ...
    unetkit.errors.InputError: outlined.tif: value 65535 is drawn as lines about 2 px wide along 25 objects: a boundary between objects, not an object (instance labels hold one id per object and 0 between them)
      fix: set that value to 0 (background) in the masks
    """
    from scipy import ndimage as ndi

    if ids.size <= BOUNDARY_NEIGHBOURS:
        return
    if int(ids[-1]) <= max(4 * ids.size, 1 << 16):  # ids of moderate size: boxes by id, without a copy of the mask
        boxes = ndi.find_objects(mask if mask.dtype.kind == "i" else mask.astype(np.int32))
        boxes = [boxes[int(i) - 1] for i in ids]
    else:  # large or sparse ids (up to 2**64): numbered 1..n in their order first
        compact = (np.searchsorted(ids, mask) + 1).astype(np.int32)
        compact[mask == 0] = 0
        boxes = ndi.find_objects(compact)
    spans = np.array([(box[0].stop - box[0].start) * (box[1].stop - box[1].start) for box in boxes])
    for index in np.argsort(spans)[::-1][:BOUNDARY_CANDIDATES]:  # outlines span the image, any object less
        _check_not_lines(mask, ids[index], boxes[index], path)


def _check_not_lines(mask: np.ndarray, value: int, box: tuple[slice, slice], path: str | Path) -> None:
    """Raise if ``value`` (inside its bounding ``box``) is drawn in ``mask`` as thin lines that close around many
    other objects."""
    from scipy import ndimage as ndi

    rows, cols = box
    window = mask[max(rows.start - 1, 0):rows.stop + 1, max(cols.start - 1, 0):cols.stop + 1]
    lines = window == value
    width = float(ndi.distance_transform_edt(np.pad(lines, 1)).max())
    if width > BOUNDARY_WIDTH or ndi.binary_fill_holes(lines).sum() < BOUNDARY_ENCLOSES * lines.sum():
        return  # wide, or enclosing little: objects (small ones repeated by an 8-bit save are thin and touch many)
    beside = ndi.binary_dilation(lines) & ~lines & (window > 0)
    neighbours = np.unique(window[beside]).size
    if neighbours >= BOUNDARY_NEIGHBOURS:
        raise InputError(
            f"value {value} is drawn as lines about {max(1, round(2 * width - 1))} px wide along {neighbours} "
            "objects: a boundary between objects, not an object (instance labels hold one id per object and 0 "
            "between them)",
            path=path, fix="set that value to 0 (background) in the masks")


def label_ids(mask: np.ndarray) -> np.ndarray:
    """Object ids as int32, the type the object code works in. Ids past int32 (uint32 ids from 2**31, int64 ones
    past 2**32, which a plain cast wrapped into negative or colliding ids: a background object, Dice 0) are
    numbered again in their order, so that distinct objects stay distinct (0 stays the background).

    >>> label_ids(np.array([[0, 3_000_000_000, 3_000_000_001]], np.uint32)).tolist()
    [[0, 1, 2]]
    >>> label_ids(np.array([[2**32 + 1, 1]], np.int64)).tolist()
    [[2, 1]]
    """
    if mask.size and mask.dtype.kind in "ui" and int(mask.max()) > np.iinfo(np.int32).max:
        values, inverse = np.unique(mask, return_inverse=True)
        return (inverse.reshape(mask.shape) + (0 if values[0] == 0 else 1)).astype(np.int32)
    return mask.astype(np.int32)


#: a piece of one id is a stray, not an object of its own, if it has at most this many pixels ...
STRAY_PIXELS = 16
#: ... and under this share of the id's largest piece: the stray pixels that tracking annotations leave beside a cell
#: (the Cell Tracking Challenge's CHO masks: an id of 3,712 px with two 1-px pieces), not the separate objects of a
#: binary or semantic mask, whose pieces are cells of tens of pixels or more
STRAY_SHARE = 0.01


NO_BACKGROUND_FIX = ("make the background 0 in the masks (ilastik's Simple Segmentation exports 1 for background "
                     "and 2 for objects: subtract 1)")


def missing_background(mask_mode: str, num_classes: int) -> tuple[bool, str] | None:
    """What it means that no mask holds background (0): ``(True, problem)`` refused where the network must tell
    foreground from it (one class, or instance masks as foreground), since a model calling every pixel foreground
    would score Dice 1.0; ``(False, problem)`` a warning with several classes, where class 0 is one of them; None
    for an object model's labels, which may tile the image (confluent cells: their boundaries are still learnt).
    Train and inspect both ask it.

    >>> missing_background("labels", 1), missing_background("classes", 3)
    (None, (False, 'class 0 is in no mask: a model cannot learn it'))
    """
    if mask_mode == "labels":
        return None
    if mask_mode == "classes" and num_classes > 1:
        return False, "class 0 is in no mask: a model cannot learn it"
    return True, ("no mask has any background (0): every pixel is foreground, so there is nothing to learn and a "
                  "model calling everything foreground would score Dice 1.0")


def check_ignore_index(ignore_index: int | None, num_classes: int, mask_mode: str) -> None:
    """Refuse an ``--ignore-index`` that is the background or one of the classes: its pixels would count nowhere,
    so a model that calls everything foreground (ignore 0) scores a perfect Dice, and a class's output learns
    nothing; and any with instance masks, whose every label above 0 becomes foreground (the ignored value too).

    >>> check_ignore_index(255, 3, "classes")
    >>> try:
    ...     check_ignore_index(2, 3, "classes")
    ... except ConfigError as error:
    ...     print(error.problem)
    --ignore-index 2 is one of the classes of --classes 3 (0 to 2): its pixels would count nowhere and the model's output for class 2 would learn nothing
    """
    if ignore_index is None:
        return
    if mask_mode == "instances":
        raise ConfigError(
            f"--ignore-index {ignore_index} with instance masks: every label above 0 becomes foreground, the value "
            "to ignore too (and 0 or below is background), so nothing would be ignored",
            fix="leave --ignore-index out, or give class masks (0 background, 1 object, 255 to ignore) without "
                "--instance-masks")
    if ignore_index == 0:
        raise ConfigError(
            "--ignore-index 0 is the background: no background pixel would count, and a model that calls every "
            "pixel foreground would score a perfect Dice",
            fix="give the value that marks pixels to leave out (255, say), one that no class or object uses")
    top = max(num_classes, 2) - 1  # --classes 1: a binary mask of 0 and 1
    if mask_mode == "classes" and 0 < ignore_index <= top:
        raise ConfigError(
            f"--ignore-index {ignore_index} is one of the classes of --classes {num_classes} (0 to {top}): its pixels "
            f"would count nowhere and the model's output for class {ignore_index} would learn nothing",
            fix="give the value that marks pixels to leave out (255, say), one that no class uses; to leave a class "
                "out, give its pixels that value and one class fewer to --classes")


def learnable_foreground(mask: np.ndarray | None, ignore_index: int | None) -> np.ndarray:
    """Where ``mask`` holds a class to learn: above 0 and not ``--ignore-index``.

    >>> learnable_foreground(np.array([0, 1, 2]), ignore_index=2).tolist()
    [False, True, False]
    """
    if mask is None:
        return np.zeros(0, bool)
    return (mask > 0) if ignore_index is None else (mask > 0) & (mask != ignore_index)


#: below this share of agreeing side-by-side foreground pixels, a "mask" may be an intensity image (label images of
#: five public sets: 0.99 and more; their images: 0.002 to 0.68; but densely packed labels of 2 to 9 px objects
#: score 0.44 to 0.61, so a mask is refused only if its commonest values also come in crumbs: MIN_PIECE_PIXELS)
MIN_LABEL_AGREEMENT = 0.6
#: the median size, in pixels, of the separate pieces of the commonest values below which they are crumbs, as an
#: image's grey levels are (the five sets' images: 1.0 to 1.9 px; their masks: 550 px and more; packed labels of
#: about 2 px objects, ids repeating every 255: 2.8 px)
MIN_PIECE_PIXELS = 2.5


def neighbour_agreement(mask: np.ndarray) -> float | None:
    """Of the pairs of side-by-side foreground pixels (above 0, along rows and columns), the share that hold the
    same value; None where there are fewer than 100 such pairs to judge by.

    >>> round(neighbour_agreement(np.repeat([[0, 1, 1, 2, 2]], 50, axis=0)), 3)
    0.855
    >>> neighbour_agreement(np.arange(400).reshape(20, 20)) < MIN_LABEL_AGREEMENT  # an image's ramp of values
    True
    >>> tall = np.repeat([[0, 1, 1, 2, 2]], 1200, axis=0)  # three bands: the same share as one
    >>> round(neighbour_agreement(tall), 3) == round((1200 * 2 + 4 * 1199) / (1200 * 3 + 4 * 1199), 3)
    True
    """
    same = pairs = 0
    for top in range(0, mask.shape[0], BAND_ROWS):  # in bands: a huge mask's temporaries stay small
        band = mask[top:top + BAND_ROWS + 1]  # one row more: the pairs across the bands' border
        for first, second in ((band[:BAND_ROWS, 1:], band[:BAND_ROWS, :-1]), (band[1:], band[:-1])):
            both = (first > 0) & (second > 0)
            pairs += int(both.sum())
            same += int((both & (first == second)).sum())
    return same / pairs if pairs >= 100 else None


BAND_ROWS = 512


def check_not_an_intensity_image(mask: np.ndarray, path: str | Path) -> None:
    """Raise for a mask whose values vary from pixel to pixel inside objects and come in crumbs: an image saved as
    its own mask, which ``--instance-masks`` or ``--task instances`` would otherwise read as nearly all foreground,
    or as objects."""
    agreement = neighbour_agreement(mask)
    if agreement is None or agreement >= MIN_LABEL_AGREEMENT:
        return
    size = piece_pixels(mask)
    if size < MIN_PIECE_PIXELS:
        raise InputError(
            f"mask looks like an intensity image, not labels: of its side-by-side foreground pixels only "
            f"{agreement:.0%} hold the same value, and its commonest values come in pieces of {size:.1f} pixels "
            "(a median; a label's objects are pieces of many pixels)",
            path=path,
            fix="check that the masks folder holds label images (0 = background, 1.. = objects or classes), "
                "not copies of the images",
        )


def piece_pixels(mask: np.ndarray, values: int = 8) -> float:
    """The median size in pixels of the separate pieces (4-connected) of the ``values`` commonest foreground values.

    >>> piece_pixels(np.kron(np.arange(1, 10).reshape(3, 3), np.ones((4, 4), int)))  # nine square objects of 16 px
    16.0
    >>> piece_pixels(np.tile([[1, 2], [2, 1]], (8, 8)))  # a checkerboard of two values: single pixels
    1.0
    """
    from scipy import ndimage as ndi

    found, counts = np.unique(mask[mask > 0], return_counts=True)
    commonest = np.argsort(counts)[::-1][:values]
    sizes = [counts[i] / ndi.label(mask == found[i])[1] for i in commonest]
    return float(np.median(sizes)) if sizes else float("inf")


def _binary_maximum(found: set[int]) -> int | None:
    """255 or 65535 if the mask is binary with that as foreground (8- or 16-bit white)."""
    for high in (255, 65535):
        if found <= {0, high} and high in found:
            return high
    return None


def _likely_ignore_value(values: np.ndarray) -> int | None:
    """The one value that looks like an 'ignore' label beside classes 0..K-1: a single negative value (-1), or
    255 (65535) above consecutive classes from 0 (as semantic-segmentation datasets mark unlabelled pixels).

    >>> _likely_ignore_value(np.array([0, 1, 255])), _likely_ignore_value(np.array([-1, 0, 1]))
    (255, -1)
    >>> _likely_ignore_value(np.array([0, 255])), _likely_ignore_value(np.array([0, 128, 255])) is None
    (None, True)
    """
    negative = values[values < 0]
    if len(negative) == 1 and values.max() > 0:
        rest = values[values >= 0]
        return int(negative[0]) if np.array_equal(rest, np.arange(len(rest))) else None
    for high in (255, 65535):
        rest = values[values != high]
        if high in values and len(rest) >= 2 and np.array_equal(rest, np.arange(len(rest))):
            return high
    return None


def _suggest_fix(values: np.ndarray, num_classes: int) -> str:
    high = _binary_maximum(set(values.tolist()))
    if high is not None:
        return f"these are binary masks (0 and {high}): train one class, the default (--classes 1)"
    ignore = _likely_ignore_value(values)
    if ignore is not None:
        classes = int(values[values != ignore].max()) + 1
        return (f"if {ignore} marks pixels to leave out of training and scoring (a common 'ignore' value), pass "
                f"--ignore-index {ignore}" + (f" --classes {classes}" if classes > 2 else ""))
    top = int(values.max())
    if values.min() == 0 and top in (255, 65535) and len(values) >= 3:
        return (f"values between 0 and {top} besides them look like a binary mask smoothed by resizing or lossy "
                f"saving: threshold it (foreground above {top // 2}) and save it as 0/1; if they are classes, "
                "number them 0..K-1 and pass --classes K")
    positive = values[values > 0]
    consecutive = len(positive) > 0 and np.array_equal(positive, np.arange(1, len(positive) + 1))
    if num_classes == 1 and len(positive) > 2 and consecutive:
        return (
            f"it looks like an instance label image ({len(positive)} objects): pass "
            "--instance-masks to use every object as foreground"
        )
    if len(values) == 2 and values.min() == 0 and num_classes == 1:  # {0, 128}: one foreground value, not 1 or 255
        return (f"it looks like a binary mask whose foreground is {int(values.max())}: save it as 0/1 (or 0/255, "
                "which is read as binary)")
    if values.max() < 256 and len(values) <= 32 and values.min() >= 0 and 2 * len(values) < values.max() + 1:
        return (f"if these {len(values)} values are classes, number them 0..{len(values) - 1} and pass "
                f"--classes {len(values)}; if they are instance labels, pass --instance-masks")
    if values.max() < 256 and len(values) <= 32 and values.min() >= 0:
        return (
            f"if these are {int(values.max()) + 1} classes, pass --classes {int(values.max()) + 1}; "
            "if they are instance labels, pass --instance-masks"
        )
    return "relabel the mask so that classes are 0..K-1, or pass --instance-masks"


def check_mask_matches_image(mask: np.ndarray, image_shape: tuple[int, int], path: str | Path, image_path: str | Path) -> None:
    """Raise if the mask's height and width differ from its image's."""
    if mask.shape[:2] != tuple(image_shape):
        raise InputError(
            f"mask is {mask.shape[0]}x{mask.shape[1]} (HxW) but its image {image_path} is "
            f"{image_shape[0]}x{image_shape[1]}",
            path=path,
            fix="masks must have exactly the size of their image; check that the pair is right",
        )
