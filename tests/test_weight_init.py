"""How a new network's weights start (weight_init.py) and that training applies it."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from unetkit import TrainConfig
from unetkit.model import UNet
from unetkit.weight_init import initialize_weights, inputs_per_unit


def bottleneck_and_output_scale(model: UNet) -> tuple[float, float]:
    """Standard deviations of the deepest level's activations and of the logits, for unit-variance input."""
    image = torch.randn(2, 1, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        features = model.inc(image)
        for down in model.downs:
            features = down(features)
        return float(features.std()), float(model(image).std())


def test_he_keeps_the_activations_scale_to_the_bottleneck_where_pytorchs_default_shrinks_it():
    torch.manual_seed(0)
    default_bottleneck, default_logits = bottleneck_and_output_scale(initialize_weights(UNet(base_width=8), "pytorch"))
    torch.manual_seed(0)
    he_bottleneck, he_logits = bottleneck_and_output_scale(initialize_weights(UNet(base_width=8), "he"))
    assert default_bottleneck < 0.05 and default_logits < 0.05  # nine conv + ReLU layers, each shrinking
    assert 0.3 < he_bottleneck < 10 and 0.3 < he_logits < 10  # the scale of the unit-variance input


def test_he_draws_each_convolution_at_the_papers_standard_deviation_with_zero_biases():
    torch.manual_seed(0)
    model = initialize_weights(UNet(), "he")  # the reference network: large layers, a tight estimate
    layers = [layer for layer in model.modules() if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d))]
    assert len(layers) == 23  # 18 3x3 convolutions, 4 up-samplings, the head
    for layer in layers:
        expected, weight = math.sqrt(2.0 / inputs_per_unit(layer)), layer.weight.detach()
        if weight.numel() >= 1000:
            assert float(weight.std()) == pytest.approx(expected, rel=0.1)
        assert abs(float(weight.mean())) < 4 * expected / math.sqrt(weight.numel())
        assert torch.count_nonzero(layer.bias) == 0


def test_glorot_draws_as_keras_does_between_pytorchs_default_and_he():
    torch.manual_seed(0)
    model = initialize_weights(UNet(), "glorot")
    second = model.inc.block[2].weight.detach()  # 3x3, 32 to 32 channels: 288 inputs and 288 outputs a unit
    assert float(second.std()) == pytest.approx(math.sqrt(2.0 / (288 + 288)), rel=0.05)
    assert float(second.abs().max()) <= math.sqrt(6.0 / (288 + 288))  # uniform, Keras' glorot_uniform bound
    assert torch.count_nonzero(model.head.bias) == 0
    torch.manual_seed(0)
    _, glorot_logits = bottleneck_and_output_scale(initialize_weights(UNet(base_width=8), "glorot"))
    torch.manual_seed(0)
    _, default_logits = bottleneck_and_output_scale(initialize_weights(UNet(base_width=8), "pytorch"))
    assert default_logits < glorot_logits < 0.3


def test_glorot_with_pytorchs_biases_draws_glorots_weights_and_keeps_the_biases_pytorch_drew_from_the_seed():
    # the laptop's 3-minute recipe: glorot's zero biases cost BBBC007 0.003, PyTorch's random ones keep it
    from unetkit.training.setup import build_model

    def built(weight_init: str) -> UNet:
        return build_model(TrainConfig(out="x", base_width=8, depth=3, weight_init=weight_init, seed=3), 1)

    mixed, glorot, pytorch = built("glorot-pytorch-bias"), built("glorot"), built("pytorch")
    for name, weight in mixed.state_dict().items():
        if name.endswith("bias"):
            assert torch.equal(weight, pytorch.state_dict()[name]) and torch.count_nonzero(weight) == weight.numel()
        else:
            assert torch.equal(weight, glorot.state_dict()[name])  # the same draws as glorot's, in the same order
    assert torch.count_nonzero(glorot.head.bias) == 0


def test_he_leaves_batch_normalisation_layers_and_bias_free_convolutions_working():
    torch.manual_seed(0)
    model = initialize_weights(UNet(depth=3, base_width=4, batch_norm=True), "he")
    norms = [layer for layer in model.modules() if isinstance(layer, nn.BatchNorm2d)]
    assert norms and all(torch.all(norm.weight == 1) and torch.all(norm.bias == 0) for norm in norms)
    assert model.inc.block[0].bias is None
    assert torch.isfinite(model(torch.randn(1, 1, 16, 16))).all()


def test_training_builds_the_configured_initialisation_from_the_seed():
    from unetkit.training.setup import build_model

    def weights(noise: int = 1234, **options) -> list[torch.Tensor]:
        torch.manual_seed(noise)  # build_model seeds by itself: the generator's state before must not matter
        return list(build_model(TrainConfig(out="x", base_width=4, depth=3, **options), 1).state_dict().values())

    he, again = weights(weight_init="he"), weights(noise=99, weight_init="he")
    assert len(he) == len(again) == 26 and all(torch.equal(a, b) for a, b in zip(he, again))
    assert TrainConfig(out="x").weight_init == TrainConfig(out="x", task="instances").weight_init == "pytorch"
    torch.manual_seed(7)
    plain = list(UNet(depth=3, base_width=4).state_dict().values())  # PyTorch's default from the same seed
    assert all(torch.equal(a, b) for a, b in zip(weights(seed=7), plain))
    assert not torch.equal(he[0], weights(weight_init="he", seed=7)[0])
    torch.manual_seed(0)
    assert all(torch.equal(a, b) for a, b in zip(he, initialize_weights(UNet(depth=3, base_width=4), "he").state_dict().values()))


def test_a_run_saved_before_weight_init_resumes_with_pytorchs_default_as_it_started(tmp_path):
    from unetkit.training.state import stored_config

    values = TrainConfig(out=str(tmp_path / "run")).to_dict()
    del values["weight_init"]  # as unetkit wrote config.json before --weight-init
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(json.dumps(values))
    assert stored_config(tmp_path / "run").weight_init == "pytorch"


def test_an_unknown_weight_initialisation_is_refused_with_the_choices():
    from unetkit.errors import ConfigError

    with pytest.raises(ConfigError, match="pytorch"):
        TrainConfig(out="x", weight_init="xavier")
    with pytest.raises(ValueError, match="pytorch, he, glorot"):
        initialize_weights(UNet(depth=2, base_width=2), "xavier")  # type: ignore[arg-type]
