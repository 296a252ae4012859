"""What a hostile tester broke (issue 12), one test per finding: no data lost, no silent
wrong result, a clear error with exit 2 and no traceback."""

from __future__ import annotations

import csv
import errno
import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from unetkit import TrainConfig, UNet, make_checkpoint, predict_files, save_checkpoint, train
from unetkit.checkpoint import read_checkpoint
from unetkit.cores import usable_cores
from unetkit.cli import build_parser, main
from unetkit.errors import CheckpointError, InputError, OutputExistsError, TrainingDiverged
from unetkit.predict import PredictOptions

from helpers import snapshot, write_dataset

QUIET = lambda text: None  # noqa: E731
TINY = ["--depth", "3", "--base-width", "4", "--epochs", "1", "--steps-per-epoch", "2",
        "--patch-size", "32", "--no-progress", "--augment", "flips"]


def tiny(data: Path, out: Path, **changes) -> TrainConfig:
    values = dict(out=str(out), data=str(data), depth=3, base_width=4, epochs=1, steps_per_epoch=2,
                  batch_size=2, patch_size=32, progress=False, augment="flips", val_tile_size=64)
    values.update(changes)
    return TrainConfig(**values)


@pytest.fixture
def model_file(tmp_path) -> Path:
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "m.pt", make_checkpoint(UNet(depth=2, base_width=2)))
    return tmp_path / "m.pt"


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    """Exit code and what the command printed (errors on stderr; inspect's report on stdout)."""
    code = main(argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.err + captured.out


# 1. file modes ------------------------------------------------------------------------------

@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_outputs_get_the_mode_open_gives_under_the_umask(tmp_path, umask, model_file):
    previous = os.umask(umask)
    try:
        data = write_dataset(tmp_path / "d", count=2)
        train(tiny(data, tmp_path / "run"), report=QUIET)
        predict_files(model_file, [data / "images"], tmp_path / "pred", PredictOptions(), QUIET)
        assert main(["export", str(model_file), "--out", str(tmp_path / "m.onnx")]) == 0
        assert main(["evaluate", str(model_file), str(data), "--csv", str(tmp_path / "e.csv")]) == 0
    finally:
        os.umask(previous)
    outputs = [*(tmp_path / "run").iterdir(), *(tmp_path / "pred").iterdir(), tmp_path / "m.onnx", tmp_path / "e.csv"]
    names = {p.name for p in outputs}
    assert {"last.pt", "best.pt", "log.csv", "curves.png", "config.json", "img0_labels.png",
            "img0_overlay.png", "m.onnx", "e.csv"} <= names
    for path in outputs:
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path


# 2. TIFF written page by page ------------------------------------------------------------------

def test_a_tiff_written_page_by_page_is_read_as_all_its_pages(tmp_path, model_file):
    from unetkit.data.io import plane_shape, read_planes
    from unetkit.inspect_data import inspect_dataset
    from unetkit.data.dataset import DataOptions

    root = tmp_path / "d"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    with tifffile.TiffWriter(root / "images" / "s.tif") as images, tifffile.TiffWriter(root / "masks" / "s.tif") as masks:
        for _ in range(3):
            images.write(rng.integers(0, 255, (64, 80), dtype=np.uint8))
            masks.write((rng.random((64, 80)) > 0.5).astype(np.uint8))
    assert len(read_planes(root / "images" / "s.tif")) == 3 == plane_shape(root / "images" / "s.tif").count
    assert inspect_dataset(root, DataOptions()).plane_count == 3
    records = predict_files(model_file, [root / "images"], tmp_path / "out", PredictOptions(overlay=False), QUIET)
    assert len(records) == 3


# 3. a run killed before its first last.pt; a full disk while saving -----------------------------

@pytest.mark.parametrize("how", ["--resume", "--auto-resume"])
def test_a_run_that_stopped_before_its_first_checkpoint_can_continue(tmp_path, capsys, how):
    from unetkit.training.run_dir import claim_run_dir

    data = write_dataset(tmp_path / "d", count=2)
    config = tiny(data, tmp_path / "run")
    claim_run_dir(tmp_path / "run", config)  # what a run killed while loading its data leaves
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["config.json"]
    argv = (["train", "--resume", str(tmp_path / "run")] if how == "--resume"
            else ["train", str(data), "--out", str(tmp_path / "run"), *TINY, "--batch-size", "2", "--auto-resume"])
    code, error = run_cli(argv, capsys)
    assert code == 0, error
    assert "starting it again from step 0" in error
    assert read_checkpoint(tmp_path / "run" / "last.pt")["training"]["global_step"] == 2


def test_a_full_disk_while_saving_keeps_the_previous_last_pt_and_says_so(tmp_path, capsys, monkeypatch):
    from unetkit import checkpoint

    data = write_dataset(tmp_path / "d", count=2)
    assert main(["train", str(data), "--out", str(tmp_path / "run"), *TINY, "--checkpoint-every", "1"]) == 0
    before = (tmp_path / "run" / "last.pt").read_bytes()
    real_save = torch.save

    def full_disk(payload, target):
        real_save(payload, target)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint.torch, "save", full_disk)
    code, error = run_cli(["train", "--resume", str(tmp_path / "run"), "--epochs", "2"], capsys)
    assert code == 2
    assert "No space left on device" in error and "previous file is intact" in error
    assert (tmp_path / "run" / "last.pt").read_bytes() == before
    assert not list((tmp_path / "run").glob(".*partial*"))


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="needs RLIMIT_FSIZE (POSIX)")
def test_a_real_failed_write_of_a_checkpoint_is_a_clear_error_not_torchs_runtime_error(tmp_path):
    """The operating system refuses the write (a file-size limit: what a full disk does, without filling one);
    torch's own file writer turned that into RuntimeError("enforce fail ... unexpected pos ...")."""
    import resource

    from unetkit.checkpoint import save_checkpoint
    from unetkit.errors import CheckpointError

    target = tmp_path / "last.pt"
    save_checkpoint(target, {"weights": torch.zeros(8)})
    before = target.read_bytes()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead of a kill
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, hard))
    try:
        with pytest.raises(CheckpointError) as caught:
            save_checkpoint(target, {"weights": torch.zeros(1 << 20)}, overwrite=True)  # 4 MiB
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old_handler)
    assert "could not write the checkpoint" in str(caught.value) and "previous file is intact" in str(caught.value)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


# 4. what --resume may change -------------------------------------------------------------------

@pytest.fixture
def finished_run(tmp_path) -> Path:
    data = write_dataset(tmp_path / "d", count=2)
    train(tiny(data, tmp_path / "run"), report=QUIET)
    return tmp_path / "run"


@pytest.mark.parametrize("flags", [["--epochs=2"], ["--epoch", "2"], ["--epochs", "2", "--lr", "0.001"]])
def test_resume_parses_the_options_it_may_change(finished_run, capsys, flags):
    code, error = run_cli(["train", "--resume", str(finished_run), *flags], capsys)
    assert code == 0, error
    assert read_checkpoint(finished_run / "last.pt")["training"]["global_step"] == 4  # 2 epochs of 2 steps


@pytest.mark.parametrize("flags, named", [
    (["--lr", "0.1"], "lr"), (["--batch-size", "8"], "batch-size"), (["--augment", "strong"], "augment"),
    (["--patch-size", "48"], "patch-size"), (["--out", "other"], "--out other"),
])
def test_resume_refuses_options_that_would_break_exact_resume(finished_run, capsys, flags, named):
    before = snapshot(finished_run)
    code, error = run_cli(["train", "--resume", str(finished_run), "--epochs", "2", *flags], capsys)
    assert code == 2 and named in error and "cannot change when a run resumes" in error
    assert snapshot(finished_run) == before



def test_a_resume_refusal_names_the_flags_as_they_are_typed(finished_run, capsys):
    # it named fields: "num-classes 2", "init-checkpoint ...", "memory-budget-gib 3.0", flags that do not exist
    code, error = run_cli(["train", "--resume", str(finished_run), "--classes", "2", "--init", "m.pt",
                           "--memory-budget", "3", "--lr", "0.1"], capsys)
    assert code == 2 and "cannot change when a run resumes" in error, error
    assert "--classes 2 (the run has 1)" in error and "--init 'm.pt'" in error and "--lr 0.1" in error, error
    assert "num-classes" not in error and "init-checkpoint" not in error and "budget-gib" not in error, error


def test_a_resume_takes_the_values_a_run_left_to_its_defaults(finished_run, capsys):
    # options the run never gave were stored as None, so giving their value at the resume was refused:
    # "--dropout 0.0 (the run has None)" for the dropout the run trained with
    code, error = run_cli(["train", "--resume", str(finished_run), "--epochs", "2", "--dropout", "0",
                           "--padding", "same", "--mask-mode", "classes", "--schedule", "cosine",
                           "--loss", "dice+bce"], capsys)
    assert code == 0, error
    assert read_checkpoint(finished_run / "last.pt")["training"]["global_step"] == 4
    code, error = run_cli(["train", "--resume", str(finished_run), "--epochs", "3", "--dropout", "0.5"], capsys)
    assert code == 2 and "--dropout 0.5 (the run has 0.0, its default)" in error, error


def test_a_hand_edited_log_is_named_before_a_resume_changes_anything(finished_run, capsys):
    # a note appended to log.csv crashed the resume with a ValueError traceback, after config.json was rewritten
    with open(finished_run / "log.csv", "a") as log:
        log.write("my notes,,,\n")
    before = snapshot(finished_run)
    code, error = run_cli(["train", "--resume", str(finished_run), "--epochs", "2"], capsys)
    assert code == 2 and "log.csv" in error and "line 3: 'my notes'" in error and "Traceback" not in error, error
    assert snapshot(finished_run) == before

@pytest.mark.parametrize("change", ["an image removed", "a mask edited"])
def test_resume_refuses_data_that_changed_since_the_run_started(tmp_path, capsys, change):
    data = write_dataset(tmp_path / "d", count=3)
    run = tmp_path / "run"
    train(tiny(data, run), report=QUIET)
    if change == "an image removed":
        for folder in ("images", "masks"):
            next((data / folder).glob("img2.*")).unlink()
    else:  # the same files, the same size: one object more in a mask
        mask = np.array(Image.open(data / "masks" / "img0.png"))
        mask[:4, :4] = 1
        Image.fromarray(mask).save(data / "masks" / "img0.png")
    before = snapshot(run)
    code, error = run_cli(["train", "--resume", str(run), "--epochs", "2"], capsys)
    assert code == 2 and "the data is not what this run trained on" in error and str(data) in error, error
    assert ("the same names but other file contents" in error) == (change == "a mask edited"), error
    assert snapshot(run) == before


def test_a_moved_project_resumes_when_given_the_data_s_new_path_and_only_the_same_data(tmp_path, capsys):
    project = tmp_path / "project"
    data = write_dataset(project / "d", count=3)
    save_checkpoint(project / "start.pt", make_checkpoint(UNet(in_channels=1, depth=3, base_width=4)))
    run = tmp_path / "run"
    code, error = run_cli(["train", str(data), "--out", str(run), *TINY, "--init", str(project / "start.pt")], capsys)
    assert code == 0, error
    project.rename(tmp_path / "moved")
    code, error = run_cli(["train", "--resume", str(run), "--epochs", "2"], capsys)
    assert code == 2 and f"no longer at {data}" in error and f"--resume {run} NEW_PATH" in error, error
    other = write_dataset(tmp_path / "other", count=3, seed=5)
    code, error = run_cli(["train", "--resume", str(run), str(other), "--epochs", "2"], capsys)
    assert code == 2 and "not what this run trained on" in error, error
    code, error = run_cli(["train", "--resume", str(run), str(tmp_path / "moved" / "d"), "--epochs", "2"], capsys)
    assert code == 0, error  # the same data, moved; and --init (moved too) is not read again
    assert read_checkpoint(run / "last.pt")["training"]["global_step"] == 4
    assert json.loads((run / "config.json").read_text())["data"] == str(tmp_path / "moved" / "d")


def test_a_run_saved_before_the_data_identity_still_refuses_another_data_path(finished_run, tmp_path, capsys):
    payload = read_checkpoint(finished_run / "last.pt")
    del payload["training"]["data_identity"]  # as last.pt was written before 2026-12-07
    save_checkpoint(finished_run / "last.pt", payload, overwrite=True)
    other = write_dataset(tmp_path / "other", count=2, seed=5)
    code, error = run_cli(["train", "--resume", str(finished_run), str(other), "--epochs", "2"], capsys)
    assert code == 2 and "cannot change when a run resumes" in error and "data" in error
    (tmp_path / "d").rename(tmp_path / "moved")  # such a run's data moved: the way on is to move it back
    code, error = run_cli(["train", "--resume", str(finished_run), "--epochs", "2"], capsys)
    assert code == 2 and f"move it back to {tmp_path / 'd'}" in error and "NEW_PATH" not in error, error


def test_data_loaded_at_the_start_and_streamed_at_the_resume_is_the_same_data(tmp_path, capsys, monkeypatch):
    data = write_dataset(tmp_path / "d", count=3)
    run = tmp_path / "run"
    code, error = run_cli(["train", str(data), "--out", str(run), *TINY], capsys)
    assert code == 0 and "patches are read from the files" not in error
    monkeypatch.setattr(TrainConfig, "memory_budget_bytes", property(lambda self: 1))  # a smaller machine
    code, error = run_cli(["train", "--resume", str(run), "--epochs", "2"], capsys)
    assert code == 0 and "patches are read from the files" in error, error
    assert read_checkpoint(run / "last.pt")["training"]["global_step"] == 4


def test_the_memory_budget_the_data_refusal_asks_for_is_taken_by_the_resume(tmp_path, capsys, monkeypatch):
    # the refusal said "give the budget of the machine the run started on", and --memory-budget was then refused
    data = write_dataset(tmp_path / "d", count=22, size=(32, 32))
    run = tmp_path / "run"
    code, error = run_cli(["train", str(data), "--out", str(run), *TINY, "--val-fraction", "0.9"], capsys)
    assert code == 0 and "patches are read from the files" not in error, error  # loaded, 19 validation images
    machine = lambda self: 1 if self.memory_budget_gib is None else int(self.memory_budget_gib * 2**30)  # noqa: E731
    monkeypatch.setattr(TrainConfig, "memory_budget_bytes", property(machine))  # a smaller machine
    code, error = run_cli(["train", "--resume", str(run), "--epochs", "2"], capsys)
    assert code == 2 and "--memory-budget" in error, error  # streamed, it would validate on 16
    code, error = run_cli(["train", "--resume", str(run), "--epochs", "2", "--memory-budget", "1"], capsys)
    assert code == 0, error
    assert read_checkpoint(run / "last.pt")["training"]["global_step"] == 4


def test_a_refusal_that_comes_from_the_memory_budget_says_so():
    from unetkit.errors import ConfigError
    from unetkit.training.data_identity import check_same_data

    names = [f"images/img{index}.png" for index in range(18)]
    stored = {"train_images": 72, "validation_images": names, "digest": "a", "streamed": False}
    streamed = {"train_images": 72, "validation_images": names[:16], "digest": "b", "streamed": True}  # at most 16
    with pytest.raises(ConfigError, match="loaded then and is streamed from its files now") as error:
        check_same_data(stored, streamed, Path("run/last.pt"), "d")
    assert "--memory-budget" in str(error.value)


def test_a_run_saved_before_val_split_resumes_with_the_split_by_plane(finished_run):
    from unetkit.training.state import stored_config

    config = json.loads((finished_run / "config.json").read_text())
    assert config["val_split"] == "files"
    del config["val_split"]
    (finished_run / "last.pt").unlink()
    (finished_run / "config.json").write_text(json.dumps(config))
    assert stored_config(finished_run).val_split == "planes"


def test_a_resume_from_another_working_directory_reads_the_data_the_run_started_with(tmp_path, capsys, monkeypatch):
    (tmp_path / "project").mkdir()
    write_dataset(tmp_path / "project" / "d", count=2)
    write_dataset(tmp_path / "elsewhere" / "d", count=3, seed=7)  # another folder of the same name
    monkeypatch.chdir(tmp_path / "project")
    code, error = run_cli(["train", "d", "--out", str(tmp_path / "run"), *TINY, "--val-fraction", "0"], capsys)
    assert code == 0, error
    monkeypatch.chdir(tmp_path / "elsewhere")
    code, error = run_cli(["train", "--resume", str(tmp_path / "run"), "--epochs", "2"], capsys)
    assert code == 0, error
    assert json.loads((tmp_path / "run" / "config.json").read_text())["data"] == str(tmp_path / "project" / "d")


# 5. races ---------------------------------------------------------------------------------------

def test_two_runs_started_at_once_into_one_folder_do_not_both_run(tmp_path):
    data = write_dataset(tmp_path / "d", count=2)
    command = [sys.executable, "-m", "unetkit", "train", str(data), "--out", str(tmp_path / "run"), *TINY]
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in processes]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    refused = next(error for code, error in results if code == 2)
    assert any(words in refused for words in ("claimed it", "run directory exists", "claiming this folder")), refused
    epochs = [row["epoch"] for row in csv.DictReader(open(tmp_path / "run" / "log.csv"))]
    assert epochs == ["1"]


def test_a_run_that_finds_another_s_claim_half_written_says_so(tmp_path, capsys):
    # the race of the test above, caught while the first run's config.json was still a temporary: the second
    # was told "--out is a folder of other files (.config.json...partial.json), not a run"
    from unetkit.data.partials import temporary_file

    (tmp_path / "run").mkdir()
    claim = temporary_file(tmp_path / "run" / "config.json", suffix=".partial.json")
    code, error = run_cli(["train", str(write_dataset(tmp_path / "d", count=2)), "--out", str(tmp_path / "run"),
                           *TINY], capsys)
    assert code == 2 and "another run is claiming this folder" in error and claim.name in error, error
    assert [path.name for path in (tmp_path / "run").iterdir()] == [claim.name]
    # the claim of a run killed while it claimed the folder (a process of this machine that is gone) is no live run
    from unetkit.data.partials import HOST

    claim.rename(tmp_path / "run" / f".config.json.{HOST}-999999999.abcdefgh.partial.json")
    code, error = run_cli(["train", str(tmp_path / "d"), "--out", str(tmp_path / "run"), *TINY], capsys)
    assert code == 2 and "a run killed while it claimed this folder left .config.json." in error, error
    assert "remove " + str(tmp_path / "run" / ".config.json.*.partial*") in error, error


def test_an_output_that_appears_while_writing_is_never_replaced(tmp_path):
    from unetkit.data.io import atomic_write

    target = tmp_path / "x_labels.png"

    def write_while_another_process_creates_the_file(temporary: Path) -> None:
        temporary.write_bytes(b"ours")
        target.write_bytes(b"theirs")  # the other process's output, after our existence check

    with pytest.raises(OutputExistsError, match="appeared while it was being written"):
        atomic_write(target, write_while_another_process_creates_the_file)
    assert target.read_bytes() == b"theirs"
    assert [p.name for p in tmp_path.iterdir()] == ["x_labels.png"]


# 6. NaN ----------------------------------------------------------------------------------------

def test_a_non_finite_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    from unetkit import tasks

    data = write_dataset(tmp_path / "d", count=2)
    real_build_loss = tasks.build_loss
    calls = {"count": 0}

    def loss_that_diverges(*args, **kwargs):
        loss = real_build_loss(*args, **kwargs)

        def wrapped(logits, target, weights=None):
            calls["count"] += 1
            value = loss(logits, target, weights)
            return value * float("nan") if calls["count"] >= 4 else value

        return wrapped

    monkeypatch.setattr(tasks, "build_loss", loss_that_diverges)
    with pytest.raises(TrainingDiverged, match="step 4") as error:
        train(tiny(data, tmp_path / "run", epochs=3, checkpoint_every=1), report=QUIET)
    assert "--lr" in str(error.value)
    state = read_checkpoint(tmp_path / "run" / "last.pt")
    assert state["training"]["global_step"] == 3
    assert all(torch.isfinite(value).all() for value in state["model_state"].values())


def test_non_finite_weights_are_refused_on_load(tmp_path, capsys):
    model = UNet(depth=2, base_width=2)
    with torch.no_grad():
        model.head.weight.fill_(float("nan"))
    save_checkpoint(tmp_path / "nan.pt", make_checkpoint(model))
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "x.png")
    for argv in (["predict", str(tmp_path / "nan.pt"), str(tmp_path / "x.png"), "--out", str(tmp_path / "out")],
                 ["train", str(write_dataset(tmp_path / "d")), "--out", str(tmp_path / "run"), *TINY,
                  "--depth", "2", "--base-width", "2", "--init", str(tmp_path / "nan.pt")]):
        code, error = run_cli(argv, capsys)
        assert code == 2 and "NaN or infinite weights" in error
    assert not (tmp_path / "out").exists() and not (tmp_path / "run").exists()


# 7. an output is never an input ----------------------------------------------------------------

def test_overwrite_never_replaces_an_input_of_the_same_command(tmp_path, capsys, model_file):
    folder = tmp_path / "d"
    folder.mkdir()
    Image.fromarray(np.full((32, 32), 9, np.uint8)).save(folder / "x.png")
    Image.fromarray(np.full((32, 32), 7, np.uint8)).save(folder / "x_labels.png")
    before = snapshot(folder)
    code, error = run_cli(["predict", str(model_file), str(folder), "--out", str(folder), "--overwrite"], capsys)
    assert code == 2 and "would replace an input" in error and "x_labels.png" in error
    assert snapshot(folder) == before


def test_overwrite_never_replaces_a_link_a_device_an_input_or_the_other_output(tmp_path, capsys, model_file):
    # outputs are written beside and moved into place: with --overwrite that would put a regular file where a
    # link, a pipe (or /dev/null), the checkpoint or a data file was
    import os

    data = write_dataset(tmp_path / "d", count=1)
    (tmp_path / "real.csv").write_text("keep")
    (tmp_path / "link.csv").symlink_to(tmp_path / "real.csv")
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "folder").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "folder")
    (tmp_path / "scores.zarr").mkdir()  # a folder that only an OME-Zarr image may replace
    before = snapshot(tmp_path)
    evaluate = ["evaluate", str(model_file), str(data), "--overwrite", "--csv"]
    for argv, words in ((evaluate + [str(tmp_path / "link.csv")], "output is a link (to "),
                        (evaluate + [str(tmp_path / "pipe")], "not a regular file"),
                        (evaluate[:-2] + ["--csv", str(tmp_path / "link.csv")], "output is a link (to "),  # said at once,
                        (evaluate[:-2] + ["--csv", str(tmp_path / "pipe")], "not a regular file"),  # not "--overwrite"
                        (evaluate + [str(tmp_path / "scores.zarr")], "output path is a folder"),
                        (evaluate + [str(data / "masks" / "img0.png")], "one of this command's inputs"),
                        (evaluate + [str(model_file)], "one of this command's inputs"),
                        (evaluate + [str(tmp_path / "s.x"), "--report", str(tmp_path / "s.x")], "the same file"),
                        (evaluate + [str(tmp_path / "folder" / "s.x"), "--report", str(tmp_path / "alias" / "s.x")],
                         "the same file"),
                        (["export", str(model_file), "--out", str(model_file), "--overwrite"], "one of this command's inputs"),
                        (["import-keras", str(tmp_path / "real.csv"), "--out", str(tmp_path / "real.csv"), "--overwrite"],
                         "one of this command's inputs"),
                        (["export", str(model_file), "--format", "bioimageio", "--out", str(tmp_path / "link.zip"),
                          "--overwrite"], "output is a link")):
        if argv[-2].endswith("link.zip"):
            (tmp_path / "link.zip").symlink_to(tmp_path / "real.csv")
            before = snapshot(tmp_path)
        model_bytes = model_file.read_bytes()
        code, error = run_cli(argv, capsys)
        assert code == 2 and words in error, (argv, error)
        assert snapshot(tmp_path) == before and model_file.read_bytes() == model_bytes
    assert (tmp_path / "link.csv").is_symlink() and (tmp_path / "pipe").is_fifo()


def test_predict_names_a_link_among_its_outputs_at_once_not_as_pass_overwrite(tmp_path, capsys, model_file):
    # "output exists already, pass --overwrite", and with --overwrite "output is a link": the real reason, at once
    data = write_dataset(tmp_path / "d", count=1)
    (tmp_path / "out").mkdir()
    (tmp_path / "elsewhere.png").write_bytes(b"keep")
    (tmp_path / "out" / "img0_labels.png").symlink_to(tmp_path / "elsewhere.png")
    before = snapshot(tmp_path)
    for flags in ([], ["--overwrite"]):
        code, error = run_cli(["predict", str(model_file), str(data / "images" / "img0.png"), "--out",
                               str(tmp_path / "out"), *flags], capsys)
        assert code == 2 and "output is a link" in error and "pass --overwrite" not in error, (flags, error)
    assert snapshot(tmp_path) == before


# 8. tracebacks instead of clear errors -------------------------------------------------------------

def test_out_that_is_a_file_or_a_dangling_link_is_a_clear_error(tmp_path, capsys, model_file):
    data = write_dataset(tmp_path / "d", count=2)
    (tmp_path / "file").write_text("x")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    for out, words in ((tmp_path / "file", "is a file"), (tmp_path / "dangling", "link to nothing")):
        for argv in (["train", str(data), "--out", str(out), *TINY],
                     ["predict", str(model_file), str(data / "images"), "--out", str(out)]):
            code, error = run_cli(argv, capsys)
            assert code == 2 and words in error, (argv, error)
    assert (tmp_path / "file").read_text() == "x" and not (tmp_path / "nowhere").exists()


def as_regular_user(monkeypatch) -> None:
    """Tests run as root in CI, and root may write anywhere: answer os.access as the mode bits
    answer it for a regular user, so that the checks meet a read-only folder."""
    def access(path, mode, *args, **kwargs):
        bits = stat.S_IMODE(os.stat(path).st_mode)
        wanted = {os.W_OK: stat.S_IWOTH, os.R_OK: stat.S_IROTH, os.X_OK: stat.S_IXOTH}
        return all(bits & wanted[flag] for flag in wanted if mode & flag)

    monkeypatch.setattr(os, "access", access)


def test_a_read_only_folder_is_refused_before_any_work(tmp_path, capsys, monkeypatch, model_file):
    data = write_dataset(tmp_path / "d", count=2)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    as_regular_user(monkeypatch)
    cases = [
        ["train", str(data), "--out", str(locked / "run"), *TINY],
        ["predict", str(model_file), str(data / "images"), "--out", str(locked / "out")],
        ["evaluate", str(model_file), str(data), "--csv", str(locked / "e.csv")],
        ["export", str(model_file), "--out", str(locked / "m.onnx")],
    ]
    for argv in cases:
        code, error = run_cli(argv, capsys)
        assert code == 2 and "permission denied" in error, (argv, error)
    assert list(locked.iterdir()) == []


def test_a_folder_on_a_read_only_file_system_is_named_as_such(tmp_path, capsys, monkeypatch, model_file):
    data = write_dataset(tmp_path / "d", count=2)
    mount = tmp_path / "mounted"
    mount.mkdir()
    real_access, real_statvfs = os.access, os.statvfs

    def access(path, mode, *args, **kwargs):  # a disk mounted read-only: no writes there, even for root
        return False if Path(path) == mount and mode & os.W_OK else real_access(path, mode, *args, **kwargs)

    def statvfs(path):
        result = real_statvfs(path)
        if Path(path) != mount:
            return result
        return types.SimpleNamespace(f_flag=result.f_flag | os.ST_RDONLY)

    monkeypatch.setattr(os, "access", access)
    monkeypatch.setattr(os, "statvfs", statvfs)
    for argv in (["train", str(data), "--out", str(mount / "run"), *TINY],
                 ["predict", str(model_file), str(data / "images"), "--out", str(mount / "out")]):
        code, error = run_cli(argv, capsys)
        assert code == 2 and "read-only file system" in error and str(mount) in error, (argv, error)
    assert list(mount.iterdir()) == []


def test_an_unreadable_masks_folder_is_a_clear_error(tmp_path, capsys, monkeypatch):
    data = write_dataset(tmp_path / "d", count=2)
    real_iterdir = Path.iterdir

    def iterdir(self):  # what a regular user meets in a folder without read permission
        if self == data / "masks":
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_iterdir(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    code, error = run_cli(["train", str(data), "--out", str(tmp_path / "run"), *TINY], capsys)
    assert code == 2 and "masks" in error and "permission denied" in error


@pytest.mark.parametrize("argv_tail, words", [
    (["--lr", "nan"], "must be a finite number"), (["--weight-decay", "nan"], "must be a finite number"),
    (["--weight-decay", "-1"], "weight decay must be 0 or more"), (["--seed", "-1"], "seed must be 0 or more"),
    (["--device", "bogus"], "unknown device 'bogus'"), (["--grad-clip", "inf"], "must be a finite number"),
    (["--max-time", "0"], "--max-time must be more than 0"),
    (["--max-time", "9" * 400 + "h"], "argument --max-time: too long to count"),
    (["--resume", __file__], "this is a file, not a run directory"),
    (["--val-data", "sample:heldout", "--val-fraction", "0.5"], "--val-fraction 0.5 has no effect with --val-data"),
])
def test_bad_option_values_are_clear_errors(tmp_path, capsys, argv_tail, words):
    data = write_dataset(tmp_path / "d", count=2)
    try:
        code = main(["train", str(data), "--out", str(tmp_path / "run"), *TINY, *argv_tail])
    except SystemExit as exit_:  # argparse's own refusal: also exit 2, with the flag named
        code = exit_.code
    error = capsys.readouterr().err
    assert code == 2 and words in error and "Traceback" not in error
    assert not (tmp_path / "run").exists()


def test_cuda_on_a_build_without_it_is_a_clear_error(tmp_path, capsys, model_file):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code, error = run_cli(["predict", str(model_file), "sample:heldout", "--out", str(tmp_path / "o"),
                           "--device", "cuda"], capsys)
    assert code == 2 and "sees no CUDA GPU" in error


def test_overlap_nan_and_export_onto_a_folder_are_clear_errors(tmp_path, capsys, model_file):
    with pytest.raises(SystemExit) as exit_:
        main(["predict", str(model_file), "sample:heldout", "--out", str(tmp_path / "o"), "--overlap", "nan"])
    assert exit_.value.code == 2 and "finite" in capsys.readouterr().err
    (tmp_path / "dir").mkdir()
    code, error = run_cli(["export", str(model_file), "--out", str(tmp_path / "dir"), "--overwrite"], capsys)
    assert code == 2 and "is a folder" in error


def test_nproc_with_an_equals_sign_runs_under_torchrun(monkeypatch, tmp_path):
    import unetkit.cli as cli

    seen = {}

    class Torchrun:  # stands in for the torchrun process the command starts
        def __init__(self, command, **options):
            seen.update(command=command, **options)

        def wait(self):
            return 0

    monkeypatch.setattr(subprocess, "Popen", Torchrun)
    argv = ["train", "d", "--out", str(tmp_path / "r"), "--nproc=2"]
    assert cli.main(argv) == 0
    assert "--nproc_per_node=2" in seen["command"] and not any(a.startswith("--nproc=") for a in seen["command"])
    assert seen["start_new_session"]  # signals reach torchrun from the command, once
    for abbreviated in (["--npro", "3"], ["--npro=3"]):  # argparse takes them; torchrun found them ambiguous
        assert cli.main(["train", "d", "--out", str(tmp_path / "r"), *abbreviated, "--epochs", "1"]) == 0
        command = seen["command"]
        assert "--nproc_per_node=3" in command and not any(a.startswith("--npro") for a in command[5:])
        assert command[-4:] == ["--out", str(tmp_path / "r"), "--epochs", "1"]
    assert seen["env"]["OMP_NUM_THREADS"] == str(max(1, usable_cores() // 3))  # a CPU quota counts


def test_an_image_too_large_for_memory_is_refused_before_decoding(tmp_path, capsys, monkeypatch):
    from unetkit.data import memory

    data = write_dataset(tmp_path / "d", count=2)
    huge = np.zeros((3000, 3000), np.uint8)  # compresses to a few kB
    (data / "images" / "img1.png").unlink()
    tifffile.imwrite(data / "images" / "img1.tif", huge, compression="zlib")
    tifffile.imwrite(data / "masks" / "img1.tif", huge, compression="zlib")
    (data / "masks" / "img1.png").unlink()
    monkeypatch.setattr(memory, "available_memory_bytes", lambda: 50 * 2**20)  # as on a machine with 50 MiB free
    code, error = run_cli(["train", str(data), "--out", str(tmp_path / "run"), *TINY], capsys)
    assert code == 2 and "img1.tif" in error and "3000x3000" in error and "50.0 MiB of memory is free" in error


def test_a_checkpoint_whose_version_is_not_a_number_is_a_clear_error(tmp_path, capsys):
    payload = make_checkpoint(UNet(depth=2, base_width=2))
    payload["version"] = "2"
    torch.save(payload, tmp_path / "odd.pt")
    code, error = run_cli(["predict", str(tmp_path / "odd.pt"), "sample:heldout", "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "version is '2', not a number" in error


# 9. CSV encodings -------------------------------------------------------------------------------

def test_an_excel_utf8_csv_is_read_and_a_latin1_csv_is_refused_with_the_encoding(tmp_path, capsys):
    from unetkit.data.pairing import find_pairs

    write_dataset(tmp_path / "d", count=2)
    text = "image,mask\nd/images/img0.png,d/masks/img0.png\nd/images/img1.png,d/masks/img1.png\n"
    (tmp_path / "excel.csv").write_bytes("\ufeff".encode() + text.encode())
    assert len(find_pairs(tmp_path / "excel.csv").pairs) == 2
    (tmp_path / "latin.csv").write_bytes(("image,mask\n" + "d/images/img0\xe9.png,d/masks/img0.png\n").encode("latin-1"))
    code, error = run_cli(["train", str(tmp_path / "latin.csv"), "--out", str(tmp_path / "run"), *TINY], capsys)
    assert code == 2 and "not UTF-8" in error and "latin.csv" in error


# 10. inspect agrees with train ------------------------------------------------------------------

def test_inspect_refuses_what_train_refuses(tmp_path, capsys):
    data = write_dataset(tmp_path / "d", count=3)
    (data / "masks" / "img2.png").unlink()
    (data / "masks" / "img2.png").symlink_to(data / "masks" / "gone.png")
    inspect_code, inspect_error = run_cli(["inspect", str(data)], capsys)
    train_code, train_error = run_cli(["train", str(data), "--out", str(tmp_path / "run"), *TINY], capsys)
    assert train_code == 2 and "links to nothing" in train_error
    assert inspect_code == 2 and "links to nothing" in inspect_error


def test_inspect_says_what_train_says_of_ignored_foreground_absent_classes_and_subfolders(tmp_path, capsys):
    data = write_dataset(tmp_path / "d", count=3, mask_scale=255)  # masks of {0, 255}
    code, said = run_cli(["inspect", str(data), "--ignore-index", "255"], capsys)
    assert code == 2 and "no mask has any foreground besides --ignore-index 255" in said, said
    code, said = run_cli(["inspect", str(data), "--ignore-index", "0"], capsys)  # as train says, below
    assert code == 2 and "--ignore-index 0 is the background" in said, said
    for path in (data / "masks").iterdir():
        Image.fromarray((np.asarray(Image.open(path)) > 0).astype(np.uint8)).save(path)  # masks of {0, 1}
    (data / "images" / "sub").mkdir()
    code, said = run_cli(["inspect", str(data), "--classes", "3"], capsys)
    assert "class(es) 2 of --classes 3 are in no mask" in said and "subfolders are not read" in said, said


def test_inspect_names_an_image_of_another_channel_count_and_takes_the_ignored_value_for_no_class(tmp_path, capsys):
    data = write_dataset(tmp_path / "d", count=3)
    Image.fromarray(np.zeros((64, 80, 3), np.uint8)).save(data / "images" / "img1.png")
    code, said = run_cli(["inspect", str(data)], capsys)
    assert code == 2 and "different channel counts: 1 (img0.png ...), 3 (img1.png ...)" in said, said
    data = write_dataset(tmp_path / "e", count=3)
    mask = np.asarray(Image.open(data / "masks" / "img0.png")).copy()
    mask[:2, :2] = 255  # a few ignored pixels: not a rare class to oversample
    Image.fromarray(mask).save(data / "masks" / "img0.png")
    code, said = run_cli(["inspect", str(data), "--ignore-index", "255"], capsys)
    assert code == 0 and "class 255 covers" not in said, said
    assert "ignored (--ignore-index 255): 0.0" in said and "class 255:" not in said, said  # listed as a class before


def test_inspect_notes_images_of_several_types_and_prints_no_empty_lines(tmp_path, capsys):
    # inspect said "ready to train" where train --normalization scale refuses, and printed "channels: " with nothing
    data = write_dataset(tmp_path / "d", count=3)
    tifffile.imwrite(data / "images" / "img1.tif", np.zeros((64, 80), np.uint16) + 300)
    (data / "images" / "img1.png").unlink()
    code, said = run_cli(["inspect", str(data)], capsys)
    assert code == 0 and "the images are of 2 types: train --normalization scale refuses them" in said, said
    assert run_cli(["train", str(data), "--out", str(tmp_path / "run"), "--normalization", "scale", *TINY],
                   capsys)[0] == 2
    (data / "masks" / "img0.png").write_bytes(b"")  # every mask fails: no statistics to show
    code, said = run_cli(["inspect", str(data)], capsys)
    assert code == 2 and not [line for line in said.splitlines() if line.rstrip().endswith(":")], said


def test_inspect_says_what_train_says_of_masks_without_background(tmp_path, capsys):
    data = write_dataset(tmp_path / "d", count=3)
    for path in (data / "masks").iterdir():  # ilastik's Simple Segmentation: 1 background, 2 objects
        Image.fromarray(((np.asarray(Image.open(path)) > 0) + 1).astype(np.uint8)).save(path)
    code, said = run_cli(["inspect", str(data), "--instance-masks"], capsys)
    assert code == 2 and "no mask has any background (0)" in said and "subtract 1" in said, said
    code, said = run_cli(["inspect", str(data), "--classes", "3"], capsys)  # class 0 is one class of three
    assert code == 0 and "class 0 is in no mask" in said, said




def test_inspect_task_instances_checks_label_images_as_train_does(tmp_path, capsys):
    from skimage.measure import label

    data = write_dataset(tmp_path / "d", count=2)  # masks of 0/1 disks: binary, not one id per object
    code, said = run_cli(["inspect", str(data), "--task", "instances"], capsys)
    code_train, trained = run_cli(["train", str(data), "--task", "instances", "--out", str(tmp_path / "r"), *TINY],
                                  capsys)
    assert code == code_train == 2 and "looks binary" in said and "looks binary" in trained, (said, trained)
    objects = 0
    for path in (data / "masks").iterdir():  # each disk its own id: the labels train --task instances reads
        ids = label(np.asarray(Image.open(path)) > 0).astype(np.uint16)
        objects += int(ids.max())
        tifffile.imwrite(path.with_suffix(".tif"), ids)
        path.unlink()
    code, said = run_cli(["inspect", str(data), "--task", "instances"], capsys)
    assert code == 0 and f"objects: {objects} (label ids" in said and "class 2" not in said, said
    code, said = run_cli(["inspect", str(data), "--task", "instances", "--instance-masks"], capsys)
    assert code == 2 and "leave --classes, --mask-mode/--instance-masks, --loss and --ignore-index out" in said

def test_inspect_names_the_images_train_holds_out_and_a_split_that_starves_training(tmp_path, capsys):
    import re

    data = write_dataset(tmp_path / "d", count=5)
    for seed in ("0", "4"):
        code, said = run_cli(["inspect", str(data), "--seed", seed], capsys)
        previewed = re.search(r"validation: 1 of 5 image\(s\) held out \((images/img\d\.png)\)", said)
        code, trained = run_cli(["train", str(data), "--out", str(tmp_path / f"run{seed}"), "--seed", seed, *TINY],
                                capsys)
        assert code == 0 and previewed and f"validating on 1 ({previewed[1]})" in trained, (said, trained)
        assert "of the labelled foreground" not in said + trained  # five frames alike
    held = previewed[1].split("/")[1]
    for path in (data / "masks").iterdir():  # every frame but the held-out one keeps one small object
        if path.name != held:
            mask = np.zeros_like(np.asarray(Image.open(path)))
            mask[10:14, 10:14] = 1
            Image.fromarray(mask).save(path)
    code, said = run_cli(["inspect", str(data), "--seed", "4"], capsys)
    code, trained = run_cli(["train", str(data), "--out", str(tmp_path / "run_unequal"), "--seed", "4", *TINY], capsys)
    for text in (said, trained):
        assert f"the validation image ({held}) holds" in text and "1 of 5 images" in text, text
    code, said = run_cli(["inspect", str(data), "--val-fraction", "0"], capsys)
    assert code == 0 and "validation:" not in said and "of the labelled foreground" not in said
    code, said = run_cli(["inspect", str(data), "--seed", "-1"], capsys)
    assert code == 2 and "seed must be 0 or more, got -1" in said and "Traceback" not in said

def test_ome_tiff_stems_pair_without_their_ome_suffix(tmp_path):
    from unetkit.data.pairing import find_pairs

    data = write_dataset(tmp_path / "d", count=2)
    image = np.asarray(Image.open(data / "images" / "img1.png"))
    (data / "images" / "img1.png").unlink()
    tifffile.imwrite(data / "images" / "img1.ome.tif", image, ome=True)
    listing = find_pairs(data)
    assert [(p.image.name, p.mask.name) for p in listing.pairs] == [("img0.png", "img0.png"), ("img1.ome.tif", "img1.png")]
    assert not listing.images_without_mask and not listing.masks_without_image


# 11. duplicate CSV rows -------------------------------------------------------------------------

def test_a_csv_that_lists_an_image_twice_is_refused(tmp_path, capsys):
    write_dataset(tmp_path / "d", count=2)
    (tmp_path / "pairs.csv").write_text("d/images/img0.png,d/masks/img0.png\nd/images/img1.png,d/masks/img1.png\n"
                                        "d/images/img0.png,d/masks/img0.png\n")
    code, error = run_cli(["train", str(tmp_path / "pairs.csv"), "--out", str(tmp_path / "run"), *TINY], capsys)
    assert code == 2 and "rows 1 and 3" in error and "both training and validation" in error


# 12. every fix names an option the command has ------------------------------------------------------

def command_flags(command: str) -> set[str]:
    import argparse

    subparsers = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {flag for action in subparsers.choices[command]._actions for flag in action.option_strings}


def mask_file(folder: Path, name: str, array: np.ndarray) -> None:
    for old in folder.glob(f"{Path(name).stem}.*"):
        old.unlink()
    Image.fromarray(array).save(folder / name)


def test_every_suggested_fix_names_an_option_of_the_command_that_failed(tmp_path, capsys, model_file):
    binary = write_dataset(tmp_path / "binary", count=2, mask_scale=255)
    jpeg = write_dataset(tmp_path / "jpeg", count=2)
    mask_file(jpeg / "masks", "img1.jpg", np.zeros((64, 80), np.uint8))
    odd = write_dataset(tmp_path / "odd", count=2)
    mask_file(odd / "masks", "img1.png", np.full((64, 80), 7, np.uint8))
    (tmp_path / "grid.png").write_bytes(b"exists")
    (tmp_path / "e.csv").write_text("exists")
    predict_files(model_file, [binary / "images"], tmp_path / "pred", PredictOptions(), QUIET)
    cases = [
        ["train", str(binary), "--out", str(tmp_path / "r1"), *TINY, "--classes", "2"],
        ["train", str(jpeg), "--out", str(tmp_path / "r2"), *TINY],
        ["train", str(odd), "--out", str(tmp_path / "r3"), *TINY],
        ["train", str(binary), "--out", str(tmp_path / "r4"), "--save-augmentations", str(tmp_path / "grid.png")],
        ["inspect", str(odd)],
        ["evaluate", str(model_file), str(odd), "--csv", str(tmp_path / "e2.csv")],
        ["evaluate", str(model_file), str(binary), "--csv", str(tmp_path / "e.csv")],
        ["predict", str(model_file), str(binary / "images"), "--out", str(tmp_path / "pred")],
        ["export", str(model_file), "--out", str(tmp_path / "e.csv")],
    ]
    for argv in cases:
        code = main(argv)
        error = capsys.readouterr()
        text = error.err + error.out
        assert code == 2, (argv, text)
        fixes = [line for line in text.splitlines() if "fix:" in line or "error:" in line]
        suggested = {flag for line in fixes for flag in re.findall(r"(?<![\w-])--[a-z][a-z-]+", line)}
        assert suggested <= command_flags(argv[0]), (argv, suggested - command_flags(argv[0]), text)
    # and the fixes are the right ones
    code = main(cases[0])
    assert "--classes 1" in capsys.readouterr().err and "--classes 256" not in capsys.readouterr().err


def test_16_bit_white_masks_are_read_as_binary_like_8_bit_ones(tmp_path):
    from unetkit.data.dataset import DataOptions, load_labelled

    data = write_dataset(tmp_path / "d", count=2)
    for path in (data / "masks").iterdir():
        mask = np.asarray(Image.open(path)).astype(np.uint16) * 65535
        path.unlink()
        tifffile.imwrite(path.with_suffix(".tif"), mask)
    notes: list[str] = []
    samples = load_labelled(data, DataOptions(), notes)
    assert all(set(np.unique(s.mask)) == {0, 1} for s in samples)
    assert any("{0, 65535}" in note for note in notes)


def test_a_jpeg_mask_is_refused_as_lossy_everywhere(tmp_path, capsys, model_file):
    data = write_dataset(tmp_path / "d", count=2)
    mask_file(data / "masks", "img1.jpg", np.zeros((64, 80), np.uint8))
    for argv in (["train", str(data), "--out", str(tmp_path / "run"), *TINY], ["inspect", str(data)],
                 ["evaluate", str(model_file), str(data), "--csv", str(tmp_path / "e.csv")]):
        code, error = run_cli(argv, capsys)
        assert "JPEG masks are not accepted" in error, argv


def test_permission_denied_is_not_reported_as_a_corrupt_file(tmp_path, monkeypatch):
    from unetkit.data import io
    from unetkit.errors import InputError

    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "x.png")
    monkeypatch.setattr(io, "_read_pil", lambda path, mask=False: (_ for _ in ()).throw(PermissionError(errno.EACCES, "denied")))
    with pytest.raises(InputError, match="permission denied") as error:
        io.read_planes(tmp_path / "x.png")
    assert "corrupt" not in str(error.value)


def test_numpy_data_in_a_pt_file_is_not_called_code(tmp_path):
    torch.save({"weights": np.zeros(3)}, tmp_path / "numpy.pt")
    np.save(tmp_path / "array.npy", np.zeros(3))
    (tmp_path / "array.npy").rename(tmp_path / "array.pt")
    with pytest.raises(CheckpointError) as first:
        read_checkpoint(tmp_path / "numpy.pt")
    assert "numpy" in str(first.value) and "refused" in str(first.value)
    with pytest.raises(CheckpointError, match="NumPy array") as second:
        read_checkpoint(tmp_path / "array.pt")
    assert "code" not in str(second.value)


# 13. work thrown away ----------------------------------------------------------------------------

def test_evaluate_refuses_an_existing_csv_before_scoring_anything(tmp_path, capsys, monkeypatch, model_file):
    import unetkit.evaluation as evaluation

    data = write_dataset(tmp_path / "d", count=2)
    (tmp_path / "e.csv").write_text("keep")
    monkeypatch.setattr(evaluation, "evaluate_samples", lambda *a, **k: pytest.fail("scored before checking"))
    code, error = run_cli(["evaluate", str(model_file), str(data), "--csv", str(tmp_path / "e.csv")], capsys)
    assert code == 2 and "exists already" in error and (tmp_path / "e.csv").read_text() == "keep"


def test_a_bad_file_in_a_batch_says_what_is_finished_and_skip_existing_continues(tmp_path, capsys, model_file):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("a", "b", "c"):
        tifffile.imwrite(inputs / f"{name}.tif", np.full((40, 40), ord(name), np.uint8))
    good_b = (inputs / "b.tif").read_bytes()
    # b's header is fine (the batch is planned), its pixel data is cut off
    (inputs / "b.tif").write_bytes(good_b[:-800])
    code, error = run_cli(["predict", str(model_file), str(inputs), "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and "b.tif" in error and "finished images: a_labels.png" in error and "--skip-existing" in error
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_labels.png", "a_overlay.png"]
    finished_at = (tmp_path / "out" / "a_labels.png").stat().st_mtime_ns
    (inputs / "b.tif").write_bytes(good_b)
    code, error = run_cli(["predict", str(model_file), str(inputs), "--out", str(tmp_path / "out"), "--skip-existing"], capsys)
    assert code == 0 and "skipping 1 image(s)" in error
    assert len(list((tmp_path / "out").glob("*_labels.png"))) == 3
    assert (tmp_path / "out" / "a_labels.png").stat().st_mtime_ns == finished_at


def test_all_empty_masks_are_refused_and_an_empty_validation_is_warned(tmp_path, capsys):
    data = write_dataset(tmp_path / "d", count=2)
    for path in (data / "masks").iterdir():
        Image.fromarray(np.zeros((64, 80), np.uint8)).save(path)
    code, error = run_cli(["train", str(data), "--out", str(tmp_path / "run"), *TINY], capsys)
    assert code == 2 and "nothing to learn" in error


@pytest.mark.parametrize("streamed", [False, True])
def test_masks_whose_only_foreground_is_ignored_are_refused(tmp_path, capsys, streamed):
    data = write_dataset(tmp_path / "d", count=2, mask_scale=255)  # masks of {0, 255}
    budget = ["--memory-budget", "0.000000001"] if streamed else []  # read from the files, patch by patch
    code, error = run_cli(["train", str(data), "--out", str(tmp_path / "run"), *TINY, "--ignore-index", "255",
                           *budget], capsys)
    assert code == 2 and "background or --ignore-index 255" in error and "nothing to learn" in error
    assert ("patches are read from the files" in error) == streamed
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("options, words", [
    (["--ignore-index", "0"], "--ignore-index 0 is the background"),
    (["--ignore-index", "1"], "one of the classes of --classes 1 (0 to 1)"),
    (["--ignore-index", "2", "--classes", "3"], "one of the classes of --classes 3 (0 to 2)"),
    (["--ignore-index", "255", "--instance-masks"], "every label above 0 becomes foreground, the value to ignore too")])
def test_an_ignore_index_that_is_the_background_or_a_class_is_refused(tmp_path, capsys, options, words):
    # ignoring 0 left only foreground to learn: a model calling every pixel foreground scored validation Dice 1.0;
    # instance masks made the ignored value an object
    data = write_dataset(tmp_path / "d", count=2)
    code, error = run_cli(["train", str(data), "--out", str(tmp_path / "run"), *TINY, *options], capsys)
    assert code == 2 and words in error and "255" in error, error
    assert not (tmp_path / "run").exists()


def test_a_class_in_no_training_mask_is_warned(tmp_path, capsys):
    data = write_dataset(tmp_path / "d", count=3)  # masks of {0, 1}
    code, error = run_cli(["train", str(data), "--out", str(tmp_path / "run3"), *TINY, "--classes", "3"], capsys)
    assert code == 0 and "warning: class 2 of --classes 3 (0 to 2) is in no training mask" in error, error
    code, error = run_cli(["train", str(data), "--out", str(tmp_path / "run2"), *TINY, "--classes", "2"], capsys)
    assert code == 0 and "in no training mask" not in error, error


def test_validation_on_the_training_data_itself_is_warned(tmp_path, capsys):
    data = write_dataset(tmp_path / "d", count=2)
    code, error = run_cli(["train", str(data), "--out", str(tmp_path / "run"), *TINY, "--val-data", str(data)], capsys)
    assert code == 0 and "warning: --val-data is DATA itself" in error, error



def test_the_first_stop_signal_is_answered_at_once():
    # it was silent: a validation of minutes could pass before the run said anything
    from unetkit.signals import flag_on_stop_signals

    said: list[str] = []
    with flag_on_stop_signals(report=said.append) as stop:
        os.kill(os.getpid(), signal.SIGINT)
        deadline = time.monotonic() + 5
        while not stop.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)
    assert stop.is_set() and said[0].startswith("SIGINT: stopping;") and said[1].startswith("SIGTERM again:")

def test_repeated_signals_are_acknowledged(tmp_path):
    data = write_dataset(tmp_path / "d", count=3, size=(90, 90))
    # one torch thread and a wider network: a core stays free for this process, and the stop (the step under
    # way, then last.pt) takes long enough that the second signal lands during it, not after the run ended
    process = subprocess.Popen(
        [sys.executable, "-m", "unetkit", "train", str(data), "--out", str(tmp_path / "run"), "--depth", "3",
         "--base-width", "32", "--epochs", "100", "--steps-per-epoch", "200", "--patch-size", "64",
         "--checkpoint-every", "1", "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    deadline = time.monotonic() + 120
    while not (tmp_path / "run" / "last.pt").exists():
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)
    process.send_signal(signal.SIGINT)
    _, error = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "again: already stopping" in error and "stopped by a signal" in error


def test_a_full_disk_while_writing_the_report_is_a_clear_error_and_keeps_the_csv(tmp_path, capsys, model_file,
                                                                                  monkeypatch):
    import errno

    from unetkit import report

    data = write_dataset(tmp_path / "d", count=1)
    html = tmp_path / "r.html"

    def disk_full(evaluation, path, overwrite=False):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(report, "write_report", disk_full)
    code, error = run_cli(["evaluate", str(model_file), str(data), "--csv", str(tmp_path / "e.csv"),
                           "--report", str(html)], capsys)
    assert code == 2 and f"error: {html}: No space left on device" in error and "fix: check that path" in error
    assert (tmp_path / "e.csv").exists() and not html.exists()


def test_out_that_is_the_input_folder_is_refused_however_it_is_named(tmp_path, capsys, model_file):
    folder = tmp_path / "d"
    folder.mkdir()
    Image.fromarray(np.full((32, 32), 9, np.uint8)).save(folder / "x.png")
    (tmp_path / "link").symlink_to(folder)
    before = snapshot(folder)
    for out in (folder, tmp_path / "d" / ".." / "d", tmp_path / "link"):
        code, error = run_cli(["predict", str(model_file), str(folder), "--out", str(out)], capsys)
        assert code == 2 and "--out is the folder of the input images" in error
        assert snapshot(folder) == before
    code, _ = run_cli(["predict", str(model_file), str(folder), "--out", str(tmp_path / "elsewhere")], capsys)
    assert code == 0 and (tmp_path / "elsewhere" / "x_labels.png").exists()


# stray temporaries ---------------------------------------------------------------------------

def finished_process_id() -> int:
    """The id of a process that has ended (a temporary named after it was left by a killed run)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_rerun_removes_what_a_killed_run_left_half_written_and_nothing_else(tmp_path, capsys, model_file):
    from unetkit.data.partials import HOST

    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    out.mkdir()
    tifffile.imwrite(inputs / "a.tif", np.full((40, 40), 90, np.uint8))
    gone = finished_process_id()
    killed_file = out / f".a_labels.png.{HOST}-{gone}.abcd1234.partial.png"
    killed_work = out / f".big_labels.tif.{HOST}-{gone}.efgh5678.partial-work"
    killed_file.write_bytes(b"half an image")
    killed_work.mkdir()
    (killed_work / "outputs.zarr").write_bytes(b"gigabytes, once")
    two_hours_ago = time.time() - 7200
    for path in (killed_file, killed_work / "outputs.zarr", killed_work):
        os.utime(path, (two_hours_ago, two_hours_ago))
    just_killed = out / f".d_labels.png.{HOST}-{gone}.qrst7890.partial.png"  # may be another namespace's: wait
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        in_flight = out / f".b_labels.png.{HOST}-{running.pid}.ijkl9012.partial.png"  # another predict, writing
        elsewhere = out / f".c_labels.png.otherhost-{gone}.mnop3456.partial.png"  # a shared disk's other machine
        not_ours = out / ".notes.partial"
        for path in (in_flight, elsewhere, not_ours, just_killed):
            path.write_bytes(b"keep")
        for path in (in_flight, elsewhere, not_ours):
            os.utime(path, (two_hours_ago, two_hours_ago))
        code, error = run_cli(["predict", str(model_file), str(inputs), "--out", str(out)], capsys)
        assert code == 0, error
        assert not killed_file.exists() and not killed_work.exists()
        assert all(path.read_bytes() == b"keep" for path in (in_flight, elsewhere, not_ours, just_killed))
        assert (out / "a_labels.png").is_file()
    finally:
        running.kill()
        running.wait()


def test_a_resumed_run_removes_the_checkpoint_its_killed_self_left_half_written(tmp_path):
    from unetkit.data.partials import HOST
    from unetkit.training.state import resume_config

    data = write_dataset(tmp_path / "d", count=2)
    config = TrainConfig(out=str(tmp_path / "run"), data=str(data), depth=2, base_width=2, epochs=1,
                         steps_per_epoch=1, batch_size=1, patch_size=32, progress=False, val_fraction=0.0)
    train(config, report=lambda text: None)
    half_written = tmp_path / "run" / f".last.pt.{HOST}-{finished_process_id()}.abcd1234.partial.pt"
    half_written.write_bytes(b"x" * 1000)
    os.utime(half_written, (time.time() - 7200, time.time() - 7200))
    resumed = train(resume_config(tmp_path / "run", epochs=2), resume=True, report=lambda text: None)
    assert resumed.epochs_completed == 2 and not half_written.exists()


def test_a_resume_of_a_run_that_is_still_training_is_refused_and_changes_nothing(tmp_path, capsys):
    from unetkit.training.run_dir import hold_run_dir

    data = write_dataset(tmp_path / "d", count=2)
    run = tmp_path / "run"
    train(TrainConfig(out=str(run), data=str(data), depth=2, base_width=2, epochs=1, steps_per_epoch=1,
                      batch_size=1, patch_size=32, progress=False, val_fraction=0.0), report=lambda text: None)
    release = hold_run_dir(run)  # as a train (or another resume) of this run does while it runs
    try:
        before = snapshot(run)
        code, error = run_cli(["train", "--resume", str(run), "--epochs", "2"], capsys)
        assert code == 2 and "another unetkit train is running" in error
        assert snapshot(run) == before
    finally:
        release()
    code, error = run_cli(["train", "--resume", str(run), "--epochs", "2", "--no-progress"], capsys)
    assert code == 0, error
    assert len(list(csv.DictReader(open(run / "log.csv")))) == 2


def test_a_bare_interrupt_is_reported_in_words(monkeypatch, capsys):
    # Ctrl-C raises KeyboardInterrupt() with no message: the CLI printed "unetkit inspect: " and nothing else
    from unetkit import cli

    def interrupted(args, argv, stops):
        raise KeyboardInterrupt()

    monkeypatch.setattr(cli, "_run_inspect", interrupted)
    assert cli.main(["inspect", "anything"]) == cli.EXIT_INTERRUPTED
    assert capsys.readouterr().err.strip() == "unetkit inspect: interrupted"


@pytest.mark.parametrize("became", [
    lambda: ImportError('PyCapsule_Import could not import module "datetime"'),  # numpy's import, stopped
    lambda: InputError("image.tif: cannot be read as an image", fix="remove it"),  # what a reader makes of that
])
def test_an_error_that_follows_a_stop_is_reported_as_the_interruption(monkeypatch, capsys, became):
    # a SIGTERM in the middle of numpy's import came out as numpy's ImportError, with a traceback,
    # from a worker that `unetkit train --nproc 2` was stopping (a flaky CI failure)
    from unetkit import cli

    def stopped_while_importing(args, argv, stops):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises before this ends
        except KeyboardInterrupt as interruption:
            raise became() from interruption
        return 0

    monkeypatch.setattr(cli, "_run_inspect", stopped_while_importing)
    assert cli.main(["inspect", "anything"]) == cli.EXIT_INTERRUPTED
    assert capsys.readouterr().err.strip() == "unetkit inspect: interrupted by signal SIGTERM"
    with pytest.raises(type(became())):  # --debug: the error itself, with its traceback
        cli.main(["--debug", "inspect", "anything"])

    def a_bug(args, argv, stops):
        raise ImportError("no module named nothing")

    monkeypatch.setattr(cli, "_run_inspect", a_bug)
    with pytest.raises(ImportError, match="nothing"):  # with no stop before it, an error stays an error
        cli.main(["inspect", "anything"])


CHILD_THAT_COUNTS_ITS_STOPS = """
import pathlib, signal, sys, time
count = []
signal.signal(signal.SIGTERM, lambda signum, frame: count.append(signum))
pathlib.Path(sys.argv[1] + ".ready").touch()
deadline = time.monotonic() + 30
while not count and time.monotonic() < deadline:
    time.sleep(0.01)
time.sleep(1.5)  # saving, while more stops arrive
pathlib.Path(sys.argv[1]).write_text(str(len(count)))
sys.exit(1)
"""


def test_the_nproc_wrapper_passes_on_only_the_first_of_several_stops(tmp_path, capsys):
    # each SIGTERM raises again inside torchrun's shutdown: after the third, torchrun exited while
    # its workers were still saving
    import threading

    from unetkit.cli import EXIT_INTERRUPTED, _run_forwarding_signals

    marker = tmp_path / "got"

    def stop_this_process_three_times():
        deadline = time.monotonic() + 30
        while not marker.with_name("got.ready").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        for stop in (signal.SIGINT, signal.SIGINT, signal.SIGTERM):
            os.kill(os.getpid(), stop)
            time.sleep(0.2)

    threading.Thread(target=stop_this_process_three_times, daemon=True).start()
    code = _run_forwarding_signals([sys.executable, "-c", CHILD_THAT_COUNTS_ITS_STOPS, str(marker)])
    assert marker.read_text() == "1" and code == EXIT_INTERRUPTED
    err = capsys.readouterr().err
    assert err.count("again: already stopping") == 2 and "interrupted by signal SIGINT" in err


CHILD_THAT_REPORTS_ITS_SIGNAL = """
import pathlib, signal, sys, time
def stop(signum, frame):
    pathlib.Path(sys.argv[1]).write_text(signal.Signals(signum).name)
    sys.exit(1)
signal.signal(signal.SIGINT, stop)
signal.signal(signal.SIGTERM, stop)
pathlib.Path(sys.argv[1] + ".ready").touch()
time.sleep(60)
"""


@pytest.mark.parametrize("sent", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_the_nproc_wrapper_passes_a_stop_on_to_torchrun_as_sigterm_and_says_it_was_interrupted(tmp_path, capsys, sent):
    # as SIGTERM: a worker that SIGINT met in its imports printed a KeyboardInterrupt traceback
    import threading

    from unetkit.cli import EXIT_INTERRUPTED, _run_forwarding_signals

    marker = tmp_path / "got"

    def stop_this_process_once_the_child_listens():
        deadline = time.monotonic() + 30
        while not marker.with_name("got.ready").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(os.getpid(), sent)

    threading.Thread(target=stop_this_process_once_the_child_listens, daemon=True).start()
    before = signal.getsignal(sent)
    code = _run_forwarding_signals([sys.executable, "-c", CHILD_THAT_REPORTS_ITS_SIGNAL, str(marker)])
    assert marker.read_text() == "SIGTERM" and code == EXIT_INTERRUPTED
    assert f"interrupted by signal {sent.name} (passed on to torchrun as SIGTERM)" in capsys.readouterr().err
    assert signal.getsignal(sent) is before  # this process's own handling is back


def test_the_command_line_starts_without_torch_and_the_api_names_still_resolve():
    # `import unetkit` imported torch and every module (1.3 s): a stop in that time met no handler
    # of ours, and under --nproc gave odd exit codes and tracebacks
    probe = ("import sys, unetkit.cli, unetkit.torchrun; print(sorted(m for m in ('torch', 'numpy', 'scipy') "
             "if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert loaded.stdout.strip() == "[]", loaded.stderr
    import unetkit

    assert all(getattr(unetkit, name) is not None for name in unetkit.__all__) and "train" in dir(unetkit)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        unetkit.nothing


CHILD_THAT_REPORTS_A_SIGNAL_OR_ENDS = CHILD_THAT_REPORTS_ITS_SIGNAL.replace("time.sleep(60)", "time.sleep(2)")


def test_a_stop_signal_the_command_was_started_ignoring_stays_ignored(tmp_path):
    # `nohup unetkit train --nproc 2 ...` passed a closed terminal's SIGHUP on as SIGTERM, and
    # the stop handlers replaced an ignored SIGTERM: the run stopped, as nohup is there to prevent
    import threading

    from unetkit.cli import _run_forwarding_signals
    from unetkit.signals import flag_on_stop_signals

    marker = tmp_path / "got"

    def hang_up_once_the_child_listens():
        deadline = time.monotonic() + 30
        while not marker.with_name("got.ready").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGHUP)

    hangup, terminate = signal.signal(signal.SIGHUP, signal.SIG_IGN), signal.getsignal(signal.SIGTERM)
    try:
        threading.Thread(target=hang_up_once_the_child_listens, daemon=True).start()
        code = _run_forwarding_signals([sys.executable, "-c", CHILD_THAT_REPORTS_A_SIGNAL_OR_ENDS, str(marker)])
        assert code == 0 and not marker.exists()  # nothing passed on: the child ran to its end
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        with flag_on_stop_signals(report=print) as stop:
            assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.1)
            assert not stop.is_set()
    finally:
        signal.signal(signal.SIGHUP, hangup)
        signal.signal(signal.SIGTERM, terminate)


def test_a_stop_during_the_launchers_imports_is_kept_and_ends_it_before_torchrun_starts(monkeypatch):
    # raised inside torch's import, a stop can come out as an ImportError that an optional
    # dependency's `except ImportError` swallows: torchrun then started and trained to the end
    from unetkit import torchrun as launcher

    started: list[list[str]] = []

    def import_torchrun_while_a_stop_arrives():
        try:
            os.kill(os.getpid(), signal.SIGTERM)  # arrives inside the imports
            time.sleep(0.05)
        except BaseException:  # as C code in an import turned it into an ImportError, which an
            pass  # `except ImportError` swallowed: the handler must not raise during the imports
        return started.append

    monkeypatch.setattr(launcher, "_import_torchrun", import_torchrun_while_a_stop_arrives)
    before = signal.getsignal(signal.SIGTERM)
    try:
        assert launcher.main(["--standalone", "-m", "unetkit"]) == launcher.EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, before)
    assert started == []  # torchrun never started


def test_a_stop_after_the_launchers_imports_ends_torchrun_before_its_own_handlers(monkeypatch):
    from unetkit import torchrun as launcher

    reached: list[str] = []

    def torchrun_setting_up(argv):
        os.kill(os.getpid(), signal.SIGTERM)  # torchrun's Python, before it hands stops to its workers
        time.sleep(0.05)
        reached.append("past the stop")

    monkeypatch.setattr(launcher, "_import_torchrun", lambda: torchrun_setting_up)
    before = signal.getsignal(signal.SIGTERM)
    try:
        assert launcher.main(["--standalone"]) == launcher.EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, before)
    assert reached == []


@pytest.mark.parametrize("command", [
    ["train", "d", "--out", "run", "--nproc", "2"],
    ["train", "d", "--out", "run", "--depth", "2", "--base-width", "4", "--epochs", "1", "--steps-per-epoch", "1",
     "--patch-size", "32", "--no-progress"],
    ["predict", "m.pt", "d/images", "--out", "out"], ["evaluate", "m.pt", "d"], ["inspect", "d"],
    ["export", "m.pt", "--out", "m.onnx"],
])
def test_a_stop_that_code_swallowed_while_a_command_started_ends_it_before_its_work(
        tmp_path, monkeypatch, capsys, model_file, command):
    # parsing `train` imports torch, and a stop raised there can be swallowed (an ImportError made of
    # it): the command then went on, --nproc started torchrun, predict wrote every output
    from unetkit import cli
    from unetkit.signals import ReceivedStops

    write_dataset(tmp_path / "d", count=2, size=(64, 64))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "_relaunch_under_torchrun", lambda *given: pytest.fail("torchrun was started"))
    before = snapshot(tmp_path)
    stops = ReceivedStops()
    stops.append(signal.SIGTERM)  # what the start-up handler recorded before the swallowed raise
    args = cli.build_parser().parse_args(command)
    assert cli._run_command(args, command, stops) == cli.EXIT_INTERRUPTED  # each would succeed without the stop
    assert capsys.readouterr().err.strip() == f"unetkit {command[0]}: interrupted by signal SIGTERM"
    assert snapshot(tmp_path) == before  # nothing made or changed


def test_long_file_names_are_predicted_and_a_name_too_long_for_its_outputs_is_refused_first(tmp_path, capsys,
                                                                                              model_file):
    inputs = tmp_path / "in"
    inputs.mkdir()
    # the outputs' names fit in 255 bytes; the hidden temporaries beside them (.NAME.HOST-PID.*.partial.png)
    # once did not, and the batch failed after predicting, "free space or fix permissions"
    long_stem = "c" * 210
    tifffile.imwrite(inputs / f"{long_stem}.tif", np.full((40, 40), 7, np.uint8))
    code, error = run_cli(["predict", str(model_file), str(inputs), "--out", str(tmp_path / "out"), "--probabilities"],
                          capsys)
    assert code == 0, error
    assert (tmp_path / "out" / f"{long_stem}_probabilities.tif").exists()
    assert not [p for p in (tmp_path / "out").iterdir() if "partial" in p.name]
    too_long = "d" * 246  # 250 bytes with .tif: its labels' name would be 257
    tifffile.imwrite(inputs / f"{too_long}.tif", np.full((40, 40), 7, np.uint8))
    code, error = run_cli(["predict", str(model_file), str(inputs / f"{too_long}.tif"), "--out",
                           str(tmp_path / "out2")], capsys)
    assert code == 2 and "more than the 255 a file name may have" in error and "shorter name" in error
    assert not (tmp_path / "out2").exists()


def test_what_a_header_shows_is_refused_before_the_batch_starts(tmp_path, capsys, model_file):
    tifffile.imwrite(tmp_path / "a.tif", np.full((40, 40), 5, np.uint8))
    tifffile.imwrite(tmp_path / "z.tif", np.zeros((2, 3, 64, 64), "uint16"), imagej=True, metadata={"axes": "TZYX"})
    tifffile.imwrite(tmp_path / "c.tif", np.zeros((64, 64), "complex64"))
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(tmp_path / "g.gif")
    for bad, message in [("z.tif", "a 4D stack"), ("c.tif", "complex numbers"), ("g.gif", "unsupported image format")]:
        out = tmp_path / f"out_{bad}"
        code, error = run_cli(["predict", str(model_file), str(tmp_path / "a.tif"), str(tmp_path / bad),
                               "--out", str(out)], capsys)
        assert code == 2 and bad in error and message in error, error
        assert "finished images" not in error and not out.exists()  # a.tif was not predicted first


def test_one_image_named_twice_and_two_images_of_one_name_are_told_apart(tmp_path, capsys, model_file):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        tifffile.imwrite(tmp_path / folder / "x.tif", np.full((40, 40), 5, np.uint8))
    code, error = run_cli(["predict", str(model_file), str(tmp_path / "a"), str(tmp_path / "a" / "x.tif"),
                           "--out", str(tmp_path / "o1")], capsys)
    assert code == 2 and "the same image is given 2 times" in error and "x.tif" in error
    code, error = run_cli(["predict", str(model_file), str(tmp_path / "a" / "x.tif"), str(tmp_path / "b" / "x.tif"),
                           "--out", str(tmp_path / "o2")], capsys)
    assert code == 2 and "several inputs would write outputs named ['x']" in error and "different --out" in error
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()


def test_a_csv_header_may_name_mask_first_and_a_row_may_not_name_one_file_twice(tmp_path, capsys):
    from unetkit.data.pairing import find_pairs

    write_dataset(tmp_path / "d", count=2)
    (tmp_path / "swapped.csv").write_text("mask,image\nd/masks/img0.png,d/images/img0.png\n"
                                          "d/masks/img1.png,d/images/img1.png\n")
    assert [(p.image.parent.name, p.mask.parent.name) for p in find_pairs(tmp_path / "swapped.csv").pairs] == \
        [("images", "masks")] * 2
    (tmp_path / "self.csv").write_text("d/masks/img0.png,d/masks/img0.png\nd/images/img1.png,d/masks/img1.png\n")
    (tmp_path / "empty.csv").write_text("d/images/img0.png,\nd/images/img1.png,d/masks/img1.png\n")
    for name, message in [("self.csv", "row 1 names one file as both image and mask"), ("empty.csv", "row 1 has no mask")]:
        code, error = run_cli(["inspect", str(tmp_path / name)], capsys)
        assert code == 2 and message in error, error


def test_instance_masks_beside_another_mask_mode_is_refused_in_either_order(tmp_path, capsys):
    data = write_dataset(tmp_path / "d", count=2)
    for flags in (["--instance-masks", "--mask-mode", "classes"], ["--mask-mode", "classes", "--instance-masks"]):
        try:
            code, error = run_cli(["train", str(data), "--out", str(tmp_path / "run"), *TINY, *flags], capsys)
        except SystemExit as exit_:  # argparse's error
            code, error = exit_.code, capsys.readouterr().err
        assert code == 2 and "--instance-masks contradicts --mask-mode classes" in error, (flags, error)
    assert not (tmp_path / "run").exists()
    code, _ = run_cli(["train", str(data), "--out", str(tmp_path / "run"), *TINY, "--instance-masks",
                       "--mask-mode", "instances"], capsys)
    assert code == 0


def test_objects_that_tile_the_image_train_an_object_model_and_a_multiclass_run_warns_of_class_0(tmp_path, capsys):
    data = write_dataset(tmp_path / "d", count=3)
    squares = (np.arange(64)[:, None] // 16) * 5 + (np.arange(80)[None, :] // 16) + 1  # 20 touching cells, no 0
    for path in (data / "masks").iterdir():
        Image.fromarray(squares.astype(np.uint8)).save(path)
    code, error = run_cli(["train", str(data), "--task", "instances", "--out", str(tmp_path / "objects"), *TINY], capsys)
    assert code == 0, error  # confluent cells: their boundaries are there to learn
    for path in (data / "masks").iterdir():
        Image.fromarray(((squares % 2) + 1).astype(np.uint8)).save(path)  # classes 1 and 2 only
    code, said = run_cli(["train", str(data), "--classes", "3", "--out", str(tmp_path / "classes"), *TINY], capsys)
    assert code == 0 and "class 0 is in no mask" in said, said


def test_unmatched_files_say_why_they_may_have_been_meant_as_pairs(tmp_path, capsys):
    # masks named img0_mask.png, names differing in case, masks in a subfolder: "N image(s) without a mask" only
    data = write_dataset(tmp_path / "d", count=2)
    for path in sorted((data / "masks").iterdir()):
        path.rename(path.with_name(path.stem + "_mask.png"))
    code, said = run_cli(["train", str(data), "--out", str(tmp_path / "r"), *TINY], capsys)
    assert code == 2 and "masks are named with '_mask' added (img0_mask.png for img0.png)" in said, said
    code, said = run_cli(["inspect", str(data)], capsys)
    assert code == 2 and "masks are named with '_mask' added" in said, said
    (data / "masks" / "img0_mask.png").rename(data / "masks" / "IMG0.png")
    code, said = run_cli(["inspect", str(data)], capsys)
    assert "names differ in case only (img0.png, IMG0.png)" in said, said
    (data / "masks" / "labels").mkdir()
    for path in [p for p in (data / "masks").iterdir() if p.is_file()]:
        path.rename(data / "masks" / "labels" / path.name)
    code, said = run_cli(["train", str(data), "--out", str(tmp_path / "r"), *TINY], capsys)
    assert code == 2 and "its subfolder labels/ holds some" in said and ".bmp" in said, said


def test_a_stop_landing_in_the_import_systems_lock_callback_is_kept_for_later_not_printed_as_a_traceback():
    # torchrun's SIGTERM reached a rank while a module lock was collected during its imports: raised there, the stop
    # came out as "Exception ignored in ... cb" and a traceback (the command then stopped through raise_if_any)
    from unetkit.signals import Interrupted, raise_on_stop_signals

    namespace: dict = {}
    exec(compile("def cb():\n    import sys\n    return sys._getframe()\n", "<frozen importlib._bootstrap>", "exec"),
         namespace)
    lock_callback = namespace["cb"]()
    with raise_on_stop_signals() as received:
        handler = signal.getsignal(signal.SIGTERM)
        handler(signal.SIGTERM, lock_callback)  # no raise there ...
        assert received == [signal.SIGTERM] and received.event.is_set()
        with pytest.raises(Interrupted, match="SIGTERM"):
            received.raise_if_any()  # ... but where the command looks once its imports are done
        with pytest.raises(Interrupted):
            handler(signal.SIGINT, sys._getframe())  # anywhere else, at once
