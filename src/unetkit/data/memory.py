"""How much memory an image needs once decoded, against how much the machine has free.

Checked from the file's header before any pixel is read, so that a small compressed file
that decodes to tens of gigabytes is refused with a clear message instead of a MemoryError
(or the kernel's OOM killer) halfway through.

>>> available_memory_bytes() > 0
True
>>> decoded_bytes(PlaneShape(1, 1000, 1000, 1), np.dtype("uint16"), float_copies=3)
14000000
>>> readable_bytes(14000000), readable_bytes(3 * 2**30), readable_bytes(2048)
('13.4 MiB', '3.0 GiB', '2.0 KiB')
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import InputError
from .io import PlaneShape


def readable_bytes(count: float) -> str:
    """``count`` bytes in the largest unit that keeps it at 1 or more once rounded, one decimal.

    >>> readable_bytes(2**20 - 1), readable_bytes(5 * 2**40), readable_bytes(100)
    ('1.0 MiB', '5.0 TiB', '100 bytes')
    """
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if round(count / size, 1) >= 1:
            return f"{count / size:.1f} {unit}"
    return f"{count:.0f} bytes"


def available_memory_bytes() -> int:
    """Memory the system can give this process now (MemAvailable on Linux)."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 2**62  # unknown: do not refuse


def decoded_bytes(shape: PlaneShape, dtype: np.dtype, float_copies: int = 3) -> int:
    """Bytes of one decoded plane plus ``float_copies`` float32 copies of it (normalisation)."""
    pixels = shape.height * shape.width * shape.channels
    return pixels * (np.dtype(dtype).itemsize + 4 * float_copies)


def fits_in_memory(shape: PlaneShape, dtype: np.dtype, *, float_copies: int = 3) -> bool:
    """Whether :func:`check_fits_in_memory` would let it be read."""
    return decoded_bytes(shape, dtype, float_copies) <= 0.8 * available_memory_bytes()


def check_fits_in_memory(shape: PlaneShape, dtype: np.dtype, path: str | Path, *, float_copies: int = 3,
                         fix: str = "crop or downscale the image") -> None:
    """Raise :class:`InputError` if one plane, decoded and normalised, would not fit in free memory."""
    needed = decoded_bytes(shape, dtype, float_copies)
    free = available_memory_bytes()
    if needed > 0.8 * free:
        planes = f"{shape.count} planes of " if shape.count > 1 else ""
        raise InputError(
            f"image is {planes}{shape.height}x{shape.width}x{shape.channels} ({np.dtype(dtype).name}); decoded and "
            f"normalised it needs about {readable_bytes(needed)}, and {readable_bytes(free)} of memory is free",
            path=path,
            fix=fix,
        )
