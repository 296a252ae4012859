"""bioimage.io model packages: written, validated and tested as the model zoo does, offline; read and run.

Every test here runs with the network blocked: any attempt to resolve a host or connect
fails the test (the validator must look nothing up online).
"""

from __future__ import annotations

import io
import json
import socket
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch

pytest.importorskip("bioimageio.core", reason="needs the 'bioimageio' extra: pip install 'unetkit[bioimageio]'")

from bioimageio.core import predict as core_predict  # noqa: E402
from bioimageio.core import test_model as model_test  # noqa: E402  (renamed: pytest would collect it)
from bioimageio.spec import load_description  # noqa: E402
from bioimageio.spec.model import v0_5 as v  # noqa: E402
from PIL import Image  # noqa: E402

from bioimageio_helpers import (  # noqa: E402
    NetworkGuard, TinyCNN, export_onnx, export_torchscript, npy, save_package, space_axes)
from unetkit import PredictOptions, TileOptions, UNet, make_checkpoint, predict_files, save_checkpoint  # noqa: E402
from unetkit.bioimageio_export import export_bioimageio, sample_crop  # noqa: E402
from unetkit.checkpoint import data_options_from_dict, load_checkpoint  # noqa: E402
from unetkit.cli import main  # noqa: E402
from unetkit.data.dataset import DataOptions  # noqa: E402
from unetkit.data.io import read_planes  # noqa: E402
from unetkit.data.normalize import Normalization  # noqa: E402
from unetkit.data.sample import sample_path  # noqa: E402
from unetkit.errors import CheckpointError, ConfigError  # noqa: E402
from unetkit.inference.bioimageio_backend import BioimageioPredictor  # noqa: E402
from unetkit.inference.loading import load_predictor  # noqa: E402
from unetkit.model import UNetConfig  # noqa: E402
from unetkit.sizes import SizeRule  # noqa: E402
from unetkit.tasks import SemanticTask, task_from_dict  # noqa: E402
from unetkit.tiling import predict_tiled  # noqa: E402
from unetkit.training.config import TrainConfig  # noqa: E402

QUIET = lambda text: None  # noqa: E731
REPRODUCED = {f"Reproduce test outputs from test inputs ({f})" for f in ("onnx", "torchscript")}


@pytest.fixture(scope="module", autouse=True)
def network():
    with NetworkGuard() as guard:
        yield guard


@pytest.fixture(autouse=True)
def offline(network):
    yield
    attempts = list(network.attempts)
    network.attempts.clear()
    assert not attempts, f"the test tried to use the network: {attempts}"


@pytest.fixture(scope="module")
def same_run(tmp_path_factory) -> Path:
    """A run folder: best.pt of a tiny 'same' U-Net (percentiles 2 and 99.5), config.json, log.csv."""
    run = tmp_path_factory.mktemp("run")
    torch.manual_seed(0)
    options = DataOptions(normalization=Normalization("percentile", 2.0, 99.5))
    model = UNet(depth=3, base_width=4).eval()
    with torch.no_grad():  # centre the logits on the test crop, so that the untrained net labels half of it
        logits = model(torch.from_numpy(options.normalization.apply(sample_crop(256, 1)))[None])
        model.head.bias -= logits.median()
    save_checkpoint(run / "best.pt", make_checkpoint(model, options))
    config = TrainConfig(out=str(run), data="/home/someone/secret-project/nuclei", depth=3, base_width=4,
                         normalization="percentile")
    (run / "config.json").write_text(json.dumps(config.to_dict()))
    (run / "log.csv").write_text("epoch,step,loss,val_dice,val_iou\n1,50,0.6,0.8000,0.7000\n2,100,0.4,0.9100,0.8300\n")
    return run


@pytest.fixture(scope="module")
def same_package(same_run) -> Path:
    out = same_run / "model.zip"
    code = main(["export", str(same_run / "best.pt"), "--format", "bioimageio", "--out", str(out),
                 "--author", "Ada Lovelace", "--author", "Alan Turing", "--license", "MIT"])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def valid_package(tmp_path_factory) -> Path:
    """A valid-padding two-class (softmax) U-Net, as the paper's but small: output 2 x halo smaller."""
    folder = tmp_path_factory.mktemp("valid")
    torch.manual_seed(0)
    save_checkpoint(folder / "valid.pt", make_checkpoint(UNet(depth=3, base_width=4, padding="valid", num_classes=2),
                                                         task=SemanticTask(2)))
    return export_bioimageio(folder / "valid.pt", folder / "valid.zip")


def _checkpoint_of(package: Path) -> Path:
    return package.parent / ("best.pt" if package.name == "model.zip" else "valid.pt")


def _member(package: Path, name: str) -> bytes:
    with zipfile.ZipFile(package) as archive:
        return archive.read(name)


def _rewrite(package: Path, out: Path, changes: dict) -> Path:
    """A copy of a package zip with some members' bytes changed (a function of the old bytes)."""
    with zipfile.ZipFile(package) as source, zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            target.writestr(item, changes[item.filename](data) if item.filename in changes else data)
    return out


def test_the_network_guard_blocks_and_records_connections(network):
    with pytest.raises(OSError):
        socket.create_connection(("bioimage.io", 443), timeout=1)
    assert network.attempts
    network.attempts.clear()


@pytest.mark.parametrize("which", ["same", "valid"])
def test_package_is_valid_offline_and_reproduces_its_test_outputs_with_each_weight_format(which, request):
    package = request.getfixturevalue(f"{which}_package")
    description = load_description(package, perform_io_checks=True)  # files read, hashes checked
    assert isinstance(description, v.ModelDescr), description.validation_summary.format()
    assert description.validation_summary.status == "valid-format"
    summary = model_test(package)
    assert summary.status == "passed", summary.format()
    assert REPRODUCED <= {d.name for d in summary.details if d.status == "passed"}


def test_package_describes_sizes_normalisation_activation_and_origin_in_the_formats_terms(same_package, same_run):
    description = load_description(same_package, perform_io_checks=False)
    loaded = load_checkpoint(same_run / "best.pt")
    rule = loaded.model.size_rule
    source, target = description.inputs[0], description.outputs[0]
    assert [(str(a.id), a.size.min, a.size.step) for a in source.axes[2:]] == [("y", rule.minimum, rule.step),
                                                                              ("x", rule.minimum, rule.step)]
    assert [(a.size.axis_id, a.size.offset) for a in target.axes[2:]] == [("y", 0), ("x", 0)]
    steps = [(p.id, p.kwargs.model_dump(mode="json")) for p in source.preprocessing if p.id != "ensure_dtype"]
    assert steps == [("scale_range", {"axes": ["x", "y"], "min_percentile": 2.0, "max_percentile": 99.5,
                                      "eps": 1e-6, "reference_tensor": None})]
    assert [p.id for p in target.postprocessing if p.id != "ensure_dtype"] == ["sigmoid"]
    assert description.weights.torchscript.parent is None and description.weights.onnx.parent == "torchscript"
    assert [a.name for a in description.authors] == ["Ada Lovelace", "Alan Turing"] and description.license == "MIT"
    assert [str(c.doi) for c in description.cite] == ["10.1007/978-3-319-24574-4_28"]
    unetkit = description.config.unetkit
    assert UNetConfig.from_dict(unetkit["model_config"]) == loaded.model.config
    assert data_options_from_dict(unetkit["data"]) == loaded.data_options
    assert task_from_dict(unetkit["task"], 1) == loaded.task
    assert b"github_user" not in _member(same_package, "rdf.yaml")


def test_valid_padding_package_declares_the_border_its_output_loses(valid_package):
    description = load_description(valid_package, perform_io_checks=False)
    rule = UNet(depth=3, base_width=4, padding="valid").size_rule
    assert rule.halo > 0
    assert [a.size.offset for a in description.outputs[0].axes[2:]] == [-2 * rule.halo] * 2
    assert [p.id for p in description.outputs[0].postprocessing if p.id != "ensure_dtype"] == ["softmax"]
    assert BioimageioPredictor.from_package(valid_package).size_rule == rule


def test_package_test_input_is_a_heldout_crop_and_its_cover_the_prediction_over_it(same_package):
    test_input = np.load(io.BytesIO(_member(same_package, "test_input.npy")))
    test_output = np.load(io.BytesIO(_member(same_package, "test_output.npy")))
    frame = read_planes(sample_path("heldout") / "images" / "hela.tif")[0]
    side = test_input.shape[-1]
    top, left = (frame.shape[0] - side) // 2, (frame.shape[1] - side) // 2
    assert test_input.shape == (1, 1, side, side) and test_output.shape == (1, 1, side, side)
    assert np.array_equal(test_input[0, 0], frame[top : top + side, left : left + side].astype(np.float32))
    cover = np.asarray(Image.open(io.BytesIO(_member(same_package, "cover.png"))))
    assert cover.shape == (side, 2 * side, 3)
    foreground = test_output[0, 0] > 0.5
    assert 0 < foreground.mean() < 1  # the untrained net labels some pixels: the overlay shows them
    tinted = np.any(cover[:, side:] != cover[:, :side], axis=-1)
    assert np.array_equal(tinted, foreground)


def test_package_readme_reports_the_training_and_validation_without_local_paths(same_package):
    readme = _member(same_package, "README.md").decode()
    assert "\n# Validation\n" in readme
    assert "best validation Dice 0.9100 (IoU 0.8300) in epoch 2 of 2" in readme
    assert "| lr | 0.001 |" in readme and "| data | nuclei |" in readme
    assert "percentiles 2 and 99.5" in readme and "Cell Tracking Challenge" in readme
    for member in ("README.md", "rdf.yaml"):
        assert b"/home/someone" not in _member(same_package, member)


@pytest.mark.parametrize("which", ["same", "valid"])
def test_predicting_with_a_package_matches_predicting_with_its_checkpoint(which, request, tmp_path):
    package = request.getfixturevalue(f"{which}_package")
    images, tile = ["sample:heldout"], 512  # both frames, tiled
    if which == "valid":  # a crop keeps the slower valid network quick; still several tiles
        frame = read_planes(sample_path("heldout") / "images" / "hela.tif")[1]
        tifffile.imwrite(tmp_path / "crop.tif", frame[100:330, 200:500])
        images, tile = [tmp_path / "crop.tif"], 128
    options = PredictOptions(probabilities=True, overlay=False, precision="fp32", tile=TileOptions(tile_size=tile))
    from_checkpoint = predict_files(_checkpoint_of(package), images, tmp_path / "pt", options, QUIET)
    from_package = predict_files(package, images, tmp_path / "zip", options, QUIET)
    assert len(from_package) == len(from_checkpoint) == (2 if which == "same" else 1)
    for expected, got in zip(from_checkpoint, from_package):
        reference, probabilities = tifffile.imread(expected.probabilities), tifffile.imread(got.probabilities)
        assert probabilities.shape == reference.shape
        assert float(np.abs(probabilities - reference).max()) < 1e-4


def test_a_package_run_on_an_image_of_one_value_nearly_everywhere_says_its_normalisation_divides_by_nothing(
        same_package, tmp_path):
    sparse = np.zeros((96, 128), np.uint16)  # a background-subtracted frame: the 1st and 99.8th percentiles are 0
    sparse[40:44, 50:54] = 800
    tifffile.imwrite(tmp_path / "sparse.tif", sparse)
    flat = {}
    for model, name in ((same_package, "zip"), (_checkpoint_of(same_package), "pt")):
        said: list[str] = []
        predict_files(model, [tmp_path / "sparse.tif"], tmp_path / name, PredictOptions(overlay=False), said.append)
        flat[name] = [line for line in said if "scale_range divides by almost 0" in line]
    assert len(flat["zip"]) == 1 and flat["zip"][0].startswith("sparse.tif")
    assert flat["pt"] == []  # the checkpoint takes the image's maximum: nothing to say


def test_a_scale_models_package_says_when_an_image_is_far_brighter_than_its_training_images(tmp_path):
    torch.manual_seed(0)
    options = DataOptions(normalization=Normalization("scale", high=255.0))
    save_checkpoint(tmp_path / "scale.pt", make_checkpoint(UNet(depth=2, base_width=4), options))
    package = export_bioimageio(tmp_path / "scale.pt", tmp_path / "scale.zip")
    tifffile.imwrite(tmp_path / "sixteen.tif", np.full((40, 48), 60000, np.uint16))
    said: list[str] = []
    predict_files(package, [tmp_path / "sixteen.tif"], tmp_path / "out", PredictOptions(overlay=False), said.append)
    assert any(line.startswith("sixteen.tif: pixels reach 235.3 times the package's scale_linear") for line in said)


def test_evaluate_on_the_command_line_scores_a_package_as_its_checkpoint(same_package, tmp_path):
    scores = {}
    for model in (same_package, same_package.parent / "best.pt"):
        csv_path = tmp_path / f"{model.suffix[1:]}.csv"
        assert main(["evaluate", str(model), "sample:heldout", "--csv", str(csv_path), "--precision", "fp32",
                     "--tile-size", "1024"]) == 0
        scores[model.suffix] = csv_path.read_text()
    assert scores[".zip"] == scores[".pt"] and scores[".zip"].count("\n") == 4  # header, 2 frames, mean


def test_export_checks_its_output_before_building_and_never_overwrites(same_run, tmp_path, capsys):
    out = tmp_path / "model.zip"
    out.write_bytes(b"keep me")
    assert main(["export", str(tmp_path / "missing.pt"), "--format", "bioimageio", "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert "output exists already" in error and "Traceback" not in error and out.read_bytes() == b"keep me"
    assert main(["export", str(same_run / "best.pt"), "--format", "bioimageio", "--out", str(out), "--overwrite"]) == 0
    assert zipfile.is_zipfile(out) and not list(tmp_path.glob(".*partial*"))


@pytest.mark.parametrize("arguments, message", [
    (["--format", "bioimageio", "--out", "{tmp}/m.zip", "--license", "NOT-A-LICENCE"], "unknown licence"),
    (["--format", "bioimageio", "--out", "{tmp}/m.zip", "--name", "a/b"], "package name"),
    (["--format", "bioimageio", "--out", "{tmp}/m.onnx"], "a bioimage.io package's name ends in .zip"),
    (["--out", "{tmp}/m.onnx", "--author", "Ada"], "bioimage.io packages only"),
    (["--out", "{tmp}/m.onnx", "--test-image", "{tmp}/../tile.png"], "bioimage.io packages only"),
])
def test_export_refuses_bad_package_options_with_exit_2_and_writes_nothing(same_run, tmp_path, capsys, arguments,
                                                                           message):
    arguments = [a.replace("{tmp}", str(tmp_path)) for a in arguments]
    assert main(["export", str(same_run / "best.pt"), *arguments]) == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error and not list(tmp_path.iterdir())


@pytest.fixture(scope="module")
def colour_run(tmp_path_factory) -> Path:
    """best.pt of a tiny three-channel (RGB) U-Net, and a pink-and-purple tile beside it."""
    from PIL import Image

    run = tmp_path_factory.mktemp("colour")
    torch.manual_seed(0)
    save_checkpoint(run / "best.pt", make_checkpoint(UNet(in_channels=3, depth=2, base_width=4)))
    tile = np.zeros((80, 96, 3), np.uint8)
    tile[...] = (235, 190, 210)
    tile[20:50, 30:60] = (90, 40, 130)
    Image.fromarray(tile).save(run / "tile.png")
    return run


def test_a_package_s_test_input_and_cover_are_cut_from_the_test_image_given(colour_run, tmp_path, capsys):
    # an RGB histology model's test input and cover were the grey HeLa sample repeated to three channels
    out = tmp_path / "colour.zip"
    assert main(["export", str(colour_run / "best.pt"), "--out", str(out), "--test-image",
                 str(colour_run / "tile.png")]) == 0
    assert "note:" not in capsys.readouterr().err
    test_input = np.load(io.BytesIO(_member(out, "test_input.npy")))
    assert test_input.shape[:2] == (1, 3) and test_input.shape[2] <= 80
    assert set(map(tuple, test_input[0].reshape(3, -1).T.tolist())) == {(235.0, 190.0, 210.0), (90.0, 40.0, 130.0)}
    assert "a crop of tile.png, chosen by the package's authors" in _member(out, "README.md").decode()
    assert "Fluo-N2DL-HeLa" not in _member(out, "README.md").decode()
    again = tmp_path / "grey.zip"  # without it: the sample, and a note that says how to do better
    assert main(["export", str(colour_run / "best.pt"), "--out", str(again)]) == 0
    assert "--test-image IMAGE" in capsys.readouterr().err


def test_a_test_image_of_other_channels_is_refused_naming_it_and_nothing_is_written(same_run, colour_run, tmp_path,
                                                                                    capsys):
    assert main(["export", str(same_run / "best.pt"), "--out", str(tmp_path / "m.zip"), "--test-image",
                 str(colour_run / "tile.png")]) == 2
    error = capsys.readouterr().err
    assert "tile.png" in error and "has 3 channel(s) and the model takes 1" in error and "Traceback" not in error
    assert not list(tmp_path.iterdir())


def test_missing_extra_is_named_with_the_install_command(same_package, monkeypatch):
    monkeypatch.setitem(sys.modules, "bioimageio.spec", None)
    with pytest.raises(ConfigError, match=r"pip install 'unetkit\[bioimageio\]'"):
        load_predictor(same_package)


# --- packages made by other tools ------------------------------------------------------------------

@pytest.fixture(scope="module")
def foreign_package(tmp_path_factory) -> tuple[Path, TinyCNN]:
    """ONNX only, per-image zero-mean-unit-variance preprocessing, sigmoid as postprocessing."""
    folder = tmp_path_factory.mktemp("foreign")
    module = TinyCNN()
    raw = (np.random.default_rng(2).random((1, 1, 32, 40)) * 1000 + 300).astype(np.float32)
    normalised = (raw - raw.mean()) / (raw.std() + 1e-6)
    with torch.no_grad():
        expected = torch.sigmoid(module(torch.from_numpy(normalised.astype(np.float32)))).numpy()
    inputs = [v.InputTensorDescr(
        id=v.TensorId("raw"), axes=[v.BatchAxis(), v.ChannelAxis(channel_names=["intensity"]), *space_axes("in")],
        test_tensor=npy(folder, "in.npy", raw),
        preprocessing=[v.ZeroMeanUnitVarianceDescr(kwargs=v.ZeroMeanUnitVarianceKwargs(axes=["y", "x"]))])]
    outputs = [v.OutputTensorDescr(
        id=v.TensorId("prediction"), axes=[v.BatchAxis(), v.ChannelAxis(channel_names=["cells"]),
                                           *space_axes("out")],
        test_tensor=npy(folder, "out.npy", expected), postprocessing=[v.SigmoidDescr()])]
    onnx = export_onnx(module, torch.from_numpy(raw), folder / "cnn.onnx", {0: "b", 2: "y", 3: "x"})
    weights = v.WeightsDescr(onnx=v.OnnxWeightsDescr(source=onnx, opset_version=17))
    return save_package(folder, "another tool zscore", inputs, outputs, weights), module


def test_a_foreign_package_predicts_as_bioimageio_core_runs_it(foreign_package, tmp_path):
    package, _ = foreign_package
    assert model_test(package).status == "passed"
    image = (np.random.default_rng(3).random((64, 80)) * 2000 + 500).astype(np.uint16)
    tifffile.imwrite(tmp_path / "cells.tif", image)
    record = predict_files(package, [tmp_path / "cells.tif"], tmp_path / "out",
                           PredictOptions(probabilities=True, overlay=False), QUIET)[0]
    ours = tifffile.imread(record.probabilities)
    reference = core_predict(model=package, inputs={"raw": image[None, None].astype(np.float32)})
    expected = reference.members["prediction"].data.to_numpy()[0, 0]
    assert float(np.abs(ours - expected).max()) < 1e-5
    assert np.array_equal(read_planes(record.labels)[0], (expected > 0.5).astype(np.uint8))
    loaded = load_predictor(package)
    assert loaded.task == SemanticTask(1) and loaded.predictor.size_rule == SizeRule(8, 4)


def test_a_channels_last_package_with_a_halo_is_tiled_with_that_context(tmp_path):
    module = TinyCNN(out_channels=2, sigmoid=True, channels_last=True)
    raw = (np.random.default_rng(4).random((1, 32, 40, 1)) * 255).astype(np.float32)
    with torch.no_grad():
        expected = module(torch.from_numpy(raw / 255 - 0.5)).numpy()
    axes = lambda kind, names, **size: [v.BatchAxis(), *space_axes(kind, **size),  # noqa: E731
                                        v.ChannelAxis(channel_names=names)]
    inputs = [v.InputTensorDescr(id=v.TensorId("raw"), axes=axes("in", ["grey"], min=16), test_tensor=npy(
        tmp_path, "in.npy", raw), preprocessing=[v.ScaleLinearDescr(kwargs=v.ScaleLinearKwargs(gain=1 / 255,
                                                                                                offset=-0.5))])]
    outputs = [v.OutputTensorDescr(id=v.TensorId("prediction"), axes=axes("out", ["a", "b"], halo=4),
                                   test_tensor=npy(tmp_path, "out.npy", expected))]
    onnx = export_onnx(module, torch.from_numpy(raw), tmp_path / "cnn.onnx", {0: "b", 1: "y", 2: "x"})
    package = save_package(tmp_path, "channels last halo", inputs, outputs,
                           v.WeightsDescr(onnx=v.OnnxWeightsDescr(source=onnx, opset_version=17)))
    assert model_test(package).status == "passed"
    loaded = load_predictor(package)
    assert loaded.predictor.size_rule == SizeRule(16, 4, halo=4) and loaded.predictor.num_outputs == 2
    image = (np.random.default_rng(5).random((1, 100, 120)) * 255).astype(np.float32)
    tiled = predict_tiled(loaded.predictor, loaded.data_options.normalization.apply(image), TileOptions(tile_size=40))
    padded = np.pad(image[0] / 255 - 0.5, 4, mode="symmetric")  # the tiler mirrors the border likewise
    with torch.no_grad():
        whole = module(torch.from_numpy(padded[None, :, :, None].astype(np.float32)))[0, 4:-4, 4:-4].numpy()
    np.testing.assert_allclose(tiled, np.moveaxis(whole, -1, 0), atol=1e-5)


class _TwoInputs(torch.nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b


class _Conv3d(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv3d(1, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def _two_input_package(folder: Path) -> Path:
    raw = np.ones((1, 1, 8, 8), np.float32)
    tensors = [v.InputTensorDescr(id=v.TensorId(name), axes=[v.BatchAxis(), v.ChannelAxis(channel_names=["c"]),
                                                             *space_axes("in")], test_tensor=npy(folder, f"{name}.npy", raw))
               for name in ("raw", "mask")]
    output = v.OutputTensorDescr(id=v.TensorId("sum"), axes=[v.BatchAxis(), v.ChannelAxis(channel_names=["c"]),
                                                           *space_axes("out")], test_tensor=npy(folder, "out.npy", 2 * raw))
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_TwoInputs(), (torch.ones(1, 1, 8, 8), torch.ones(1, 1, 8, 8)), str(folder / "two.onnx"),
                          dynamo=False, opset_version=17, input_names=["raw", "mask"])
    return save_package(folder, "two inputs", tensors, [output],
                        v.WeightsDescr(onnx=v.OnnxWeightsDescr(source=folder / "two.onnx", opset_version=17)))


def _volume_package(folder: Path) -> Path:
    raw = np.ones((1, 1, 8, 8, 8), np.float32)
    axes = lambda kind: [v.BatchAxis(), v.ChannelAxis(channel_names=["c"]), *space_axes(kind, ("z", "y", "x"))]  # noqa: E731
    onnx = export_onnx(_Conv3d(), torch.from_numpy(raw), folder / "conv3d.onnx", {0: "b", 2: "z", 3: "y", 4: "x"})
    with torch.no_grad():
        expected = _Conv3d().eval()(torch.from_numpy(raw)).numpy()
    return save_package(
        folder, "a volume model", [v.InputTensorDescr(id=v.TensorId("raw"), axes=axes("in"),
                                                      test_tensor=npy(folder, "in.npy", raw))],
        [v.OutputTensorDescr(id=v.TensorId("out"), axes=axes("out"), test_tensor=npy(folder, "out.npy", expected))],
        v.WeightsDescr(onnx=v.OnnxWeightsDescr(source=onnx, opset_version=17)))


@pytest.mark.parametrize("build, message", [
    (_two_input_package, "the package has 2 input(s) (raw, mask) and 1 output(s) (sum)"),
    (_volume_package, "the input 'raw' has axes (batch, channel, z, y, x): space axis 'z'"),
])
def test_packages_unetkit_cannot_run_are_refused_naming_the_file_and_what_is_supported(build, message, tmp_path,
                                                                                       capsys):
    package = build(tmp_path)
    with pytest.raises(CheckpointError) as refused:
        load_predictor(package)
    assert str(package) in str(refused.value) and message in str(refused.value)
    assert "one input and one output, each with axes (batch?, channel?, y, x)" in str(refused.value)
    assert main(["predict", str(package), "sample:heldout", "--out", str(tmp_path / "out")]) == 2
    assert "Traceback" not in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_a_zip_that_is_no_package_is_refused_with_what_a_package_is(tmp_path, capsys):
    with zipfile.ZipFile(tmp_path / "photos.zip", "w") as archive:
        archive.writestr("cat.txt", "meow")
    assert main(["evaluate", str(tmp_path / "photos.zip"), "sample:heldout"]) == 2
    error = capsys.readouterr().err
    assert f"{tmp_path / 'photos.zip'}: not a bioimage.io model package" in error and "rdf.yaml" in error
    assert "Traceback" not in error


def test_a_package_with_altered_weights_is_refused(same_package, tmp_path):
    altered = _rewrite(same_package, tmp_path / "altered.zip", {"weights.onnx": lambda data: data[:-1] + b"\0"})
    with pytest.raises(CheckpointError, match="do not match their sha256"):
        load_predictor(altered)


def test_postprocessing_that_needs_whole_output_statistics_is_refused(foreign_package, tmp_path):
    package, _ = foreign_package
    changed = _rewrite(package, tmp_path / "zscore_out.zip",
                       {"rdf.yaml": lambda data: data.replace(b"- id: sigmoid", b"- id: zero_mean_unit_variance")})
    with pytest.raises(CheckpointError, match="cannot run this package's postprocessing: 'zero_mean_unit_variance'"):
        load_predictor(changed)


def test_packages_without_onnx_weights_are_refused_and_their_code_never_runs(tmp_path):
    module = TinyCNN()
    raw = np.ones((1, 1, 16, 16), np.float32)
    with torch.no_grad():
        expected = module(torch.from_numpy(raw)).numpy()
    marker = tmp_path / "architecture-was-imported"
    (tmp_path / "architecture.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('imported')\n"
        "import torch\n\nclass Net(torch.nn.Module):\n    pass\n")
    torch.save(module.state_dict(), tmp_path / "state.pt")
    tensors = lambda: ([v.InputTensorDescr(  # noqa: E731
        id=v.TensorId("raw"), axes=[v.BatchAxis(), v.ChannelAxis(channel_names=["c"]), *space_axes("in")],
        test_tensor=npy(tmp_path, "in.npy", raw))], [v.OutputTensorDescr(
            id=v.TensorId("out"), axes=[v.BatchAxis(), v.ChannelAxis(channel_names=["c"]), *space_axes("out")],
            test_tensor=npy(tmp_path, "out.npy", expected))])
    state_dict = v.WeightsDescr(pytorch_state_dict=v.PytorchStateDictWeightsDescr(
        source=tmp_path / "state.pt", pytorch_version=v.Version("2.13.0"),
        architecture=v.ArchitectureFromFileDescr(source=tmp_path / "architecture.py", callable="Net")))
    torchscript = v.WeightsDescr(torchscript=v.TorchscriptWeightsDescr(
        source=export_torchscript(module, torch.from_numpy(raw), tmp_path / "ts.pt"), pytorch_version=v.Version("2.13.0")))
    for name, weights, present in (("state dict only", state_dict, "pytorch_state_dict"),
                                   ("torchscript only", torchscript, "torchscript")):
        package = save_package(tmp_path, name, *tensors(), weights)
        marker.unlink(missing_ok=True)
        with pytest.raises(CheckpointError, match=f"no ONNX weights \\(it has: {present}\\)") as refused:
            load_predictor(package)
        assert "torchscript_to_onnx" in str(refused.value)
        assert not marker.exists()  # the package's Python file was never imported


def test_an_instance_model_package_passes_the_model_test_and_predicts_the_same_objects(tmp_path):
    from bioimageio.core import test_model

    from unetkit.instances.task import InstanceTask

    torch.manual_seed(0)
    task = InstanceTask(method="distance", min_size=1)
    model = UNet(depth=3, base_width=4, num_classes=2).eval()
    save_checkpoint(tmp_path / "objects.pt", make_checkpoint(model, task=task))
    package = export_bioimageio(tmp_path / "objects.pt", tmp_path / "objects.zip")
    summary = test_model(package)
    assert summary.status == "passed", summary.format()
    from_package = load_predictor(package)
    from_checkpoint = load_predictor(tmp_path / "objects.pt", precision="fp32")
    assert from_package.task == task
    image = from_checkpoint.data_options.normalization.apply(sample_crop(256, 1))
    ours = predict_tiled(from_checkpoint.predictor, image)
    theirs = predict_tiled(from_package.predictor, image)
    assert np.abs(ours - theirs).max() < 1e-4
    assert np.array_equal(task.labels(ours), from_package.task.labels(theirs))


@pytest.mark.parametrize("instances", [False, True], ids=["semantic", "objects"])
def test_a_package_predicts_region_by_region_as_in_memory(instances, tmp_path):
    # a package's preprocessing was refused region by region: a plane past 8192 x 8192 could not be predicted at all
    torch.manual_seed(0)
    from unetkit.instances.task import InstanceTask

    task = InstanceTask(method="distance", min_size=1) if instances else SemanticTask(3)
    network = UNet(depth=2, base_width=4, num_classes=task.num_outputs).eval()
    save_checkpoint(tmp_path / "m.pt", make_checkpoint(network, task=task))
    package = export_bioimageio(tmp_path / "m.pt", tmp_path / "m.zip")
    frame = read_planes(sample_path("heldout") / "images" / "hela.tif")[0]
    (tmp_path / "in").mkdir()
    tifffile.imwrite(tmp_path / "in" / "a crop.tif", frame[:150, :260])
    outputs = {}
    for on_disk in (False, True):
        options = PredictOptions(probabilities=not on_disk, probabilities_on_disk=on_disk, label_format="tif",
                                 overlay=False, tile=TileOptions(tile_size=64))
        said: list[str] = []
        [record] = predict_files(package, [tmp_path / "in"], tmp_path / str(on_disk), options, said.append)
        assert any("region by region" in line for line in said) == on_disk
        outputs[on_disk] = {kind: tifffile.imread(path) if path.suffix == ".tif" else path.read_text()
                            for kind, path in record.outputs.items()}
    assert outputs[True].keys() == outputs[False].keys() and ("objects" in outputs[True]) == instances
    for kind, expected in outputs[False].items():
        if isinstance(expected, str):
            assert outputs[True][kind] == expected
        else:
            np.testing.assert_allclose(outputs[True][kind], expected, atol=1e-5)


def test_a_test_image_whose_first_plane_is_blank_is_refused_naming_it_not_a_spec_traceback(same_run, tmp_path, capsys):
    # bioimageio.spec refuses test tensors of values all within 1e-4 of 0: a pydantic traceback, after the work
    tifffile.imwrite(tmp_path / "stack.tif", np.zeros((2, 48, 48), np.uint8), photometric="minisblack")
    out = tmp_path / "m.zip"
    assert main(["export", str(same_run / "best.pt"), "--out", str(out), "--test-image",
                 str(tmp_path / "stack.tif")]) == 2
    error = capsys.readouterr().err
    assert "stack.tif" in error and "0 everywhere" in error and "Traceback" not in error and not out.exists()


def test_a_test_image_predict_would_refuse_is_refused_naming_it(same_run, tmp_path, capsys):
    # a colour-palette PNG went in as its indices, a float image of NaN as NaN: test tensors unetkit predict refuses
    picture = Image.fromarray((np.arange(48 * 48).reshape(48, 48) % 3).astype(np.uint8), "P")
    picture.putpalette([235, 190, 210, 90, 40, 130, 255, 0, 0] + [0] * 759)
    picture.save(tmp_path / "indexed.png")
    tifffile.imwrite(tmp_path / "nan.tif", np.full((48, 48), np.nan, np.float32))
    for name, said in (("indexed.png", "palette indices"), ("nan.tif", "NaN")):
        out = tmp_path / "m.zip"
        assert main(["export", str(same_run / "best.pt"), "--out", str(out), "--test-image",
                     str(tmp_path / name)]) == 2
        error = capsys.readouterr().err
        assert name in error and said in error and "Traceback" not in error and not out.exists(), error


def test_a_16_bit_test_image_for_a_model_of_8_bit_images_is_noted(tmp_path, capsys):
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "scale.pt", make_checkpoint(UNet(depth=2, base_width=2), data_options=DataOptions(
        normalization=Normalization("scale", high=255.0))))
    tifffile.imwrite(tmp_path / "frame.tif", np.full((48, 48), 30000, np.uint16), photometric="minisblack")
    assert main(["export", str(tmp_path / "scale.pt"), "--out", str(tmp_path / "m.zip"), "--test-image",
                 str(tmp_path / "frame.tif")]) == 0
    assert "note: the package's test input and cover: frame.tif: pixels reach" in capsys.readouterr().err
