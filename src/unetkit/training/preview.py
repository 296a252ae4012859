"""A picture of what the network sees: a grid of augmented training patches with their masks.

``unetkit train --save-augmentations grid.png`` writes it and exits, so that users can
check their augmentation before spending hours on it.
"""

from __future__ import annotations

from pathlib import Path

from ..data.io import ensure_can_write, write_image
from ..data.sampling import PatchSampler
from ..visualize import grid, overlay
from .config import TrainConfig


def save_augmentation_preview(config: TrainConfig, path: Path, count: int = 16, overwrite: bool = False) -> None:
    """Write ``count`` augmented patches (mask overlaid) of the first training step as a PNG."""
    from .setup import data_options_for, load_samples, sampling_options_of

    ensure_can_write(path, overwrite, fix="choose another file name for --save-augmentations, or delete this one")
    train_samples, _ = load_samples(config, data_options_for(config), report=lambda text: None)
    sampler = PatchSampler(
        train_samples,
        sampling_options_of(config),
        seed=config.seed,
    )
    images, masks = sampler.batch(epoch=0, step=0, indices=range(count))
    pictures = [overlay(image.numpy(), mask.numpy()) for image, mask in zip(images, masks)]
    write_image(path, grid(pictures), overwrite=overwrite)
