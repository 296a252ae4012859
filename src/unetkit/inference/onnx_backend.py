"""The ONNX Runtime backend: an exported U-Net as a :class:`~unetkit.inference.predictor.Predictor`.

The ONNX file written by :func:`unetkit.export.export_onnx` holds the network proper (logits
for sizes its :class:`~unetkit.sizes.SizeRule` accepts) and, as metadata, the model
configuration, the data options and the task, so it needs no checkpoint beside it.

>>> import tempfile, torch
>>> from pathlib import Path
>>> from unetkit.model import UNet
>>> from unetkit.export import export_onnx
>>> model = UNet(depth=2, base_width=2).eval()
>>> path = Path(tempfile.mkdtemp()) / "m.onnx"
>>> export_onnx(model, path)
>>> runtime = OnnxRuntimePredictor.from_file(path)
>>> x = torch.rand(1, 1, 10, 14)
>>> bool(torch.allclose(runtime(x), torch.sigmoid(model(x)), atol=1e-5))
True
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import data_options_from_dict
from ..data.dataset import DataOptions
from ..errors import CheckpointError, ConfigError
from ..model import UNetConfig, size_rule
from ..tasks import Task, task_from_dict
from .predictor import run_padded

METADATA_MODEL = "unetkit_model_config"
METADATA_DATA = "unetkit_data"
METADATA_TASK = "unetkit_task"


def _session(onnx_model: bytes | str, path: str | Path | None = None):
    try:
        import onnxruntime
    except ImportError as exc:
        raise ConfigError("the ONNX Runtime backend needs onnxruntime", fix="pip install 'unetkit[export]'") from exc
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    try:
        return onnxruntime.InferenceSession(onnx_model, options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise CheckpointError(f"ONNX Runtime cannot run this model ({exc})", path=path) from exc


class OnnxRuntimePredictor:
    """Runs an exported U-Net on the CPU with ONNX Runtime."""

    def __init__(self, onnx_model: bytes, config: UNetConfig, data_options: DataOptions, task: Task, path: str | Path | None = None):
        self.config = config
        self.data_options = data_options
        self.task = task
        self.size_rule = size_rule(config)
        self.in_channels = config.in_channels
        self.num_outputs = config.num_classes
        self.session = _session(onnx_model, path)

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    @classmethod
    def from_checkpoint(cls, path: str | Path) -> OnnxRuntimePredictor:
        """Export a checkpoint to ONNX in memory and run that (the ``--backend onnxruntime`` path)."""
        from ..checkpoint import load_checkpoint
        from ..export import onnx_bytes

        loaded = load_checkpoint(path)
        return cls(onnx_bytes(loaded.model, loaded.data_options, loaded.task), loaded.model.config,
                   loaded.data_options, loaded.task, path)

    @classmethod
    def from_file(cls, path: str | Path) -> OnnxRuntimePredictor:
        """An ONNX file exported by unetkit."""
        try:
            import onnx
        except ImportError as exc:
            raise ConfigError("reading ONNX files needs onnx", fix="pip install 'unetkit[export]'") from exc
        if not Path(path).is_file():
            raise CheckpointError("ONNX file not found" if not Path(path).exists() else "is a folder, not an ONNX file",
                                  path=path)
        try:
            proto = onnx.load(str(path))
        except Exception as exc:
            raise CheckpointError(f"not a readable ONNX file ({type(exc).__name__})", path=path,
                                  fix="check the file; export it again with 'unetkit export'") from exc
        metadata = {entry.key: entry.value for entry in proto.metadata_props}
        if METADATA_MODEL not in metadata:
            raise CheckpointError("ONNX file was not exported by unetkit (no model metadata)", path=path,
                                  fix="export the model with 'unetkit export', or package it for bioimage.io")
        try:
            config = UNetConfig.from_dict(json.loads(metadata[METADATA_MODEL]))
            data_options = data_options_from_dict(json.loads(metadata[METADATA_DATA]))
            task = task_from_dict(json.loads(metadata.get(METADATA_TASK, '{"name": "semantic"}')), config.num_classes)
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"ONNX file's unetkit metadata is damaged ({exc})", path=path) from exc
        return cls(proto.SerializeToString(), config, data_options, task, path)

    def _logits(self, batch: torch.Tensor) -> torch.Tensor:
        image = np.ascontiguousarray(batch.detach().float().cpu().numpy())
        return torch.from_numpy(self.session.run(None, {"image": image})[0])

    def logits(self, batch: torch.Tensor) -> torch.Tensor:
        """The network's logits, for any size where the rule has no halo."""
        return run_padded(self._logits, batch, self.size_rule)

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        return self.task.activation(self.logits(batch))
