"""Checkpoints: written atomically, loaded without ever executing code.

A checkpoint is a ``torch.save`` file holding only tensors and plain values:

- ``format``, ``version``: the marker that it is a unetkit checkpoint;
- ``model_config``: the :class:`~unetkit.model.UNetConfig`, so the file alone rebuilds the model;
- ``data``: mask mode, ignore label and the normalisation that prediction must repeat;
- ``model_state``: the weights;
- ``training`` (optional): optimiser, scheduler, gradient scaler, RNG states, the position
  in the data order (epoch, step), early-stopping state and the training options.

Loading uses ``torch.load(weights_only=True)``: a pickle that would build an arbitrary
object (and so could run code) is refused with :class:`CheckpointError`.

>>> import tempfile
>>> from unetkit.model import UNet
>>> path = Path(tempfile.mkdtemp()) / "model.pt"
>>> save_checkpoint(path, make_checkpoint(UNet(depth=2, base_width=2)))
>>> load_model(path)[0].config.depth
2
"""

from __future__ import annotations

import dataclasses
import io
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .data.dataset import DataOptions
from .data.io import atomic_write
from .data.normalize import Normalization
from .errors import CheckpointError, ConfigError
from .model import UNet, UNetConfig
from .tasks import SemanticTask, Task, task_from_dict, task_to_dict

FORMAT = "unetkit-checkpoint"
VERSION = 1


def data_options_to_dict(options: DataOptions) -> dict[str, Any]:
    return {
        "num_classes": options.num_classes,
        "mask_mode": options.mask_mode,
        "ignore_index": options.ignore_index,
        "normalization": options.normalization.to_dict(),
    }


def data_options_from_dict(values: dict[str, Any]) -> DataOptions:
    return DataOptions(
        num_classes=values["num_classes"],
        mask_mode=values["mask_mode"],
        ignore_index=values["ignore_index"],
        normalization=Normalization.from_dict(values["normalization"]),
    )


def unwrap_model(model: torch.nn.Module) -> UNet:
    """The UNet inside a DDP or compiled wrapper."""
    while hasattr(model, "module") and not isinstance(model, UNet):
        model = model.module
    if hasattr(model, "_orig_mod"):
        model = model._orig_mod
    if not isinstance(model, UNet):
        raise TypeError(f"expected a UNet, got {type(model).__name__}")
    return model


def make_checkpoint(
    model: torch.nn.Module,
    data_options: DataOptions | None = None,
    training: dict[str, Any] | None = None,
    task: Task | None = None,
) -> dict[str, Any]:
    """The checkpoint dictionary of a model (weights copied to the CPU).

    ``data_options``: how its images were normalised and masks read (default: unetkit's defaults, for a new
    network); ``task``: how its outputs become labels (default: a pixel model of its outputs). To save a model
    loaded and changed (fine-tuned, say), pass both as :func:`load_checkpoint` gave them back: an object model
    saved without its task is refused, not turned into a pixel model.

    >>> from unetkit.model import UNet, UNetConfig
    >>> make_checkpoint(UNet(UNetConfig(depth=2, base_width=4, num_classes=2)), DataOptions(mask_mode="labels"))
    Traceback (most recent call last):
    ...
    ValueError: these data options are an object model's (masks read as object labels): pass its task too, task=unetkit.load_checkpoint(PATH).task, or it would be saved as a pixel model
    """
    unet = unwrap_model(model)
    if task is None and data_options is not None and data_options.mask_mode == "labels":
        raise ValueError(
            "these data options are an object model's (masks read as object labels): pass its task too, "
            "task=unetkit.load_checkpoint(PATH).task, or it would be saved as a pixel model")
    if task is None and data_options is not None and data_options.num_classes != unet.config.num_classes:
        outputs, classes = unet.config.num_classes, data_options.num_classes
        raise ValueError(
            f"the data options say {classes} class{'es' if classes > 1 else ''}, the network has {outputs} "
            f"output{'s' if outputs > 1 else ''}: pass the data options and task it was trained with "
            f"(unetkit.load_checkpoint(PATH) gives both), or, for a new network, DataOptions(num_classes={outputs})")
    data_options = data_options or DataOptions(num_classes=unet.config.num_classes)
    payload: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "model_config": unet.config.to_dict(),
        "data": data_options_to_dict(data_options),
        "task": task_to_dict(task or SemanticTask(unet.config.num_classes)),
        "model_state": {k: v.detach().to("cpu", copy=True) for k, v in unet.state_dict().items()},
    }
    if training is not None:
        payload["training"] = training
    return payload


def save_checkpoint(path: str | Path, payload: dict[str, Any], overwrite: bool = False) -> None:
    """Write atomically: a crash leaves the previous file or the new one, never half of one.

    A failed write (disk full, say) raises :class:`CheckpointError` and leaves an existing
    file at ``path`` as it was.

    >>> import tempfile
    >>> from unetkit.model import UNet
    >>> path = Path(tempfile.mkdtemp()) / "model.pt"
    >>> payload = make_checkpoint(UNet(depth=2, base_width=2))
    >>> save_checkpoint(path, payload)
    >>> save_checkpoint(path, payload)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    unetkit.errors.OutputExistsError: .../model.pt: output exists already
      fix: pass --overwrite, or choose another --out
    >>> save_checkpoint(path, payload, overwrite=True)
    >>> [file.name for file in path.parent.iterdir()]  # replaced in one step: no temporary file left beside it
    ['model.pt']
    """
    try:
        atomic_write(path, lambda target: target.write_bytes(serialized(payload)), overwrite=overwrite)
    except OSError as exc:
        kept = "the previous file is intact" if Path(path).exists() else "nothing was written"
        raise CheckpointError(f"could not write the checkpoint ({exc.strerror or exc}); {kept}", path=path,
                              fix="free disk space (or fix permissions), then continue with --resume") from exc


def serialized(payload: dict[str, Any]) -> memoryview:
    """``torch.save``'s bytes of ``payload``, made in memory: written to a file by torch's own writer, a full
    disk comes out as a bare ``RuntimeError`` ("enforce fail ... unexpected pos"); written by Python, as the
    ``OSError`` it is."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getbuffer()


def is_torchscript(path: Path) -> bool:
    """True if ``path`` is a TorchScript archive (``torch.jit.save``: a zip holding the program's code).

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> torch.jit.save(torch.jit.script(torch.nn.ReLU()), folder / "m.pt")
    >>> torch.save({"weights": torch.zeros(1)}, folder / "c.pt")
    >>> is_torchscript(folder / "m.pt"), is_torchscript(folder / "c.pt")
    (True, False)
    """
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.split("/", 1)[-1].startswith("code/") for name in archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def package_description_in(folder: Path) -> Path | None:
    """The bioimage.io description in ``folder`` (an unpacked package): ``rdf.yaml``, ``bioimageio.yaml`` or
    ``NAME.bioimageio.yaml``; None if there is none (or the folder cannot be listed)."""
    from .inference.bioimageio_backend import is_package

    try:
        names = sorted(entry.name for entry in folder.iterdir() if entry.name.endswith(".yaml"))
    except OSError:
        names = ["rdf.yaml", "bioimageio.yaml"]
    return next((folder / name for name in names if is_package(name) and (folder / name).is_file()), None)


def _model_file_in(folder: Path) -> Path:
    """A model file in ``folder`` to name in a hint (``best.pt`` if there is none: a run's folder, say)."""
    for name in ("best.pt", "last.pt"):
        if (folder / name).is_file():
            return folder / name
    try:
        found = sorted(entry for entry in folder.iterdir() if entry.suffix.lower() in (".pt", ".onnx", ".zip"))
    except OSError:
        found = []
    return found[0] if found else folder / "best.pt"


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint dictionary; never runs code from the file."""
    path = Path(path)
    if path.is_dir():
        description = package_description_in(path)
        fix = f"give a file in it, such as {_model_file_in(path)}" if description is None else (
            f"predict and evaluate take the package's {description}; export and --init need the .pt checkpoint "
            "that the package was made from")
        raise CheckpointError("is a folder, not a checkpoint file", path=path, fix=fix)
    if not path.is_file():
        raise CheckpointError("checkpoint not found", path=path)
    if is_torchscript(path):  # before torch.load, which would hand it to torch.jit.load
        raise CheckpointError(
            "a TorchScript program (what 'unetkit export --format torchscript' writes), not a checkpoint: unetkit "
            "runs checkpoints, ONNX files and bioimage.io packages", path=path,
            fix="use the checkpoint it was exported from, or export that to ONNX (--format onnx)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except PermissionError as exc:
        raise CheckpointError("cannot read the checkpoint: permission denied", path=path,
                              fix="check the file's permissions (ls -l)") from exc
    except pickle.UnpicklingError as exc:
        raise _unpickling_error(exc, path) from exc
    except Exception as exc:  # a damaged file fails in many ways inside the unpickler
        raise CheckpointError(
            f"not a PyTorch checkpoint file ({type(exc).__name__}): it may be truncated or another kind of file",
            path=path,
            fix="pass a .pt file written by 'unetkit train' or 'unetkit import-keras'" + _other_format_hint(path),
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(
            "not a unetkit checkpoint (no unetkit format marker)",
            path=path,
            fix="pass a .pt file written by 'unetkit train' or 'unetkit import-keras'",
        )
    version = payload.get("version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise CheckpointError(f"checkpoint version is {version!r}, not a number: the file is damaged", path=path)
    if version > VERSION:
        raise CheckpointError(
            f"checkpoint version {version} is newer than this unetkit reads ({VERSION})",
            path=path,
            fix="upgrade unetkit",
        )
    return payload


def _other_format_hint(path: Path) -> str:
    """A hint when the file is an ONNX model or a NumPy array under another name."""
    with open(path, "rb") as handle:
        head = handle.read(16)
    if head.startswith(b"\x93NUMPY"):
        return "; this file is a NumPy array (.npy), not a checkpoint"
    if head[:1] == b"\x08" and b"onnx" in open(path, "rb").read(256).lower():
        return "; this file looks like an ONNX model: give it the .onnx extension"
    return ""


def _unpickling_error(exc: pickle.UnpicklingError, path: Path) -> CheckpointError:
    """Tell a file that asks for Python objects (refused unrun) from one that is no checkpoint."""
    cause = str(exc.__context__ or exc)
    marker = "Unsupported global: GLOBAL "
    if marker in cause:
        wanted = cause.split(marker, 1)[1].split()[0]
        return CheckpointError(
            f"refused: the file asks to build the Python object {wanted}, which a unetkit checkpoint never "
            "holds (building arbitrary objects is how a malicious file runs code); nothing from it was run",
            path=path,
            fix="load only checkpoints written by unetkit, or convert trusted weights with unetkit's API",
        )
    return CheckpointError(
        "not a PyTorch checkpoint file (its contents are not what torch.save writes)",
        path=path,
        fix="pass a .pt file written by 'unetkit train' or 'unetkit import-keras'" + _other_format_hint(path),
    )


@dataclass(frozen=True)
class LoadedModel:
    """A checkpoint's model (in eval mode), data options and task."""

    model: UNet
    data_options: DataOptions
    task: Task


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """Rebuild the model of a checkpoint, refusing damaged or non-finite weights.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> save_checkpoint(folder / "m.pt", make_checkpoint(UNet(UNetConfig(depth=2, base_width=2, num_classes=3))))
    >>> loaded = load_checkpoint(folder / "m.pt")
    >>> loaded.model.config.num_classes, loaded.model.training, loaded.task.name, loaded.data_options.mask_mode
    (3, False, 'semantic', 'classes')
    >>> diverged = make_checkpoint(UNet(UNetConfig(depth=2, base_width=2)))
    >>> _ = diverged["model_state"]["inc.block.0.weight"].fill_(float("nan"))
    >>> save_checkpoint(folder / "diverged.pt", diverged)
    >>> load_checkpoint(folder / "diverged.pt")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    unetkit.errors.CheckpointError: .../diverged.pt: checkpoint holds NaN or infinite weights (inc.block.0.weight): the training that wrote it diverged
      fix: use an earlier checkpoint, or train again with a lower --lr
    """
    payload = read_checkpoint(path)
    try:
        config = UNetConfig.from_dict(payload["model_config"])
        model = UNet(config)
        model.load_state_dict(payload["model_state"])
        data_options = data_options_from_dict(payload["data"])
        task = task_from_dict(payload.get("task"), config.num_classes)
    except (KeyError, TypeError, ValueError, RuntimeError, ConfigError) as exc:
        raise CheckpointError(f"checkpoint is damaged or inconsistent: {exc}", path=path) from exc
    check_finite_weights(payload["model_state"], path)
    return LoadedModel(model.to(device).eval(), data_options, task)


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[UNet, DataOptions]:
    """``(network, data options)``: the model of a checkpoint, in eval mode, and how its images are normalised.
    :func:`load_checkpoint` gives its task as well (needed to save it again: :func:`make_checkpoint`).

    The bare network: its outputs are logits. :func:`unetkit.predict_tiled` runs a bare network with a
    sigmoid for one output and a softmax over several, right for pixel models only; an object model's
    outputs take the activation of its task (two sigmoids for the ``distance`` method), which
    :func:`unetkit.load_predictor` applies, with the task that turns outputs into labels.

    >>> import tempfile
    >>> import numpy as np
    >>> from unetkit.model import labels_from_logits
    >>> path = Path(tempfile.mkdtemp()) / "m.pt"
    >>> save_checkpoint(path, make_checkpoint(UNet(UNetConfig(depth=2, base_width=2))))
    >>> network, data_options = load_model(path)
    >>> image = data_options.normalization.apply(np.arange(256, dtype=np.uint8).reshape(1, 16, 16))
    >>> logits = network(torch.from_numpy(image)[None])
    >>> tuple(logits.shape), tuple(labels_from_logits(logits).shape)
    ((1, 1, 16, 16), (1, 16, 16))
    """
    loaded = load_checkpoint(path, device)
    return loaded.model, loaded.data_options


def check_finite_weights(state: dict[str, torch.Tensor], path: str | Path) -> None:
    """Raise if any weight is NaN or infinite (a diverged run saved them)."""
    bad = [name for name, tensor in state.items() if tensor.is_floating_point() and not torch.isfinite(tensor).all()]
    if bad:
        raise CheckpointError(
            f"checkpoint holds NaN or infinite weights ({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''}): "
            "the training that wrote it diverged",
            path=path,
            fix="use an earlier checkpoint, or train again with a lower --lr",
        )


def check_same_config(payload: dict[str, Any], expected: UNetConfig, path: str | Path) -> None:
    """Raise if a checkpoint's model differs from ``expected``, naming the fields."""
    stored = payload["model_config"]
    differing = {
        name: (stored.get(name), value)
        for name, value in dataclasses.asdict(expected).items()
        if stored.get(name) != value
    }
    if differing:
        listed = ", ".join(f"{k}: checkpoint {a!r} vs requested {b!r}" for k, (a, b) in differing.items())
        raise CheckpointError(
            f"checkpoint is of another model configuration ({listed})",
            path=path,
            fix="use the same model options as the checkpoint, or start a new run",
        )
