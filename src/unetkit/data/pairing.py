"""Finding image/mask pairs in the layouts users already have.

Two layouts:

- a folder with ``images/`` and ``masks/`` whose files match by stem (``a.tif`` pairs
  with ``a.png``; ``a.ome.tif`` has the stem ``a``, so it pairs with ``a.png`` too);
- a CSV file of ``image,mask`` rows (a header row is optional, and may name the columns
  in either order, ``mask,image``; relative paths are relative to the CSV file).

>>> import tempfile
>>> root = Path(tempfile.mkdtemp())
>>> for name in ["images/a.tif", "images/b.png", "masks/a.png"]:
...     (root / name).parent.mkdir(exist_ok=True); (root / name).touch()
>>> listing = find_pairs(root)
>>> [(p.image.name, p.mask.name) for p in listing.pairs], [p.name for p in listing.images_without_mask]
([('a.tif', 'a.png')], ['b.png'])
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from .io import IMAGE_SUFFIXES, image_stem, is_image_file


@dataclass(frozen=True)
class Pair:
    image: Path
    mask: Path


@dataclass
class PairListing:
    pairs: list[Pair] = field(default_factory=list)
    images_without_mask: list[Path] = field(default_factory=list)
    masks_without_image: list[Path] = field(default_factory=list)
    subfolders: list[Path] = field(default_factory=list)  # inside images/ and masks/: not read

    def note_subfolders(self, notes: list[str] | None) -> None:
        """Add to ``notes`` that the subfolders of images/ and masks/ were not read (nothing if there are none)."""
        if notes is not None and self.subfolders:
            names = ", ".join(f"{p.parent.name}/{p.name}/" for p in self.subfolders[:5])
            notes.append(f"subfolders are not read ({names}{' and more' if len(self.subfolders) > 5 else ''}), "
                         "only the files directly in images/ and masks/")  # no ': ', which _deduplicate cuts at


def image_files(folder: Path) -> list[Path]:
    """Image files in a folder, sorted by name; an error if there are none."""
    if not folder.is_dir():
        raise InputError("folder not found", path=folder)
    try:
        entries = list(folder.iterdir())
    except PermissionError as exc:
        raise InputError("cannot list the folder: permission denied", path=folder,
                         fix="check the folder's permissions (ls -ld); unetkit only needs to read it") from exc
    dangling = sorted(p.name for p in entries if p.is_symlink() and not p.exists())
    if dangling:
        raise InputError(
            f"{len(dangling)} file(s) are links to nothing: {', '.join(dangling[:5])}",
            path=folder, fix="restore the files the links point to, or remove the links",
        )
    files = sorted(p for p in entries if (p.is_file() and is_image_file(p))
                   or (p.is_dir() and p.name.lower().endswith(".zarr")))
    if not files:
        inside = sorted(p for p in entries if p.is_dir() and not p.name.startswith(".")
                        and any(is_image_file(q) for q in p.iterdir() if q.is_file()))
        raise InputError(
            f"folder holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}, .ome.zarr)"
            + (f"; its subfolder {inside[0].name}/ holds some" if inside else ""),
            path=folder,
            fix="point at the folder that holds the images" + (", or move them up into this one" if inside else ""),
        )
    return files


#: what annotation tools add to an image's name for its mask (matched without regard to case)
MASK_AFFIXES = ("_mask", "_masks", "-mask", "_label", "_labels", "-label", "_seg", "_gt", "_annotation", "mask_",
                "label_")


def pairing_hint(images: list[Path], masks: list[Path]) -> str:
    """Why unmatched images and masks may have been meant as pairs: names that differ in case only, or masks named
    with an affix (``a_mask.png`` for ``a.png``); "" when nothing suggests it.

    >>> pairing_hint([Path("S0.png")], [Path("s0.png")])
    'names differ in case only (S0.png, s0.png): pairs need the same name, case included'
    >>> pairing_hint([Path("a.tif")], [Path("a_mask.tif")])
    "masks are named with '_mask' added (a_mask.tif for a.tif): give each mask its image's name"
    """
    by_lower = {image_stem(i).lower(): i for i in images}
    for mask in masks:
        image = by_lower.get(image_stem(mask).lower())
        if image is not None:
            return f"names differ in case only ({image.name}, {mask.name}): pairs need the same name, case included"
        stem = image_stem(mask).lower()
        for affix in MASK_AFFIXES:
            bare = stem[: -len(affix)] if stem.endswith(affix) else stem[len(affix):] if stem.startswith(affix) else None
            if bare and bare in by_lower:
                return (f"masks are named with '{affix}' added ({mask.name} for {by_lower[bare].name}): give each "
                        "mask its image's name")
    return ""


def _by_stem(files: list[Path]) -> dict[str, Path]:
    by_stem: dict[str, Path] = {}
    for path in files:
        stem = image_stem(path)
        if stem in by_stem:
            raise InputError(
                f"two files share the name {stem!r}: {by_stem[stem].name} and {path.name}",
                path=path.parent,
                fix="keep one file per image name",
            )
        by_stem[stem] = path
    return by_stem


def find_pairs(source: str | Path) -> PairListing:
    """Pairs from a folder (``images/`` + ``masks/``) or a CSV file of image,mask rows."""
    source = Path(source)
    if source.suffix.lower() == ".csv":
        return _pairs_from_csv(source)
    if not source.exists():
        raise InputError("data folder not found", path=source)
    images_dir, masks_dir = source / "images", source / "masks"
    if not images_dir.is_dir() or not masks_dir.is_dir():
        raise InputError(
            "expected a folder with 'images/' and 'masks/' subfolders, or a CSV of image,mask pairs",
            path=source,
            fix="put images in DATA/images and masks with the same names in DATA/masks",
        )
    images = _by_stem(image_files(images_dir))
    masks = _by_stem(image_files(masks_dir))
    listing = PairListing(
        subfolders=[p for folder in (images_dir, masks_dir) for p in sorted(folder.iterdir())
                    if p.is_dir() and not p.name.startswith(".") and not p.name.lower().endswith(".zarr")],
        pairs=[Pair(images[s], masks[s]) for s in sorted(images) if s in masks],
        images_without_mask=[images[s] for s in sorted(images) if s not in masks],
        masks_without_image=[masks[s] for s in sorted(masks) if s not in images],
    )
    if not listing.pairs:
        hint = pairing_hint(listing.images_without_mask, listing.masks_without_image)
        raise InputError(
            "no image in images/ has a mask of the same name in masks/" + (f"; {hint}" if hint else ""),
            path=source,
            fix="name each mask like its image (a.tif pairs with a.png)",
        )
    return listing


def _pairs_from_csv(path: Path) -> PairListing:
    if not path.is_file():
        raise InputError("CSV file not found", path=path)
    try:  # utf-8-sig: Excel's "CSV UTF-8" starts with a byte-order mark
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = [row for row in csv.reader(handle) if row and any(cell.strip() for cell in row)]
    except UnicodeDecodeError as exc:
        raise InputError(
            f"CSV file is not UTF-8 text (byte {exc.object[exc.start]:#04x} at position {exc.start})",
            path=path,
            fix="save it as UTF-8 (in Excel: 'CSV UTF-8'; elsewhere: iconv -f latin1 -t utf-8)",
        ) from exc
    except PermissionError as exc:
        raise InputError("cannot read the CSV file: permission denied", path=path) from exc
    header = [cell.strip().lower() for cell in rows[0][:2]] if rows else []
    swapped = header == ["mask", "image"]  # a header names the columns: mask first is read so
    if header in (["image", "mask"], ["mask", "image"]):
        rows = rows[1:]
    rows = [[row[1], row[0], *row[2:]] if swapped and len(row) >= 2 else row for row in rows]
    if not rows:
        raise InputError("CSV file lists no pairs", path=path, fix="write one 'image,mask' row per pair")
    listing = PairListing()
    first_row: dict[Path, int] = {}
    for number, row in enumerate(rows, start=1):
        if len(row) < 2:
            separator = next((name for mark, name in ((";", "semicolons"), ("\t", "tabs")) if row and mark in row[0]),
                             None)
            raise InputError(
                f"row {number} has {len(row)} column(s), expected image,mask"
                + (f": its columns seem separated by {separator}" if separator else ""), path=path,
                fix="save the file with commas between the columns (in Excel: 'CSV UTF-8 (Comma delimited)')"
                if separator else "write one 'image,mask' row per pair")
        for column, cell in (("image", row[0]), ("mask", row[1])):
            if not cell.strip():
                raise InputError(f"row {number} has no {column}", path=path, fix="write one 'image,mask' row per pair")
        image, mask = (path.parent / row[0].strip(), path.parent / row[1].strip())
        for file in (image, mask):
            if not file.is_file():
                raise InputError(f"row {number} names a file that does not exist: {file} (a relative path is read "
                                 "from the CSV file's folder)", path=path)
        if image.resolve() == mask.resolve():
            raise InputError(f"row {number} names one file as both image and mask: {row[0].strip()}", path=path,
                             fix="give each image its own mask file")
        if image.resolve() in first_row:
            raise InputError(
                f"rows {first_row[image.resolve()]} and {number} list the same image {row[0].strip()}: "
                "it could land in both training and validation",
                path=path, fix="list each image once",
            )
        first_row[image.resolve()] = number
        listing.pairs.append(Pair(image, mask))
    return listing
