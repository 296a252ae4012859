"""The embedded sample dataset: HeLa nuclei from the Cell Tracking Challenge.

``sample:train`` (frames 0, 3, 6, 9) and ``sample:heldout`` (frames 15, 19, which no
training sees) can stand wherever a data folder is expected. The masks are instance
labels made by a segmentation algorithm; they are read as foreground. See
``data/sample/README.md`` for the origin, citation and terms of use.

>>> sample_path("train").name
'train'
>>> resolve_data_source("sample:heldout")[1]
'instances'
>>> resolve_mask_mode("sample:train", requested="classes"), resolve_mask_mode("data/", None)
('instances', 'classes')
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from .masks import MaskMode

SAMPLE_ROOT = Path(__file__).resolve().parent / "sample"
SAMPLE_SPLITS = ("train", "heldout")
SAMPLE_PREFIX = "sample:"


def sample_path(split: str) -> Path:
    """Folder of one split of the sample data (``images/`` + ``masks/``)."""
    if split not in SAMPLE_SPLITS:
        raise InputError(f"unknown sample split {split!r}", fix=f"choose one of {SAMPLE_SPLITS}")
    return SAMPLE_ROOT / split


def resolve_data_source(source: str | Path | None) -> tuple[Path, MaskMode | None]:
    """A data path, with ``sample:SPLIT`` (or None: the training split) resolved.

    Returns the path and the mask mode the sample needs (None for user data).
    """
    if source is None:
        return sample_path("train"), "instances"
    text = str(source)
    if text.startswith(SAMPLE_PREFIX):
        return sample_path(text[len(SAMPLE_PREFIX):]), "instances"
    return Path(source), None


def resolve_mask_mode(source: str | Path | None, requested: MaskMode | None) -> MaskMode:
    """How the masks of ``source`` are read: the one rule for train, evaluate and inspect.

    The embedded sample's masks are instance labels, so it is read as ``instances``
    (foreground) or, for instance segmentation, ``labels``; other data as ``requested`` (``--instance-masks``, or what a model was trained with),
    else as class indices.
    """
    _, sample_mode = resolve_data_source(source)
    if requested == "labels":  # instance segmentation keeps the object ids, the sample's too
        return "labels"
    return sample_mode or requested or "classes"
