"""Export for deployment (ONNX, TorchScript) and an ONNX Runtime backend for prediction.

The exported graph is the network proper: it takes (N, C, H, W) with H and W multiples of
``2**(depth - 1)`` (any valid size for valid padding) and returns logits. The padding to
such sizes happens outside the graph, in :class:`OnnxRuntimeModel` and in the tiled
predictor, exactly as :class:`unetkit.UNet` does it in PyTorch. The ONNX file carries the
model configuration and normalisation as metadata, so ``unetkit predict model.onnx``
needs no checkpoint.

>>> import tempfile, torch
>>> from unetkit.model import UNet
>>> model = UNet(depth=2, base_width=2).eval()
>>> path = Path(tempfile.mkdtemp()) / "m.onnx"
>>> export_onnx(model, path)
>>> runtime = OnnxRuntimeModel.from_file(path)
>>> x = torch.rand(1, 1, 10, 14)
>>> bool(torch.allclose(runtime(x), model(x), atol=1e-5))
True
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .checkpoint import data_options_from_dict, data_options_to_dict, load_model
from .data.dataset import DataOptions
from .data.io import atomic_write
from .errors import CheckpointError, ConfigError
from .model import UNet, UNetConfig, pad_to_multiple

ONNX_OPSET = 17


class NetworkOnly(nn.Module):
    """The U-Net without the pad-and-crop wrapper: the graph that is exported."""

    def __init__(self, model: UNet):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model._forward_unpadded(x)


def _example_input(model: UNet) -> torch.Tensor:
    side = model.input_size_for(2 * model.size_multiple)
    return torch.zeros(1, model.config.in_channels, side, side)


def _onnx_bytes(model: UNet, data_options: DataOptions | None) -> bytes:
    import onnx

    model = model.eval().to("cpu", memory_format=torch.contiguous_format)
    buffer = io.BytesIO()
    axes = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            NetworkOnly(model), (_example_input(model),), buffer, dynamo=False,
            input_names=["image"], output_names=["logits"],
            dynamic_axes={"image": axes, "logits": axes}, opset_version=ONNX_OPSET,
        )
    proto = onnx.load_from_string(buffer.getvalue())
    data_options = data_options or DataOptions(num_classes=model.config.num_classes)
    for key, value in (("unetkit_model_config", model.config.to_dict()),
                       ("unetkit_data", data_options_to_dict(data_options))):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value)
    return proto.SerializeToString()


def export_onnx(model: UNet, path: str | Path, data_options: DataOptions | None = None, overwrite: bool = False) -> None:
    """Write the model as ONNX (dynamic batch, height and width), atomically."""
    payload = _onnx_bytes(model, data_options)
    atomic_write(path, lambda target: Path(target).write_bytes(payload), overwrite)


def export_torchscript(model: UNet, path: str | Path, overwrite: bool = False) -> None:
    """Write the network as a traced TorchScript module (sizes as for ONNX)."""
    model = model.eval().to("cpu", memory_format=torch.contiguous_format)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(NetworkOnly(model), _example_input(model))
    atomic_write(path, lambda target: torch.jit.save(traced, str(target)), overwrite)


def export_checkpoint(checkpoint: str | Path, out: str | Path, format: str = "onnx", overwrite: bool = False) -> None:
    """``unetkit export``: a checkpoint to ONNX or TorchScript."""
    model, data_options = load_model(checkpoint)
    if format == "onnx":
        export_onnx(model, out, data_options, overwrite)
    elif format == "torchscript":
        export_torchscript(model, out, overwrite)
    else:
        raise ConfigError(f"unknown export format {format!r}", fix="choose onnx or torchscript")


class OnnxRuntimeModel:
    """Runs an exported U-Net in ONNX Runtime behind the interface the tiler uses."""

    def __init__(self, onnx_model: bytes, config: UNetConfig, data_options: DataOptions):
        import onnxruntime

        self.config = config
        self.data_options = data_options
        self._shape_helper = UNet(config)  # sizes only; its weights are never used
        self.session = onnxruntime.InferenceSession(onnx_model, providers=["CPUExecutionProvider"])
        self.device = torch.device("cpu")
        self.training = False

    @classmethod
    def from_model(cls, model: UNet, data_options: DataOptions | None = None) -> OnnxRuntimeModel:
        data_options = data_options or DataOptions(num_classes=model.config.num_classes)
        return cls(_onnx_bytes(model, data_options), model.config, data_options)

    @classmethod
    def from_file(cls, path: str | Path) -> OnnxRuntimeModel:
        import onnx

        try:
            proto = onnx.load(str(path))
        except Exception as exc:
            raise CheckpointError(f"not a readable ONNX file ({exc})", path=path) from exc
        metadata = {entry.key: entry.value for entry in proto.metadata_props}
        if "unetkit_model_config" not in metadata:
            raise CheckpointError("ONNX file was not exported by unetkit (no model metadata)", path=path)
        config = UNetConfig.from_dict(json.loads(metadata["unetkit_model_config"]))
        return cls(proto.SerializeToString(), config, data_options_from_dict(json.loads(metadata["unetkit_data"])))

    @property
    def size_multiple(self) -> int:
        return self._shape_helper.size_multiple

    def output_size(self, input_size: int) -> int:
        return self._shape_helper.output_size(input_size)

    def input_size_for(self, output_size: int) -> int:
        return self._shape_helper.input_size_for(output_size)

    def eval(self) -> OnnxRuntimeModel:
        return self

    def train(self, mode: bool = True) -> OnnxRuntimeModel:
        return self

    def to(self, *args: object, **kwargs: object) -> OnnxRuntimeModel:
        return self

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        if self.config.padding == "same":
            x = pad_to_multiple(x, self.size_multiple)
        image = np.ascontiguousarray(x.detach().float().cpu().numpy())
        logits = torch.from_numpy(self.session.run(None, {"image": image})[0])
        return logits[..., :height, :width] if self.config.padding == "same" else logits
