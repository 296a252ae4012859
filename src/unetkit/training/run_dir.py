"""The run directory: claimed once, atomically, by one run; never silently reused.

A new run claims its folder by writing ``config.json`` with a no-clobber move: if two runs
start at once with the same ``--out``, one of them gets it and the other stops with an
error, before either has trained a step.

>>> import tempfile
>>> from unetkit.training.config import TrainConfig
>>> run = Path(tempfile.mkdtemp()) / "run"
>>> claim_run_dir(run, TrainConfig(out=str(run)))
>>> sorted(p.name for p in run.iterdir())
['config.json']
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

from ..data.io import atomic_write, ensure_folder_writable
from ..errors import ConfigError, OutputExistsError
from .config import TrainConfig
from .state import CONFIG


def check_run_dir_is_usable(run_dir: Path) -> None:
    """Raise unless ``run_dir`` is a folder that exists, or can be made, and can be written."""
    if run_dir.is_symlink() and not run_dir.exists():
        raise ConfigError("--out is a dangling symbolic link", path=run_dir, fix="remove the link or choose another --out")
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError("--out is a file, not a folder", path=run_dir, fix="choose a folder name for --out")
    ensure_folder_writable(run_dir, fix="choose an --out in a folder you can write to")


def check_new_run_dir(run_dir: Path) -> None:
    """A run directory is never silently reused: it must be absent or empty."""
    check_run_dir_is_usable(run_dir)
    if run_dir.is_dir() and any(run_dir.iterdir()):
        raise OutputExistsError(
            "run directory exists and is not empty",
            path=run_dir,
            fix=f"continue it with --resume {run_dir}, or choose another --out",
        )


def claim_run_dir(run_dir: Path, config: TrainConfig) -> None:
    """Create the folder and write ``config.json`` without replacing one: the run's claim."""
    check_new_run_dir(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the run directory ({os.strerror(exc.errno or errno.EIO)})",
                          path=run_dir) from exc
    text = json.dumps(config.to_dict(), indent=2)
    try:
        atomic_write(run_dir / CONFIG, lambda target: target.write_text(text), overwrite=False)
    except OutputExistsError:
        raise OutputExistsError(
            "another run started in this folder at the same moment and claimed it",
            path=run_dir, fix="give each run its own --out",
        ) from None


def update_config_file(run_dir: Path, config: TrainConfig) -> None:
    """Rewrite ``config.json`` (a resumed run whose stopping options changed)."""
    text = json.dumps(config.to_dict(), indent=2)
    atomic_write(run_dir / CONFIG, lambda target: target.write_text(text), overwrite=True)
