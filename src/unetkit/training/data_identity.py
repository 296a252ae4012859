"""What a run trained on, kept in ``last.pt``, so that a resume can tell when the data changed.

Exact resume needs the same images in the same order: a resume that reads another folder of the
same name (run from another working directory), or the folder after an image was added or
removed, would go on training without a word, on other data. The identity is a digest of every
training and validation image and mask (their names, shapes and pixels; for images read from the
files window by window, their names, shapes and the foreground map drawn from the masks), with the
counts and the validation images' names, which a mismatch can then name.

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


def data_identity(train_samples: Sequence[Sample | FileSource], val_samples: Sequence[Sample | FileSource]
                  ) -> dict[str, Any]:
    """The counts, the validation images' names and one digest of everything the run reads."""
    digest = hashlib.blake2b(digest_size=16)
    for part, samples in (("train", train_samples), ("validation", val_samples)):
        digest.update(f"{part}:{len(samples)}".encode())
        for sample in samples:
            _add_sample(digest, sample)
    return {"train_images": len(train_samples), "validation_images": [s.name for s in val_samples],
            "digest": digest.hexdigest()}


def _add_sample(digest: Any, sample: Sample | FileSource) -> None:
    digest.update(sample.name.encode())
    if isinstance(sample, FileSource):
        arrays = [np.asarray((sample.channels, sample.height, sample.width, sample.plane)), sample.grid]
    else:
        arrays = [sample.image] + ([] if sample.mask is None else [sample.mask])
    for array in arrays:
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
    detail = "" if not gone else f"; validation images no longer there: {', '.join(gone[:NAMED])}" + (
        f" and {len(gone) - NAMED} more" if len(gone) > NAMED else "")
    same_counts = stored["train_images"] == current["train_images"] and not gone
    raise ConfigError(
        f"the data is not what this run trained on ({then}, {now} now"
        + (", with other pixels or masks" if same_counts else "") + f"{detail}), so the resumed run would not "
        "continue the same computation",
        path=data,
        fix=f"resume with the data the run started with (the path in {checkpoint.parent / 'config.json'}), or "
            f"train a new run from these weights with --init {checkpoint}",
    )
