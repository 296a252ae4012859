"""Shared test helpers: tiny synthetic datasets of bright disks and a tiny model config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

TINY_MODEL = dict(depth=3, base_width=4)


def disks(size: tuple[int, int], seed: int, count: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """A noisy uint8 image of bright disks and its {0, 1} mask."""
    rng = np.random.default_rng(seed)
    height, width = size
    rows, cols = np.mgrid[:height, :width]
    mask = np.zeros(size, np.uint8)
    for _ in range(count):
        r, c = rng.integers(0, height), rng.integers(0, width)
        radius = rng.integers(4, 9)
        mask[(rows - r) ** 2 + (cols - c) ** 2 <= radius**2] = 1
    image = 40 + 150 * mask + rng.normal(0, 12, size)
    return np.clip(image, 0, 255).astype(np.uint8), mask


def write_dataset(
    root: Path, count: int = 4, size: tuple[int, int] = (64, 80), mask_scale: int = 1, seed: int = 0
) -> Path:
    """``root/images/*.png`` and ``root/masks/*.png`` (mask values times ``mask_scale``)."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir(parents=True)
    for index in range(count):
        image, mask = disks(size, seed + index)
        Image.fromarray(image).save(root / "images" / f"img{index}.png")
        Image.fromarray((mask * mask_scale).astype(np.uint8)).save(root / "masks" / f"img{index}.png")
    return root


def write_tiff(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, array, photometric="minisblack")


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes: to show nothing was written or changed."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
