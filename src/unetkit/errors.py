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
    """A problem the user can fix: it names the file (if any), what is wrong and the fix."""

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
    """Bad input data: images, masks, folders, CSV files."""


class CheckpointError(UnetkitError):
    """A checkpoint that cannot be loaded: not a checkpoint, unsafe, or of another model."""


class OutputExistsError(UnetkitError):
    """An output that already exists and would be overwritten without --overwrite."""


class ConfigError(UnetkitError):
    """An option value that is out of range or inconsistent with another option."""


class TrainingDiverged(UnetkitError):
    """The loss or the weights became NaN or infinite; the last good checkpoint is kept."""
