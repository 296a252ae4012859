"""The one exception type that unetkit raises for problems a user can fix.

The command line turns a :class:`UnetkitError` into a short message and exit code 2;
anything else is a bug and keeps its traceback.

>>> err = InputError("mask has values {0, 7}", path="masks/a.png", fix="pass --classes 8")
>>> print(err)
masks/a.png: mask has values {0, 7}
  fix: pass --classes 8
"""

from __future__ import annotations

from pathlib import Path

EXIT_USER_ERROR = 2  # the command's exit code for a UnetkitError
EXIT_INTERRUPTED = 130  # ... for a stop by SIGINT or SIGTERM, as a shell reports Ctrl-C
EXIT_BROKEN_PIPE = 141  # ... when the program reading its output stopped (`| head`), as a shell reports SIGPIPE


class UnetkitError(Exception):
    """A problem the user can fix: it names the file (if any), what is wrong and the fix.

    Catch it to handle every kind below alike; its parts are kept apart for a program to show:

    >>> from unetkit.data.sample import sample_path
    >>> try:
    ...     sample_path("test")
    ... except UnetkitError as error:
    ...     print(type(error).__name__, error.problem, error.path, error.fix, sep=" | ")
    InputError | unknown sample split 'test' | None | choose one of ('train', 'heldout')
    """

    def __init__(self, problem: str, *, path: str | Path | None = None, fix: str | None = None):
        self.problem = problem
        self.path = None if path is None else str(path)
        self.fix = fix
        super().__init__(self._message())

    def _message(self) -> str:
        text = f"{self.path}: {self.problem}" if self.path else self.problem
        if self.fix:
            text += f"\n  fix: {self.fix}"
        return text


class InputError(UnetkitError):
    """Bad input data: images, masks, folders, CSV files.

    >>> import tempfile
    >>> from unetkit.data.io import read_planes
    >>> fake = Path(tempfile.mkdtemp()) / "cells.png"
    >>> _ = fake.write_text("not pixels")
    >>> read_planes(fake)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    unetkit.errors.InputError: .../cells.png: not an image file, although its name says so
      fix: remove the file or give it its real extension
    """


class CheckpointError(UnetkitError):
    """A checkpoint that cannot be loaded: not a checkpoint, unsafe, or of another model.

    >>> import tempfile
    >>> from unetkit.checkpoint import load_checkpoint
    >>> notes = Path(tempfile.mkdtemp()) / "notes.pt"
    >>> _ = notes.write_text("not a checkpoint")
    >>> load_checkpoint(notes)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    unetkit.errors.CheckpointError: .../notes.pt: not a PyTorch checkpoint file (its contents are not what torch.save writes)
      fix: pass a .pt file written by 'unetkit train' or 'unetkit import-keras'
    """


class OutputExistsError(UnetkitError):
    """An output that already exists and would be overwritten without --overwrite.

    A run directory, too, must be new or empty: a folder of other files is refused before any work.

    >>> import tempfile
    >>> from unetkit import TrainConfig, train
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "notes.txt").write_text("my notes")
    >>> train(TrainConfig(out=str(folder), epochs=1), report=lambda text: None)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    unetkit.errors.OutputExistsError: ...: --out is a folder of other files (notes.txt), not a run
      fix: choose a new or empty folder for --out
    """


class ConfigError(UnetkitError):
    """An option value that is out of range or inconsistent with another option.

    Raised when the options are made, before any work:

    >>> from unetkit import TileOptions
    >>> TileOptions(tile_size=64, overlap=64)
    Traceback (most recent call last):
    ...
    unetkit.errors.ConfigError: overlap must be a fraction in [0, 1) or pixels below the tile size, got 64
    """


class TrainingDiverged(UnetkitError):
    """The loss or the weights became NaN or infinite; the last good checkpoint is kept.

    A learning rate far too high, without gradient clipping, diverges at the second step:

    >>> import tempfile
    >>> from unetkit import TrainConfig, train
    >>> config = TrainConfig(out=tempfile.mkdtemp() + "/run", depth=2, base_width=4, epochs=1, steps_per_epoch=2,
    ...                      batch_size=1, patch_size=32, lr=1e30, grad_clip=None, progress=False)
    >>> try:
    ...     train(config, report=lambda text: None)
    ... except TrainingDiverged as error:
    ...     print(error.problem.split(";")[0])
    the loss became NaN or infinite at step 2
    """
