"""How a new network's weights start: the U-Net paper's He initialisation, or PyTorch's default.

The U-Net has no normalisation layers: under PyTorch's default initialisation (uniform, with
a variance of a third of ``1 / inputs`` for a convolution) every 3x3 convolution + ReLU shrinks
its activations, to under a hundredth of the input's scale at the bottleneck of the reference
network and at its logits. The U-Net paper (Ronneberger et al. 2015, section 3) draws each
weight from a Gaussian with standard deviation ``sqrt(2 / N)``, ``N`` the inputs of one unit
(He et al. 2015), which keeps the scale from vanishing (it grows about 2.4 times over the
network). The Keras reference uses Keras' default, glorot uniform: at the bottleneck as small as
PyTorch's, at the logits about 6 times larger. Measured on public sets (BENCHMARKS.md, "How the
weights start"): He took the sparse bacteria's 1,000-step runs from a test Dice of 0.924 / 0.926
to 0.933 / 0.937 (seeds 0 / 1) and cells3d's by +0.007, but BBBC007's down by 0.017 at seed 1. Glorot took the bacteria to 0.938 /
0.935 / 0.926 in 1,000 steps (PyTorch's default: 0.924 / 0.926 / 0.874), but over 40 epochs, at each of
three seeds, its BBBC007 models' masks on the test frames narrowed (test Dice down to 0.90 to 0.94
while their validation score stayed flat). So ``unetkit train`` keeps PyTorch's default unless ``--weight-init``
says otherwise. Glorot's zero biases were what cost BBBC007 (PyTorch's weights with zero biases cost it as much);
``glorot-pytorch-bias`` keeps PyTorch's random biases under glorot's weights, and with a quarter of the width it
came within 0.01 of the reference network's 40 epochs on five public sets in 3 minutes of a 2-core CPU
(BENCHMARKS.md, "Glorot's weights with PyTorch's biases").

>>> import math, torch
>>> from unetkit.model import UNet
>>> model = initialize_weights(UNet(), "he")
>>> second = model.inc.block[2]                          # 3x3 over 32 channels: 288 inputs
>>> abs(float(second.weight.detach().std()) / math.sqrt(2 / 288) - 1) < 0.05
True
"""

from __future__ import annotations

import math
from typing import Literal, get_args

from torch import nn

WeightInit = Literal["pytorch", "he", "glorot", "glorot-pytorch-bias"]
WEIGHT_INITS: tuple[str, ...] = get_args(WeightInit)


def inputs_per_unit(layer: nn.Conv2d | nn.ConvTranspose2d) -> int:
    """``N`` of the paper: how many input values one output value of ``layer`` is a weighted sum of.

    A convolution's output sees ``in_channels x kernel`` inputs (per group; dilation does not
    change it); a transposed convolution of stride equal to its kernel (the U-Net's 2x2
    up-sampling) places one kernel tap of each input pixel on each output pixel, so its outputs
    see ``in_channels`` inputs. For other transposed shapes this is an upper bound (it counts
    ``ceil(kernel / stride)`` taps per axis, where some outputs get fewer).

    >>> inputs_per_unit(nn.Conv2d(32, 64, 3))
    288
    >>> inputs_per_unit(nn.ConvTranspose2d(64, 32, 2, stride=2))
    64
    """
    kernel = layer.kernel_size[0] * layer.kernel_size[1]
    if isinstance(layer, nn.ConvTranspose2d):
        overlap = math.ceil(layer.kernel_size[0] / layer.stride[0]) * math.ceil(layer.kernel_size[1] / layer.stride[1])
        return layer.in_channels // layer.groups * overlap
    return layer.in_channels // layer.groups * kernel


def initialize_weights(model: nn.Module, scheme: WeightInit) -> nn.Module:
    """Initialise ``model``'s convolutions in place by ``scheme`` and return it.

    ``"he"``: every convolution's weights from a Gaussian of standard deviation
    ``sqrt(2 / inputs_per_unit)``, biases zero (other layers, batch normalisation for one, keep
    their own). ``"glorot"``: the Keras reference's (Keras' default): uniform with a variance of
    ``2 / (inputs + outputs)`` of a unit, biases zero. ``"glorot-pytorch-bias"``: glorot's weights, the biases as
    PyTorch drew them (uniform within ``1 / sqrt(inputs)``). ``"pytorch"``: unchanged, PyTorch's default
    as the layers were built. Draws from torch's random generator, so a seed set before building the model fixes the result.

    >>> from unetkit.model import UNet
    >>> initialize_weights(UNet(depth=2, base_width=4), "xavier")
    Traceback (most recent call last):
    ...
    ValueError: unknown weight initialisation 'xavier': choose one of pytorch, he, glorot, glorot-pytorch-bias
    >>> import torch
    >>> _ = torch.manual_seed(0); pytorch = UNet(depth=2, base_width=4).inc.block[0]
    >>> _ = torch.manual_seed(0); mixed = initialize_weights(UNet(depth=2, base_width=4), "glorot-pytorch-bias").inc.block[0]
    >>> torch.equal(mixed.bias, pytorch.bias), torch.equal(mixed.weight, pytorch.weight)
    (True, False)
    """
    if scheme not in WEIGHT_INITS:
        raise ValueError(f"unknown weight initialisation {scheme!r}: choose one of {', '.join(WEIGHT_INITS)}")
    if scheme == "pytorch":
        return model
    for layer in model.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
            if scheme == "he":
                nn.init.normal_(layer.weight, mean=0.0, std=math.sqrt(2.0 / inputs_per_unit(layer)))
            else:
                nn.init.xavier_uniform_(layer.weight)
            if layer.bias is not None and scheme != "glorot-pytorch-bias":
                nn.init.zeros_(layer.bias)
    return model
