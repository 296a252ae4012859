"""From a model file to a ready predictor: the one place that knows every model format.

- ``.pt`` checkpoints (``unetkit train``, ``unetkit import-keras``): the PyTorch backend, or
  ONNX Runtime with ``backend="onnxruntime"`` (exported in memory);
- ``.onnx`` files written by ``unetkit export``: ONNX Runtime;
- bioimage.io model packages (``.zip``, ``rdf.yaml``, ``bioimageio.yaml``), unetkit's or
  another 2D model's: their ONNX weights in ONNX Runtime, whatever ``backend`` says
  (:mod:`~unetkit.inference.bioimageio_backend`; extra ``bioimageio``).

Each comes back as a :class:`LoadedPredictor`: the predictor, the data options that
prediction must repeat (normalisation, mask reading) and the task (how outputs become labels).

>>> import tempfile
>>> from pathlib import Path
>>> from unetkit.model import UNet
>>> from unetkit.checkpoint import make_checkpoint, save_checkpoint
>>> path = Path(tempfile.mkdtemp()) / "m.pt"
>>> save_checkpoint(path, make_checkpoint(UNet(depth=2, base_width=2)))
>>> loaded = load_predictor(path, precision="fp32")
>>> loaded.predictor.num_outputs, loaded.task.name
(1, 'semantic')
"""

from __future__ import annotations

import dataclasses

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from ..checkpoint import load_checkpoint
from ..data.dataset import DataOptions
from ..errors import ConfigError
from ..precision import resolve_device, resolve_precision
from ..tasks import Task, replace_options
from . import BACKENDS
from .bioimageio_backend import BioimageioPredictor, is_package
from .predictor import Predictor, TorchPredictor

Backend = Literal["torch", "onnxruntime"]


@dataclass(frozen=True)
class LoadedPredictor:
    predictor: Predictor
    data_options: DataOptions
    task: Task


def load_predictor(
    path: str | Path,
    *,
    backend: Backend = "torch",
    device: str = "auto",
    precision: str = "auto",
) -> LoadedPredictor:
    """The predictor of a checkpoint or exported model, with its data options and task.

    An object model's predictor applies its task's activation, and its task turns the outputs into labels:

    >>> import tempfile
    >>> import numpy as np
    >>> from unetkit.checkpoint import make_checkpoint, save_checkpoint
    >>> from unetkit.instances import InstanceTask
    >>> from unetkit.model import UNet, UNetConfig
    >>> from unetkit.tiling import predict_tiled
    >>> path = Path(tempfile.mkdtemp()) / "cells.pt"
    >>> network = UNet(UNetConfig(depth=2, base_width=2, num_classes=2))  # the distance method's two outputs
    >>> save_checkpoint(path, make_checkpoint(network, DataOptions(mask_mode="labels"), task=InstanceTask()))
    >>> loaded = load_predictor(path, device="cpu", precision="fp32")
    >>> loaded.task.name, loaded.predictor.num_outputs, loaded.data_options.mask_mode
    ('instances', 2, 'labels')
    >>> labels = loaded.task.labels(predict_tiled(loaded.predictor, np.zeros((1, 32, 32), np.float32)))
    >>> labels.shape, labels.dtype
    ((32, 32), dtype('uint16'))
    """
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}", fix=f"choose one of {', '.join(BACKENDS)}")
    path = Path(path)
    if is_package(path):
        check_runs_on_cpu_in_fp32("a bioimage.io package", device, precision, path)
        package = BioimageioPredictor.from_package(path)
        return LoadedPredictor(package, package.data_options, package.task)
    if path.suffix.lower() == ".onnx":
        from .onnx_backend import OnnxRuntimePredictor

        check_runs_on_cpu_in_fp32("an ONNX file", device, precision, path)
        runtime = OnnxRuntimePredictor.from_file(path)
        return LoadedPredictor(runtime, runtime.data_options, runtime.task)
    if backend == "onnxruntime":
        from .onnx_backend import OnnxRuntimePredictor

        check_runs_on_cpu_in_fp32("--backend onnxruntime", device, precision, path)
        runtime = OnnxRuntimePredictor.from_checkpoint(path)
        return LoadedPredictor(runtime, runtime.data_options, runtime.task)
    torch_device = resolve_device(device)
    loaded = load_checkpoint(path, torch_device)
    model = loaded.model.to(memory_format=torch.channels_last)
    predictor = TorchPredictor(model, resolve_precision(precision, torch_device), loaded.task.activation)
    return LoadedPredictor(predictor, loaded.data_options, loaded.task)


def check_runs_on_cpu_in_fp32(exported: str, device: str, precision: str, path: str | Path = "model") -> None:
    """Refuse a ``device`` or ``precision`` that ONNX Runtime would not honour: ``exported`` models (a package, an
    ONNX file, or a checkpoint with ``--backend onnxruntime``) run on the CPU in fp32 here, and an explicit GPU or
    bf16 would otherwise be dropped without a word.

    >>> check_runs_on_cpu_in_fp32("an ONNX file", "auto", "fp32")
    >>> check_runs_on_cpu_in_fp32("an ONNX file", "cuda", "auto", "m.onnx")
    Traceback (most recent call last):
    ...
    unetkit.errors.ConfigError: m.onnx: an ONNX file runs with ONNX Runtime on the CPU in fp32 here, not with --device cuda
      fix: leave --device and --precision out, or predict with the .pt checkpoint it was exported from
    """
    asked = []
    if device not in ("auto", "cpu"):
        asked.append(f"--device {device}")
    if precision not in ("auto", "fp32"):
        asked.append(f"--precision {precision}")
    if asked:
        fix = ("leave --backend onnxruntime out for " + " and ".join(asked) if exported == "--backend onnxruntime"
               else "leave --device and --precision out, or predict with the .pt checkpoint it was exported from")
        raise ConfigError(f"{exported} runs with ONNX Runtime on the CPU in fp32 here, not with {' and '.join(asked)}",
                          path=path, fix=fix)


def with_object_options(loaded: LoadedPredictor, path: str | Path, min_object_size: int | None = None,
                        ignore_border_objects: bool = False) -> LoadedPredictor:
    """``loaded`` with its instance options changed for one command: objects smaller than
    ``min_object_size`` pixels dropped (None: the model's own, 10 px by default; the three-class
    method also ignores seeds smaller than a quarter of it), and border objects left out of the scores
    (:func:`unetkit.instances.scores.object_scores`).

    >>> from unetkit.tasks import SemanticTask
    >>> with_object_options(LoadedPredictor(None, None, SemanticTask(1)), "model.pt", min_object_size=40)
    Traceback (most recent call last):
    ...
    unetkit.errors.ConfigError: --min-object-size is for instance models; model.pt is a semantic model
      fix: leave --min-object-size out
    """
    changes: dict[str, object] = {}
    flags: list[str] = []
    if min_object_size is not None:
        changes["min_size"] = min_object_size
        flags.append("--min-object-size")
    if ignore_border_objects:
        changes["ignore_border_objects"] = True
        flags.append("--ignore-border-objects")
    if not changes:
        return loaded
    if loaded.task.pixelwise:
        named = " and ".join(flags)
        raise ConfigError(f"{named} {'are' if len(flags) > 1 else 'is'} for instance models; "
                          f"{path} is a {loaded.task.name} model", fix=f"leave {named} out")
    return dataclasses.replace(loaded, task=replace_options(loaded.task, **changes))
