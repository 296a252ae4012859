"""SIGINT and SIGTERM, handled the same way wherever long work runs.

Two behaviours, one mechanism (:func:`handle_stop_signals`):

- :func:`raise_on_stop_signals` (prediction): the signal raises :class:`Interrupted` at once,
  so the clean-up code of the file in progress runs;
- :func:`flag_on_stop_signals` (training): the signal sets a flag that the loop checks after
  each step, so it can save and stop between steps; later signals are acknowledged.

Outside the main thread (a napari worker, say) signals cannot be caught: both are no-ops. A
signal the process was started ignoring (``nohup``, a background job's SIGINT) stays ignored.

>>> with flag_on_stop_signals(report=print) as stop:
...     stop.is_set()
False
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from types import FrameType
from typing import Callable, Iterable, Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: where a signal may land but an exception cannot leave: Python prints it as "Exception ignored in" with a traceback
#: and goes on (the import system's module-lock callback, run when a lock is collected during an import)
UNRAISABLE_FRAMES = {("<frozen importlib._bootstrap>", "cb")}


def not_ignored(signals: Iterable[signal.Signals]) -> list[signal.Signals]:
    """The ``signals`` this process is not ignoring: one it was started ignoring (``nohup``'s
    SIGHUP, a background job's SIGINT) stays ignored wherever unetkit installs stop handlers.

    >>> not_ignored([signal.SIGTERM]) == [signal.SIGTERM]   # unless the test runner ignores it
    True
    """
    return [sig for sig in signals if signal.getsignal(sig) is not signal.SIG_IGN]


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived.

    A KeyboardInterrupt, not an Exception, so that no ``except Exception`` on the way (a
    reader turning any failure into "cannot be read") can mistake it for bad input.
    """


def in_unraisable_frame(frame: FrameType | None) -> bool:
    """Whether a signal handler called in ``frame`` cannot raise out of it (:data:`UNRAISABLE_FRAMES`).

    >>> import sys
    >>> in_unraisable_frame(sys._getframe())
    False
    """
    return frame is not None and (frame.f_code.co_filename, frame.f_code.co_name) in UNRAISABLE_FRAMES


@contextmanager
def handle_stop_signals(handler: Callable[[int, FrameType | None], None]) -> Iterator[None]:
    """Call ``handler(signal_number, interrupted_frame)`` on SIGINT/SIGTERM inside the block; restore afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in not_ignored(STOP_SIGNALS)}
    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class ReceivedStops(list):
    """The stop signals received so far, and an event set by the first (:attr:`event`)."""

    def __init__(self) -> None:
        super().__init__()
        self.event = threading.Event()

    def raise_if_any(self) -> None:
        """Raise :class:`Interrupted` if a stop came: one that code on the way swallowed (a command
        calls this once its slow imports are done, before it starts its work)."""
        if self:
            raise Interrupted(f"interrupted by signal {self[0].name}")


@contextmanager
def raise_on_stop_signals() -> Iterator[ReceivedStops]:
    """SIGTERM and SIGINT raise :class:`Interrupted` inside the block. The yielded list records
    them, for a caller that meets another error in its place: a stop in the middle of an import
    can come out as an ImportError (numpy's C code turns it into one), which an ``except
    ImportError`` for an optional dependency may even swallow. Its ``event`` is set too, for work
    that checks a flag later (training's stop event), so that such a stop is not lost.

    >>> with raise_on_stop_signals() as received:
    ...     received, received.event.is_set()
    ([], False)
    """
    received = ReceivedStops()

    def interrupt(number: int, frame: FrameType | None) -> None:
        received.append(signal.Signals(number))
        received.event.set()
        if in_unraisable_frame(frame):  # raised there, it is printed as a traceback and lost: raise_if_any raises it
            return
        raise Interrupted(f"interrupted by signal {signal.Signals(number).name}")

    with handle_stop_signals(interrupt):
        yield received


@contextmanager
def flag_on_stop_signals(
    report: Callable[[str], None], event: threading.Event | None = None
) -> Iterator[threading.Event]:
    """SIGTERM and SIGINT set the yielded event (``event``, or a new one); the first is answered at once (a
    validation may take minutes before the run can stop), each further one acknowledged."""
    requested = event if event is not None else threading.Event()

    def flag(number: int, frame: FrameType | None) -> None:
        name = signal.Signals(number).name
        if requested.is_set():
            report(f"{name} again: already stopping; the run saves its checkpoint as soon as the current step or "
                   "validation ends")
        else:
            report(f"{name}: stopping; the run saves its checkpoint as soon as the current step or validation ends")
        requested.set()

    with handle_stop_signals(flag):
        yield requested
