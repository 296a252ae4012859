"""Fixtures shared by the tests (helpers live in helpers.py)."""

import signal
from pathlib import Path

import pytest

from helpers import write_dataset


def _undo_inherited_ignoring_of_stop_signals() -> None:
    """A suite started with ``nohup`` or as a background job of a script inherits SIGHUP or
    SIGINT ignored, and so do the processes the tests start: the tests of how a run stops then
    see no stop at all. They test unetkit's handling, so they start from the defaults."""
    defaults = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL,
                signal.SIGHUP: signal.SIG_DFL}
    for number, default in defaults.items():
        if signal.getsignal(number) == signal.SIG_IGN:
            signal.signal(number, default)


_undo_inherited_ignoring_of_stop_signals()


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "data")
