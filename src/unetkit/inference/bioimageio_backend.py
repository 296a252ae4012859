"""A bioimage.io model package as a :class:`~unetkit.inference.predictor.Predictor`.

unetkit runs a package (a ``.zip``, or an unpacked ``rdf.yaml`` / ``bioimageio.yaml``) of its
own or of anyone else, if it takes one 2D image: one input with axes ``(batch?, channel?, y,
x)`` and one output alike. From the description (read with ``bioimageio.spec``, extra
``bioimageio``) come:

- the size rule: the inputs' ``ParameterizedSize(min, step)``; the output's offset and halo
  give the rule's halo (a declared halo is cropped here, so outputs shrink as the tiler
  expects);
- the preprocessing, as the image's normalisation (:class:`PackagePreprocessing` in
  ``data_options.normalization``): it runs once per whole image before tiling, so statistics
  such as percentiles are the image's, as in every other tool, and as unetkit normalises
  images for its checkpoints. The predictor itself never normalises, so nothing runs twice;
- the postprocessing (sigmoid, softmax, binarize...), run on each tile's outputs;
- the task: for unetkit's packages, from ``config.unetkit`` (with the data options and model
  configuration: lossless); for others, a :class:`~unetkit.tasks.SemanticTask` with the
  output's channel count (one channel: foreground where above 0.5; several: argmax).

Reading a package never runs code from it: the description is parsed as data, and only the
ONNX weights are run, by ONNX Runtime, after their sha256 is checked. ONNX holds a graph of
standard operators, not code. TorchScript weights are programs (PyTorch asks to load them
from trusted sources only) and ``pytorch_state_dict`` weights import the package's Python
code, so a package without ONNX weights is refused, with the way to add them.

>>> import pytest, tempfile
>>> _ = pytest.importorskip("bioimageio.spec")
>>> from unetkit.model import UNet
>>> from unetkit.checkpoint import make_checkpoint, save_checkpoint
>>> from unetkit.bioimageio_export import export_bioimageio
>>> folder = Path(tempfile.mkdtemp())
>>> model = UNet(depth=2, base_width=2, padding="valid")
>>> save_checkpoint(folder / "m.pt", make_checkpoint(model))
>>> package = BioimageioPredictor.from_package(export_bioimageio(folder / "m.pt", folder / "m.zip"))
>>> package.size_rule == model.size_rule, package.task.name, package.data_options.normalization.steps[1][0]
(True, 'semantic', 'scale_range')
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..checkpoint import data_options_from_dict
from ..data.dataset import DataOptions
from ..errors import CheckpointError, ConfigError
from ..model import UNetConfig
from ..sizes import SizeRule
from ..tasks import SemanticTask, Task, task_from_dict
from .bioimageio_ops import PackagePreprocessing, Step, postprocess, unsupported_steps
from .onnx_backend import _session
from .predictor import run_padded

#: unetkit's own metadata in a package's ``config.unetkit``: its marker and version
PACKAGE_FORMAT = "unetkit-package"
PACKAGE_VERSION = 1
DESCRIPTION_NAMES = ("rdf.yaml", "bioimageio.yaml")
AXES = ("batch", "channel", "y", "x")
SUPPORTED_TENSORS = "one input and one output, each with axes (batch?, channel?, y, x)"

_ONNX_TYPES = {
    "tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16,
    "tensor(uint8)": np.uint8, "tensor(int8)": np.int8, "tensor(uint16)": np.uint16, "tensor(int16)": np.int16,
    "tensor(int32)": np.int32, "tensor(int64)": np.int64,
}


def spec_module() -> tuple[Any, Any]:
    """``bioimageio.spec`` and its model format 0.5, or a ConfigError that says how to install them."""
    try:
        import bioimageio.spec as spec
        from bioimageio.spec.model import v0_5
    except ImportError as exc:
        raise ConfigError("bioimage.io packages need bioimageio.spec", fix="pip install 'unetkit[bioimageio]'") from exc
    return spec, v0_5


def is_package(path: str | Path) -> bool:
    """Whether ``path`` names a bioimage.io package (by its name; the content is checked on loading).

    >>> is_package("model.zip"), is_package("x/rdf.yaml"), is_package("my.bioimageio.yaml"), is_package("m.onnx")
    (True, True, True, False)
    """
    name = Path(path).name.lower()
    return name.endswith(".zip") or name in DESCRIPTION_NAMES or name.endswith(
        tuple(f".{n}" for n in DESCRIPTION_NAMES))


@dataclass(frozen=True)
class TensorLayout:
    """A package tensor's axes in its order, in unetkit's names (a subset of :data:`AXES` with y, x).

    >>> layout = TensorLayout(("batch", "y", "x", "channel"), channels=3)
    >>> batch = np.zeros((2, 3, 5, 7), np.float32)
    >>> layout.to_package(batch).shape, layout.from_package(layout.to_package(batch)).shape
    ((2, 5, 7, 3), (2, 3, 5, 7))
    """

    axes: tuple[str, ...]
    channels: int = 1
    batch_size: int | None = None  # None: any batch; 1: one image per run

    @property
    def one_image_per_run(self) -> bool:
        return "batch" not in self.axes or self.batch_size == 1

    def to_package(self, batch: np.ndarray) -> np.ndarray:
        """``(N, C, H, W)`` to this layout (N must be 1 without a batch axis)."""
        present = [name for name in AXES if name in self.axes]
        squeezed = tuple(index for index, name in enumerate(AXES) if name not in self.axes)
        array = batch.reshape([size for index, size in enumerate(batch.shape) if index not in squeezed])
        return np.transpose(array, [present.index(name) for name in self.axes])

    def from_package(self, array: np.ndarray) -> np.ndarray:
        """This layout to ``(N, C, H, W)``."""
        present = [name for name in AXES if name in self.axes]
        array = np.transpose(array, [self.axes.index(name) for name in present])
        return array.reshape([array.shape[present.index(name)] if name in present else 1 for name in AXES])


def _refuse(problem: str, path: Path, fix: str | None = None) -> CheckpointError:
    return CheckpointError(problem, path=path, fix=fix or "use a 2D model package: " + SUPPORTED_TENSORS)


def _layout(tensor: Any, role: str, path: Path) -> tuple[TensorLayout, dict[str, str]]:
    """The tensor's layout and a map from its axis ids to unetkit's axis names."""
    names, ids, others = [], {}, []
    channels, batch_size = 1, None
    for axis in tensor.axes:
        axis_id = str(axis.id)
        if axis.type == "batch":
            name, batch_size = "batch", axis.size
        elif axis.type == "channel":
            name, channels = "channel", len(axis.channel_names)
        elif axis.type == "space" and axis_id in ("y", "x"):
            name = axis_id
        else:
            others.append(f"{axis.type} axis '{axis_id}'")
            continue
        names.append(name)
        ids[axis_id] = name
    if others or {"y", "x"} - set(names):
        listed = ", ".join(str(axis.id) for axis in tensor.axes)
        raise _refuse(f"the {role} '{tensor.id}' has axes ({listed}): {', '.join(others) or 'no y and x axes'}; "
                      "unetkit runs 2D images only (no z, time or index axes)", path)
    return TensorLayout(tuple(names), channels, batch_size), ids


def _size_rule(spec_v0_5: Any, source: Any, target: Any, path: Path) -> tuple[SizeRule, int]:
    """The input's sizes and what the output loses: the rule, and the declared halo to crop."""
    inputs = {str(axis.id): axis for axis in source.axes}
    sizes = {(inputs[a].size.min, inputs[a].size.step) if isinstance(inputs[a].size, spec_v0_5.ParameterizedSize)
             else inputs[a].size for a in ("y", "x")}
    if len(sizes) != 1 or not isinstance(next(iter(sizes)), tuple):
        raise _refuse(f"the input's y and x sizes are {' and '.join(map(str, sizes))}; unetkit needs the same "
                      "parameterized size (min + n * step) on both", path)
    (minimum, step), = sizes
    borders = set()
    for axis in target.axes:
        if str(axis.id) not in ("y", "x"):
            continue
        size = axis.size
        if not (isinstance(size, spec_v0_5.SizeReference) and str(size.tensor_id) == str(source.id)
                and str(size.axis_id) == str(axis.id) and axis.scale == inputs[str(axis.id)].scale):
            raise _refuse(f"the output's axis {axis.id} is not sized from the input's axis {axis.id} "
                          f"({size}); unetkit needs outputs of the input's size, less a border", path)
        borders.add((-size.offset, getattr(axis, "halo", 0)))
    (offset, halo), *others = sorted(borders)
    if others or offset < 0 or offset % 2:
        raise _refuse(f"the output is larger than the input, odd-sized against it, or unlike on y and x "
                      f"(offsets and halos {sorted(borders)}); unetkit needs the input's size less an even border",
                      path)
    try:
        return SizeRule(minimum, step, offset // 2 + halo), halo
    except ValueError as exc:
        raise _refuse(f"the package's sizes are inconsistent ({exc})", path) from exc


def _steps(descriptions: Any, ids: dict[str, str], tensor_id: str, stage: str, path: Path) -> tuple[Step, ...]:
    """The package's steps as plain values in unetkit's axis names; refuses what cannot run."""
    steps = []
    for description in descriptions:
        kwargs = description.kwargs.model_dump(mode="json") if getattr(description, "kwargs", None) else {}
        if kwargs.get("axes") is not None:
            kwargs["axes"] = [ids.get(str(a), str(a)) for a in kwargs["axes"]]
        if kwargs.get("axis") is not None:
            kwargs["axis"] = ids.get(str(kwargs["axis"]), str(kwargs["axis"]))
        reference = kwargs.pop("reference_tensor", None)
        if reference not in (None, tensor_id):
            raise _refuse(f"its {stage} '{description.id}' takes statistics of another tensor ('{reference}')",
                          path, fix="unetkit computes statistics of the image itself only")
        steps.append((str(description.id), kwargs))
    problems = unsupported_steps(steps, stage)  # type: ignore[arg-type]
    if problems:
        raise _refuse(f"unetkit cannot run this package's {stage}: {'; '.join(problems)}", path,
                      fix="run this package with bioimageio.core or a tool that implements these steps")
    return tuple(steps)


def read_description(path: Path) -> Any:
    """The package's model description (format 0.5; older ones converted), parsed without running anything."""
    spec, v0_5 = spec_module()
    if not path.exists():
        raise CheckpointError("model package not found", path=path)
    try:
        description = spec.load_description(path, perform_io_checks=False, format_version="latest")
    except Exception as exc:  # a non-package fails in many ways inside the reader (zip, YAML, fields)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"not a bioimage.io model package ({first})", path=path,
                              fix="pass a zip written by 'unetkit export --format bioimageio' or downloaded from "
                                  "bioimage.io (it holds an rdf.yaml)") from exc
    if getattr(description, "type", None) != "model" or not isinstance(description, v0_5.ModelDescr):
        errors = [f"{'.'.join(map(str, e.loc))}: {e.msg}" for e in description.validation_summary.errors][:3]
        what = f"a bioimage.io {description.type}, not a model" if getattr(description, "type", "model") != "model" \
            else f"an invalid model description ({'; '.join(errors) or 'format ' + str(description.format_version)})"
        raise CheckpointError(what, path=path, fix="check the package with 'bioimageio validate' (bioimageio.core)")
    return description


def _onnx_weights(description: Any, path: Path) -> bytes:
    """The ONNX weights' bytes, their sha256 checked; a package without them is refused."""
    entry = description.weights.onnx
    if entry is None:
        formats = ", ".join(description.weights.available_formats)
        raise CheckpointError(
            f"the package has no ONNX weights (it has: {formats}); unetkit runs only ONNX weights from a package, "
            "because the other formats are programs (pytorch_state_dict imports the package's Python code, "
            "TorchScript is a program PyTorch asks to load from trusted sources only)",
            path=path, fix="add ONNX weights where you trust the package (bioimageio.core's weight converters: "
                           "torchscript_to_onnx, pytorch_to_onnx), or ask its authors for them")
    if str(entry.source).startswith(("http://", "https://")):
        raise CheckpointError(f"the ONNX weights are online ({entry.source}); unetkit reads local packages only",
                              path=path, fix="download the package's zip from bioimage.io and pass that")
    try:
        payload = entry.get_reader().read()  # the reader checks the sha256 too, as a ValueError
    except ValueError:
        payload = b""
    if entry.sha256 is not None and hashlib.sha256(payload).hexdigest() != str(entry.sha256):
        raise CheckpointError(f"the ONNX weights ({entry.source}) do not match their sha256 in the description: "
                              "the package is damaged or was altered", path=path, fix="download the package again")
    return payload


def _unetkit_metadata(description: Any, path: Path) -> dict[str, Any] | None:
    """``config.unetkit`` of a package that unetkit wrote (None for others)."""
    values = getattr(description.config, "unetkit", None)
    if values is None:
        return None
    if not isinstance(values, dict) or values.get("format") != PACKAGE_FORMAT:
        raise CheckpointError("the package's config.unetkit is not unetkit's metadata (no format marker)", path=path)
    if not isinstance(values.get("version"), int) or values["version"] > PACKAGE_VERSION:
        raise CheckpointError(f"the package was written by a newer unetkit (package version {values.get('version')})",
                              path=path, fix="upgrade unetkit")
    return values


def _tile_postprocessing(steps: tuple[Step, ...]) -> Callable[[torch.Tensor], torch.Tensor]:
    def run(outputs: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(postprocess(steps, outputs.numpy()))

    return run


class BioimageioPredictor:
    """Runs a bioimage.io package's ONNX weights on the CPU with ONNX Runtime.

    Takes normalised images (its preprocessing is in :attr:`data_options`), returns its
    outputs after the postprocessing (or, for unetkit's packages, the task's activation).
    """

    def __init__(self, onnx_model: bytes, source: TensorLayout, target: TensorLayout, size_rule: SizeRule, halo: int,
                 activation: Callable[[torch.Tensor], torch.Tensor], data_options: DataOptions, task: Task,
                 path: str | Path | None = None):
        self.source, self.target = source, target
        self.size_rule, self.halo = size_rule, halo
        self.activation = activation
        self.data_options, self.task = data_options, task
        self.in_channels, self.num_outputs = source.channels, target.channels
        self.path = path
        self.session = _session(onnx_model, path)
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise CheckpointError(f"the ONNX weights take {len(inputs)} inputs; the description names one", path=path)
        self.input_name, self.input_type = inputs[0].name, _ONNX_TYPES.get(inputs[0].type, np.float32)

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    @classmethod
    def from_package(cls, path: str | Path) -> BioimageioPredictor:
        """The predictor of a package (.zip, rdf.yaml or bioimageio.yaml), with its data options and task."""
        path = Path(path)
        _, v0_5 = spec_module()
        description = read_description(path)
        if len(description.inputs) != 1 or len(description.outputs) != 1:
            listed = lambda tensors: ", ".join(str(t.id) for t in tensors)  # noqa: E731
            raise _refuse(f"the package has {len(description.inputs)} input(s) ({listed(description.inputs)}) and "
                          f"{len(description.outputs)} output(s) ({listed(description.outputs)})", path)
        source, target = description.inputs[0], description.outputs[0]
        source_layout, source_ids = _layout(source, "input", path)
        target_layout, target_ids = _layout(target, "output", path)
        rule, halo = _size_rule(v0_5, source, target, path)
        preprocessing = PackagePreprocessing(_steps(source.preprocessing, source_ids, str(source.id), "preprocessing", path))
        postprocessing = _steps(target.postprocessing, target_ids, str(target.id), "postprocessing", path)
        metadata = _unetkit_metadata(description, path)
        if metadata is None:
            task: Task = SemanticTask(target_layout.channels)
            data_options = DataOptions(num_classes=target_layout.channels, normalization=preprocessing)
            activation = _tile_postprocessing(postprocessing)
        else:
            try:
                config = UNetConfig.from_dict(metadata["model_config"])
                task = task_from_dict(metadata["task"], config.num_classes)
                data_options = dataclasses.replace(data_options_from_dict(metadata["data"]), normalization=preprocessing)
            except (KeyError, TypeError, ValueError, ConfigError) as exc:
                raise CheckpointError(f"the package's unetkit metadata is damaged ({exc})", path=path) from exc
            if task.num_outputs != target_layout.channels:
                raise CheckpointError(f"the package's unetkit metadata names {task.num_outputs} outputs, its output "
                                      f"has {target_layout.channels} channels: the package is damaged", path=path)
            activation = task.activation
        return cls(_onnx_weights(description, path), source_layout, target_layout, rule, halo, activation,
                   data_options, task, path)

    def _run(self, images: np.ndarray) -> np.ndarray:
        feed = np.ascontiguousarray(self.source.to_package(images)).astype(self.input_type, copy=False)
        try:
            outputs = self.session.run(None, {self.input_name: feed})[0]
        except Exception as exc:  # ONNX Runtime's own exception types
            raise CheckpointError(f"ONNX Runtime failed on an input of shape {feed.shape} ({exc})", path=self.path,
                                  fix="check that the package runs in bioimageio.core ('bioimageio test')") from exc
        return self.target.from_package(np.asarray(outputs, np.float32))

    def _network(self, batch: torch.Tensor) -> torch.Tensor:
        """The package's network on ``(N, C, H, W)``: outputs in (N, K, H', W'), declared halo cropped."""
        images = batch.detach().float().cpu().numpy()
        groups = [images[i : i + 1] for i in range(len(images))] if self.source.one_image_per_run else [images]
        outputs = np.concatenate([self._run(group) for group in groups])
        if self.halo:
            outputs = outputs[..., self.halo : -self.halo, self.halo : -self.halo]
        return torch.from_numpy(np.ascontiguousarray(outputs))

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        return self.activation(run_padded(self._network, batch, self.size_rule)).float()
