"""Importing the reference Keras U-Net's weights into the equivalent :class:`UNet`.

The Keras model is read by Keras itself (``pip install 'unetkit[keras]'``; Keras 3 runs on
the torch backend, so no TensorFlow is needed), with ``safe_mode`` on and without
compiling, so a custom loss such as the reference's ``dice_coef_loss`` is not needed.
The U-Net's shape (input channels, base width, depth, classes) is read from the layers;
each Conv2D/Conv2DTranspose kernel is transposed from Keras' (kh, kw, in, out) layout to
PyTorch's, in the order the layers were built, which is the order of :class:`UNet`'s
modules. Every shape is checked, so a model that is not a U-Net of this family is refused.

The Keras model ends in a sigmoid (or softmax); :class:`UNet` returns logits, and
``probabilities_from_logits(unet(x))`` equals the Keras output.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .checkpoint import make_checkpoint, save_checkpoint
from .data.dataset import DataOptions
from .data.normalize import Normalization
from .errors import CheckpointError, ConfigError, InputError
from .model import UNet, UNetConfig


def _load_keras_model(path: Path) -> Any:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    try:
        import keras
    except ImportError as exc:
        raise ConfigError(
            "importing Keras models needs Keras", fix="pip install 'unetkit[keras]'"
        ) from exc
    if not path.is_file():
        raise InputError("Keras model not found", path=path)
    try:
        return keras.saving.load_model(str(path), compile=False, safe_mode=True)
    except Exception as exc:
        raise CheckpointError(f"Keras could not load the model: {exc}", path=path) from exc


def _weighted_layers(keras_model: Any) -> list[Any]:
    layers = []
    for layer in keras_model.layers:
        kind = type(layer).__name__
        if kind in ("Conv2D", "Conv2DTranspose"):
            layers.append(layer)
        elif layer.weights:
            raise CheckpointError(
                f"layer {layer.name} ({kind}) has weights, but the reference U-Net holds only "
                "Conv2D and Conv2DTranspose layers",
            )
    return layers


def infer_config(keras_model: Any) -> UNetConfig:
    """The :class:`UNetConfig` of a reference-style Keras U-Net."""
    layers = _weighted_layers(keras_model)
    pools = [layer for layer in keras_model.layers if type(layer).__name__ == "MaxPooling2D"]
    if not layers or not pools:
        raise CheckpointError("the Keras model is not a U-Net (no convolutions or no pooling)")
    first, last = layers[0], layers[-1]
    kernel = np.asarray(first.get_weights()[0])
    padding = "same" if first.padding == "same" else "valid"
    num_outputs = int(last.filters)
    activation, _ = _computed_activation(last)  # Conv2D(..., 1x1, "sigmoid"), or then Activation("sigmoid") ...
    if num_outputs == 1 and activation not in ("sigmoid", "linear"):
        raise CheckpointError(f"a one-output U-Net should end in a sigmoid, this one ends in {activation!r}"
                              + (" (a softmax over one output is 1 everywhere)" if activation == "softmax" else ""),
                              fix=HEAD_FIX)
    if num_outputs > 1 and activation not in ("softmax", "linear"):
        raise CheckpointError(f"a U-Net of {num_outputs} outputs ends in {activation!r}, but unetkit's classes are "
                              "exclusive, one per pixel: a softmax (several sigmoids are several yes/no maps)",
                              fix=HEAD_FIX)
    _check_hidden_activations(keras_model, layers)
    _check_concatenation_order(keras_model)
    return UNetConfig(
        in_channels=int(kernel.shape[2]), num_classes=num_outputs, base_width=int(first.filters),
        depth=len(pools) + 1, padding=padding, upsampling="transpose",
    )


def _activation(layer: Any) -> str:
    """A layer's own activation: ``relu``, ``sigmoid``, ``linear`` ... (a ``ReLU`` layer's is ``relu`` when plain)."""
    if type(layer).__name__ == "Softmax":
        return "softmax"
    if type(layer).__name__ == "ReLU":
        plain = not getattr(layer, "negative_slope", 0) and getattr(layer, "max_value", None) is None \
            and not getattr(layer, "threshold", 0)
        return "relu" if plain else "relu (leaky, capped or shifted)"
    return getattr(layer.activation, "__name__", str(layer.activation))


#: what to do with a Keras model that is not the reference U-Net
NOT_THE_REFERENCE_FIX = ("import-keras takes the reference Keras U-Net (two 3x3 ReLU convolutions a level, each level "
                         "twice the channels of the one above, 2x2 max-pooling, 2x2 stride-2 up-convolutions, a 1x1 "
                         "head); train a model of this data with unetkit instead")
#: what to do with a head that unetkit's tasks do not compute
HEAD_FIX = ("the reference ends in a 1x1 convolution with a sigmoid for one class or a softmax over several exclusive "
            "classes (unetkit has no multi-label head): for overlapping labels, train one model per label")

#: layers without weights that the reference U-Net holds or that compute nothing at inference
_PASSIVE_LAYERS = {"InputLayer", "MaxPooling2D", "Concatenate", "Dropout", "SpatialDropout2D"}
_ACTIVATION_LAYERS = {"Activation", "ReLU", "Softmax"}


def _consumers(layer: Any) -> list[Any]:
    return [node.operation for node in getattr(layer, "_outbound_nodes", [])]


def _computed_activation(layer: Any) -> tuple[str, Any]:
    """The activation a convolution computes: its own, or, where that is linear, that of the Activation, ReLU or
    Softmax layer right after it (returned too; None where there is none)."""
    after = _consumers(layer)
    if _activation(layer) == "linear" and len(after) == 1 and type(after[0]).__name__ in _ACTIVATION_LAYERS:
        return _activation(after[0]), after[0]
    return _activation(layer), None


def _check_hidden_activations(keras_model: Any, layers: list[Any]) -> None:
    """The reference's convolutions end in a ReLU and its up-convolutions in none, written in the layer
    (``activation="relu"``) or as a ``ReLU`` / ``Activation("relu")`` layer right after a linear one; any other
    activation (ELU, an extra tanh) would load and compute something else, silently."""
    follows_linear_conv = set()
    for layer in layers:
        effective, follower = _computed_activation(layer)
        if follower is not None:
            follows_linear_conv.add(id(follower))
        if layer is layers[-1]:
            continue  # the head: checked by infer_config
        expected = "linear" if type(layer).__name__ == "Conv2DTranspose" else "relu"
        if effective != expected:
            raise CheckpointError(f"layer {layer.name} ({type(layer).__name__}) computes activation {effective!r} "
                                  f"where the reference U-Net has {expected!r}, the activation unetkit's U-Net computes")
    for layer in keras_model.layers:
        kind = type(layer).__name__
        if kind in _ACTIVATION_LAYERS and id(layer) not in follows_linear_conv:
            raise CheckpointError(f"layer {layer.name} ({kind}, {_activation(layer)!r}) follows no linear convolution: "
                                  "the reference U-Net holds no such activation")
        if kind == "MaxPooling2D":
            _check_pooling(layer)
        if kind not in _PASSIVE_LAYERS | _ACTIVATION_LAYERS and not layer.weights:
            raise CheckpointError(f"layer {layer.name} ({kind}) is not in the reference U-Net: unetkit's U-Net "
                                  "would not compute it")


def _check_pooling(layer: Any) -> None:
    """The reference pools 2 x 2 pixels with a step of 2; another window or step (3 x 3 'same', say) has no weights
    to tell it apart, so it would load and compute something else."""
    window, step = tuple(layer.pool_size), tuple(layer.strides or layer.pool_size)
    if (window, step) != ((2, 2), (2, 2)):
        raise CheckpointError(f"layer {layer.name} (MaxPooling2D) pools {window} with strides {step} where the "
                              "reference U-Net pools (2, 2) with strides (2, 2), as unetkit's U-Net computes")


def _check_concatenation_order(keras_model: Any) -> None:
    """The reference concatenates ``[up-sampled, skip]``; a model built ``[skip, up-sampled]`` has kernels of the
    same shapes, so it would load, and compute something else (the halves of each kernel swapped)."""
    for layer in keras_model.layers:
        if type(layer).__name__ != "Concatenate":
            continue
        try:
            sources = [type(tensor._keras_history.operation).__name__ for tensor in layer._inbound_nodes[0].input_tensors]
        except (AttributeError, IndexError):  # a Keras that keeps its graph otherwise: not checked
            return
        if sources and sources[0] != "Conv2DTranspose":
            raise CheckpointError(f"layer {layer.name} concatenates {sources}, but the reference U-Net concatenates "
                                  "[up-sampled, skip] (the up-convolution first), the order unetkit's U-Net uses")


def _check_sampling(layer: Any, kind: str, path: Path) -> None:
    """The reference's convolutions step 1 pixel and its up-convolutions 2, neither dilated; a dilated or strided
    kernel has the same shape, so it would load, and compute something else."""
    strides = (2, 2) if kind == "Conv2DTranspose" else (1, 1)
    found = tuple(getattr(layer, "strides", strides)), tuple(getattr(layer, "dilation_rate", (1, 1)))
    if found != (strides, (1, 1)):
        raise CheckpointError(f"layer {layer.name} ({kind}) has strides {found[0]} and dilation {found[1]} where the "
                              f"reference U-Net has strides {strides} and dilation (1, 1), as unetkit's U-Net computes",
                              path=path, fix=NOT_THE_REFERENCE_FIX)


def unet_from_keras(path: str | Path) -> UNet:
    """A :class:`UNet` holding the weights of a reference Keras U-Net (.h5 or .keras)."""
    path = Path(path)
    keras_model = _load_keras_model(path)
    try:
        config = infer_config(keras_model)
    except CheckpointError as error:  # the structure's refusals know no file: name it, and what to do
        if error.path is not None:
            raise
        raise CheckpointError(error.problem, path=path, fix=error.fix or NOT_THE_REFERENCE_FIX) from None
    model = UNet(config)
    targets = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    sources = _weighted_layers(keras_model)
    if len(targets) != len(sources):
        raise CheckpointError(
            f"the Keras model has {len(sources)} convolution layers, a U-Net of depth "
            f"{config.depth} has {len(targets)}", path=path, fix=NOT_THE_REFERENCE_FIX,
        )
    with torch.no_grad():
        for target, layer in zip(targets, sources):
            kind = type(layer).__name__
            expected = "ConvTranspose2d" if kind == "Conv2DTranspose" else "Conv2d"
            if type(target).__name__ != expected:
                raise CheckpointError(f"layer {layer.name} ({kind}) sits where the U-Net has a "
                                      f"{type(target).__name__}", path=path, fix=NOT_THE_REFERENCE_FIX)
            _check_sampling(layer, kind, path)
            kernel, *bias = [np.asarray(w) for w in layer.get_weights()]
            weight = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
            if weight.shape != target.weight.shape:
                raise CheckpointError(
                    f"layer {layer.name}: kernel {tuple(weight.shape)} does not fit {tuple(target.weight.shape)}",
                    path=path, fix=NOT_THE_REFERENCE_FIX,
                )
            target.weight.copy_(weight)
            if bias:
                target.bias.copy_(torch.from_numpy(bias[0]))
            else:  # use_bias=False: no bias, not the one PyTorch drew
                target.bias.zero_()
    return model.eval()


def import_keras_checkpoint(path: str | Path, out: str | Path, overwrite: bool = False,
                            normalization: Normalization | None = None) -> UNet:
    """``unetkit import-keras``: read a Keras U-Net, write a unetkit checkpoint whose inputs are normalised as
    ``normalization`` says (how the Keras model's training images were scaled; default: percentiles 1 and 99.8)."""
    from .data.io import ensure_can_write

    ensure_can_write(Path(out), overwrite, inputs=[path])  # before the work; never over the Keras file itself
    model = unet_from_keras(path)
    data_options = DataOptions(num_classes=model.config.num_classes, normalization=normalization or Normalization())
    save_checkpoint(out, make_checkpoint(model, data_options), overwrite=overwrite)
    return model
