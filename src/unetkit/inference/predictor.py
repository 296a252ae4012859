"""The inference seam: what every backend offers the tiler, and the PyTorch backend.

A :class:`Predictor` is a callable from a batch of normalised images ``(N, C, H, W)`` to
the network's per-pixel outputs after their activation ``(N, K, H', W')`` (sigmoid or
softmax probabilities for a semantic model), plus the few facts the tiler needs: its
:class:`~unetkit.sizes.SizeRule`, channel counts and device. Nothing else of the model
is visible, so a PyTorch module, an ONNX Runtime session or a bioimage.io package are each
one small class, and nothing impersonates a :class:`~unetkit.model.UNet`.

>>> import torch
>>> from unetkit.model import UNet
>>> predictor = TorchPredictor(UNet(depth=2, base_width=2).eval())
>>> tuple(predictor(torch.rand(1, 1, 10, 14)).shape), predictor.size_rule.step
((1, 1, 10, 14), 2)
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Protocol, runtime_checkable

import torch

from ..data.io import PlaneShape, layout_hint
from ..errors import InputError
from ..mirror import pad_bottom_right
from ..model import UNet, probabilities_from_logits
from ..precision import autocast_context, to_device
from ..sizes import SizeRule

Activation = Callable[[torch.Tensor], torch.Tensor]


@runtime_checkable
class Predictor(Protocol):
    """What the tiler, evaluation and prediction need of a network, whatever runs it.

    Any object with these attributes and a call will do; this one thresholds its input:

    >>> import numpy as np
    >>> from unetkit.tiling import TileOptions, predict_tiled
    >>> class Threshold:
    ...     size_rule = SizeRule(minimum=1, step=1)
    ...     in_channels = num_outputs = 1
    ...     device = torch.device("cpu")
    ...     def __call__(self, batch):
    ...         return (batch > 0.5).float()
    >>> isinstance(Threshold(), Predictor)
    True
    >>> image = np.zeros((1, 40, 50), np.float32); image[0, 10:30, 5:25] = 1
    >>> np.allclose(predict_tiled(Threshold(), image, TileOptions(tile_size=16)), image)
    True
    """

    size_rule: SizeRule
    in_channels: int
    num_outputs: int

    @property
    def device(self) -> torch.device: ...

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        """Outputs ``(N, K, H', W')`` float32 for a batch ``(N, C, H, W)``; the sides must be
        valid for :attr:`size_rule`, or any size where the rule has no halo."""
        ...


def pad_to_rule(batch: torch.Tensor, rule: SizeRule) -> torch.Tensor:
    """Pad H and W at the bottom and right, by mirroring, up to the next valid sizes.

    Only for rules without a halo, where output pixel (i, j) belongs to input pixel (i, j)
    and the padding can be cropped off the output.

    >>> pad_to_rule(torch.zeros(1, 1, 5, 9), SizeRule(4, 4)).shape[-2:]
    torch.Size([8, 12])
    """
    height, width = batch.shape[-2:]
    return pad_bottom_right(batch, rule.input_size_for(height), rule.input_size_for(width))


def run_padded(network: Callable[[torch.Tensor], torch.Tensor], batch: torch.Tensor, rule: SizeRule) -> torch.Tensor:
    """``network(batch)`` for any H, W when the rule has no halo (pad, run, crop back)."""
    height, width = batch.shape[-2:]
    if rule.accepts(height) and rule.accepts(width):
        return network(batch)
    if not rule.pads_any_size:
        raise ValueError(f"input {height}x{width} does not fit the network's sizes ({rule}); tile it")
    return network(pad_to_rule(batch, rule))[..., :height, :width]


class TorchPredictor:
    """A :class:`~unetkit.model.UNet` (or any module with its ``config``) as a Predictor.

    Runs under ``torch.inference_mode`` with the given autocast dtype (None: the model's own type), in eval mode
    (a model left in training mode is put back in it after), and turns logits into outputs with ``activation``
    (by default sigmoid or softmax).

    >>> model = UNet(depth=2, base_width=2)  # in training mode, as made
    >>> predictor = TorchPredictor(model, activation=torch.sigmoid)
    >>> outputs = predictor(torch.rand(2, 1, 16, 16))
    >>> tuple(outputs.shape), bool(((outputs >= 0) & (outputs <= 1)).all()), model.training
    ((2, 1, 16, 16), True, True)
    """

    def __init__(
        self,
        model: UNet,
        autocast_dtype: torch.dtype | None = None,
        activation: Activation = probabilities_from_logits,
    ):
        self.model = model
        self.autocast_dtype = autocast_dtype
        self.activation = activation
        self.size_rule = model.size_rule
        self.in_channels = model.config.in_channels
        self.num_outputs = model.config.num_classes

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        parameter = next(self.model.parameters())
        batch = to_device(batch, parameter.device)
        if self.autocast_dtype is None and parameter.is_floating_point():
            batch = batch.to(parameter.dtype)  # a model in float64 or half takes its own type
        was_training = self.model.training
        self.model.eval()  # a model left in training mode: no batch statistics, no drop-out, its buffers untouched
        try:
            with torch.inference_mode(), autocast_context(parameter.device, self.autocast_dtype):
                logits = self.model(batch)
        finally:
            self.model.train(was_training)
        return self.activation(logits.float())


def check_fits_predictor(shape: PlaneShape, predictor: Predictor, path: str | Path) -> None:
    """Raise :class:`~unetkit.errors.InputError` unless an image's channels and size suit the model: predict,
    evaluate and napari refuse the same images.

    >>> from unetkit import UNet, UNetConfig
    >>> predictor = TorchPredictor(UNet(UNetConfig(depth=3, base_width=2)))
    >>> check_fits_predictor(PlaneShape(1, 64, 64, 1), predictor, Path("fine.png"))
    >>> try:
    ...     check_fits_predictor(PlaneShape(1, 2, 640, 1), predictor, Path("thin.png"))
    ... except InputError as error:
    ...     print(error.problem)
    image is 2x640, smaller than the network's minimum side 4
    """
    if shape.channels != predictor.in_channels:
        raise InputError(
            f"image has {shape.channels} channel(s), the model takes {predictor.in_channels}{layout_hint(path)}",
            path=path,
            fix=f"give images of {predictor.in_channels} channel(s), as the training images were, or use a model "
                "trained on such images",
        )
    minimum = predictor.size_rule.step  # mirroring an image up to one pooling window works; below, it is noise
    if min(shape.height, shape.width) < minimum:
        raise InputError(
            f"image is {shape.height}x{shape.width}, smaller than the network's minimum side {minimum}",
            path=path,
            fix="upsample the image, or use a model with fewer levels (unetkit train --depth)",
        )
