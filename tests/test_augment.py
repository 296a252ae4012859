"""Every augmentation keeps image and mask aligned; intensity changes leave masks alone."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from unetkit.data.augment import (
    AUGMENT_PRESETS,
    AugmentOptions,
    GeometryPlan,
    augment_intensity,
    draw_geometry,
    extract_patch,
)

from helpers import disks

GEOMETRIC = {
    "flips and turns": AugmentOptions(p_flip=0.5, p_rotate90=1.0),
    "rotation and scaling": AugmentOptions(p_flip=0.0, p_rotate90=0.0, p_affine=1.0),
    "elastic": AugmentOptions(p_flip=0.0, p_rotate90=0.0, p_elastic=1.0),
    "all geometry": AugmentOptions(p_affine=1.0, p_elastic=1.0),
}


@pytest.fixture(scope="module")
def image_and_mask() -> tuple[torch.Tensor, torch.Tensor]:
    image, mask = disks((220, 260), seed=3, count=40)
    smooth = torch.from_numpy(mask.astype(np.float32))[None]  # the image is the mask, as intensities
    return smooth, torch.from_numpy(mask.astype(np.int64))


@pytest.mark.parametrize("name", list(GEOMETRIC))
def test_geometric_augmentation_keeps_the_mask_on_the_image(image_and_mask, name):
    image, mask = image_and_mask
    for seed in range(15):
        plan = draw_geometry(np.random.default_rng(seed), GEOMETRIC[name], 96)
        image_patch, mask_patch = extract_patch(image, mask, 60, 80, 96, plan)
        derived = (image_patch[0] > 0.5).long()  # the relation mask == (image > 0.5) must survive
        agreement = (derived == mask_patch).float().mean().item()
        threshold = 1.0 if plan.is_lattice else 0.985  # bilinear vs nearest differ only on edges
        assert agreement >= threshold, (name, seed, agreement)
        assert mask_patch.float().mean() > 0  # the patch holds objects: the check is not empty


def test_lattice_transforms_are_exact_and_equal_to_resampling(image_and_mask):
    image, mask = image_and_mask
    for seed in range(12):
        plan = draw_geometry(np.random.default_rng(seed), AUGMENT_PRESETS["flips"], 32)
        resampled = GeometryPlan(plan.matrix, np.zeros((2, 32, 32), np.float32))  # forces grid_sample
        fast = extract_patch(image, mask, 5, 9, 32, plan)
        slow = extract_patch(image, mask, 5, 9, 32, resampled)
        assert torch.allclose(fast[0], slow[0], atol=1e-5) and torch.equal(fast[1], slow[1])


def test_intensity_augmentation_changes_the_image_only():
    options = dataclasses.replace(AUGMENT_PRESETS["strong"], p_brightness=1, p_contrast=1, p_gamma=1, p_noise=1, p_blur=1)
    patch = torch.rand(1, 32, 32)
    changed = augment_intensity(patch.clone(), np.random.default_rng(0), options)
    assert changed.shape == patch.shape and not torch.allclose(changed, patch)
    same = augment_intensity(patch.clone(), np.random.default_rng(0), AUGMENT_PRESETS["none"])
    assert torch.equal(same, patch)


def test_probabilities_outside_0_1_are_rejected():
    from unetkit.errors import ConfigError

    with pytest.raises(ConfigError, match="p_elastic"):
        AugmentOptions(p_elastic=1.5)


def test_save_augmentations_writes_a_grid_of_overlaid_patches(tmp_path):
    from PIL import Image

    from unetkit.cli import main
    from helpers import write_dataset

    data = write_dataset(tmp_path / "d", count=2)
    code = main(["train", str(data), "--out", str(tmp_path / "run"), "--patch-size", "32",
                 "--augment", "strong", "--save-augmentations", str(tmp_path / "grid.png")])
    assert code == 0 and not (tmp_path / "run").exists()
    assert main(["train", str(data), "--patch-size", "32", "--save-augmentations", str(tmp_path / "b.png")]) == 0
    assert (tmp_path / "b.png").stat().st_size > 1000  # no --out needed: no run is written
    with Image.open(tmp_path / "grid.png") as picture:
        pixels = np.asarray(picture)
    assert pixels.shape == (4 * 32 + 3 * 2, 4 * 32 + 3 * 2, 3)
    red_tint = (pixels[..., 0].astype(int) - pixels[..., 1].astype(int)) > 40
    assert red_tint.any()  # the mask overlay is there
