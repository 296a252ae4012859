"""predict, evaluate and export: outputs, refusals, faults, interruption, parity."""

from __future__ import annotations

import errno
import json
import contextlib
import os
import signal
import subprocess
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from unetkit import PredictOptions, UNet, evaluate_checkpoint, load_model, make_checkpoint, predict_files, save_checkpoint
from unetkit.cli import main
from unetkit.data.dataset import DataOptions
from unetkit.data.io import read_planes
from unetkit.data.normalize import Normalization
from unetkit.errors import ConfigError, OutputExistsError, UnetkitError
from unetkit.model import probabilities_from_logits

from helpers import snapshot, write_dataset

QUIET = lambda text: None  # noqa: E731


@pytest.fixture
def checkpoint(tmp_path) -> Path:
    torch.manual_seed(0)
    path = tmp_path / "model.pt"
    save_checkpoint(path, make_checkpoint(UNet(depth=3, base_width=4)))
    return path


def test_predict_an_odd_sized_image_writes_labels_overlay_and_probabilities(tmp_path, checkpoint):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (97, 131), dtype=np.uint8)).save(tmp_path / "odd.png")
    records = predict_files(checkpoint, [tmp_path / "odd.png"], tmp_path / "out",
                            PredictOptions(probabilities=True, tile=__import__("unetkit").TileOptions(tile_size=64)), QUIET)
    record = records[0]
    labels = read_planes(record.labels)[0]
    assert labels.shape == (97, 131) and set(np.unique(labels)) <= {0, 1}
    assert read_planes(record.overlay)[0].shape == (97, 131, 3)
    probabilities = read_planes(record.probabilities)[0]
    assert probabilities.shape == (97, 131) and probabilities.dtype == np.float32
    assert np.array_equal(labels, (probabilities > 0.5).astype(np.uint8))


def test_an_image_far_beyond_a_scale_models_divisor_is_predicted_and_said(tmp_path):
    # a model trained on 8-bit images with --normalization scale, given a 16-bit frame: inputs up to 235, not 1
    torch.manual_seed(0)
    model_path = tmp_path / "scale.pt"
    options = DataOptions(normalization=Normalization("scale", high=255.0))
    save_checkpoint(model_path, make_checkpoint(UNet(depth=2, base_width=4), options))
    Image.fromarray(np.full((40, 48), 200, np.uint8)).save(tmp_path / "eight.png")
    tifffile.imwrite(tmp_path / "sixteen.tif", np.full((40, 48), 60000, np.uint16))
    said: list[str] = []
    records = predict_files(model_path, [tmp_path / "eight.png", tmp_path / "sixteen.tif"], tmp_path / "out",
                            report=said.append)
    assert len(records) == 2  # predicted all the same
    warned = [text for text in said if "pixels reach" in text]
    assert len(warned) == 1 and warned[0].startswith("sixteen.tif: pixels reach 235.3 times the 255"), said


def test_an_8_bit_image_for_a_16_bit_scale_model_is_said_by_predict_and_evaluate(tmp_path, capsys):
    # a model whose training images were divided by 65535, given 8-bit frames: every input below 0.004, masks
    # empty, and evaluate scored 0 on every image without a word
    from unetkit.cli import main

    torch.manual_seed(0)
    model_path = tmp_path / "scale16.pt"
    options = DataOptions(normalization=Normalization("scale", high=65535.0))
    save_checkpoint(model_path, make_checkpoint(UNet(depth=2, base_width=4), options))
    (tmp_path / "data" / "images").mkdir(parents=True)
    (tmp_path / "data" / "masks").mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 48), dtype=np.uint8)).save(tmp_path / "data" / "images" / "eight.png")
    tifffile.imwrite(tmp_path / "data" / "images" / "sixteen.tif", rng.integers(0, 60000, (40, 48), dtype=np.uint16))
    for name in ("eight", "sixteen"):
        mask = np.zeros((40, 48), np.uint8)
        mask[10:20, 10:20] = 1
        Image.fromarray(mask).save(tmp_path / "data" / "masks" / f"{name}.png")
    said: list[str] = []
    predict_files(model_path, [tmp_path / "data" / "images"], tmp_path / "out", report=said.append)
    warned = [text for text in said if "8-bit image" in text]
    assert len(warned) == 1 and warned[0].startswith("eight.png: an 8-bit image (values up to 255) for a model "
                                                     "whose training images were divided by 65535"), said
    assert main(["evaluate", str(model_path), str(tmp_path / "data"), "--csv", str(tmp_path / "e.csv")]) == 0
    err = capsys.readouterr().err
    assert "note: images/eight.png: an 8-bit image" in err and "sixteen" not in err
    tifffile.imwrite(tmp_path / "eight.tif", rng.integers(0, 255, (40, 48), dtype=np.uint8))  # region by region too
    said.clear()
    predict_files(model_path, [tmp_path / "eight.tif"], tmp_path / "large", PredictOptions(probabilities_on_disk=True),
                  report=said.append)
    assert [text for text in said if text.startswith("eight.tif: an 8-bit image")], said


def test_predict_refuses_to_overwrite_and_writes_nothing(tmp_path, checkpoint):
    predict_files(checkpoint, ["sample:heldout"], tmp_path / "out", PredictOptions(overlay=False), QUIET)
    (tmp_path / "out" / "hela_001_labels.png").unlink()
    before = snapshot(tmp_path / "out")
    with pytest.raises(OutputExistsError, match="hela_000_labels.png"):
        predict_files(checkpoint, ["sample:heldout"], tmp_path / "out", PredictOptions(overlay=False), QUIET)
    assert snapshot(tmp_path / "out") == before  # not even the missing one was written
    predict_files(checkpoint, ["sample:heldout"], tmp_path / "out", PredictOptions(overlay=False, overwrite=True), QUIET)
    assert (tmp_path / "out" / "hela_001_labels.png").exists()


def failing_third_save(monkeypatch, error: BaseException) -> None:
    """Image.save writes half a file and raises ``error`` on its third call (image 2's labels)."""
    real = Image.Image.save
    calls = {"count": 0}

    def failing_save(self, fp, *args, **kwargs):
        calls["count"] += 1
        if calls["count"] == 3:  # labels and overlay of image 1 succeed; image 2's labels fail
            Path(fp).write_bytes(b"half")
            raise error
        return real(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", failing_save)


# overlap: writing in a helper thread (machines with a spare core, GPUs) or in turn (2 cores)
@pytest.mark.parametrize("overlap", [True, False])
def test_disk_full_during_prediction_leaves_no_partial_files_and_says_what_was_written(tmp_path, checkpoint,
                                                                                      monkeypatch, overlap):
    failing_third_save(monkeypatch, OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(UnetkitError, match="No space left on device") as error:
        predict_files(checkpoint, ["sample:heldout"], tmp_path / "out", PredictOptions(overlap=overlap), QUIET)
    assert "finished images: hela_000_labels.png" in str(error.value)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["hela_000_labels.png", "hela_000_overlay.png"]


def test_a_signal_during_a_write_in_turn_removes_that_image_and_says_what_is_finished(tmp_path, checkpoint,
                                                                                     monkeypatch):
    from unetkit import predict
    from unetkit.signals import Interrupted

    inputs = tmp_path / "in"
    inputs.mkdir()
    for index in range(3):
        Image.fromarray(np.full((40, 40), 60 * index, np.uint8)).save(inputs / f"im{index}.png")
    failing_third_save(monkeypatch, Interrupted("interrupted by signal SIGTERM"))  # im1's labels
    calls = []
    real_tiled = predict.predict_tiled
    monkeypatch.setattr(predict, "predict_tiled", lambda *a, **k: calls.append("network") or real_tiled(*a, **k))
    with pytest.raises(Interrupted) as error:
        predict_files(checkpoint, [inputs], tmp_path / "out", PredictOptions(overlap=False), QUIET)
    assert "finished images: im0_labels.png; continue with --skip-existing" in str(error.value)
    assert calls == ["network", "network"]  # the signal ended the batch at once, not after im2's network
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["im0_labels.png", "im0_overlay.png"]


@pytest.mark.parametrize("overlap", [True, False])
def test_an_output_another_command_wrote_meanwhile_is_refused_and_kept(tmp_path, checkpoint, monkeypatch, overlap):
    from unetkit import predict

    real_tiled = predict.predict_tiled
    theirs = tmp_path / "out" / "hela_001_labels.png"

    def another_command_writes_first(*args, **kwargs):  # as a second predict into the same folder would
        calls.append(1)
        if len(calls) == 2:  # while this command predicts hela_001
            theirs.write_bytes(b"the other command's labels")
        return real_tiled(*args, **kwargs)

    calls: list[int] = []
    monkeypatch.setattr(predict, "predict_tiled", another_command_writes_first)
    with pytest.raises(OutputExistsError) as error:
        predict_files(checkpoint, ["sample:heldout"], tmp_path / "out", PredictOptions(overlap=overlap), QUIET)
    assert "the existing file was left as it is; finished images: hela_000_labels.png" in str(error.value)
    assert theirs.read_bytes() == b"the other command's labels"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "hela_000_labels.png", "hela_000_overlay.png", "hela_001_labels.png"]


def test_helper_threads_are_used_only_where_a_core_is_idle(checkpoint, monkeypatch):
    from unetkit.inference.loading import load_predictor
    from unetkit.predict import spare_core

    loaded = load_predictor(checkpoint, precision="fp32")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    assert not spare_core(loaded)  # both cores run the network
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    assert spare_core(loaded)


def test_sigterm_during_predict_leaves_complete_outputs_and_no_partial_file(tmp_path, checkpoint):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for index in range(40):
        Image.fromarray(np.full((300, 300), index, np.uint8)).save(inputs / f"im{index:02d}.png")
    process = subprocess.Popen([sys.executable, "-m", "unetkit", "predict", str(checkpoint), str(inputs),
                                "--out", str(tmp_path / "out"), "--tile-size", "64"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not list((tmp_path / "out").glob("*_overlay.png")) if (tmp_path / "out").exists() else True:
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)
    _, error = process.communicate(timeout=60)
    assert process.returncode == 130, error
    assert "interrupted by signal SIGTERM" in error and "finished images" in error
    written = sorted((tmp_path / "out").iterdir())
    assert not [p for p in written if "partial" in p.name]
    labels = {p.name.replace("_labels.png", "") for p in written if p.name.endswith("_labels.png")}
    overlays = {p.name.replace("_overlay.png", "") for p in written if p.name.endswith("_overlay.png")}
    assert labels == overlays and 0 < len(labels) < 40
    for name in labels:
        assert read_planes(tmp_path / "out" / f"{name}_labels.png")[0].shape == (300, 300)


@pytest.mark.parametrize("overlap", [True, False])
def test_a_signal_between_two_images_still_names_the_finished_ones(tmp_path, checkpoint, monkeypatch, overlap):
    # a SIGTERM that landed in the batch loop's own steps (not in an image's prediction or write) left
    # the bare "interrupted by signal SIGTERM", without which images were finished (a flaky CI failure)
    from unetkit import predict as prediction
    from unetkit.signals import Interrupted

    for index in range(3):
        Image.fromarray(np.full((40, 40), 60 * index, np.uint8)).save(tmp_path / f"im{index}.png")

    class BarThatASignalHitsAfterTheFirstImage(prediction.tqdm):
        def update(self, n=1):
            super().update(n)
            raise Interrupted("interrupted by signal SIGTERM")

    monkeypatch.setattr(prediction, "tqdm", BarThatASignalHitsAfterTheFirstImage)
    with pytest.raises(Interrupted, match=r"SIGTERM; finished images: im0_labels.png; continue with --skip-existing"):
        predict_files(checkpoint, [tmp_path / f"im{index}.png" for index in range(3)], tmp_path / "out",
                      PredictOptions(overlap=overlap, progress=False), QUIET)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["im0_labels.png", "im0_overlay.png"]


def test_a_signal_while_the_pipeline_shuts_down_still_names_the_finished_ones(tmp_path, checkpoint, monkeypatch):
    # after the last image, a signal landing while the reading and writing threads shut down came out as the
    # bare "interrupted by signal SIGTERM": every image was finished, and the message did not say so
    import concurrent.futures

    from unetkit.predict import BatchInterrupted
    from unetkit.signals import Interrupted

    for index in range(2):
        Image.fromarray(np.full((40, 40), 60 * index, np.uint8)).save(tmp_path / f"im{index}.png")
    shutdown, shut = concurrent.futures.ThreadPoolExecutor.shutdown, []

    def shutdown_that_a_signal_hits(executor, *args, **kwargs):
        shutdown(executor, *args, **kwargs)
        shut.append(executor._thread_name_prefix)
        if executor._thread_name_prefix == "unetkit-read":
            raise Interrupted("interrupted by signal SIGTERM")

    monkeypatch.setattr(concurrent.futures.ThreadPoolExecutor, "shutdown", shutdown_that_a_signal_hits)
    with pytest.raises(BatchInterrupted, match=r"SIGTERM; finished images: im0_labels.png, im1_labels.png; continue"):
        predict_files(checkpoint, [tmp_path / f"im{index}.png" for index in range(2)], tmp_path / "out",
                      PredictOptions(overlap=True, progress=False), QUIET)
    assert len(list((tmp_path / "out").iterdir())) == 4
    assert shut == ["unetkit-read", "unetkit-write"]  # the writer's thread ends too


def test_a_signal_while_the_pipeline_shuts_down_after_a_failed_write_keeps_the_write_error(
        tmp_path, checkpoint, monkeypatch):
    # the batch's own error, not the signal that came while its threads shut down, is what the user must read
    import concurrent.futures

    from unetkit import predict as prediction
    from unetkit.signals import Interrupted

    for index in range(2):
        Image.fromarray(np.full((40, 40), 60 * index, np.uint8)).save(tmp_path / f"im{index}.png")
    shutdown, write = concurrent.futures.ThreadPoolExecutor.shutdown, prediction._write_outputs

    def shutdown_that_a_signal_hits(executor, *args, **kwargs):
        shutdown(executor, *args, **kwargs)
        if executor._thread_name_prefix == "unetkit-read":
            raise Interrupted("interrupted by signal SIGTERM")

    def write_that_fails_on_the_second(task, raw, image, labels, outputs, record, replace):
        if str(record.source).endswith("im1.png"):
            raise OSError(28, "No space left on device")
        return write(task, raw, image, labels, outputs, record, replace)

    monkeypatch.setattr(concurrent.futures.ThreadPoolExecutor, "shutdown", shutdown_that_a_signal_hits)
    monkeypatch.setattr(prediction, "_write_outputs", write_that_fails_on_the_second)
    raised: BaseException | None = None
    try:
        predict_files(checkpoint, [tmp_path / f"im{index}.png" for index in range(2)], tmp_path / "out",
                      PredictOptions(overlap=True, progress=False), QUIET)
    except BaseException as error:  # an Interrupted is a KeyboardInterrupt: caught here, not by pytest
        raised = error
    assert isinstance(raised, UnetkitError), repr(raised)
    assert "could not write the outputs of" in str(raised) and "im1.png: No space left" in str(raised)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["im0_labels.png", "im0_overlay.png"]


def test_outputs_that_cannot_be_removed_after_a_failed_write_are_named(tmp_path, checkpoint, monkeypatch):
    # a disk that turned read-only mid-batch: the labels were written, the overlay failed, and removing the labels
    # failed too; that OSError escaped as a bare "Read-only file system" without the batch's state
    import errno

    from unetkit import predict as prediction

    for index in range(2):
        Image.fromarray(np.full((40, 40), 60 * index, np.uint8)).save(tmp_path / f"im{index}.png")
    write, unlink = prediction._write_outputs, Path.unlink

    def write_that_the_disk_stops(task, raw, image, labels, outputs, record, replace):
        if str(record.source).endswith("im1.png"):
            record.labels.write_bytes(b"half")
            raise OSError(errno.EROFS, "Read-only file system")
        return write(task, raw, image, labels, outputs, record, replace)

    def unlink_on_a_read_only_disk(path, missing_ok=False):
        if path.name == "im1_labels.png":
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return unlink(path, missing_ok=missing_ok)

    monkeypatch.setattr(prediction, "_write_outputs", write_that_the_disk_stops)
    monkeypatch.setattr(Path, "unlink", unlink_on_a_read_only_disk)
    with pytest.raises(UnetkitError) as raised:
        predict_files(checkpoint, [tmp_path / f"im{index}.png" for index in range(2)], tmp_path / "out",
                      PredictOptions(overlap=False, progress=False), QUIET)
    message = str(raised.value)
    assert "could not write the outputs of" in message and "Read-only file system" in message
    assert "its partial outputs could not be removed (im1_labels.png; --skip-existing writes the rest of that image)" in message
    assert "finished images: im0_labels.png" in message


def all_foreground_model() -> UNet:
    """A network that calls every pixel foreground."""
    model = UNet(depth=2, base_width=2)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
        model.head.bias.fill_(10.0)
    return model


def test_evaluate_against_a_known_answer(tmp_path):
    data = write_dataset(tmp_path / "d", count=2)
    save_checkpoint(tmp_path / "all.pt", make_checkpoint(all_foreground_model()))
    report = evaluate_checkpoint(tmp_path / "all.pt", data)
    for index, scores in enumerate(report.accumulator.per_image):
        mask = read_planes(data / "masks" / f"img{index}.png")[0]
        expected = 2 * mask.sum() / (mask.sum() + mask.size)
        assert scores.dice[1] == pytest.approx(expected)
    code = main(["evaluate", str(tmp_path / "all.pt"), str(data), "--csv", str(tmp_path / "scores.csv")])
    assert code == 0 and "mean" in (tmp_path / "scores.csv").read_text()




def test_evaluate_of_several_classes_shows_each_class(tmp_path):
    # the table and CSV gave the mean over classes only: a class the model never finds was hidden in it
    data = write_dataset(tmp_path / "d", count=2)
    for path in (data / "masks").iterdir():
        mask = np.asarray(Image.open(path)).copy()
        mask[:, 40:] *= 2  # objects on the right are class 2
        Image.fromarray(mask).save(path)
    model = UNet(depth=2, base_width=2, num_classes=3)
    with torch.no_grad():  # a network that calls every pixel class 1
        for parameter in model.parameters():
            parameter.zero_()
        model.head.bias.copy_(torch.tensor([0.0, 10.0, 0.0]))
    save_checkpoint(tmp_path / "c.pt", make_checkpoint(model))
    report = evaluate_checkpoint(tmp_path / "c.pt", data)
    rows = report.rows()
    assert list(rows[0]) == ["image", "dice", "iou", "dice_1", "dice_2", "iou_1", "iou_2"]
    for index, row in enumerate(rows[:-1]):
        mask = read_planes(data / "masks" / f"img{index}.png")[0]
        assert float(row["dice_1"]) == pytest.approx(2 * (mask == 1).sum() / ((mask == 1).sum() + mask.size), abs=1e-4)
        assert row["dice_2"] == "0.0000"  # never predicted, though present
        assert float(row["dice"]) == pytest.approx((float(row["dice_1"]) + 0.0) / 2, abs=1e-4)
    assert rows[-1]["image"] == "mean" and rows[-1]["dice_2"] == "0.0000"
    assert "dice_2" in report.table().splitlines()[0]
    third = data / "masks" / "img2.png"  # an image without class 2: n/a there, not 1.0 that would lift its mean
    Image.fromarray(np.where(np.asarray(Image.open(data / "masks" / "img0.png")) == 2, 0,
                             np.asarray(Image.open(data / "masks" / "img0.png"))).astype(np.uint8)).save(third)
    Image.open(data / "images" / "img0.png").save(data / "images" / "img2.png")
    rows = evaluate_checkpoint(tmp_path / "c.pt", data).rows()
    assert rows[2]["dice_2"] == rows[2]["iou_2"] == "n/a" and rows[-1]["dice_2"] == "0.0000"


def test_evaluate_leaves_an_image_whose_mask_is_all_ignored_out_of_the_means(tmp_path):
    data = write_dataset(tmp_path / "d", count=2)
    save_checkpoint(tmp_path / "all.pt", make_checkpoint(all_foreground_model(), DataOptions(ignore_index=255)))
    before = evaluate_checkpoint(tmp_path / "all.pt", data).rows()
    mask = data / "masks" / "img1.png"
    Image.fromarray(np.full(np.asarray(Image.open(mask)).shape, 255, np.uint8)).save(mask)  # nothing to score
    rows = evaluate_checkpoint(tmp_path / "all.pt", data).rows()
    assert rows[1]["dice"] == rows[1]["iou"] == "n/a"  # scored 1.0 before, lifting the mean
    assert rows[-1]["dice"] == before[0]["dice"]

def test_evaluate_ignore_index_scores_test_masks_with_unlabelled_regions(tmp_path, capsys):
    # evaluate took the ignore value from the model only: a model trained on clean masks could not be scored on
    # test masks with an unlabelled (255) region, and the refusal's fix offered no way to
    data = write_dataset(tmp_path / "d", count=1)
    save_checkpoint(tmp_path / "all.pt", make_checkpoint(all_foreground_model()))
    path = data / "masks" / "img0.png"
    mask = np.asarray(Image.open(path)).copy()
    mask[:10] = 255
    Image.fromarray(mask).save(path)
    csv_path = tmp_path / "e.csv"
    assert main(["evaluate", str(tmp_path / "all.pt"), str(data), "--csv", str(csv_path)]) == 2
    assert "--ignore-index V" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "all.pt"), str(data), "--csv", str(csv_path), "--ignore-index", "255"]) == 0
    scored = mask[10:]
    expected = 2 * scored.sum() / (scored.sum() + scored.size)  # every pixel predicted foreground; the band left out
    assert float(csv_path.read_text().splitlines()[1].split(",")[1]) == pytest.approx(expected, abs=1e-4)
    with pytest.raises(ConfigError, match="is the background"):
        evaluate_checkpoint(tmp_path / "all.pt", data, ignore_index=0)


def test_evaluate_refuses_an_image_that_predict_refuses(tmp_path, capsys):
    data = write_dataset(tmp_path / "d", count=2)
    save_checkpoint(tmp_path / "m.pt", make_checkpoint(UNet(depth=4, base_width=2)))  # minimum side 8
    image, mask = np.zeros((5, 700), np.uint8), np.zeros((5, 700), np.uint8)
    image[:, 100:200], mask[:, 100:200] = 200, 1
    Image.fromarray(image).save(data / "images" / "thin.png")
    Image.fromarray(mask).save(data / "masks" / "thin.png")
    for command in (["predict", str(tmp_path / "m.pt"), str(data / "images" / "thin.png"), "--out", str(tmp_path / "o")],
                    ["evaluate", str(tmp_path / "m.pt"), str(data)]):
        code = main(command)
        error = capsys.readouterr().err
        assert code == 2 and "thin.png" in error and "smaller than the network's minimum side 8" in error, error

def test_onnx_export_matches_pytorch_within_1e_4_on_probabilities(tmp_path, checkpoint):
    pytest.importorskip("onnxruntime")
    from unetkit.inference.onnx_backend import OnnxRuntimePredictor

    assert main(["export", str(checkpoint), "--out", str(tmp_path / "m.onnx")]) == 0
    model, _ = load_model(checkpoint)
    runtime = OnnxRuntimePredictor.from_file(tmp_path / "m.onnx")
    for shape in [(1, 1, 64, 64), (2, 1, 97, 131)]:
        x = torch.rand(*shape)
        with torch.no_grad():
            expected = probabilities_from_logits(model(x))
        assert torch.allclose(runtime(x), expected, atol=1e-4)


def test_torchscript_export_matches_pytorch(tmp_path, checkpoint):
    assert main(["export", str(checkpoint), "--format", "torchscript", "--out", str(tmp_path / "m.ts")]) == 0
    model, _ = load_model(checkpoint)
    scripted = torch.jit.load(str(tmp_path / "m.ts"))
    x = torch.rand(2, 1, 96, 128)  # sizes that divide 2**(depth-1)
    with torch.no_grad():
        assert torch.allclose(scripted(x), model(x), atol=1e-5)
    extra = {"unetkit_data": "", "unetkit_model_config": "", "unetkit_task": ""}  # what other tools need to apply it
    torch.jit.load(str(tmp_path / "m.ts"), _extra_files=extra)
    from unetkit.checkpoint import read_checkpoint

    assert json.loads(extra["unetkit_model_config"])["depth"] == model.config.depth
    assert json.loads(extra["unetkit_data"]) == read_checkpoint(checkpoint)["data"]
    assert json.loads(extra["unetkit_task"])["name"] == "semantic"


def test_the_export_format_follows_the_name_and_a_name_of_another_format_is_refused(tmp_path, checkpoint, capsys):
    exports = tmp_path / "exports"
    exports.mkdir()
    # What predict will read the file as is told by its name, so the name and the format agree.
    assert main(["export", str(checkpoint), "--out", str(exports / "m.pt")]) == 0
    assert isinstance(torch.jit.load(str(exports / "m.pt")), torch.jit.ScriptModule)
    refused = [
        (["--out", str(exports / "model")], "not clear from the name"),
        (["--out", str(exports / "m.zip"), "--format", "onnx"], "ends in .onnx, not .zip"),
        (["--out", str(exports / "m.onnx"), "--format", "torchscript"], "predict would read it as ONNX"),
        (["--out", str(exports / "m.onnx"), "--format", "bioimageio"], "ends in .zip, not .onnx"),
    ]
    for arguments, message in refused:
        capsys.readouterr()
        assert main(["export", str(checkpoint), *arguments]) == 2, arguments
        error = capsys.readouterr().err
        assert message in error and "--out" in error, (arguments, error)
    assert sorted(path.name for path in exports.iterdir()) == ["m.pt"]


def test_onnxruntime_backend_predicts_what_pytorch_predicts(tmp_path, checkpoint):
    pytest.importorskip("onnxruntime")
    torch_records = predict_files(checkpoint, ["sample:heldout"], tmp_path / "torch",
                                  PredictOptions(probabilities=True, overlay=False, precision="fp32"), QUIET)
    onnx_records = predict_files(checkpoint, ["sample:heldout"], tmp_path / "onnx",
                                 PredictOptions(probabilities=True, overlay=False, backend="onnxruntime"), QUIET)
    for a, b in zip(torch_records, onnx_records):
        assert np.abs(read_planes(a.probabilities)[0] - read_planes(b.probabilities)[0]).max() < 1e-4


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_keras_reference_weights_import_with_parity(tmp_path, suffix):
    os.environ.setdefault("KERAS_BACKEND", "torch")  # Keras 3 on PyTorch: no TensorFlow needed
    pytest.importorskip("keras", reason="Keras is not installed: pip install 'unetkit[keras]'")
    from keras_reference import build_reference_keras_unet

    keras_model = build_reference_keras_unet(96, 96)
    rng = np.random.default_rng(0)
    for layer in keras_model.layers:  # random weights and biases, so that every layer matters
        if layer.get_weights():
            kernel, bias = layer.get_weights()
            layer.set_weights([rng.normal(0, 0.08, kernel.shape).astype("float32"),
                               rng.normal(0, 0.1, bias.shape).astype("float32")])
    keras_model.save(tmp_path / f"reference{suffix}")
    assert main(["import-keras", str(tmp_path / f"reference{suffix}"), "--out", str(tmp_path / "imported.pt")]) == 0
    model, _ = load_model(tmp_path / "imported.pt")
    assert model.config == UNet().config
    x = rng.random((2, 96, 96, 1)).astype("float32")
    expected = np.asarray(keras_model.predict(x, verbose=0))
    with torch.no_grad():
        ours = probabilities_from_logits(model(torch.from_numpy(x).permute(0, 3, 1, 2))).numpy().transpose(0, 2, 3, 1)
    assert expected.std() > 0.01
    assert np.abs(ours - expected).max() < 1e-5


@pytest.mark.parametrize("variant, message", [
    (dict(activation="elu"), "activation 'elu' where the reference U-Net has 'relu'"),
    (dict(skip_first=True), "concatenates ['Conv2D', 'Conv2DTranspose']"),
    (dict(outputs=2, head="sigmoid"), "a U-Net of 2 outputs ends in 'sigmoid'"),
    (dict(outputs=1, head="softmax"), "a softmax over one output is 1 everywhere"),
    (dict(filters_by_level=(4, 8, 12)), "twice the channels of the one above"),
    (dict(extra_tanh=True), "(Activation, 'tanh') follows no linear convolution"),
    (dict(dilation=2), "dilation (2, 2) where the reference U-Net has strides (1, 1) and dilation (1, 1)"),
    (dict(pool=3), "pools (3, 3) with strides (2, 2) where the reference U-Net pools (2, 2)"),
])
def test_keras_u_nets_that_differ_from_the_reference_in_what_shapes_cannot_show_are_refused(tmp_path, capsys,
                                                                                            variant, message):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    pytest.importorskip("keras", reason="Keras is not installed: pip install 'unetkit[keras]'")
    from keras_reference import build_reference_keras_unet

    build_reference_keras_unet(32, 32, **{"filters_by_level": (4, 8, 16), **variant}).save(tmp_path / "variant.keras")
    assert main(["import-keras", str(tmp_path / "variant.keras"), "--out", str(tmp_path / "m.pt")]) == 2
    error = capsys.readouterr().err
    assert message in error and not (tmp_path / "m.pt").exists()
    assert "variant.keras" in error and "fix:" in error, error  # the file, and what to do


def test_a_keras_u_net_ending_in_a_softmax_layer_imports_as_a_softmax_head(tmp_path):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    pytest.importorskip("keras", reason="Keras is not installed: pip install 'unetkit[keras]'")
    from keras import Model, layers
    from keras_reference import build_reference_keras_unet

    linear = build_reference_keras_unet(32, 32, filters_by_level=(4, 8, 16), outputs=3, head="linear")
    Model(linear.input, layers.Softmax()(linear.output)).save(tmp_path / "softmax.keras")
    assert main(["import-keras", str(tmp_path / "softmax.keras"), "--out", str(tmp_path / "m.pt")]) == 0
    assert load_model(tmp_path / "m.pt")[0].config.num_classes == 3  # three exclusive classes: softmax


@pytest.mark.parametrize("variant", [dict(use_bias=False), dict(relu_layers=True)])
def test_keras_u_nets_that_compute_as_the_reference_import_with_parity(tmp_path, variant):
    # without biases (PyTorch's drawn ones were kept before), or with ReLU layers of their own (refused when only
    # the convolutions' own activation was read)
    os.environ.setdefault("KERAS_BACKEND", "torch")
    pytest.importorskip("keras", reason="Keras is not installed: pip install 'unetkit[keras]'")
    from keras_reference import build_reference_keras_unet

    keras_model = build_reference_keras_unet(32, 32, filters_by_level=(4, 8, 16), **variant)
    rng = np.random.default_rng(1)
    for layer in keras_model.layers:  # random weights, so that every layer matters
        layer.set_weights([rng.normal(0, 0.3, w.shape).astype("float32") for w in layer.get_weights()])
    keras_model.save(tmp_path / "nobias.keras")
    assert main(["import-keras", str(tmp_path / "nobias.keras"), "--out", str(tmp_path / "m.pt"),
                 "--normalization", "scale"]) == 0
    model, data_options = load_model(tmp_path / "m.pt")
    assert (data_options.normalization.mode, data_options.normalization.high) == ("scale", 255.0)  # as trained
    x = np.random.default_rng(0).random((1, 32, 32, 1)).astype("float32")
    with torch.no_grad():
        ours = probabilities_from_logits(model(torch.from_numpy(x).permute(0, 3, 1, 2))).numpy().transpose(0, 2, 3, 1)
    assert np.abs(ours - np.asarray(keras_model.predict(x, verbose=0))).max() < 1e-5


def test_probabilities_on_disk_match_in_memory_prediction(tmp_path, checkpoint):
    in_memory = predict_files(checkpoint, ["sample:heldout"], tmp_path / "ram",
                              PredictOptions(probabilities=True, overlay=False), QUIET)
    on_disk = predict_files(checkpoint, ["sample:heldout"], tmp_path / "disk",
                            PredictOptions(probabilities_on_disk=True, overlay=False), QUIET)
    for a, b in zip(in_memory, on_disk):
        assert np.allclose(read_planes(a.probabilities)[0], read_planes(b.probabilities)[0], atol=1e-6)
        assert np.array_equal(read_planes(a.labels)[0], read_planes(b.labels)[0])
    assert not list((tmp_path / "disk").glob(".*partial*"))


def test_an_interruption_while_reading_is_not_mistaken_for_a_bad_file(tmp_path, monkeypatch):
    from unetkit.data import io
    from unetkit.signals import Interrupted

    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "fine.png")

    def interrupted_read(path, mask=False):
        raise Interrupted("interrupted by signal SIGTERM")

    monkeypatch.setattr(io, "_read_pil", interrupted_read)
    with pytest.raises(Interrupted):
        io.read_planes(tmp_path / "fine.png")


def test_skip_existing_writes_only_the_missing_outputs_and_replaces_no_file(tmp_path, checkpoint):
    from unetkit.data.writers import write_label_file

    first = predict_files(checkpoint, ["sample:heldout"], tmp_path / "out", PredictOptions(progress=False), QUIET)
    for record in first:  # another model's labels, say: they must not be replaced
        write_label_file(record.labels, np.zeros_like(read_planes(record.labels)[0]), overwrite=True)
    before = {record.labels: (record.labels.stat().st_ino, record.labels.read_bytes()) for record in first}
    messages: list[str] = []
    again = predict_files(checkpoint, ["sample:heldout"], tmp_path / "out",
                          PredictOptions(progress=False, skip_existing=True, probabilities=True), messages.append)
    assert len(again) == len(first) and all(record.probabilities.exists() for record in again)
    assert all(path.read_bytes() == content and path.stat().st_ino == inode
               for path, (inode, content) in before.items())
    assert any("only the missing ones are written" in message for message in messages)
    assert all(record.overlay.exists() for record in again)
    # an overlay added now is drawn from the labels kept (here: emptied by hand), not from a new prediction
    kept = predict_files(checkpoint, ["sample:heldout"], tmp_path / "kept", PredictOptions(progress=False), QUIET)[0]
    fresh = np.asarray(Image.open(kept.overlay))
    write_label_file(kept.labels, np.zeros_like(read_planes(kept.labels)[0]), overwrite=True)
    kept.overlay.unlink()
    predict_files(checkpoint, ["sample:heldout"], tmp_path / "kept", PredictOptions(progress=False, skip_existing=True),
                  QUIET)
    redrawn = np.asarray(Image.open(kept.overlay))
    assert redrawn.shape == fresh.shape and _outline_pixels(redrawn) < _outline_pixels(fresh) / 10
    # and a third run has nothing left to do
    assert predict_files(checkpoint, ["sample:heldout"], tmp_path / "out",
                         PredictOptions(progress=False, skip_existing=True, probabilities=True), QUIET) == []


def test_an_image_cut_into_tiles_says_how_many_and_how_large(tmp_path, checkpoint):
    from unetkit.tiling import TileOptions, plan_tiles

    tifffile.imwrite(tmp_path / "a.tif", np.random.default_rng(0).integers(0, 255, (96, 130), np.uint8))
    tile = TileOptions(tile_size=33, overlap=0.75)  # rounded down to 32 for this network
    messages: list[str] = []
    predict_files(checkpoint, [tmp_path / "a.tif"], tmp_path / "out",
                  PredictOptions(progress=False, overlay=False, tile=tile), messages.append)
    geometry = plan_tiles(load_model(checkpoint)[0], 96, 130, tile)
    said = [message for message in messages if "tiles of" in message]
    assert geometry.tile_count > 100 and said == [f"a.tif: 96x130, predicted in {geometry.tile_count} tiles of "
                                                  "32x32 px (--tile-size, --overlap)"]


def _outline_pixels(overlay: np.ndarray) -> int:
    """Pixels of an overlay that are not grey: the coloured outlines or fills of labels."""
    rgb = overlay[..., :3].astype(int)
    return int(np.count_nonzero((np.abs(rgb[..., 0] - rgb[..., 1]) > 20) | (np.abs(rgb[..., 1] - rgb[..., 2]) > 20)))


def test_evaluate_piped_into_head_writes_its_csv_and_ends_without_an_error(tmp_path, checkpoint, monkeypatch, capsys):
    # `unetkit evaluate ... | head` ended "error: Broken pipe — fix: check ... the free space on its disk", and the
    # table was printed before the CSV was written, so the CSV was lost with it
    import unetkit.cli as cli

    def closed_pipe(*args, **kwargs):
        if kwargs.get("file") in (None, sys.stdout):
            raise BrokenPipeError(32, "Broken pipe")

    out = open(tmp_path / "stdout.txt", "w")
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr("builtins.print", closed_pipe)
    code = cli.main(["evaluate", str(checkpoint), "sample:heldout", "--csv", str(tmp_path / "e.csv")])
    monkeypatch.undo()
    out.close()
    assert code == 141 and (tmp_path / "e.csv").is_file()
    assert "error" not in capsys.readouterr().err


def test_a_broken_pipe_elsewhere_is_not_taken_for_head_closing_the_output(tmp_path, checkpoint, monkeypatch, capsys):
    # every BrokenPipeError ended the command with 141 and no message, a dead worker's included
    import unetkit.cli as cli
    import unetkit.evaluation

    def broken(*args, **kwargs):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(unetkit.evaluation, "evaluate_checkpoint", broken)
    code = cli.main(["evaluate", str(checkpoint), "sample:heldout", "--csv", str(tmp_path / "e.csv")])
    assert code == 2 and "Broken pipe" in capsys.readouterr().err


def test_a_pixel_model_is_evaluated_on_object_labels_with_instance_masks(tmp_path, checkpoint, capsys):
    # evaluate had no --instance-masks: label masks were refused with "evaluate it on masks of that kind"
    from unetkit.cli import main
    from unetkit.evaluation import evaluate_checkpoint

    data = tmp_path / "labels"
    (data / "images").mkdir(parents=True)
    (data / "masks").mkdir()
    rng = np.random.default_rng(0)
    labels = np.zeros((48, 64), np.uint16)
    labels[5:20, 5:20], labels[25:40, 30:50], labels[5:15, 40:60] = 3, 7, 12
    Image.fromarray(rng.integers(0, 255, (48, 64), dtype=np.uint8)).save(data / "images" / "a.png")
    tifffile.imwrite(data / "masks" / "a.tif", labels)
    assert main(["evaluate", str(checkpoint), str(data), "--csv", str(tmp_path / "x.csv")]) == 2
    assert "pass --instance-masks" in capsys.readouterr().err
    two_classes = tmp_path / "two.pt"
    save_checkpoint(two_classes, make_checkpoint(UNet(depth=3, base_width=4, num_classes=2)))
    with pytest.raises(ConfigError, match="one-class pixel models"):
        evaluate_checkpoint(two_classes, data, precision="fp32", instance_masks=True)
    report = evaluate_checkpoint(checkpoint, data, precision="fp32", instance_masks=True)
    as_foreground = evaluate_checkpoint(checkpoint, _binary_copy(data, labels, tmp_path / "binary"), precision="fp32")
    assert report.rows()[0]["dice"] == as_foreground.rows()[0]["dice"]  # the labels scored as their foreground


def _binary_copy(data: Path, labels: np.ndarray, out: Path) -> Path:
    (out / "masks").mkdir(parents=True)
    shutil.copytree(data / "images", out / "images")
    tifffile.imwrite(out / "masks" / "a.tif", (labels > 0).astype(np.uint8))
    return out


def test_skip_existing_refuses_outputs_a_stacks_plane_and_a_file_both_write(tmp_path, checkpoint, capsys):
    # plane 1 of a.tif writes a_001_*; a file a_001.tif predicted later with --skip-existing kept them as its own
    from unetkit.cli import main

    rng = np.random.default_rng(0)
    folder = tmp_path / "in"
    folder.mkdir()
    tifffile.imwrite(folder / "a.tif", rng.integers(0, 255, (5, 48, 64), dtype=np.uint8))
    tifffile.imwrite(folder / "a_001.tif", rng.integers(0, 255, (48, 64), dtype=np.uint8))
    out = str(tmp_path / "out")
    assert main(["predict", str(checkpoint), str(folder / "a.tif"), "--out", out]) == 0
    before = snapshot(tmp_path / "out")
    assert main(["predict", str(checkpoint), str(folder / "a_001.tif"), "--out", out, "--skip-existing"]) == 2
    said = capsys.readouterr().err
    assert "plane 1 of a.tif beside this image writes outputs of that name too" in said, said
    assert snapshot(tmp_path / "out") == before
    assert main(["predict", str(checkpoint), str(folder / "a.tif"), "--out", out, "--skip-existing"]) == 2  # either
    (folder / "a_001.tif").unlink()  # no other writer of the name: its own outputs, kept
    assert main(["predict", str(checkpoint), str(folder / "a.tif"), "--out", out, "--skip-existing"]) == 0
    tifffile.imwrite(folder / "a_0001.tif", rng.integers(0, 255, (48, 64), dtype=np.uint8))  # no plane is a_0001
    assert main(["predict", str(checkpoint), str(folder / "a_0001.tif"), "--out", out]) == 0
    assert main(["predict", str(checkpoint), str(folder / "a_0001.tif"), "--out", out, "--skip-existing"]) == 0


def test_the_python_api_refuses_what_it_would_get_wrong_and_leaves_no_global_state(tmp_path, checkpoint):
    # a channels-last image normalised row by row, predict_tiled's error in terms of padded tiles, a single path
    # read character by character, epochs=2.0 failing in the loop after claiming the run folder, and train()
    # leaving torch's global generator at its own seed
    import unetkit
    from unetkit.data.normalize import Normalization
    from unetkit.tiling import predict_tiled

    with pytest.raises(ValueError, match="channels last"):
        Normalization().apply(np.zeros((64, 48, 1)))
    with pytest.raises(ValueError, match=r"channels last\? np.moveaxis"):
        predict_tiled(unetkit.load_model(checkpoint)[0], np.zeros((48, 64, 1), np.float32))
    with pytest.raises(ValueError, match="smaller than the network's minimum side"):  # predict refuses it too
        predict_tiled(unetkit.load_model(checkpoint)[0], np.zeros((1, 3, 3), np.float32))
    with pytest.raises(ValueError, match=r"logits\[None\]"):  # a (K, H, W) tensor was softmaxed over H
        unetkit.probabilities_from_logits(torch.zeros(2, 8, 8))
    Image.fromarray(np.zeros((40, 48), np.uint8)).save(tmp_path / "one.png")
    assert len(predict_files(checkpoint, str(tmp_path / "one.png"), tmp_path / "out", report=lambda text: None)) == 1
    with pytest.raises(ConfigError, match="epochs must be a whole number"):
        unetkit.TrainConfig(out=str(tmp_path / "run"), epochs=2.0)
    with pytest.raises(ConfigError, match="batch size must be a whole number"):
        unetkit.TrainConfig(out=str(tmp_path / "run"), batch_size=True)
    assert type(unetkit.TrainConfig(out=str(tmp_path / "run"), epochs=np.int64(3)).epochs) is int  # a notebook's
    assert not (tmp_path / "run").exists()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    unetkit.train(unetkit.TrainConfig(out=str(tmp_path / "run"), epochs=1, steps_per_epoch=2, depth=2, base_width=4,
                                      batch_size=2, progress=False), report=lambda text: None)
    assert torch.equal(torch.rand(3), expected)


def test_any_command_piped_into_a_reader_that_stopped_ends_quietly(monkeypatch, capsys):
    # `unetkit inspect DATA | head`: "error: Broken pipe — fix: check ... the free space on its disk"
    import unetkit.cli as cli

    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has gone, as head does after its lines
    closed = os.fdopen(write_end, "w", buffering=1)  # line-buffered: the first line meets the closed pipe
    monkeypatch.setattr(sys, "stdout", closed)
    try:
        code = cli.main(["inspect", "sample:heldout"])
    finally:
        monkeypatch.undo()
        with contextlib.suppress(OSError):
            closed.close()
    assert code == 141 and "error" not in capsys.readouterr().err
