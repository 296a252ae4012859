"""The training run behind a checkpoint, for the report: its settings and its curves.

A checkpoint written by ``unetkit train`` sits in its run directory, beside ``config.json``
(the :class:`~unetkit.training.config.TrainConfig` values) and ``log.csv`` (one row per
epoch). Anything missing or unreadable becomes a note in the report, never an error: the
evaluation it accompanies is not thrown away for a side file.

>>> import tempfile
>>> run = read_run(Path(tempfile.mkdtemp()) / "model.pt")
>>> run.settings, run.curves
(None, None)
>>> run.notes[0].startswith("No training log was found")
True
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..training.history import CONFIG, LOG, curves_png, read_rows


@dataclass(frozen=True)
class RunRecord:
    """What was found beside a checkpoint: settings, curves (a PNG data URI) and notes on the rest."""

    folder: Path
    settings: dict[str, Any] | None
    curves: str | None
    notes: tuple[str, ...]


def read_run(checkpoint: str | Path) -> RunRecord:
    """The settings and training curves of the run directory that holds ``checkpoint``, if any."""
    folder = Path(checkpoint).parent
    config_path, log_path = folder / CONFIG, folder / LOG
    if not config_path.is_file() and not log_path.is_file():
        return RunRecord(folder, None, None, (
            f"No training log was found: {folder} holds neither {CONFIG} nor {LOG} "
            "(unetkit train writes them in the run directory, beside best.pt).",))
    notes: list[str] = []
    settings = _read_settings(config_path, notes)
    if settings is not None:
        settings = resolved_settings(settings, checkpoint)
    curves = _read_curves(log_path, notes)
    return RunRecord(folder, settings, curves, tuple(notes))


#: the network's options that config.json leaves at None when the preset decides them
MODEL_OPTIONS = ("base_width", "depth", "padding", "upsampling", "batch_norm", "dropout")
#: each instance method's own loss (``--loss`` is for semantic models)
INSTANCE_LOSSES = {"three-class": "dice+ce on background / interior / boundary",
                   "distance": "dice+bce on the foreground, bce on the distance inside it",
                   "border-weights": "dice+bce weighted at the gaps between objects (the U-Net paper's map)"}


def resolved_settings(settings: dict[str, Any], checkpoint: str | Path | None = None) -> dict[str, Any]:
    """``config.json``'s values with what its Nones stood for: the schedule and loss the run used, the network's
    options from the checkpoint, and "default" for the rest (a report reader cannot tell "None" from "off").

    >>> resolved = resolved_settings({"schedule": None, "loss": None, "epochs": None, "num_classes": 1,
    ...                               "task": "semantic", "mask_mode": None})
    >>> resolved["schedule"], resolved["loss"], resolved["mask_mode"]
    ('warmup-constant', 'dice+bce', 'default')
    """
    from ..losses import default_loss_name
    from ..training.config import default_schedule

    shown = dict(settings)
    if shown.get("schedule") is None and "schedule" in shown:
        shown["schedule"] = default_schedule(decides_length=shown.get("epochs") is None)
    if shown.get("loss") is None and "loss" in shown:
        shown["loss"] = (INSTANCE_LOSSES.get(shown.get("instance_method") or "", "the method's own")
                         if shown.get("task") == "instances" else default_loss_name(int(shown.get("num_classes") or 1)))
    network = _model_config(checkpoint)
    for name in MODEL_OPTIONS:
        if shown.get(name) is None and name in network:
            shown[name] = network[name]
    return {name: "default" if value is None else value for name, value in shown.items()}


def _model_config(checkpoint: str | Path | None) -> dict[str, Any]:
    """The network options a checkpoint stores ({} if it cannot be read: the report goes on without them)."""
    if checkpoint is None:
        return {}
    from ..checkpoint import read_checkpoint
    from ..errors import UnetkitError

    try:
        config = read_checkpoint(checkpoint).get("model_config")
    except (UnetkitError, OSError, RuntimeError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


def _read_settings(path: Path, notes: list[str]) -> dict[str, Any] | None:
    if not path.is_file():
        notes.append(f"No settings: {path} does not exist.")
        return None
    try:
        settings = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        notes.append(f"The settings could not be read from {path}: {exc}.")
        return None
    if not isinstance(settings, dict):
        notes.append(f"The settings could not be read from {path}: it holds no JSON object.")
        return None
    return settings


def _read_curves(path: Path, notes: list[str]) -> str | None:
    if not path.is_file():
        notes.append(f"No training curves: {path} does not exist.")
        return None
    try:
        rows = read_rows(path)
        if not rows:
            notes.append(f"No training curves: {path} holds no epoch (the run stopped before its first epoch ended?).")
            return None
        png = curves_png(rows)
    except (OSError, UnicodeDecodeError, ValueError, KeyError) as exc:
        notes.append(f"The training curves could not be drawn from {path}: {type(exc).__name__}: {exc}.")
        return None
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
