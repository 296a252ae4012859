"""The run directory: claimed once, atomically, by one run; never silently reused.

A new run claims its folder by writing ``config.json`` with a no-clobber move: if two runs
start at once with the same ``--out``, one of them gets it and the other stops with an
error, before either has trained a step. While a run trains (new or resumed) it holds a lock
on the folder (:func:`hold_run_dir`), so a ``--resume`` of a run that is still going, or two
resumes at once, stop with an error instead of writing the same checkpoints and log.

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
from typing import Callable

from ..data.io import atomic_write, check_output_folder
from ..data.partials import left_by_a_gone_process
from ..errors import ConfigError, OutputExistsError
from .config import TrainConfig
from .state import CONFIG


def check_new_run_dir(run_dir: Path) -> None:
    """A run directory is never silently reused: it must be absent or empty. A folder that holds only another
    run's claim in the making (``config.json``'s temporary) is named as such: claimed at this moment, or left by a
    run killed while it claimed the folder."""
    check_output_folder(run_dir)
    held = sorted(path.name for path in run_dir.iterdir()) if run_dir.is_dir() else []  # listed once: a claim
    if not held:  # in the making may land (or vanish) meanwhile
        return
    if CONFIG in held:
        raise OutputExistsError("run directory exists and is not empty", path=run_dir,
                                fix=f"continue it with --resume {run_dir}, or choose another --out")
    claims = [name for name in held if name.startswith(f".{CONFIG}.") and ".partial" in name]
    if claims and len(claims) == len(held):
        remove = f"remove {run_dir / f'.{CONFIG}.*.partial*'}"
        if all(left_by_a_gone_process(name) for name in claims):
            raise OutputExistsError(f"a run killed while it claimed this folder left {claims[0]}"
                                    + (f" and {len(claims) - 1} more" if len(claims) > 1 else ""),
                                    path=run_dir, fix=f"{remove} (a claim that never finished), or choose another --out")
        raise OutputExistsError(f"another run is claiming this folder at this moment (it is writing {CONFIG}: "
                                f"{claims[0]})", path=run_dir,
                                fix=f"give each run its own --out; if no other run is starting, {remove}")
    raise OutputExistsError(
        f"--out is a folder of other files ({', '.join(held[:3])}{', ...' if len(held) > 3 else ''}), not a run",
        path=run_dir, fix="choose a new or empty folder for --out",
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


def hold_run_dir(run_dir: Path) -> Callable[[], None]:
    """Lock ``run_dir`` for this process's run; returns the function that lets it go.

    An advisory lock (``flock``) on the folder itself: no file is added, and the system lets
    it go when the process ends, killed or not. Where there is no ``flock`` (Windows), nothing
    is locked.

    >>> import tempfile
    >>> run = Path(tempfile.mkdtemp())
    >>> release = hold_run_dir(run)
    >>> try:
    ...     hold_run_dir(run)
    ... except OutputExistsError as error:
    ...     print("refused:", "another unetkit train" in str(error))
    refused: True
    >>> release(); hold_run_dir(run)()
    """
    try:
        import fcntl
    except ImportError:
        return lambda: None
    descriptor = os.open(run_dir, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(descriptor)
        raise OutputExistsError("another unetkit train is running in this run directory", path=run_dir,
                                fix="wait for it to end (or stop it), then resume") from None
    return lambda: os.close(descriptor)


def update_config_file(run_dir: Path, config: TrainConfig) -> None:
    """Rewrite ``config.json`` (a resumed run whose stopping options changed)."""
    text = json.dumps(config.to_dict(), indent=2)
    atomic_write(run_dir / CONFIG, lambda target: target.write_text(text), overwrite=True)
