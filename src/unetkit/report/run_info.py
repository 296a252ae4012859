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
    curves = _read_curves(log_path, notes)
    return RunRecord(folder, settings, curves, tuple(notes))


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
