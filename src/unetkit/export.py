"""Export for deployment: ONNX and TorchScript files of a trained U-Net.

The exported graph is the network proper: it takes (N, C, H, W) with sides its
:class:`~unetkit.sizes.SizeRule` accepts (multiples of ``2**(depth - 1)`` for 'same'
padding) and returns logits. Padding to such sizes happens outside the graph, in the
backends (:mod:`unetkit.inference`) and the tiler, exactly as :class:`unetkit.UNet` does it in
PyTorch. The ONNX file carries the model configuration, the normalisation and the task as
metadata, so ``unetkit predict model.onnx`` needs no checkpoint; it runs in ONNX Runtime
through :class:`~unetkit.inference.onnx_backend.OnnxRuntimePredictor`.

>>> import tempfile, onnx
>>> from unetkit.model import UNet
>>> path = Path(tempfile.mkdtemp()) / "m.onnx"
>>> export_onnx(UNet(depth=2, base_width=2), path)
>>> sorted(entry.key for entry in onnx.load(str(path)).metadata_props)
['unetkit_data', 'unetkit_model_config', 'unetkit_task']
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import torch
from torch import nn

from .checkpoint import data_options_to_dict, load_checkpoint
from .data.dataset import DataOptions
from .data.io import atomic_write, ensure_can_write
from .errors import ConfigError
from .model import UNet
from .tasks import SemanticTask, Task, task_to_dict

if TYPE_CHECKING:
    from .bioimageio_export import PackageOptions

ONNX_OPSET = 17
EXPORT_FORMATS = ("onnx", "torchscript", "bioimageio")


class NetworkOnly(nn.Module):
    """The U-Net without the pad-and-crop wrapper: the graph that is exported."""

    def __init__(self, model: UNet):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model._forward_unpadded(x)


def _network_for_export(model: UNet) -> NetworkOnly:
    """A CPU, eval-mode copy of the network: exporting never changes the caller's model."""
    copy = UNet(model.config)
    copy.load_state_dict({k: v.detach().to("cpu") for k, v in model.state_dict().items()})
    return NetworkOnly(copy).eval()


def _example_input(model: UNet) -> torch.Tensor:
    side = model.input_size_for(2 * model.size_multiple)
    return torch.zeros(1, model.config.in_channels, side, side)


def onnx_bytes(model: UNet, data_options: DataOptions | None = None, task: Task | None = None) -> bytes:
    """The model as an ONNX file's bytes, with unetkit's metadata."""
    try:
        import onnx
    except ImportError as exc:
        raise ConfigError("ONNX export needs onnx", fix="pip install 'unetkit[export]'") from exc

    buffer = io.BytesIO()
    axes = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _network_for_export(model), (_example_input(model),), buffer, dynamo=False,
            input_names=["image"], output_names=["logits"],
            dynamic_axes={"image": axes, "logits": axes}, opset_version=ONNX_OPSET,
        )
    proto = onnx.load_from_string(buffer.getvalue())
    for key, value in export_metadata(model, data_options, task).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    return proto.SerializeToString()


def export_metadata(model: UNet, data_options: DataOptions | None = None, task: Task | None = None) -> dict[str, str]:
    """What an exported file carries besides the graph, as JSON texts: the network's configuration, the data
    options (the normalisation other tools must apply) and the task (how outputs become labels).

    >>> sorted(export_metadata(UNet(depth=2, base_width=2)))
    ['unetkit_data', 'unetkit_model_config', 'unetkit_task']
    """
    data_options = data_options or DataOptions(num_classes=model.config.num_classes)
    task = task or SemanticTask(model.config.num_classes)
    return {"unetkit_model_config": json.dumps(model.config.to_dict()),
            "unetkit_data": json.dumps(data_options_to_dict(data_options)),
            "unetkit_task": json.dumps(task_to_dict(task))}


def export_onnx(
    model: UNet, path: str | Path, data_options: DataOptions | None = None, overwrite: bool = False,
    task: Task | None = None,
) -> None:
    """Write the model as ONNX (dynamic batch, height and width), atomically."""
    payload = onnx_bytes(model, data_options, task)
    atomic_write(path, lambda target: Path(target).write_bytes(payload), overwrite)


def export_torchscript(model: UNet, path: str | Path, overwrite: bool = False, data_options: DataOptions | None = None,
                       task: Task | None = None) -> None:
    """Write the network as a traced TorchScript module (sizes as for ONNX), with :func:`export_metadata` as
    extra files (``torch.jit.load(path, _extra_files={"unetkit_data": ""})`` reads one back)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(_network_for_export(model), _example_input(model))
    extra = export_metadata(model, data_options, task)
    atomic_write(path, lambda target: torch.jit.save(traced, str(target), _extra_files=extra), overwrite)


FORMAT_SUFFIXES = {"onnx": (".onnx",), "bioimageio": (".zip",), "torchscript": (".pt", ".pth", ".ts", ".jit")}


def export_format_for(out: str | Path, format: str | None = None) -> str:
    """The export format for the file ``out``: ``format`` if given, else the one its name says.

    ``unetkit predict`` tells an exported file by its name (``.onnx``: ONNX Runtime, ``.zip``: a
    bioimage.io package, anything else: PyTorch), so a name that says another format is refused
    rather than written: an ONNX file named ``model.zip`` would open as nothing.

    >>> export_format_for("m.onnx"), export_format_for("m.zip"), export_format_for("m.ts", "torchscript")
    ('onnx', 'bioimageio', 'torchscript')
    >>> export_format_for("m.zip", "onnx")
    Traceback (most recent call last):
    ...
    unetkit.errors.ConfigError: m.zip: an ONNX export's name ends in .onnx, not .zip
      fix: --out m.onnx
    """
    if format is not None and format not in EXPORT_FORMATS:
        raise ConfigError(f"unknown export format {format!r}", fix=f"choose one of {', '.join(EXPORT_FORMATS)}")
    suffix = Path(out).suffix.lower()
    said = next((name for name, suffixes in FORMAT_SUFFIXES.items() if suffix in suffixes), None)
    if format is None:
        if said is None:
            raise ConfigError(f"{out}: the export format is not clear from the name",
                              fix="end --out in .onnx (ONNX), .zip (a bioimage.io package) or .pt (TorchScript), "
                                  "or pass --format")
        return said
    if format == "torchscript" and said not in (None, "torchscript"):
        raise ConfigError(f"{out}: a TorchScript export's name must not end in {suffix}: predict would read it "
                          f"as {'ONNX' if said == 'onnx' else 'a bioimage.io package'}",
                          fix=f"--out {Path(out).with_suffix('.pt')}")
    if format in ("onnx", "bioimageio") and said != format:
        wanted = FORMAT_SUFFIXES[format][0]
        kind = "an ONNX export" if format == "onnx" else "a bioimage.io package"
        raise ConfigError(f"{out}: {kind}'s name ends in {wanted}, not {suffix or 'nothing'}",
                          fix=f"--out {Path(out).with_suffix(wanted)}")
    return format


def export_checkpoint(
    checkpoint: str | Path, out: str | Path, format: str | None = None, overwrite: bool = False,
    package: PackageOptions | None = None, report: Callable[[str], None] = lambda text: None,
) -> None:
    """``unetkit export``: a checkpoint to ONNX, TorchScript or a bioimage.io package (.zip).

    ``format`` None: the one ``out``'s name says (:func:`export_format_for`). ``package``
    (authors, licence, name, test image) describes a bioimage.io package; see :mod:`unetkit.bioimageio_export`.
    ``report`` receives notes (a package's test input cut from the grey HeLa sample for a several-channel model).
    """
    test_image = [package.test_image] if package is not None and package.test_image is not None else []
    ensure_can_write(Path(out), overwrite, inputs=[checkpoint, *test_image])  # before the work and the name's format
    format = export_format_for(out, format)
    if format == "bioimageio":
        from .bioimageio_export import PackageOptions, export_bioimageio

        export_bioimageio(checkpoint, out, package or PackageOptions(), overwrite, report)
        return
    if package is not None:
        raise ConfigError("authors, licence, name and test image describe bioimage.io packages only",
                          fix="end --out in .zip (a bioimage.io package), or leave out --author, --license, --name "
                              "and --test-image")
    loaded = load_checkpoint(checkpoint)
    if format == "onnx":
        export_onnx(loaded.model, out, loaded.data_options, overwrite, loaded.task)
    else:
        export_torchscript(loaded.model, out, overwrite, loaded.data_options, loaded.task)
