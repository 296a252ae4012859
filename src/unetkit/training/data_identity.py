"""What a run trained on, kept in ``last.pt``, so that a resume can tell when the data changed.

Exact resume needs the same images in the same order: a resume that reads another folder of the
same name (run from another working directory), or the folder after an image was added or
removed, would go on training without a word, on other data. The identity is a digest of every
training and validation sample's name and of its image and mask files' bytes (whole up to 2 MiB, else
their size, first and last MiB; an OME-Zarr folder by its files' names and sizes and its metadata): the same whether the data is loaded or streamed from the files, the
same after the folder is moved or copied, and blind to library versions. It comes with the counts and
the validation images' names, which a mismatch can then name.

>>> import numpy as np
>>> from unetkit.data.dataset import Sample
>>> a = Sample("a.tif", np.zeros((1, 4, 4), np.float32), np.zeros((4, 4), np.int64))
>>> b = Sample("b.tif", np.ones((1, 4, 4), np.float32), np.zeros((4, 4), np.int64))
>>> data_identity([a], [b]) == data_identity([a], [b]), data_identity([a], [b]) == data_identity([b], [a])
(True, False)
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..data.dataset import Sample
from ..data.sources import FileSource
from ..errors import ConfigError

#: validation images named in a mismatch's message, at most
NAMED = 5
#: files up to twice this size are read whole; larger ones by their size, first and last this many bytes
READ_BYTES = 1 << 20


def data_identity(train_samples: Sequence[Sample | FileSource], val_samples: Sequence[Sample | FileSource]
                  ) -> dict[str, Any]:
    """The counts, the validation images' names and one digest of everything the run reads."""
    digest = hashlib.blake2b(digest_size=16)
    fingerprints: dict[Path, bytes] = {}  # a stack's file, once for all its planes
    for part, samples in (("train", train_samples), ("validation", val_samples)):
        digest.update(f"{part}:{len(samples)}".encode())
        for sample in samples:
            digest.update(sample.name.encode())
            for path in sample.files:
                if path not in fingerprints:
                    fingerprints[path] = file_fingerprint(path)
                digest.update(fingerprints[path])
            if not sample.files:  # a sample made in memory (an API caller's): its pixels
                _add_arrays(digest, sample)
    return {"train_images": len(train_samples), "validation_images": [s.name for s in val_samples],
            "digest": digest.hexdigest(), "streamed": any(isinstance(s, FileSource) for s in train_samples)}


def file_fingerprint(path: Path) -> bytes:
    """A digest of the file's bytes: all of them up to ``2 * READ_BYTES``, else its size, first and last MiB.
    An OME-Zarr image (a folder) by :func:`folder_fingerprint`."""
    if path.is_dir():
        return folder_fingerprint(path)
    digest = hashlib.blake2b(digest_size=16)
    size = path.stat().st_size
    digest.update(str(size).encode())
    with open(path, "rb") as handle:
        if size <= 2 * READ_BYTES:
            digest.update(handle.read())
        else:
            digest.update(handle.read(READ_BYTES))
            handle.seek(size - READ_BYTES)
            digest.update(handle.read(READ_BYTES))
    return digest.digest()


ZARR_METADATA = (".zattrs", ".zarray", ".zgroup", "zarr.json")


def folder_fingerprint(folder: Path) -> bytes:
    """A digest of a folder (an OME-Zarr image): every file's relative name and size, and the
    metadata files' bytes (shape, chunks, scale). Chunks are not read: a huge image would be read
    whole; a chunk rewritten at the very same compressed size goes unseen.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "zarr.json").write_text("{}"); first = folder_fingerprint(folder)
    >>> _ = (folder / "0").write_bytes(b"chunk"); first == folder_fingerprint(folder)
    False
    """
    digest = hashlib.blake2b(digest_size=16)
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(folder).as_posix()}:{path.stat().st_size}".encode())
        if path.name in ZARR_METADATA:
            digest.update(path.read_bytes())
    return digest.digest()


def _add_arrays(digest: Any, sample: Sample) -> None:
    for array in [sample.image] + ([] if sample.mask is None else [sample.mask]):
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.data)


def check_same_data(stored: dict[str, Any] | None, current: dict[str, Any], checkpoint: Path, data: str) -> None:
    """Raise :class:`ConfigError` when ``current`` (the data as read now) is not what the run trained on.

    ``stored`` is None for a ``last.pt`` written before the identity was kept (2026-12-07): nothing to check.
    """
    if stored is None or stored.get("digest") == current["digest"]:
        return
    then = f"{stored['train_images']} training and {len(stored['validation_images'])} validation image(s)"
    now = f"{current['train_images']} and {len(current['validation_images'])}"
    gone = [name for name in stored["validation_images"] if name not in current["validation_images"]]
    detail = "" if not gone else f"; no longer held out for validation: {', '.join(gone[:NAMED])}" + (
        f" and {len(gone) - NAMED} more" if len(gone) > NAMED else "")
    same_counts = stored["train_images"] == current["train_images"] and not gone
    if stored.get("streamed", current["streamed"]) != current["streamed"]:
        detail += ("; the data was " + ("streamed from its files then and is loaded now" if stored["streamed"] else
                   "loaded then and is streamed from its files now, which validates on 16 images at most")
                   + ": --memory-budget (by default a quarter of the machine's memory) decides that, so give the "
                   "budget of the machine the run started on")
    raise ConfigError(
        f"the data is not what this run trained on ({then}, {now} now"
        + (", the same names but other file contents" if same_counts else "") + f"{detail}), so the resumed run would not "
        "continue the same computation",
        path=data,
        fix=f"resume with the data the run started with (the path in {checkpoint.parent / 'config.json'}), or "
            f"train a new run from these weights with --init {checkpoint}",
    )
