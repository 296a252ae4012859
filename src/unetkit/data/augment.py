"""Augmentation, drawn per patch from a seeded generator and applied jointly to image and mask.

Geometry (flips, 90-degree rotations, small rotation and scaling, and the paper's elastic
deformation: random displacements on a coarse grid, smoothly interpolated) is composed into
one sampling grid and resampled once, bilinear for the image and nearest for the mask,
straight from the whole image with mirrored borders. That is why it is written here
rather than taken from kornia: kornia resamples once per transform and, measured on this
CPU, its elastic + affine cost about 6x the single composed resampling.

Intensity changes (brightness, contrast, gamma, Gaussian noise and blur) touch the image only.

Every random number comes from the ``numpy.random.Generator`` passed in, so a patch is a
pure function of its seed: the basis of exact resume and of DDP equivalence.

>>> import numpy as np
>>> plan = draw_geometry(np.random.default_rng(0), AUGMENT_PRESETS["none"], 8)
>>> plan.is_identity
True
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable, Literal, get_args

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..options import from_dict, to_dict


@dataclass(frozen=True)
class AugmentOptions:
    """Probabilities (``p_*``) and ranges of each augmentation."""

    p_flip: float = 0.5  # for each axis
    p_rotate90: float = 0.5
    p_affine: float = 0.0
    max_rotation_degrees: float = 15.0
    scale_range: tuple[float, float] = (0.85, 1.15)
    p_elastic: float = 0.0
    elastic_grid: int = 3
    elastic_sigma: float = 10.0  # pixels, standard deviation of the grid displacements
    p_brightness: float = 0.0
    brightness_shift: float = 0.15  # in units of the patch's intensity range
    p_contrast: float = 0.0
    contrast_range: tuple[float, float] = (0.7, 1.4)
    p_gamma: float = 0.0
    gamma_range: tuple[float, float] = (0.7, 1.5)
    p_noise: float = 0.0
    noise_std: float = 0.05  # in units of the patch's intensity range
    p_blur: float = 0.0
    blur_sigma_range: tuple[float, float] = (0.5, 1.5)

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            if field.name.startswith("p_"):
                value = getattr(self, field.name)
                if not 0.0 <= value <= 1.0:
                    raise ConfigError(f"augmentation probability {field.name} must be in [0, 1], got {value}")

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> AugmentOptions:
        return from_dict(cls, values)


_INTENSITY = dict(p_brightness=0.3, p_contrast=0.3, p_gamma=0.3, p_noise=0.2, p_blur=0.2)
AugmentName = Literal["none", "flips", "paper", "moderate", "strong", "gamma-noise", "strong-light"]
AUGMENT_PRESETS: dict[str, AugmentOptions] = {
    "none": AugmentOptions(p_flip=0.0, p_rotate90=0.0),
    "flips": AugmentOptions(),
    # Ronneberger et al. 2015: shifts, rotations, elastic deformation on a 3x3 grid, 10 px.
    "paper": AugmentOptions(p_affine=0.5, p_elastic=0.5, elastic_grid=3, elastic_sigma=10.0),
    # Geometry plus intensity changes that keep dim objects visible (no noise, no blur).
    "moderate": AugmentOptions(p_affine=0.3, p_elastic=0.3, p_brightness=0.3, p_contrast=0.3, p_gamma=0.3),
    "strong": AugmentOptions(p_affine=0.3, p_elastic=0.3, **_INTENSITY),
    # Geometry, gamma, noise and blur; no brightness or contrast shifts.
    "gamma-noise": AugmentOptions(p_affine=0.3, p_elastic=0.3, p_gamma=0.3, p_noise=0.2, p_blur=0.2),
    # All of "strong" at half the ranges.
    "strong-light": AugmentOptions(
        p_affine=0.3, p_elastic=0.3, **_INTENSITY, brightness_shift=0.075, contrast_range=(0.85, 1.2),
        gamma_range=(0.8, 1.25), noise_std=0.025, blur_sigma_range=(0.5, 1.0),
    ),
}
assert set(AUGMENT_PRESETS) == set(get_args(AugmentName)), "AugmentName must list AUGMENT_PRESETS"
DEFAULT_AUGMENT: AugmentName = "gamma-noise"


def augment_preset(name: str) -> AugmentOptions:
    if name not in AUGMENT_PRESETS:
        raise ConfigError(f"unknown augmentation preset {name!r}", fix=f"choose one of {sorted(AUGMENT_PRESETS)}")
    return AUGMENT_PRESETS[name]


@dataclass(frozen=True)
class GeometryPlan:
    """Where each output pixel of a patch comes from, relative to the patch centre."""

    matrix: np.ndarray  # 2x2, maps output (row, col) offsets to source offsets
    displacement: np.ndarray | None  # (2, P, P) elastic field in pixels, or None

    @property
    def is_identity(self) -> bool:
        return self.displacement is None and np.array_equal(self.matrix, np.eye(2))

    @property
    def is_lattice(self) -> bool:
        """Flips and 90-degree turns only: exact by array slicing, no resampling."""
        return self.displacement is None and np.all(np.isin(self.matrix, (-1.0, 0.0, 1.0)))


def draw_geometry(rng: np.random.Generator, options: AugmentOptions, patch_size: int) -> GeometryPlan:
    """Draw one patch's geometric transform."""
    matrix = np.eye(2)
    if rng.random() < options.p_flip:
        matrix = np.diag([-1.0, 1.0]) @ matrix
    if rng.random() < options.p_flip:
        matrix = np.diag([1.0, -1.0]) @ matrix
    if rng.random() < options.p_rotate90:
        turns = int(rng.integers(1, 4))
        matrix = np.linalg.matrix_power(np.array([[0.0, -1.0], [1.0, 0.0]]), turns) @ matrix
    if rng.random() < options.p_affine:
        angle = math.radians(rng.uniform(-options.max_rotation_degrees, options.max_rotation_degrees))
        scale = rng.uniform(*options.scale_range)
        rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        matrix = rotation @ matrix / scale
    displacement = None
    if rng.random() < options.p_elastic:
        coarse = rng.normal(0.0, options.elastic_sigma, size=(1, 2, options.elastic_grid, options.elastic_grid))
        displacement = F.interpolate(
            torch.from_numpy(coarse).float(), size=(patch_size, patch_size), mode="bicubic", align_corners=True
        )[0].numpy()
    return GeometryPlan(np.round(matrix, 12), displacement)


WindowReader = Callable[[int, int, int, int], tuple[torch.Tensor, torch.Tensor]]


def extract_patch(
    image: torch.Tensor, mask: torch.Tensor, top: int, left: int, patch_size: int, plan: GeometryPlan
) -> tuple[torch.Tensor, torch.Tensor]:
    """The patch whose unaugmented window starts at (top, left), transformed by ``plan``.

    ``image`` is (C, H, W) float, ``mask`` (H, W) integer; the window must lie inside.
    """
    from .sources import mirrored_window

    def read(top: int, bottom: int, left: int, right: int) -> tuple[torch.Tensor, torch.Tensor]:
        return mirrored_window(image, top, bottom, left, right), mirrored_window(mask, top, bottom, left, right)

    return extract_patch_from(read, top, left, patch_size, plan)


def extract_patch_from(
    read: WindowReader, top: int, left: int, patch_size: int, plan: GeometryPlan
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`extract_patch` from a reader of windows ``read(top, bottom, left, right)`` that
    gives the image ``(C, h, w)`` and mask ``(h, w)`` there, mirrored beyond the image's edges:
    only the region the transformed patch draws from is read (an image read from its file,
    region by region, say)."""
    if plan.is_lattice:
        image_patch, mask_patch = read(top, top + patch_size, left, left + patch_size)
        return _apply_lattice(image_patch, plan.matrix), _apply_lattice(mask_patch, plan.matrix)
    rows, cols = _source_coordinates(top, left, patch_size, plan)
    row0, col0 = int(math.floor(float(rows.min()))) - 1, int(math.floor(float(cols.min()))) - 1
    row1, col1 = int(math.ceil(float(rows.max()))) + 2, int(math.ceil(float(cols.max()))) + 2
    image, mask = read(row0, row1, col0, col1)
    height, width = row1 - row0, col1 - col0
    grid = torch.stack([(2 * (cols - col0) + 1) / width - 1, (2 * (rows - row0) + 1) / height - 1], dim=-1)[None]
    image_patch = F.grid_sample(image[None], grid, mode="bilinear", padding_mode="border", align_corners=False)[0]
    mask_patch = F.grid_sample(
        mask[None, None].float(), grid, mode="nearest", padding_mode="border", align_corners=False
    )[0, 0].to(mask.dtype)
    return image_patch, mask_patch


def _apply_lattice(patch: torch.Tensor, matrix: np.ndarray) -> torch.Tensor:
    """Apply a matrix of flips and 90-degree turns to the last two axes, exactly."""
    rows, cols = patch.ndim - 2, patch.ndim - 1
    if matrix[0, 0] == 0:  # a transpose is part of the map
        patch = patch.transpose(rows, cols)
        matrix = matrix[::-1, :]
    flip_axes = [axis for axis, sign in ((rows, matrix[0, 0]), (cols, matrix[1, 1])) if sign < 0]
    return patch.flip(flip_axes) if flip_axes else patch


def _source_coordinates(top: int, left: int, patch_size: int, plan: GeometryPlan) -> tuple[torch.Tensor, torch.Tensor]:
    """Where each output pixel of the patch comes from, in image coordinates (rows, columns)."""
    offsets = torch.arange(patch_size, dtype=torch.float32) - (patch_size - 1) / 2
    rows, cols = torch.meshgrid(offsets, offsets, indexing="ij")
    matrix = torch.from_numpy(plan.matrix).float()
    source_rows = matrix[0, 0] * rows + matrix[0, 1] * cols
    source_cols = matrix[1, 0] * rows + matrix[1, 1] * cols
    if plan.displacement is not None:
        field = torch.from_numpy(plan.displacement)
        source_rows = source_rows + field[0]
        source_cols = source_cols + field[1]
    return source_rows + top + (patch_size - 1) / 2, source_cols + left + (patch_size - 1) / 2


def augment_intensity(patch: torch.Tensor, rng: np.random.Generator, options: AugmentOptions) -> torch.Tensor:
    """Brightness, contrast, gamma, noise and blur on a (C, H, W) image patch."""
    low, high = float(patch.min()), float(patch.max())
    span = max(high - low, 1e-6)
    if rng.random() < options.p_gamma:
        gamma = rng.uniform(*options.gamma_range)
        patch = ((patch - low) / span).clamp(0, 1) ** gamma * span + low
    if rng.random() < options.p_contrast:
        factor = rng.uniform(*options.contrast_range)
        mean = patch.mean()
        patch = (patch - mean) * factor + mean
    if rng.random() < options.p_brightness:
        patch = patch + rng.uniform(-options.brightness_shift, options.brightness_shift) * span
    if rng.random() < options.p_blur:
        patch = gaussian_blur(patch, rng.uniform(*options.blur_sigma_range))
    if rng.random() < options.p_noise:
        noise = rng.standard_normal(patch.shape).astype(np.float32)
        patch = patch + torch.from_numpy(noise) * (options.noise_std * span)
    return patch


def gaussian_blur(patch: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of a (C, H, W) tensor, mirrored at the borders."""
    radius = max(1, int(math.ceil(3 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    channels = patch.shape[0]
    batch = patch[None]
    mode = "reflect" if min(patch.shape[-2:]) > radius else "replicate"
    batch = F.pad(batch, (radius, radius, radius, radius), mode=mode)
    batch = F.conv2d(batch, kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1), groups=channels)
    batch = F.conv2d(batch, kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1), groups=channels)
    return batch[0]
