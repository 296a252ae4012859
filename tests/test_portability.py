"""What differs on Windows and macOS, simulated on Linux: each test imitates one of their behaviours."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from unetkit.data.io import atomic_write


def test_atomic_write_syncs_through_a_handle_windows_can_flush(tmp_path, monkeypatch):
    """Windows' os.fsync (FlushFileBuffers) fails with EBADF on a handle opened read-only, where Linux syncs it:
    every output unetkit writes went through such a handle, so on Windows none could be written."""
    fcntl = pytest.importorskip("fcntl")
    real_fsync = os.fsync

    def windows_fsync(descriptor: int) -> None:
        if fcntl.fcntl(descriptor, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY:
            raise OSError(errno.EBADF, "Bad file descriptor")
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", windows_fsync)
    atomic_write(tmp_path / "a.txt", lambda target: target.write_bytes(b"done"))
    assert (tmp_path / "a.txt").read_bytes() == b"done"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]
