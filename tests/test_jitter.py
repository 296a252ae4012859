"""The normalisation jitter: patches as other percentiles of their image would normalise them."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import torch

from unetkit import TrainConfig
from unetkit.data.dataset import DataOptions, Sample
from unetkit.data.jitter import LEVELS, LOW_LEVELS, quantile_table, renormalise
from unetkit.data.normalize import Normalization
from unetkit.data.sampling import PatchSampler, SamplingOptions
from unetkit.data.sources import InMemorySource, scan_file_sources
from unetkit.errors import ConfigError
from unetkit.training.setup import sampling_options_of

from helpers import disks


def normalised_disks(seed: int = 0, size: tuple[int, int] = (96, 120)) -> Sample:
    image, mask = disks(size, seed, count=12)
    return Sample("a", Normalization().apply(image[None].astype(np.float32)), mask)


def test_a_renormalised_image_maps_one_of_its_low_levels_to_0_and_keeps_1_where_it_was():
    rng = np.random.default_rng(1)
    image = rng.gamma(2.0, 1.0, size=(1, 200, 200)).astype(np.float32) - 0.5  # skewed: each level its own value
    table = quantile_table(image.reshape(1, -1))
    assert np.all(np.diff(table[0]) > 0)
    chosen = set()
    for seed in range(30):
        out = renormalise(torch.from_numpy(image), table, np.random.default_rng(seed)).numpy()
        at_levels = np.percentile(out, LOW_LEVELS)
        zero = [level for level, value in zip(LOW_LEVELS, at_levels) if abs(value) < 1e-4]
        assert len(zero) == 1, (seed, at_levels)
        chosen.add(zero[0])
        one = np.abs(image - 1.0) < 1e-3
        assert np.allclose(out[one], 1.0, atol=1e-2)  # the normalisation's own upper bound stays at 1
    assert chosen == set(LOW_LEVELS)  # drawn, every one of them


def test_bright_objects_on_a_dark_background_are_left_nearly_as_they_were():
    sample = normalised_disks()
    table = InMemorySource(sample).quantiles
    changes = []
    for seed in range(10):
        out = renormalise(torch.from_numpy(sample.image), table, np.random.default_rng(seed)).numpy()
        changes.append(np.abs(out - sample.image).max())
    assert max(changes) < 0.1 * np.ptp(sample.image) and max(changes) > 1e-3  # changed, a little


def test_an_image_mostly_at_its_bright_end_is_never_blown_up():
    image = np.full((1, 100, 100), 255.0, np.float32)  # a saturated bright-field background ...
    image[:, :3] = 40.0  # ... with 3 % dark objects: the 5th percentile is the upper bound itself
    normalised = Normalization().apply(image)
    table = quantile_table(normalised.reshape(1, -1))
    for seed in range(30):
        out = renormalise(torch.from_numpy(normalised), table, np.random.default_rng(seed)).numpy()
        assert np.abs(out).max() <= 10 * np.abs(normalised).max()


def test_about_the_given_share_of_patches_is_jittered_with_one_level_for_every_channel():
    image, mask = disks((96, 120), 0, count=12)
    two_channels = np.stack([image, 255 - image]).astype(np.float32)  # the second dark on bright
    sample = Sample("a", Normalization().apply(two_channels), mask)
    table = InMemorySource(sample).quantiles
    plain = PatchSampler([sample], SamplingOptions(48, augment=_flips()), seed=4)
    jittered = PatchSampler([sample], SamplingOptions(48, augment=_flips(), normalization_jitter=0.5), seed=4)
    changed = 0
    for index in range(120):
        a, b = plain.patch(0, 0, index)[0].numpy(), jittered.patch(0, 0, index)[0].numpy()
        if np.array_equal(a, b):
            continue
        changed += 1
        levels = []
        for channel in range(2):
            slope, offset = np.polyfit(a[channel].ravel(), b[channel].ravel(), 1)
            levels.append(int(np.argmin(np.abs(table[channel, :len(LOW_LEVELS)] + offset / slope))))
        assert levels[0] == levels[1]  # the same percentile, channel by channel
    # half the patches draw a level; one level in six is the 1st, the normalisation's own
    assert 0.5 * 5 / 6 * 120 * 0.6 < changed < 0.5 * 5 / 6 * 120 * 1.4


def test_the_table_of_a_large_image_is_taken_from_a_sample_and_stays_close():
    image = np.random.default_rng(2).normal(size=(2, 1200, 1000)).astype(np.float32)
    image[1] *= 3
    table = quantile_table(image.reshape(2, -1))
    exact = np.percentile(image.reshape(2, -1), LEVELS, axis=1).T
    spread = image.reshape(2, -1).std(axis=1)[:, None]
    assert table.shape == (2, len(LEVELS)) and np.all(np.abs(table - exact) < 0.05 * spread)
    assert table[1, -1] > 2.5 * table[0, -1]  # per channel


def test_jittered_patches_are_the_plain_ones_under_an_affine_map_and_no_jitter_draws_nothing():
    sample = normalised_disks()
    plain = PatchSampler([sample], SamplingOptions(48, augment=_flips()), seed=4)
    jittered = PatchSampler([sample], SamplingOptions(48, augment=_flips(), normalization_jitter=1.0), seed=4)
    unset = PatchSampler([sample], SamplingOptions(48, augment=_flips(), normalization_jitter=0.0), seed=4)
    table = InMemorySource(sample).quantiles
    changed = 0
    for index in range(6):
        (a, mask_a), (b, mask_b) = plain.patch(0, 0, index), jittered.patch(0, 0, index)
        assert torch.equal(mask_a, mask_b) and all(torch.equal(x, y) for x, y in zip(plain.patch(0, 0, index),
                                                                                     unset.patch(0, 0, index)))
        slope, offset = np.polyfit(a.numpy().ravel(), b.numpy().ravel(), 1)
        assert np.allclose(a.numpy() * slope + offset, b.numpy(), atol=1e-4)
        zero_at = -offset / slope  # the plain value that became 0: one of the image's low levels
        assert np.isclose(table[0, :len(LOW_LEVELS)], zero_at, atol=1e-4).any()
        changed += not np.isclose(slope, 1.0)
    assert changed >= 4


def test_file_sources_hold_the_same_table_as_the_decoded_image(tmp_path):
    image, mask = disks((90, 110), seed=5, count=10)
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    tifffile.imwrite(tmp_path / "images" / "a.tif", image)
    tifffile.imwrite(tmp_path / "masks" / "a.tif", mask)
    [source] = scan_file_sources(tmp_path, DataOptions())
    decoded = InMemorySource(Sample("a", Normalization().apply(image[None].astype(np.float32)), mask))
    assert np.allclose(source.quantiles, decoded.quantiles, atol=1e-5)


def test_the_jitter_option_is_checked_and_reaches_the_sampler_only_for_the_percentile_normalisation():
    assert sampling_options_of(TrainConfig(out="x", patch_size=32, normalization_jitter=0.4)).normalization_jitter == 0.4
    with pytest.raises(ConfigError, match="normalisation jitter must be a share"):
        TrainConfig(out="x", normalization_jitter=1.5)
    with pytest.raises(ConfigError, match="no effect with --normalization minmax"):
        TrainConfig(out="x", normalization="minmax", normalization_jitter=0.4)
    for mode in ("minmax", "scale", "none"):
        assert sampling_options_of(TrainConfig(out="x", patch_size=32, normalization=mode)).normalization_jitter == 0.0
        assert TrainConfig(out="x", normalization=mode).to_dict()["normalization_jitter"] == 0.0  # what it trains with
    with pytest.raises(ConfigError, match="normalisation jitter must be in"):
        SamplingOptions(32, normalization_jitter=-0.1)


def _flips():
    from unetkit.data.augment import AUGMENT_PRESETS

    return AUGMENT_PRESETS["flips"]


def test_a_run_saved_before_the_jitter_existed_resumes_without_it(tmp_path):
    import json

    from unetkit.training.state import stored_config

    values = TrainConfig(out=str(tmp_path / "run")).to_dict()
    del values["normalization_jitter"]  # as unetkit wrote config.json before --normalization-jitter
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(json.dumps(values))
    assert stored_config(tmp_path / "run").normalization_jitter == 0.0  # whatever the default is now


def test_the_jitter_default_follows_the_task():
    # pixels jitter every patch, objects half of them (TASK_DEFAULTS); a given share stays
    pixels, objects = TrainConfig(out="x"), TrainConfig(out="x", task="instances")
    assert (pixels.normalization_jitter, objects.normalization_jitter) == (1.0, 0.5)
    assert pixels.replace(task="instances").normalization_jitter == 0.5
    assert TrainConfig(out="x", normalization_jitter=0.2).replace(task="instances").normalization_jitter == 0.2
    assert sampling_options_of(pixels).normalization_jitter == 1.0


def test_a_run_of_another_normalisation_saved_with_the_jitters_default_resumes(tmp_path):
    import json

    from unetkit.training.state import stored_config

    values = TrainConfig(out=str(tmp_path / "run"), normalization="minmax").to_dict()
    values["normalization_jitter"] = 0.5  # what config.json recorded for these modes on 2026-12-05
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(json.dumps(values))
    assert stored_config(tmp_path / "run").normalization_jitter == 0.0  # as it trained
