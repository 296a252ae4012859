"""Temporary files of unfinished writes: named after the process that writes them, swept once it is gone.

Every output is first written to a hidden temporary beside it (a file, or a folder for
OME-Zarr and for the work arrays of an image larger than memory), then moved into place in
one step, so no file ever stands half-written under its real name. A process killed
outright (SIGKILL, a power cut) leaves its temporary behind: up to gigabytes for a large
image. The temporary's name says whose it is, ``.NAME.HOST-PID.XXXXXXXX.partial...``, and
:func:`sweep_stale` removes those of this machine whose process no longer runs and that
nothing has touched for an hour, as ``predict`` and ``train --resume`` do in their output
folder when they start. A temporary of a process that still runs (another command writing
into the same folder), of another machine (a shared disk), or touched within the hour (a
process this one cannot see: another PID namespace, a container), is left alone, and so is
any name that unetkit does not make.

>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> mine = temporary_file(folder / "a.tif")
>>> mine.name.startswith(".a.tif.") and mine.name.endswith(".partial")
True
>>> orphan = folder / f".b.tif.{HOST}-999999999.abcdefgh.partial"   # a process that does not exist
>>> _ = orphan.write_bytes(b"half")
>>> os.utime(orphan, (0, 0))                                          # ... untouched since long ago
>>> [path.name for path in sweep_stale(folder)] == [orphan.name], mine.exists()
(True, True)
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile
import time
from pathlib import Path

HOST = re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname()) or "host"
STALE_AFTER_S = 3600.0  # a temporary untouched this long, of a process that is gone, is swept
# .NAME.HOST-PID.<mkstemp's 8 characters>.partial[-work][.suffix], and nothing else
_OWNER = re.compile(r"^\..+\.(?P<host>[A-Za-z0-9_]+)-(?P<pid>\d+)\.[a-z0-9_]{8}\.partial(-work)?(\.[A-Za-z0-9]+)?$")


NAME_MAX_BYTES = 255  # a file name's limit on Linux, macOS and Windows file systems
SUFFIX_ROOM = 40  # bytes kept for mkstemp's 8 characters and the suffix (".partial-work.ome.zarr", say)


def temporary_prefix(name: str) -> str:
    """The start of the temporary's name for the final name ``name`` (this process's). A long
    ``name`` is shortened in it, so that the temporary of any final name that fits fits too.

    >>> len(temporary_prefix("x" * 250).encode()) + SUFFIX_ROOM <= NAME_MAX_BYTES
    True
    """
    owner = f".{HOST}-{os.getpid()}."
    room = max(1, NAME_MAX_BYTES - SUFFIX_ROOM - len(owner.encode()) - 1)
    short = name.encode()[:room].decode(errors="ignore")  # never half a character
    return f".{short}{owner}"


def temporary_file(path: Path, suffix: str = ".partial") -> Path:
    """An empty temporary file beside ``path``, named after this process."""
    handle, name = tempfile.mkstemp(prefix=temporary_prefix(path.name), suffix=suffix, dir=path.parent)
    os.close(handle)
    return Path(name)


def temporary_folder(path: Path, suffix: str = ".partial") -> Path:
    """An empty temporary folder beside ``path``, named after this process."""
    return Path(tempfile.mkdtemp(prefix=temporary_prefix(path.name), suffix=suffix, dir=path.parent))


def sweep_stale(folder: Path) -> list[Path]:
    """Remove the temporaries in ``folder`` left by processes of this machine that no longer
    run; returns what was removed (nothing if ``folder`` does not exist)."""
    removed = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    for entry in entries:
        if not left_by_a_gone_process(entry.name) or _touched_lately(entry):
            continue
        try:
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
        except OSError:
            continue  # not ours to remove after all (permissions): leave it
        removed.append(entry)
    return removed


def left_by_a_gone_process(name: str) -> bool:
    """True if ``name`` is a temporary of a process of this machine that no longer runs.

    >>> left_by_a_gone_process(f".a.tif.{HOST}-999999999.abcdefgh.partial"), left_by_a_gone_process("a.tif")
    (True, False)
    """
    owner = _OWNER.match(name)
    return owner is not None and owner["host"] == HOST and not _running(int(owner["pid"]))


def _touched_lately(entry: Path) -> bool:
    """True if ``entry`` (or, for a folder, anything in it) changed within :data:`STALE_AFTER_S`."""
    since = time.time() - STALE_AFTER_S
    try:
        if entry.stat().st_mtime > since:
            return True
        if entry.is_dir() and not entry.is_symlink():
            for folder, _, names in os.walk(entry):
                if any((Path(folder) / name).stat().st_mtime > since for name in names):
                    return True
    except OSError:
        return True  # cannot tell: leave it
    return False


def _running(pid: int) -> bool:
    if pid == os.getpid() or os.name == "nt":  # on Windows os.kill(pid, 0) sends Ctrl+C: never ask there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # another user's process, or a number the system cannot check: assume alive
    return True
