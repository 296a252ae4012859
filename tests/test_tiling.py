"""Overlap-tile geometry, blending, mirroring, agreement with whole-image prediction, TTA."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from unetkit.model import UNet
from unetkit.tiling import (
    TileOptions,
    blend_weights,
    mirror_indices,
    plan_tiles,
    predict_tiled,
    predict_whole,
    tile_starts,
)


@settings(max_examples=300, deadline=None)
@given(size=st.integers(1, 3000), tile=st.integers(1, 600), overlap_fraction=st.floats(0, 0.9),
       border=st.integers(0, 50), align=st.sampled_from([1, 2, 16]))
def test_tiles_cover_every_pixel_aligned_with_steps_no_longer_than_asked(size, tile, overlap_fraction, border, align):
    tile = max(tile, align)
    step = max(1, int(tile * (1 - overlap_fraction)))
    starts = tile_starts(size, tile, step, border, align)
    covered = np.zeros(size, bool)
    for start in starts:
        covered[max(start, 0) : max(min(start + tile, size), 0)] = True
    assert covered.all()
    assert all(start % align == 0 for start in starts)
    assert -border - align < starts[0] <= -border
    assert all(0 < b - a <= min(tile, step + 2 * align) for a, b in zip(starts, starts[1:]))
    if align == 1 and size + 2 * border > tile:
        assert starts[-1] + tile == size + border


def test_image_smaller_than_one_tile_is_one_tile():
    model = UNet(depth=3, base_width=2)
    geometry = plan_tiles(model, 5, 7, TileOptions(tile_size=64))
    assert geometry.row_starts == [0] and geometry.col_starts == [0]
    assert (geometry.tile_height, geometry.tile_width) == (8, 8)  # rounded up to 2**(depth-1)


def test_gaussian_weights_peak_in_the_centre_and_never_vanish():
    weights = blend_weights(64, "gaussian")
    assert weights.argmax() in (31, 32) and weights.min() >= 1e-3
    assert np.allclose(weights, weights[::-1])
    assert np.all(blend_weights(10, "uniform") == 1)


def test_mirror_padding_reflects_at_both_borders():
    assert mirror_indices(-3, 0, 5).tolist() == [2, 1, 0]
    assert mirror_indices(5, 8, 5).tolist() == [4, 3, 2]
    assert mirror_indices(-7, 12, 2).min() >= 0 and mirror_indices(-7, 12, 2).max() <= 1


@pytest.fixture(scope="module")
def small_model() -> UNet:
    torch.manual_seed(0)
    return UNet(depth=3, base_width=8).eval()


def test_tiled_prediction_matches_whole_image_prediction_without_seams(small_model):
    image = torch.rand(1, 190, 170)
    whole = predict_whole(small_model, image)
    options = TileOptions(tile_size=64, overlap=0.5)
    tiled = predict_tiled(small_model, image, options)
    assert np.abs(tiled - whole).max() < 5e-3
    geometry = plan_tiles(small_model, 190, 170, options)
    borders = [r for r in geometry.row_starts if r > 0]
    seam_difference = max(np.abs(tiled[:, r - 1 : r + 1] - whole[:, r - 1 : r + 1]).max() for r in borders)
    interior_difference = np.abs(tiled - whole).mean()
    assert seam_difference < 5e-3
    assert interior_difference < 1e-3


def test_one_tile_over_a_whole_image_of_any_size_is_the_whole_image_prediction(small_model):
    # The tiler's window, the predictor's padding and the network's own padding mirror the
    # image the same way (edge repeated), as training patches do: no second rule at the border.
    image = torch.rand(1, 37, 51)  # not a multiple of 4: padded below and to the right
    tiled = predict_tiled(small_model, image, TileOptions(tile_size=64))
    assert np.abs(tiled - predict_whole(small_model, image)).max() < 1e-5
    with torch.no_grad():
        direct = torch.sigmoid(small_model(image[None]))[0].numpy()
        padded = torch.cat([image, image.flip(-2)[:, :3]], dim=-2)  # rows 36, 35, 34 below row 36
        padded = torch.cat([padded, padded[:, :, -1:]], dim=-1)  # column 50 repeated
        by_hand = torch.sigmoid(small_model(padded[None]))[0, :, :37, :51].numpy()
    assert np.abs(direct - tiled).max() < 1e-5 and np.abs(by_hand - tiled).max() < 1e-5


def whole_valid_prediction(model: UNet, image: torch.Tensor, shift: int = 0) -> np.ndarray:
    """The valid model's output for the whole image in one pass: the image mirrored by the
    halo on every side (and up to a size the network takes), output cropped to the image."""
    rule = model.size_rule
    height, width = image.shape[-2:]
    top = -rule.halo + shift
    rows = mirror_indices(top, top + rule.input_size_for(height), height)
    cols = mirror_indices(-rule.halo, -rule.halo + rule.input_size_for(width), width)
    padded = image[:, torch.from_numpy(rows)[:, None], torch.from_numpy(cols)[None, :]]
    with torch.no_grad():
        return torch.sigmoid(model(padded[None]))[0, :, :height, :width].numpy()


def test_valid_padding_tiles_carry_exactly_the_context_their_output_needs():
    torch.manual_seed(0)
    model = UNet(depth=3, base_width=4, padding="valid").eval()
    image = torch.rand(1, 77, 101)
    tiled = predict_tiled(model, image, TileOptions(tile_size=32))
    assert tiled.shape == (1, 77, 101) and tiled.std() > 0
    # A valid network computes each output pixel from its context alone, so every tile that
    # covers a pixel computes the same value: tiled and whole-image outputs agree exactly.
    assert np.abs(tiled - whole_valid_prediction(model, image)).max() < 1e-5
    # ... and the check has teeth: context misplaced by one pixel is far off.
    assert np.abs(tiled - whole_valid_prediction(model, image, shift=1)).max() > 1e-3


def test_tta_is_invariant_on_a_symmetric_input(small_model):
    quadrant = torch.rand(1, 32, 32)
    half = torch.cat([quadrant, quadrant.flip(-1)], dim=-1)
    symmetric = torch.cat([half, half.flip(-2)], dim=-2)
    symmetric = (symmetric + symmetric.transpose(-1, -2)) / 2  # also symmetric under transposition
    with_tta = predict_tiled(small_model, symmetric, TileOptions(tile_size=64, tta=True))
    assert np.allclose(with_tta, with_tta[:, ::-1, :], atol=1e-5)
    assert np.allclose(with_tta, np.swapaxes(with_tta, 1, 2), atol=1e-5)
    without = predict_tiled(small_model, symmetric, TileOptions(tile_size=64))
    assert not np.allclose(without, without[:, ::-1, :], atol=1e-5)  # the network alone is not


def test_output_can_be_a_memory_mapped_tiff(tmp_path, small_model):
    import tifffile

    from unetkit.tiling import open_probability_memmap

    image = torch.rand(1, 100, 90)
    output = open_probability_memmap(tmp_path / "p.tif", (1, 100, 90))
    predict_tiled(small_model, image, TileOptions(tile_size=32), output=output)
    output.flush()
    del output
    on_disk = tifffile.imread(tmp_path / "p.tif")
    assert np.allclose(on_disk, predict_tiled(small_model, image, TileOptions(tile_size=32)))


def test_device_holds_only_one_batch_of_tiles(small_model):
    seen: list[tuple[int, ...]] = []
    handle = small_model.inc.register_forward_hook(lambda module, args, out: seen.append(tuple(args[0].shape)))
    try:
        predict_tiled(small_model, torch.rand(1, 300, 300), TileOptions(tile_size=64, tiles_per_batch=3))
    finally:
        handle.remove()
    assert max(shape[0] for shape in seen) <= 3
    assert all(shape[-2:] == (64, 64) for shape in seen)


def test_a_model_left_in_training_mode_predicts_as_in_eval_mode_and_keeps_its_state():
    # batch norm in training mode would normalise each tile by its own statistics and overwrite the running ones
    torch.manual_seed(0)
    model = UNet(depth=3, base_width=4, batch_norm=True, dropout=0.3)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    image = np.random.default_rng(0).random((1, 100, 140), dtype=np.float32)
    expected = predict_tiled(model.eval(), image, TileOptions(tile_size=64))
    buffers = {name: value.clone() for name, value in model.named_buffers()}
    found = predict_tiled(model.train(), image, TileOptions(tile_size=64))
    assert np.allclose(found, expected, atol=1e-6) and model.training
    assert all(torch.equal(value, buffers[name]) for name, value in model.named_buffers())
    assert np.allclose(predict_tiled(model.double(), image, TileOptions(tile_size=64)), expected, atol=1e-5)
