"""The network: reference size, paper geometry, every option, any input size."""

from __future__ import annotations

import pytest
import torch

from unetkit import UNet, count_parameters, load_model, make_checkpoint, preset, save_checkpoint
from unetkit.errors import ConfigError
from unetkit.model import (
    labels_from_logits,
    labels_from_probabilities,
    probabilities_from_logits,
    valid_input_size,
    valid_output_size,
)

OPTIONS = [
    {},
    {"batch_norm": True},
    {"dropout": 0.3},
    {"upsampling": "bilinear"},
    {"num_classes": 3},
    {"in_channels": 3},
    {"depth": 2},
    {"depth": 6},
]


def test_default_is_the_reference_keras_unet_with_7759521_parameters():
    assert count_parameters(UNet()) == 7_759_521
    assert UNet().config == preset("keras-reference")


def test_paper_preset_maps_572_to_388():
    model = UNet(preset("paper-2015")).eval()
    with torch.no_grad():
        out = model(torch.zeros(1, 1, 572, 572))
    assert out.shape == (1, 2, 388, 388)


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default")
def test_forward_and_backward_on_odd_sizes_for_every_option(options):
    torch.manual_seed(0)  # a fixed initialisation: tiny random nets can start with every ReLU dead
    model = UNet(base_width=8, **{"depth": 4, **options})
    x = torch.randn(2, model.config.in_channels, 97, 131, requires_grad=True)
    out = model(x)
    assert out.shape == (2, model.config.num_classes, 97, 131)
    out.square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize("padding", ["same", "valid"])
def test_forward_backward_valid_and_same_padding_with_bilinear(padding):
    model = UNet(base_width=4, depth=3, padding=padding, upsampling="bilinear")
    side = model.input_size_for(40)
    out = model(torch.randn(1, 1, side, side))
    assert out.shape[-1] == model.output_size(side) >= 40


def test_valid_size_helpers_are_inverse():
    for depth in (2, 3, 5):
        for wanted in (1, 17, 100, 388):
            side = valid_input_size(wanted, depth)
            assert valid_output_size(side, depth) >= wanted
            assert valid_output_size(side, depth) - wanted < 2 ** (depth - 1)
    assert (valid_input_size(388, 5) - 388) // 2 == 92  # the paper's context


def test_valid_model_rejects_a_size_it_cannot_take_with_a_hint():
    model = UNet(base_width=2, depth=3, padding="valid")
    with pytest.raises(ValueError, match="valid_input_size"):
        model(torch.zeros(1, 1, 41, 41))


def test_invalid_options_are_rejected_with_a_message():
    with pytest.raises(ConfigError, match="depth must be at least 2"):
        UNet(depth=1)
    with pytest.raises(ConfigError, match="padding"):
        UNet(padding="full")
    with pytest.raises(ConfigError, match="unknown preset"):
        preset("resnet")


def test_save_and_load_round_trip(tmp_path):
    model = UNet(base_width=4, depth=3, num_classes=2, batch_norm=True).eval()
    save_checkpoint(tmp_path / "m.pt", make_checkpoint(model))
    loaded, _ = load_model(tmp_path / "m.pt")
    x = torch.randn(1, 1, 33, 45)
    assert loaded.config == model.config
    assert torch.equal(loaded(x), model(x))


def test_probabilities_and_labels_are_the_same_for_every_caller():
    logits = torch.tensor([[[[-1.0, 0.5]]]])
    assert labels_from_logits(logits).tolist() == [[[0, 1]]]
    multi = torch.tensor([[[[2.0]], [[1.0]], [[3.0]]]])
    probabilities = probabilities_from_logits(multi)
    assert torch.allclose(probabilities.sum(1), torch.ones(1, 1, 1))
    assert labels_from_probabilities(probabilities).item() == 2
