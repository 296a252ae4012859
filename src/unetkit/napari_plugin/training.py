"""Training on layer data: the work behind the Train widget, without Qt.

The image and labels layers are written to a temporary ``images/`` + ``masks/`` folder as
TIFF (a stack of planes as a multi-page TIFF, so that each plane is one sample and
validation holds some of them out), then :func:`unetkit.train` runs on it as on any
folder; the folder is removed when training ends. The run directory keeps the model
(``best.pt``, ``last.pt``), ``log.csv`` and ``curves.png``; its ``config.json`` names the
removed folder, so resuming from the command line needs the data saved as files first.

>>> import tempfile, threading
>>> from unetkit.data.sample import sample_path
>>> from unetkit.data.io import read_planes
>>> image = np.stack(read_planes(sample_path("heldout") / "images" / "hela.tif"))[:, 96:192, 96:192]
>>> labels = np.stack(read_planes(sample_path("heldout") / "masks" / "hela.tif"))[:, 96:192, 96:192]
>>> config = TrainConfig(out=tempfile.mkdtemp() + "/run", depth=2, base_width=4, epochs=1,
...     steps_per_epoch=2, batch_size=1, patch_size=32, mask_mode="instances", progress=False)
>>> rows = []
>>> result = train_from_layers(image, labels, rgb=False, config=config, on_epoch=rows.append,
...     report=lambda text: None)
>>> result.stopped.value, len(rows), rows[0]["val_dice"] != ""   # 2 planes: one holds out for validation
('completed', 1, True)
"""

from __future__ import annotations

import itertools
import re
import tempfile
import threading
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import numpy as np
import tifffile

from ..data.io import an_alpha_to_drop
from ..errors import InputError, UnetkitError
from ..training.config import TrainConfig
from ..training.loop import EpochCallback, Report, TrainResult, train
from .layers import labels_channel_axis, labels_over_channels, spatial_shape, stack_planes

__all__ = ["TrainConfig", "default_run_dir", "train_from_layers", "write_training_folder"]

RUNS_HOME = "unetkit-runs"
LAYER_FILE = "layer"  # the stem of the temporary image and mask files

#: the command line's options in unetkit's messages, as the Train widget names them (first match first)
WIDGET_TERMS = (
    ("pass --instance-masks", 'tick "labels are object ids"'), ("--instance-masks", '"labels are object ids"'),
    ("leave --task instances out", 'learn pixels'), ("--task instances", "learn objects"),
    ("--classes", "classes"), ("continue it with --resume", "continue it on the command line: unetkit train --resume"),
    ("a folder for --out", "a folder as the run folder"), ("another --out", "another run folder"),
    ("--out", "the run folder"), ("--patch-size", "patch size"), ("--depth", "depth"), ("--epochs", "epochs"),
    ("--steps-per-epoch", "steps per epoch"), ("--lr", "learning rate"), ("--max-time", "time budget"),
)


def default_run_dir(now: datetime | None = None, home: Path | None = None) -> Path:
    """A run directory that does not exist yet: ``~/unetkit-runs/<date>-<time>`` (``-2``, ``-3``... if taken).

    >>> default_run_dir(datetime(2026, 1, 2, 3, 4, 5), home=Path("/nonexistent")).as_posix()
    '/nonexistent/unetkit-runs/20260102-030405'
    """
    stem = (home or Path.home()) / RUNS_HOME / (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    candidates = (stem.with_name(f"{stem.name}-{n}") if n > 1 else stem for n in itertools.count(1))
    return next(path for path in candidates if not path.exists())


def mask_array(labels: Any, name: str) -> np.ndarray:
    """Labels layer data as an unsigned integer array that mask files hold.

    >>> mask_array(np.array([[0, 3]], np.int64), "labels").dtype
    dtype('uint16')
    """
    labels = np.asarray(labels)
    if labels.dtype.kind not in "uib":
        raise InputError(f"labels layer holds {labels.dtype} values, not integers", path=name,
                         fix="use a Labels layer (integer object or class ids)")
    if labels.size and labels.min() < 0:
        raise InputError(f"labels layer holds negative values (down to {labels.min()})", path=name,
                         fix="use 0 for background and 1.. for classes or objects")
    top = int(labels.max()) if labels.size else 0
    return labels.astype(np.uint16 if top < 2**16 else np.uint32 if top < 2**32 else np.uint64)


def write_training_folder(image: Any, labels: Any, rgb: bool, folder: Path, name: str = "layer",
                          report: Report | None = None, channel_axis: int | None = None) -> Path:
    """``folder/images/<name>.tif`` and ``folder/masks/<name>.tif`` from layer data; returns ``folder``.

    Every leading axis of the image (time, z) counts planes; the labels must have the
    image's shape without its channels: RGB's, or a grey layer's leading axis that the labels
    lack (:func:`~unetkit.napari_plugin.layers.labels_channel_axis`), or ``channel_axis`` where
    it is given (then labels of the image's whole shape count what was painted on any channel:
    :func:`~unetkit.napari_plugin.layers.labels_over_channels`). Of a stack painted on
    some planes, only those are written (the others are not painted, not background). An RGBA layer's
    alpha that is transparency is left out, as the reader leaves it out of an image file. ``report``
    is told of all three, and of a grey layer of several leading axes read without channels
    (:func:`unchosen_channels_note`).
    """
    image = np.asarray(image)
    labels = mask_array(labels, name)
    if channel_axis is not None and not rgb:
        if not 0 <= channel_axis < image.ndim - 2:
            raise InputError(f"axis {channel_axis} cannot hold the channels of an image layer of shape {image.shape} "
                             "(its last two axes are Y and X)", path=name, fix="choose one of its leading axes")
        labels = labels_over_channels(labels, image.shape, channel_axis, name)
    axis = image_channel_axis(image.shape, labels.shape, rgb, channel_axis)
    note = unchosen_channels_note(image.shape, labels.shape, rgb) if axis is None else None
    if note is not None and report is not None:
        report(note)
    if axis is not None:  # a grey layer holding channels on an axis the labels lack: channels last, as RGB's
        image = np.moveaxis(image, axis, -1)
        labels = labels.squeeze(axis) if labels.ndim == image.ndim else labels  # at size 1, as Segment adds them
        if report is not None:
            why = ('chosen under "channels"' if channel_axis is not None
                   else "which the labels lack or hold at size 1")
            report(f"the image layer's axis {axis} (of size {image.shape[-1]}), {why}, is read as its channels")
    if rgb and image.shape[-1] == 4 and an_alpha_to_drop(image[..., -1]):  # as unetkit train reads an RGBA PNG
        image = image[..., :3]
        if report is not None:
            report("the image layer's alpha (4th channel), opaque nearly everywhere, is left out: the model takes 3 "
                   "channels (RGB), as one trained on the image file would")
    channels_last = rgb or axis is not None
    expected = image.shape[:-1] if channels_last else image.shape
    if labels.shape != expected:
        raise InputError(
            f"labels layer has shape {labels.shape}, the image layer {expected}"
            + (" (without its colour channels)" if rgb else ""),
            path=name, fix="choose the labels layer drawn on this image (same size and planes)"
            + (', or another axis under "channels"' if channel_axis is not None else ""),
        )
    spatial_shape(image.shape, channels_last)  # a 1D layer says so here
    images, masks = stack_planes(image, channels_last), stack_planes(labels, False)
    painted = masks.reshape(len(masks), -1).any(axis=1)
    if painted.any() and not painted.all():
        images, masks = images[painted], masks[painted]
        if report is not None:
            report(f"training on the {len(masks)} of {len(painted)} planes that hold labels: a plane without any is "
                   "left out, not trained as background (for a truly empty frame, train on files: unetkit train)")
    for sub in ("images", "masks"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    channels = {"photometric": "rgb"} if rgb else {"photometric": "minisblack"} if axis is None else \
        {"photometric": "minisblack", "planarconfig": "contig", "metadata": {"axes": "QYXS"}}  # planes of C channels
    tifffile.imwrite(folder / "images" / f"{name}.tif", images, **channels)
    tifffile.imwrite(folder / "masks" / f"{name}.tif", masks, photometric="minisblack")
    return folder


def image_channel_axis(image_shape: tuple[int, ...], labels_shape: tuple[int, ...], rgb: bool,
                       chosen: int | None = None) -> int | None:
    """The grey image layer's axis read as its channels: ``chosen`` where given, else the leading axis its labels lack
    or hold at size 1 (:func:`~unetkit.napari_plugin.layers.labels_channel_axis`); None for an RGB layer (channels
    last).

    >>> image_channel_axis((2, 64, 64), (64, 64), False), image_channel_axis((5, 2, 64, 64), (5, 2, 64, 64), False, 1)
    (0, 1)
    """
    if rgb:
        return None
    return chosen if chosen is not None else labels_channel_axis(tuple(image_shape), tuple(labels_shape))


def unchosen_channels_note(image_shape: tuple[int, ...], labels_shape: tuple[int, ...], rgb: bool) -> str | None:
    """What training says of a grey image layer of several leading axes whose labels have its whole shape (napari's
    *new labels* on a ``(Z, C, Y, X)`` layer): every plane becomes a one-channel image, which is right for time and z
    but not for channels, and only the user knows which axis is which. None for other layers.

    >>> print(unchosen_channels_note((5, 2, 64, 64), (5, 2, 64, 64), rgb=False))
    the image layer's axes (5, 2) are all read as planes: each 64 x 64 plane trains as a one-channel image; if one of them holds channels, choose it under "channels"
    >>> unchosen_channels_note((5, 64, 64), (5, 64, 64), rgb=False) is None
    True
    """
    if rgb or len(image_shape) < 4 or tuple(labels_shape) != tuple(image_shape):
        return None
    height, width = image_shape[-2:]
    return (f"the image layer's axes {tuple(image_shape[:-2])} are all read as planes: each {height} x {width} plane "
            'trains as a one-channel image; if one of them holds channels, choose it under "channels"')


def in_layer_terms(error: UnetkitError, folder: Path, names: tuple[str, str]) -> UnetkitError:
    """``error`` as the widget's user reads it: the temporary files (removed by then) named by their layers
    (``names``: the image's and the labels'), the command line's options by the widget's.

    >>> error = InputError("mask has values {0, 7}", path="/tmp/x/masks/layer.tif", fix="pass --instance-masks")
    >>> print(in_layer_terms(error, Path("/tmp/x"), ("cells", "cells labels")))
    labels layer 'cells labels': mask has values {0, 7}
      fix: tick "labels are object ids"
    """
    path = error.path
    if path is not None and (path == LAYER_FILE or Path(path) == folder or folder in Path(path).parents):
        part = Path(path).relative_to(folder).parts[:1] if folder in Path(path).parents else ()
        path = (f"image layer {names[0]!r}" if part == ("images",) else f"labels layer {names[1]!r}"
                if part == ("masks",) or path == LAYER_FILE else f"layers {names[0]!r} and {names[1]!r}")
    problem, fix = (text and text_in_layer_terms(text, folder, names) for text in (error.problem, error.fix))
    return type(error)(problem, path=path, fix=fix)


def text_in_layer_terms(text: str, folder: Path, names: tuple[str, str]) -> str:
    """A message of the training run (an error's problem or fix, a note it reports) as the widget's user reads it:
    the temporary files named by their layers, the command line's options by the widget's.

    >>> print(text_in_layer_terms("note: validation holds out /tmp/x/images/layer.tif[2]; raise --epochs",
    ...                           Path("/tmp/x"), ("cells", "cells labels")))
    note: validation holds out image layer 'cells'[2]; raise epochs
    >>> print(text_in_layer_terms("validating on 1 (images/layer.tif[2])", Path("/tmp/x"), ("cells", "labels")))
    validating on 1 (image layer 'cells'[2])
    """
    for part, layer in (("images", f"image layer {names[0]!r}"), ("masks", f"labels layer {names[1]!r}")):
        # the file's name up to a space, bracket or quote, less a full stop that ends the sentence
        text = re.sub(re.escape(str(folder / part)) + r"[/\\][^\s\[\],;:()'\"]*[^\s\[\],;:()'\".]", lambda _: layer,
                      text)
        text = re.sub(r"(?<![\w./\\-])" + part + r"[/\\]" + LAYER_FILE + r"\.tif\b", lambda _: layer, text)  # a plane's name
    text = text.replace(str(folder), f"layers {names[0]!r} and {names[1]!r}")
    for option, term in WIDGET_TERMS:  # a whole option only: not the '--lr' of a folder 'unet--lr-0.01' or C:\runs\--lr
        text = re.sub(r"(?<![\w./\\-])" + re.escape(option) + r"(?![\w-])", lambda _, term=term: term, text)
    return text


def train_from_layers(
    image: Any,
    labels: Any,
    rgb: bool,
    config: TrainConfig,
    *,
    stop: threading.Event | None = None,
    on_epoch: EpochCallback | None = None,
    report: Report | None = None,
    names: tuple[str, str] = ("image", "labels"),
    channel_axis: int | None = None,
) -> TrainResult:
    """Train ``config`` (its ``data`` is replaced) on layer data; see :func:`unetkit.train`.

    ``names``: the image and labels layers', which errors name instead of the temporary files. ``channel_axis``:
    the grey image layer's axis that holds its channels, as :func:`write_training_folder` takes it."""
    with tempfile.TemporaryDirectory(prefix="unetkit-napari-") as folder:
        try:
            write_training_folder(image, labels, rgb, Path(folder), LAYER_FILE, report, channel_axis)
            options: dict[str, Callable[..., Any] | threading.Event | None] = {"stop": stop, "on_epoch": on_epoch}
            if report is not None:  # its notes name the temporary files (gone by then) and the command line's options
                options["report"] = lambda text: report(text_in_layer_terms(text, Path(folder), names))
            return train(config.replace(data=folder, val_data=None), **options)  # type: ignore[arg-type]
        except UnetkitError as error:
            raise in_layer_terms(error, Path(folder), names) from error
