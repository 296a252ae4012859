"""A checkpoint as a bioimage.io model package (model format 0.5), for Fiji, ilastik and napari.

The package (a zip) holds the network as TorchScript (traced) and ONNX weights, the input and
output axes with the size rule, the normalisation as the format's preprocessing, the
task's postprocessing, test tensors cut from the embedded HeLa sample, a cover, a README and
unetkit's own metadata (model configuration, data options, task under ``config.unetkit``),
so that :mod:`unetkit.inference.bioimageio_backend` reads it back losslessly.

The description is built with ``bioimageio.spec`` (extra ``bioimageio``), which writes the zip
and validates it again, files and hashes included, before :func:`export_bioimageio` returns;
no field makes the validator look anything up online (no GitHub user names, no URLs).

>>> import pytest, tempfile
>>> _ = pytest.importorskip("bioimageio.spec")
>>> from unetkit.model import UNet
>>> from unetkit.checkpoint import make_checkpoint, save_checkpoint
>>> folder = Path(tempfile.mkdtemp())
>>> save_checkpoint(folder / "m.pt", make_checkpoint(UNet(depth=2, base_width=2)))
>>> package = export_bioimageio(folder / "m.pt", folder / "m.zip", PackageOptions(authors=("Ada Lovelace",)))
>>> import zipfile; sorted(zipfile.ZipFile(package).namelist())[:4]
['README.md', 'cover.png', 'rdf.yaml', 'sample_input.tif']
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import tifffile
import torch

from .bioimageio_content import (
    UNET_CITATION,
    PackageOutputs,
    ReadmeFacts,
    package_outputs,
    package_readme,
    training_data,
)
from .checkpoint import LoadedModel, data_options_to_dict, load_checkpoint, read_checkpoint
from .data.dataset import load_image_planes
from .data.io import atomic_write, ensure_can_write, layout_hint, plane_shape, read_planes, write_image
from .data.normalize import Normalization, to_channels_first
from .data.sample import sample_path
from .errors import ConfigError
from .export import ONNX_OPSET, export_torchscript, onnx_bytes
from .inference.bioimageio_backend import PACKAGE_FORMAT, PACKAGE_VERSION, spec_module
from .inference.bioimageio_ops import PackagePreprocessing
from .inference.input_notes import input_notes
from .inference.predictor import TorchPredictor
from .model import count_parameters
from .tasks import task_to_dict
from .training.history import read_rows
from .visualize import display_image, overlay

#: bioimage.io.spec refuses a test tensor whose every value lies within this of 0 ("too small for reliable testing")
SPEC_SMALLEST = 1e-4
#: what test_model allows between the packaged test output and each weight format's answer
TOLERANCE = (1e-3, 1e-4)  # (relative, absolute); no element may miss it
TEST_OUTPUT_SIDE = 256
_NAME = re.compile(r"[^A-Za-z0-9_+\- ()]")


@dataclass(frozen=True)
class PackageOptions:
    """What the package says about its origin.

    The licence is the model's (the weights are the user's work): CC-BY-4.0 by default, a
    licence for works rather than software, asking for attribution, and the most common on
    bioimage.io. Any SPDX identifier is accepted (``MIT``, ``CC0-1.0``...).
    """

    authors: tuple[str, ...] = ("unetkit user",)
    license: str = "CC-BY-4.0"
    name: str | None = None  # default: "unetkit U-Net <run folder>"
    #: an image of the model's own kind (its channels, its microscope) that the test input, the sample and the cover
    #: are cut from; default: the embedded HeLa sample (grey, repeated to the model's channels)
    test_image: str | None = None


def package_name(options: PackageOptions, checkpoint: Path) -> str:
    """The package's name: letters, digits and ``_+- ()``, 5 to 128 characters.

    >>> package_name(PackageOptions(), Path("runs/hela.v2/best.pt"))
    'unetkit U-Net hela-v2'
    """
    if options.name is not None:
        if _NAME.search(options.name) or not 5 <= len(options.name) <= 128:
            raise ConfigError(f"package name {options.name!r} is not allowed",
                              fix="use 5 to 128 letters, digits, spaces and _+-() only")
        return options.name
    run = _NAME.sub("-", checkpoint.resolve().parent.name)
    return f"unetkit U-Net {run}"[:128]


def _check_options(options: PackageOptions, v0_5: Any) -> None:
    if not options.authors or not all(name.strip() for name in options.authors):
        raise ConfigError("a package needs at least one author name", fix="pass --author 'Your Name'")
    try:
        v0_5.LicenseId(options.license)
    except ValueError as exc:  # pydantic's ValidationError is one
        raise ConfigError(f"unknown licence {options.license!r}",
                          fix="give an SPDX licence identifier, e.g. CC-BY-4.0, MIT or CC0-1.0") from exc


def _run_options(checkpoint: Path) -> dict[str, Any] | None:
    """The training options of the run: from the checkpoint (last.pt), else config.json beside it."""
    payload = read_checkpoint(checkpoint)
    if isinstance(payload.get("training"), dict) and isinstance(payload["training"].get("config"), dict):
        return payload["training"]["config"]
    config_file = checkpoint.parent / "config.json"
    if config_file.is_file():
        try:
            return json.loads(config_file.read_text())
        except ValueError as exc:
            raise ConfigError(f"cannot read the run's options ({exc})", path=config_file) from exc
    return None


def image_crop(path: str | Path, rule_input_side: int, in_channels: int) -> np.ndarray:
    """A centred square of the first plane of the image at ``path`` as recorded, ``(C, side, side)`` float32: the
    package's test input cut from an image of the model's own kind (``--test-image``), where the HeLa sample would
    be grey channels repeated (an RGB histology model's cover would show nothing of what it does).

    >>> import tempfile
    >>> from PIL import Image
    >>> tile = Path(tempfile.mkdtemp()) / "tile.png"
    >>> Image.fromarray(np.full((40, 50, 3), (230, 180, 200), np.uint8)).save(tile)
    >>> crop = image_crop(tile, 32, in_channels=3)
    >>> crop.shape, crop[:, 0, 0].tolist()
    ((3, 32, 32), [230.0, 180.0, 200.0])
    """
    path = Path(path)
    # read as predict reads it: a colour palette's indices and NaN or infinite pixels are refused
    _, _, image = load_image_planes(path, Normalization("none"))[0]
    if image.shape[0] != in_channels:
        raise ConfigError(f"the test image has {image.shape[0]} channel(s) and the model takes {in_channels}"
                          f"{layout_hint(path)}",
                          path=path, fix=f"give an image of {in_channels} channel(s), of the kind the model was "
                                          "trained on, or leave --test-image out")
    return _centred_square(image, rule_input_side)


def _centred_square(image: np.ndarray, side: int) -> np.ndarray:
    """The centred square of a (C, H, W) image, ``side`` or its shorter side if less, as float32."""
    height, width = image.shape[1:]
    side = min(side, height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return image[:, top : top + side, left : left + side].astype(np.float32)


def sample_crop(rule_input_side: int, in_channels: int, normalization: Normalization = Normalization()) -> np.ndarray:
    """A centred square of frame 15 of the HeLa held-out sample, ``(C, side, side)`` float32; grey repeated to
    ``in_channels``. As recorded (16-bit values) for a model that normalises each image itself (percentile, minmax);
    in the range the model was trained in otherwise, so that its test output and cover show a real prediction:
    0 to the divisor for ``scale`` (a model of 8-bit images divides by 255); for ``none``, whose training range
    the checkpoint does not record, 0 to 1 (a guess: images normalised before unetkit saw them).

    >>> crop = sample_crop(64, in_channels=3)
    >>> crop.shape, crop.dtype, bool(crop.min() > 30000)
    ((3, 64, 64), dtype('float32'), True)
    >>> scaled = sample_crop(64, 1, Normalization("scale", high=255.0))
    >>> bool(scaled.min() >= 0 and 200 < scaled.max() <= 255)
    True
    """
    frame = read_planes(sample_path("heldout") / "images" / "hela.tif")[0]
    crop = _centred_square(to_channels_first(frame), rule_input_side)
    if normalization.mode in ("scale", "none"):  # the model divides by a fixed number, or not at all
        unit = np.clip(Normalization().apply(crop), 0.0, 1.0)
        crop = unit * (normalization.high if normalization.mode == "scale" else 1.0)
    return np.repeat(crop[:1], in_channels, axis=0).astype(np.float32)


@dataclass(frozen=True)
class _TestTensors:
    raw: np.ndarray  # (C, H, W) as recorded: the test input
    image: np.ndarray  # (C, H, W) after the package's preprocessing
    output: np.ndarray  # (K, H', W'): what the package returns
    labels: np.ndarray  # (H', W'): the task's labels, for the cover


def _test_tensors(loaded: LoadedModel, preprocessing: PackagePreprocessing, outputs: PackageOutputs,
                  test_image: str | Path | None = None) -> _TestTensors:
    """Run the checkpoint in fp32 PyTorch on the crop (of ``test_image``, else of the HeLa sample): the answer each
    weight format must reproduce."""
    model, task = loaded.model, loaded.task
    rule = model.size_rule
    wanted = rule.input_size_for(TEST_OUTPUT_SIDE)
    raw = sample_crop(wanted, model.config.in_channels, loaded.data_options.normalization) if test_image is None \
        else image_crop(test_image, wanted, model.config.in_channels)
    if raw.shape[-1] < rule.minimum:
        raise ConfigError(f"the test image is {raw.shape[-1]} pixels on its shorter side, below the model's smallest "
                          f"input ({rule.minimum})", path=test_image, fix="give a larger image")
    side = rule.round_down(raw.shape[-1])
    raw = raw[:, :side, :side]
    image = preprocessing.apply(raw)
    logits = TorchPredictor(model, None, activation=lambda x: x)(torch.from_numpy(image)[None])
    activated = task.activation(logits)
    output = (logits if outputs.raw else activated)[0].numpy().astype(np.float32)
    for what, tensor in (("the crop of the test image", raw), ("the model's output on that crop", output)):
        if test_image is not None and np.abs(tensor).max(initial=0.0) < SPEC_SMALLEST:  # the spec's own test
            raise ConfigError(f"{what} is 0 everywhere (every value below {SPEC_SMALLEST:g}), which "
                              "a bioimage.io package's test tensors may not be", path=test_image,
                              fix="give an image with objects in its centre (the crop is cut from the centre of "
                                  "its first plane)")
    return _TestTensors(raw, image, output, task.labels(activated[0].numpy()))


def _cover(tensors: _TestTensors, halo: int) -> np.ndarray:
    """The crop beside the crop with the predicted labels over it: 2:1, uint8 RGB."""
    image = tensors.image[:, halo : tensors.image.shape[1] - halo, halo : tensors.image.shape[2] - halo]
    picture = (display_image(image) * 255).astype(np.uint8)
    return np.concatenate([picture, overlay(image, tensors.labels)], axis=1)


def _write_files(folder: Path, loaded: LoadedModel, tensors: _TestTensors, readme: str) -> dict[str, Path]:
    model = loaded.model
    files = {name: folder / name for name in (
        "weights_torchscript.pt", "weights.onnx", "test_input.npy", "test_output.npy", "sample_input.tif",
        "sample_output.tif", "cover.png", "README.md")}
    export_torchscript(model, files["weights_torchscript.pt"], data_options=loaded.data_options, task=loaded.task)
    files["weights.onnx"].write_bytes(onnx_bytes(model, loaded.data_options, loaded.task))
    np.save(files["test_input.npy"], tensors.raw[None])
    np.save(files["test_output.npy"], tensors.output[None])
    for name, array in (("sample_input.tif", tensors.raw), ("sample_output.tif", tensors.output)):
        tifffile.imwrite(files[name], array[0] if array.shape[0] == 1 else array, photometric="minisblack")
    write_image(files["cover.png"], _cover(tensors, model.size_rule.halo))
    files["README.md"].write_text(readme, encoding="utf-8")  # not Windows' cp1252: names, "Maška" of the sample
    return files


def _axes(v0_5: Any, channel_names: tuple[str, ...], rule: Any, *, output: bool) -> list[Any]:
    """(batch, channel, y, x): inputs of ``minimum + n * step``; outputs sized from the input."""
    axes: list[Any] = [v0_5.BatchAxis(), v0_5.ChannelAxis(channel_names=[v0_5.Identifier(n) for n in channel_names])]
    for axis in ("y", "x"):
        if output:
            size = v0_5.SizeReference(tensor_id=v0_5.TensorId("input"), axis_id=v0_5.AxisId(axis),
                                      offset=-2 * rule.halo)
            axes.append(v0_5.SpaceOutputAxis(id=v0_5.AxisId(axis), size=size))
        else:
            size = v0_5.ParameterizedSize(min=rule.minimum, step=rule.step)
            axes.append(v0_5.SpaceInputAxis(id=v0_5.AxisId(axis), size=size))
    return axes


def _steps(steps: Any) -> list[dict[str, Any]]:
    """Steps as the format's dictionaries; the spec turns them into its step descriptions."""
    return [{"id": name, "kwargs": kwargs} if kwargs else {"id": name} for name, kwargs in steps]


def _description(v0_5: Any, *, name: str, loaded: LoadedModel, files: dict[str, Path], options: PackageOptions,
                 outputs: PackageOutputs, preprocessing: PackagePreprocessing, training: dict[str, Any] | None,
                 version: str) -> Any:
    model, task = loaded.model, loaded.task
    rule = model.size_rule
    channels = ("raw",) if model.config.in_channels == 1 else tuple(
        f"channel{i}" for i in range(model.config.in_channels))
    data = training_data(training)
    float32 = v0_5.IntervalOrRatioDataDescr(type="float32")
    relative, absolute = TOLERANCE
    return v0_5.ModelDescr(
        name=name,
        description=f"2D U-Net for {task.name} segmentation ({model.config.num_classes} output channel(s)), "
                    f"trained and packaged with unetkit {version}.",
        version="0.1.0",
        authors=[v0_5.Author(name=author) for author in options.authors],  # never github_user: a lookup
        cite=[v0_5.CiteEntry(text=UNET_CITATION[0], doi=v0_5.Doi(UNET_CITATION[1]))],
        license=options.license,
        tags=["unet", "2d", "segmentation", f"{task.name}-segmentation", "unetkit", "pytorch", "onnx",
              *(data.tags if data else ())],
        documentation=v0_5.FileDescr(source=files["README.md"]),
        covers=[v0_5.FileDescr(source=files["cover.png"])],
        training_data=None if data is None else v0_5.DatasetDescr(
            name=data.name, description=data.description, tags=list(data.tags),
            cite=[v0_5.CiteEntry(text=text, doi=v0_5.Doi(doi)) for text, doi in data.citations]),
        inputs=[v0_5.InputTensorDescr(
            id=v0_5.TensorId("input"), axes=_axes(v0_5, channels, rule, output=False), data=float32,
            test_tensor=v0_5.FileDescr(source=files["test_input.npy"]),
            sample_tensor=v0_5.FileDescr(source=files["sample_input.tif"]),
            preprocessing=_steps(preprocessing.steps))],
        outputs=[v0_5.OutputTensorDescr(
            id=v0_5.TensorId("output"), axes=_axes(v0_5, outputs.channel_names, rule, output=True), data=float32,
            test_tensor=v0_5.FileDescr(source=files["test_output.npy"]),
            sample_tensor=v0_5.FileDescr(source=files["sample_output.tif"]),
            postprocessing=_steps(outputs.postprocessing))],
        weights=v0_5.WeightsDescr(
            torchscript=v0_5.TorchscriptWeightsDescr(
                source=files["weights_torchscript.pt"], pytorch_version=v0_5.Version(torch.__version__.split("+")[0])),
            onnx=v0_5.OnnxWeightsDescr(source=files["weights.onnx"], opset_version=ONNX_OPSET, parent="torchscript")),
        config=v0_5.Config(
            bioimageio=v0_5.BioimageioConfig(reproducibility_tolerance=[v0_5.ReproducibilityTolerance(
                relative_tolerance=relative, absolute_tolerance=absolute, mismatched_elements_per_million=0)]),
            unetkit={"format": PACKAGE_FORMAT, "version": PACKAGE_VERSION, "unetkit": version,
                     "model_config": model.config.to_dict(), "data": data_options_to_dict(loaded.data_options),
                     "task": task_to_dict(task)}),
    )


def export_bioimageio(
    checkpoint: str | Path, out: str | Path, options: PackageOptions = PackageOptions(), overwrite: bool = False,
    report: Callable[[str], None] = lambda text: None,
) -> Path:
    """Write ``checkpoint`` as a bioimage.io model package ``out`` (.zip), validated; returns ``out``. ``report``
    receives a note when a several-channel model's test input and cover come from the grey HeLa sample."""
    from . import __version__
    from .bioimageio_content import normalization_steps

    checkpoint, out = Path(checkpoint), Path(out)
    if out.suffix.lower() != ".zip":
        raise ConfigError("a bioimage.io package is a .zip file", path=out, fix=f"--out {out.with_suffix('.zip')}")
    test_image = [] if options.test_image is None else [Path(options.test_image)]
    ensure_can_write(out, overwrite, inputs=[checkpoint, *test_image])
    spec, v0_5 = spec_module()
    _check_options(options, v0_5)
    loaded = load_checkpoint(checkpoint)
    training = _run_options(checkpoint)
    outputs = package_outputs(loaded.task, loaded.model.config.num_classes)
    preprocessing = PackagePreprocessing(tuple(normalization_steps(loaded.data_options.normalization)))
    tensors = _test_tensors(loaded, preprocessing, outputs, options.test_image)
    if options.test_image is not None:  # what unetkit predict would say of it: a 16-bit image for an 8-bit model, say
        for note in input_notes(preprocessing, Path(options.test_image).name, tensors.image,
                                np.dtype(plane_shape(options.test_image).dtype)):
            report(f"the package's test input and cover: {note}")
    if options.test_image is None and loaded.model.config.in_channels > 1:
        report(f"the package's test input and cover are the grey HeLa sample repeated to the model's "
               f"{loaded.model.config.in_channels} channels, which shows little of what it does: --test-image IMAGE "
               "cuts them from an image of the model's own kind")
    name = package_name(options, checkpoint)
    readme = package_readme(ReadmeFacts(
        name=name, config=loaded.model.config, parameters=count_parameters(loaded.model),
        data_options=loaded.data_options, task=loaded.task, outputs=outputs, size_rule=loaded.model.size_rule,
        test_shape=tuple(tensors.raw[None].shape), tolerance=TOLERANCE, source=checkpoint.name,
        unetkit_version=__version__, training=training,
        log_rows=tuple(read_rows(checkpoint.parent / "log.csv")),
        test_image=None if options.test_image is None else Path(options.test_image).name))
    with tempfile.TemporaryDirectory(prefix="unetkit-package-") as folder:
        files = _write_files(Path(folder), loaded, tensors, readme)
        description = _description(v0_5, name=name, loaded=loaded, files=files, options=options, outputs=outputs,
                                   preprocessing=preprocessing, training=training, version=__version__)
        atomic_write(out, lambda target: spec.save_bioimageio_package(description, output_path=target), overwrite)
    return out
