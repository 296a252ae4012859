"""``python -m unetkit.torchrun ARGS`` is ``torchrun ARGS``, ending as one unetkit process ends.

``unetkit train --nproc N`` runs its workers through this module rather than torchrun itself,
for the ends that torchrun reports as crashes:

- a worker gave up with a user error (exit 2, its message printed) and the others stopped
  when torchrun told them to (saving ``last.pt`` if they were training): exit 2, without
  torchrun's ChildFailedError traceback;
- the workers were stopped by a signal (they saved ``last.pt`` and said so; exit 130), or
  the stop came before they started: exit 130, without torchrun's SignalException traceback
  (or a KeyboardInterrupt in its imports: the stop handlers are installed before torch is
  imported, and a stop during the imports is recorded, then acted on once they are done,
  so that none is lost inside them). A stop signal the command was started ignoring (``nohup``)
  stays ignored.

Anything else (a worker that crashed, was killed, or hit a bug) keeps torchrun's own report
of which rank failed and how.

>>> exit_code_for_failures([2, -15]), exit_code_for_failures([2, 130]), exit_code_for_failures([130, 130])
(2, 2, 130)
>>> exit_code_for_failures([2, 1]) is None   # a crash beside it: torchrun's report
True
>>> exit_code_for_failures([-9]) is None   # a worker killed outright (out of memory): torchrun's report
True
"""

from __future__ import annotations

import signal
import sys
from typing import Callable, Sequence

from .errors import EXIT_INTERRUPTED, EXIT_USER_ERROR
from .signals import STOP_SIGNALS as HANDLED_STOP_SIGNALS, not_ignored

# how torchrun ends the other workers after a failure (Windows has no SIGKILL: `--nproc` failed to import there)
SHUTDOWN_CODES = {-signal.SIGTERM} | ({-signal.SIGKILL} if hasattr(signal, "SIGKILL") else set())
STOP_SIGNALS = [*HANDLED_STOP_SIGNALS] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])  # + a closed terminal


class _StoppedBeforeStart(BaseException):
    """A stop signal arrived before torchrun installed its own handlers (no worker runs yet).
    A BaseException, as KeyboardInterrupt is, so that torchrun's ``except Exception`` lets it by."""


class _StopsBeforeStart:
    """The stop handler until torchrun installs its own. While torch is imported it only records
    the stop: raised there, C code can turn it into an ImportError that an ``except ImportError``
    for an optional dependency swallows, and torchrun then started and trained as if no stop had
    come. Once the imports are done (:meth:`arm`), a stop raises :class:`_StoppedBeforeStart`,
    which only torchrun's own Python runs into before its handlers replace this one."""

    def __init__(self) -> None:
        self.received: list[signal.Signals] = []
        self.armed = False

    def __call__(self, signum: int, frame: object) -> None:
        self.received.append(signal.Signals(signum))
        if self.armed:
            raise _StoppedBeforeStart(signal.Signals(signum).name)

    def arm(self) -> None:
        """From now on a stop raises; one recorded during the imports raises here."""
        self.armed = True
        if self.received:
            raise _StoppedBeforeStart(self.received[0].name)


def exit_code_for_failures(exit_codes: Sequence[int]) -> int | None:
    """The exit code that the failed workers' codes amount to: 2 if a worker gave up with a user
    error and the others stopped (130: torchrun's SIGTERM once the first had failed), 130 if all
    were stopped; None otherwise (a crash, which torchrun reports). Workers that torchrun killed
    outright (SIGTERM before their handler, then SIGKILL) do not count."""
    codes = set(exit_codes) - SHUTDOWN_CODES
    if codes == {EXIT_INTERRUPTED}:
        return EXIT_INTERRUPTED
    if codes - {EXIT_INTERRUPTED} == {EXIT_USER_ERROR}:  # the others stopped on torchrun's SIGTERM, and saved
        return EXIT_USER_ERROR
    return None


def _import_torchrun() -> Callable[[Sequence[str]], None]:
    """torchrun's entry point, run with ``argv``; the slow imports (torch) happen here."""
    from torch.distributed.run import parse_args, run

    return lambda argv: run(parse_args(list(argv)))


def _launch(run_torchrun: Callable[[Sequence[str]], None], argv: Sequence[str]) -> int:
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    try:
        run_torchrun(argv)
    except ChildFailedError as failure:
        code = exit_code_for_failures([process.exitcode for process in failure.failures.values()])
        if code is None:
            raise
        return code
    except SignalException:  # torchrun passed the stop on to the workers and waited for them
        return EXIT_INTERRUPTED
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    stops = _StopsBeforeStart()
    for stop in not_ignored(STOP_SIGNALS):  # torchrun replaces them with its own once it starts the workers
        signal.signal(stop, stops)
    try:
        run_torchrun = _import_torchrun()
        stops.arm()
        return _launch(run_torchrun, sys.argv[1:] if argv is None else argv)
    except (_StoppedBeforeStart, KeyboardInterrupt):  # the latter: a SIGINT while torchrun's own handler is not in place
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
