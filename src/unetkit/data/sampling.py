"""Random training patches: foreground-aware, augmented, and a pure function of their seed.

Patch ``index`` of step ``step`` in epoch ``epoch`` is drawn from
``numpy.random.default_rng([seed, epoch, step, index])``. Nothing else influences it:
not the worker, not the process, not what was drawn before. Hence

- resume is exact (the data order is recomputed, not restored);
- under DDP, rank ``r`` with batch ``B`` takes indices ``r*B .. r*B+B-1`` of the global
  batch, so 2 processes with batch B see the same patches as 1 process with batch 2B.

Images smaller than the patch are mirrored up to the patch size once, at the start.

>>> import numpy as np
>>> from unetkit.data.dataset import Sample
>>> data = [Sample("a", np.random.rand(1, 40, 30).astype(np.float32), np.ones((40, 30), np.uint8))]
>>> sampler = PatchSampler(data, SamplingOptions(patch_size=32), seed=0)
>>> images, masks = sampler.batch(epoch=0, step=0, indices=range(2))
>>> tuple(images.shape), tuple(masks.shape)
((2, 1, 32, 32), (2, 32, 32))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch

from ..errors import ConfigError
from ..options import to_dict
from .augment import AugmentOptions, augment_intensity, draw_geometry, extract_patch_from
from .dataset import Sample
from .jitter import renormalise
from .sources import InMemorySource, PatchSource


@dataclass(frozen=True)
class SamplingOptions:
    patch_size: int = 256
    foreground_fraction: float = 0.33  # share of patches centred on a foreground pixel
    augment: AugmentOptions = field(default_factory=AugmentOptions)
    normalization_jitter: float = 0.0  # share of patches renormalised by other percentiles (jitter.py)
    ignore_index: int | None = None  # mask value that is not foreground: no patch is centred on it

    def __post_init__(self) -> None:
        if self.patch_size < 2:
            raise ConfigError(f"patch size must be at least 2, got {self.patch_size}")
        if not 0.0 <= self.foreground_fraction <= 1.0:
            raise ConfigError(f"foreground fraction must be in [0, 1], got {self.foreground_fraction}")
        if not 0.0 <= self.normalization_jitter <= 1.0:
            raise ConfigError(f"normalisation jitter must be in [0, 1], got {self.normalization_jitter}")

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)


Encoder = Callable[[np.ndarray], tuple[np.ndarray, ...]]


class PatchSampler:
    """Draws augmented (image, targets...) patches from samples in memory or from
    :class:`~unetkit.data.sources.PatchSource` s (files read window by window).

    ``encode`` turns each augmented mask patch into the task's training targets (the mask
    itself by default; an instance task's boundary classes or distance map, say), so that
    this work happens where batches are prepared, off the training step. Images smaller than
    the patch are extended by mirroring.
    """

    def __init__(self, samples: Sequence[Sample | PatchSource], options: SamplingOptions, seed: int,
                 encode: Encoder | None = None):
        if not samples:
            raise ConfigError("no training samples")
        self.options = options
        self.seed = seed
        self.encode = encode
        self.sources = [InMemorySource(s, options.ignore_index) if isinstance(s, Sample) else s for s in samples]
        areas = np.array([s.height * s.width for s in self.sources], dtype=np.float64)
        self.image_weights = areas / areas.sum()

    def patch(self, epoch: int, step: int, index: int) -> tuple[torch.Tensor, ...]:
        """Patch ``index`` of the global batch of (epoch, step): the image and its targets."""
        rng = np.random.default_rng([self.seed, epoch, step, index])
        size = self.options.patch_size
        source = self.sources[int(rng.choice(len(self.sources), p=self.image_weights))]
        span_h, span_w = max(source.height, size), max(source.width, size)
        centre = source.foreground_centre(rng) if rng.random() < self.options.foreground_fraction else None
        if centre is not None:
            top = int(np.clip(centre[0] - size // 2, 0, span_h - size))
            left = int(np.clip(centre[1] - size // 2, 0, span_w - size))
        else:
            top = int(rng.integers(0, span_h - size + 1))
            left = int(rng.integers(0, span_w - size + 1))
        plan = draw_geometry(rng, self.options.augment, size)
        image_patch, mask_patch = extract_patch_from(source.window, top, left, size, plan)
        if self.options.normalization_jitter and rng.random() < self.options.normalization_jitter:
            image_patch = renormalise(image_patch, source.quantiles, rng)
        image_patch = augment_intensity(image_patch, rng, self.options.augment)
        if self.encode is None:
            return image_patch, mask_patch
        return (image_patch, *(torch.from_numpy(np.ascontiguousarray(t)) for t in self.encode(mask_patch.numpy())))

    def batch(self, epoch: int, step: int, indices: Iterable[int]) -> tuple[torch.Tensor, ...]:
        """Stacked patches: images (B, C, P, P) float32, then each target (B, P, P): masks and
        other class maps as int64, maps of values (distances, weights) as float32."""
        patches = [self.patch(epoch, step, i) for i in indices]
        stacked = [torch.stack([p[k] for p in patches]).contiguous() for k in range(len(patches[0]))]
        return tuple(t if t.is_floating_point() else t.long() for t in stacked)
