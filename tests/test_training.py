"""Training learns, logs, checkpoints, resumes exactly after SIGKILL and saves on SIGTERM."""

from __future__ import annotations

import csv
import dataclasses
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from unetkit import TrainConfig, load_model, train
from unetkit.checkpoint import read_checkpoint, save_checkpoint
from unetkit.errors import ConfigError, InputError
from unetkit.training.history import read_rows

from helpers import snapshot, write_dataset, write_tiff

QUIET = lambda text: None  # noqa: E731


def tiny_config(data: Path, out: Path, **changes) -> TrainConfig:
    values = dict(out=str(out), data=str(data), depth=3, base_width=8, epochs=3, steps_per_epoch=12,
                  batch_size=4, patch_size=48, lr=3e-3, val_tile_size=64, progress=False, augment="flips")
    values.update(changes)
    return TrainConfig(**values)


#: a time limit that a 40-step epoch of the tiny model never fits in (about 7 ms a step on a quiet
#: machine; 0.3 s did fit there), while a time limit is checked after every step: the cut falls inside
CUT_INSIDE_AN_EPOCH = 0.02


def test_a_short_run_on_a_tiny_dataset_learns(tmp_path):
    data = write_dataset(tmp_path / "d", count=5, size=(72, 72))
    result = train(tiny_config(data, tmp_path / "run", epochs=6), report=QUIET)
    rows = list(csv.DictReader(open(tmp_path / "run" / "log.csv")))
    assert len(rows) == 6 and result.stopped == "completed"
    assert float(rows[-1]["val_dice"]) > 0.8
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])
    assert (tmp_path / "run" / "curves.png").stat().st_size > 1000
    model, options = load_model(tmp_path / "run" / "best.pt")
    assert model.config.depth == 3 and options.normalization.mode == "percentile"


def test_images_smaller_than_the_patch_train_with_the_defaults(tmp_path):
    data = write_dataset(tmp_path / "d", count=3, size=(40, 52))
    result = train(TrainConfig(out=str(tmp_path / "run"), data=str(data), depth=3, base_width=4,
                               epochs=1, steps_per_epoch=2, progress=False), report=QUIET)
    assert result.epochs_completed == 1


def test_a_valid_padding_network_learns_from_the_centre_of_its_patches(tmp_path):
    # the paper's kind of network returns the patch's centre; the masks are cropped to it (a shifted crop would
    # teach a shifted answer, which whole-image validation would score low)
    data = write_dataset(tmp_path / "d", count=5, size=(128, 128))
    result = train(tiny_config(data, tmp_path / "run", padding="valid", patch_size=96, epochs=8), report=QUIET)
    assert result.stopped == "completed"
    assert float(read_rows(tmp_path / "run" / "log.csv")[-1]["val_dice"]) > 0.8


def test_patches_the_network_cannot_take_are_refused_before_the_data_is_read(tmp_path):
    missing = tmp_path / "not-read"
    with pytest.raises(ConfigError, match="smaller than this network's smallest input, 256 px") as error:
        train(tiny_config(missing, tmp_path / "run", depth=9, patch_size=64), report=QUIET)
    assert error.value.fix == "--patch-size 256 or more, or a smaller --depth"
    with pytest.raises(ConfigError, match=r"do not fit this network \(valid padding, depth 3\)") as error:
        train(tiny_config(missing, tmp_path / "run", padding="valid", patch_size=50), report=QUIET)
    assert error.value.fix.startswith("--patch-size 52,")  # the side whose output covers at least what was asked
    assert not (tmp_path / "run").exists()


def test_patches_and_epoch_length_default_by_task_and_the_run_records_what_it_used(tmp_path):
    # pixels: 128-px patches, 200 steps; objects: 256 px, 50 steps (BENCHMARKS.md, "Training length")
    pixels, objects = TrainConfig(out="a"), TrainConfig(out="b", task="instances")
    assert (pixels.patch_size, pixels.steps_per_epoch) == (128, 200)
    assert (objects.patch_size, objects.steps_per_epoch) == (256, 50)
    assert pixels.patch_size * pixels.patch_size * pixels.steps_per_epoch == (
        objects.patch_size * objects.patch_size * objects.steps_per_epoch)  # an epoch holds the same pixels
    given = TrainConfig(out="c", task="instances", patch_size=96, steps_per_epoch=3)
    assert (given.patch_size, given.steps_per_epoch) == (96, 3)
    switched = pixels.replace(task="instances")  # the new task's defaults, not the old one's
    assert (switched.patch_size, switched.steps_per_epoch) == (256, 50)
    assert (given.replace(task="semantic").patch_size, objects.replace(task="semantic", patch_size=64).steps_per_epoch) == (
        96, 200)  # given values stay
    data = write_dataset(tmp_path / "d", count=2, size=(40, 52))
    train(TrainConfig(out=str(tmp_path / "run"), data=str(data), depth=2, base_width=2, epochs=1, batch_size=1,
                      progress=False, checkpoint_every=0), report=QUIET)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (saved["patch_size"], saved["steps_per_epoch"]) == (128, 200)  # a resume keeps them, whatever the default
    assert read_rows(tmp_path / "run" / "log.csv")[-1]["step"] == "200"


def test_the_upper_percentile_is_stored_with_the_model_and_its_images_are_normalised_by_it(tmp_path):
    data = write_dataset(tmp_path / "d", count=2, size=(40, 52))
    train(tiny_config(data, tmp_path / "run", epochs=1, steps_per_epoch=1, upper_percentile=99.0), report=QUIET)
    _, options = load_model(tmp_path / "run" / "best.pt")
    assert (options.normalization.mode, options.normalization.low, options.normalization.high) == ("percentile", 1.0, 99.0)
    image = torch.arange(1000.0).reshape(1, 10, 100).numpy()
    assert options.normalization.apply(image).max() == pytest.approx((999 - 9.99) / (989.01 - 9.99), rel=1e-5)  # 1st -> 0, 99th -> 1
    assert load_model(tmp_path / "run" / "last.pt")[1].normalization.high == 99.0
    for wrong in (1.0, 100.5, float("nan")):
        with pytest.raises(ConfigError, match="upper percentile"):
            tiny_config(data, tmp_path / "other", upper_percentile=wrong)
    with pytest.raises(ConfigError, match="no effect with --normalization minmax"):  # not silently ignored
        TrainConfig(out="x", normalization="minmax", upper_percentile=99.0)
    assert TrainConfig(out="x", normalization="scale").upper_percentile == 99.8


def test_the_upper_percentile_follows_the_task_and_older_runs_keep_theirs(tmp_path):
    from unetkit.training.state import stored_config

    assert (TrainConfig(out="x").upper_percentile, TrainConfig(out="x", task="instances").upper_percentile) == (99.0, 99.8)
    assert TrainConfig(out="x").replace(task="instances").upper_percentile == 99.8
    assert TrainConfig(out="x", upper_percentile=99.5).replace(task="instances").upper_percentile == 99.5
    values = TrainConfig(out=str(tmp_path / "run")).to_dict()
    del values["upper_percentile"]  # as unetkit wrote config.json before --upper-percentile
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(json.dumps(values))
    assert stored_config(tmp_path / "run").upper_percentile == 99.8


def test_another_normalisation_resolves_the_percentile_options_again():
    minmax = TrainConfig(out="x").replace(normalization="minmax")  # not refused: 99 was the default, not given
    assert (minmax.upper_percentile, minmax.normalization_jitter) == (99.8, 0.0)
    back = minmax.replace(normalization="percentile")
    assert (back.upper_percentile, back.normalization_jitter) == (99.0, 1.0)
    assert TrainConfig(out="x", normalization="scale").replace(normalization="percentile",
                                                                upper_percentile=99.5).upper_percentile == 99.5


def test_init_weights_of_another_normalisation_are_said(tmp_path):
    data = write_dataset(tmp_path / "d", count=2, size=(40, 52))
    train(tiny_config(data, tmp_path / "old", epochs=1, steps_per_epoch=1, upper_percentile=99.8), report=QUIET)
    said: list[str] = []
    train(tiny_config(data, tmp_path / "new", epochs=1, steps_per_epoch=1, init_checkpoint=str(tmp_path / "old" / "best.pt")),
          report=said.append)
    assert [line for line in said if "normalised as percentile 1 to 99.8;" in line
            and "this run normalises as percentile 1 to 99 (" in line]
    said.clear()
    train(tiny_config(data, tmp_path / "same", epochs=1, steps_per_epoch=1, upper_percentile=99.8,
                      init_checkpoint=str(tmp_path / "old" / "best.pt")), report=said.append)
    assert not [line for line in said if "normalised as" in line]


def test_scale_normalisation_divides_by_the_image_types_full_scale_or_the_given_divisor(tmp_path):
    data = write_dataset(tmp_path / "d", count=3)  # 8-bit PNGs
    train(tiny_config(data, tmp_path / "run", epochs=1, steps_per_epoch=1, normalization="scale"), report=QUIET)
    assert load_model(tmp_path / "run" / "best.pt")[1].normalization.high == 255.0  # not the percentile's 99.8
    train(tiny_config(data, tmp_path / "given", epochs=1, steps_per_epoch=1, normalization="scale",
                      scale_divisor=4095.0), report=QUIET)
    assert load_model(tmp_path / "given" / "best.pt")[1].normalization.high == 4095.0
    with pytest.raises(ConfigError, match="no effect with --normalization percentile"):
        TrainConfig(out="x", scale_divisor=255.0)
    for wrong in (0.0, -1.0, float("inf"), float("nan"), 1e-300, 1e39):  # the last two: 0 and inf in float32
        with pytest.raises(ConfigError, match="--scale-divisor must be a positive number between"):
            TrainConfig(out="x", normalization="scale", scale_divisor=wrong)
    write_tiff(data / "images" / "img1.tif", np.zeros((64, 80), np.float32))  # a float image beside 8-bit ones
    (data / "images" / "img1.png").unlink()
    before = snapshot(data)
    with pytest.raises(InputError, match="float32 has none") as refused:
        train(tiny_config(data, tmp_path / "float", normalization="scale"), report=QUIET)
    assert "img1.tif" in str(refused.value) and "--scale-divisor" in str(refused.value)
    assert snapshot(data) == before  # refused before anything was written
    write_tiff(data / "images" / "img1.tif", np.zeros((64, 80), np.uint16))
    with pytest.raises(InputError, match=r"the image is uint16 but \S*/d/images/img0.png is uint8"):
        train(tiny_config(data, tmp_path / "mixed", normalization="scale"), report=QUIET)
    assert not (tmp_path / "float").exists() and not (tmp_path / "mixed").exists()


def test_a_resumed_scale_run_divides_by_the_stored_divisor_whatever_the_data_is_by_then(tmp_path):
    from unetkit.training.state import resume_config, stored_config

    data = write_dataset(tmp_path / "d", count=3)  # 8-bit
    run = tmp_path / "run"
    messages: list[str] = []
    train(tiny_config(data, run, epochs=1, steps_per_epoch=1, normalization="scale"), report=messages.append)
    assert json.loads((run / "config.json").read_text())["scale_divisor"] == 255.0  # decided once, kept
    assert "images are divided by 255 (--normalization scale)" in messages
    for path in sorted((data / "images").iterdir()):  # the images become 16-bit: a fresh run would divide by 65535
        write_tiff(path.with_suffix(".tif"), np.asarray(Image.open(path), np.uint16) * 257)
        path.unlink()
    assert resume_config(run, scale_divisor=255.0).scale_divisor == 255.0  # the divisor it used may be repeated
    with pytest.raises(ConfigError, match="not what this run trained on"):  # last.pt knows its data
        train(resume_config(run, epochs=2), resume=True, report=QUIET)
    payload = read_checkpoint(run / "last.pt")  # a last.pt of before 2026-12-07 kept no identity of its data
    del payload["training"]["data_identity"]
    save_checkpoint(run / "last.pt", payload, overwrite=True)
    train(resume_config(run, epochs=2), resume=True, report=QUIET)
    assert load_model(run / "last.pt")[1].normalization.high == 255.0
    # a run started before runs stored their divisor divided by 99.8, and resumes so
    old = json.loads((run / "config.json").read_text())
    del old["scale_divisor"]
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "config.json").write_text(json.dumps(old))
    assert stored_config(tmp_path / "old").scale_divisor == 99.8


def test_dim_images_under_the_scale_normalisation_are_pointed_out(tmp_path):
    data = write_dataset(tmp_path / "d", count=3)
    for path in sorted((data / "images").iterdir()):  # 12-bit-like values in 16-bit files
        write_tiff(path.with_suffix(".tif"), (np.asarray(Image.open(path), np.float32) * 4000 / 255).astype(np.uint16))
        path.unlink()
    messages: list[str] = []
    train(tiny_config(data, tmp_path / "run", epochs=1, steps_per_epoch=1, normalization="scale"), report=messages.append)
    note = [message for message in messages if message.startswith("note: the brightest training pixel")]
    assert len(note) == 1 and "of the divisor 65535" in note[0] and "--scale-divisor" in note[0]
    messages.clear()
    train(tiny_config(data, tmp_path / "given", epochs=1, steps_per_epoch=1, normalization="scale",
                      scale_divisor=4095.0), report=messages.append)
    assert not any(message.startswith("note: the brightest") for message in messages)


def test_early_stopping_stops_when_validation_dice_stalls(tmp_path):
    data = write_dataset(tmp_path / "d", count=3)
    result = train(tiny_config(data, tmp_path / "run", epochs=10, lr=1e-9, early_stopping=2), report=QUIET)
    assert result.stopped == "early-stopping" and result.epochs_completed == 3
    why = "no validation improvement above 0.003 for 2 epochs"
    assert read_rows(tmp_path / "run" / "log.csv")[-1]["note"] == f"stopped: {why}"
    written = json.loads((tmp_path / "run" / "result.json").read_text())
    assert written["stopped"] == "early-stopping" and written["why"] == why and written["epochs_completed"] == 3


def test_max_time_stops_and_keeps_a_resumable_checkpoint(tmp_path):
    data = write_dataset(tmp_path / "d", count=3)
    result = train(tiny_config(data, tmp_path / "run", epochs=50, max_time_s=0.5), report=QUIET)
    assert result.stopped == "time-limit" and result.epochs_completed < 50
    assert read_rows(tmp_path / "run" / "log.csv")[-1]["note"] == "stopped: time limit of 0.5 s reached"
    assert json.loads((tmp_path / "run" / "result.json").read_text())["stopped"] == "time-limit"
    state = read_checkpoint(tmp_path / "run" / "last.pt")["training"]
    from unetkit.training.state import resume_config

    log = (tmp_path / "run" / "log.csv").read_text()
    again = train(resume_config(tmp_path / "run"), resume=True, report=QUIET)  # the same budget: spent
    assert (again.stopped, again.global_step) == ("time-limit", state["global_step"])
    assert (tmp_path / "run" / "log.csv").read_text() == log  # no step taken, no row rewritten
    epochs = state["epoch"] + 2  # at least one more whole epoch, however fast this machine is
    resumed = train(resume_config(tmp_path / "run", epochs=epochs, max_time_s=1000.0), resume=True, report=QUIET)
    assert resumed.stopped == "completed" and resumed.global_step == epochs * 12 > state["global_step"]


def test_a_budget_that_runs_out_with_the_last_planned_step_leaves_the_run_complete(tmp_path):
    data = write_dataset(tmp_path / "d", count=3)
    result = train(tiny_config(data, tmp_path / "run", epochs=1, steps_per_epoch=1, max_time_s=1e-9), report=QUIET)
    assert (result.stopped, result.epochs_completed, result.global_step) == ("completed", 1, 1)
    assert read_rows(tmp_path / "run" / "log.csv")[-1]["note"] == ""  # not "stopped: time limit"


def run_files(run: Path) -> dict[str, bytes]:
    return {name: (run / name).read_bytes() for name in ("log.csv", "result.json", "config.json", "last.pt")}


def test_a_finished_run_resumed_says_so_and_trains_nothing_until_given_more_epochs(tmp_path):
    from unetkit.training.state import resume_config

    data = write_dataset(tmp_path / "d", count=3)
    finished = train(tiny_config(data, tmp_path / "run", epochs=2, checkpoint_every=0), report=QUIET)
    before = run_files(tmp_path / "run")
    said: list[str] = []
    again = train(resume_config(tmp_path / "run"), resume=True, report=said.append)
    assert (again.stopped, again.global_step) == ("completed", finished.global_step)
    assert "resumed " + str(tmp_path / "run") + " after epoch 2" in said  # not "at epoch 3"
    assert any("had already trained all 2 epoch(s) asked for; pass a larger --epochs" in line for line in said)
    assert run_files(tmp_path / "run") == before
    said.clear()
    more = train(resume_config(tmp_path / "run", epochs=3), resume=True, report=said.append)
    assert more.stopped == "completed" and more.epochs_completed == 3 and more.global_step > finished.global_step
    steps = finished.global_step  # the cosine schedule had fallen to 0: its stretch is a warm restart, said
    assert any(f"stretches the run's cosine schedule from 2 to 3 epochs ({steps} to {steps * 3 // 2} steps): from "
               f"step {steps + 2} the learning rate follows the new end" in line and "a warm restart" in line
               for line in said), said


@pytest.mark.parametrize("epochs", [6, 3])
def test_the_rate_a_changed_end_is_said_to_give_is_the_rate_the_resumed_optimiser_uses(epochs):
    import re

    from unetkit.training.optim import build_scheduler
    from unetkit.training.state import stretched_schedule_note

    stored = TrainConfig(out="run", epochs=4, steps_per_epoch=5, lr=1e-3)
    resumed = stored.replace(epochs=epochs)
    parameter = torch.nn.Parameter(torch.zeros(1))
    first = torch.optim.Adam([parameter], lr=stored.lr)
    schedule = build_scheduler("cosine", first, stored.schedule_steps)
    for _ in range(7):  # 7 steps done, then the run was stopped and resumed with another --epochs
        first.step()
        schedule.step()
    second = torch.optim.Adam([parameter], lr=resumed.lr)
    again = build_scheduler("cosine", second, resumed.schedule_steps)
    second.load_state_dict(first.state_dict())
    again.load_state_dict(schedule.state_dict())
    note = stretched_schedule_note(stored, resumed, 7)
    rates = []
    for _ in range(2):  # steps 8 and 9
        rates.append(second.param_groups[0]["lr"])
        second.step()
        again.step()
    said = re.search(r"from step 9 the learning rate follows the new end \(([0-9.e-]+) there, against ([0-9.e-]+)", note)
    assert said is not None, note
    assert float(said.group(1)) == pytest.approx(rates[1], rel=0.01)  # step 9: the new end's rate
    assert rates[0] == pytest.approx(first.param_groups[0]["lr"])  # step 8: the rate the old plan gave
    assert ("stretches" if epochs > 4 else "shortens") in note and ("warm restart" in note) == (epochs > 4)


def test_a_schedule_that_falls_to_an_end_needs_the_run_s_length_but_older_such_runs_resume(tmp_path, monkeypatch):
    from unetkit.training.state import resume_config

    data = write_dataset(tmp_path / "d", count=3)
    for schedule in ("cosine", "poly"):
        with pytest.raises(ConfigError, match=f"--schedule {schedule} falls to its end over a known number of epochs"):
            train(tiny_config(data, tmp_path / schedule, epochs=None, schedule=schedule), report=QUIET)
        assert not (tmp_path / schedule).exists()
        assert TrainConfig(out="run", schedule=schedule, epochs=3).schedule_steps == 3 * 200
    assert TrainConfig(out="run").schedule_steps is None  # warm-up, then constant: no end needed
    with monkeypatch.context() as old_unetkit:  # a run saved before the check: it resumes as it was
        old_unetkit.setattr(TrainConfig, "check_schedule_has_an_end", lambda self: None)
        train(tiny_config(data, tmp_path / "old", epochs=None, schedule="cosine", max_time_s=CUT_INSIDE_AN_EPOCH),
              report=QUIET)
    resumed = train(resume_config(tmp_path / "old", max_time_s=1000.0, early_stopping=1), resume=True, report=QUIET)
    assert resumed.global_step > 0 and resumed.stopped in ("early-stopping", "epoch-limit")


def test_a_resume_whose_epochs_end_before_where_the_run_is_is_refused_and_writes_nothing(tmp_path):
    from unetkit.training.state import resume_config

    data = write_dataset(tmp_path / "d", count=3)
    train(tiny_config(data, tmp_path / "run", epochs=3, checkpoint_every=0), report=QUIET)
    before = run_files(tmp_path / "run")
    with pytest.raises(ConfigError, match=r"trained 3 whole epoch\(s\) and 36 steps, past the end of the 1 epoch"):
        train(resume_config(tmp_path / "run", epochs=1), resume=True, report=QUIET)
    assert run_files(tmp_path / "run") == before


def test_a_run_at_its_length_cap_resumed_keeps_its_ending_and_names_epochs_as_the_way_on(tmp_path):
    from unetkit.training.state import resume_config

    data = write_dataset(tmp_path / "d", count=3)
    config = tiny_config(data, tmp_path / "run", epochs=None, early_stopping=100, steps_per_epoch=1, checkpoint_every=0)
    capped = train(config, report=QUIET)
    assert capped.stopped == "epoch-limit" and capped.epochs_completed == config.planned_epochs
    said: list[str] = []
    again = train(resume_config(tmp_path / "run"), resume=True, report=said.append)
    assert (again.stopped, again.why) == ("epoch-limit", f"the limit of {config.planned_epochs} epochs")
    assert any("the most a run that decides its length trains; pass --epochs N" in line for line in said)
    assert json.loads((tmp_path / "run" / "result.json").read_text())["stopped"] == "epoch-limit"


def test_a_run_its_own_early_stopping_ended_names_a_larger_patience_as_the_way_on(tmp_path):
    from unetkit.training.state import resume_config

    data = write_dataset(tmp_path / "d", count=3)
    train(tiny_config(data, tmp_path / "run", epochs=10, lr=1e-9, early_stopping=1), report=QUIET)
    said: list[str] = []
    again = train(resume_config(tmp_path / "run", epochs=12), resume=True, report=said.append)
    assert again.stopped == "early-stopping"
    assert any("pass a larger --early-stopping to train it further" in line for line in said)
    more = train(resume_config(tmp_path / "run", epochs=12, early_stopping=3), resume=True, report=QUIET)
    assert more.global_step > again.global_step


def test_epochs_given_to_a_resumed_run_that_decided_its_length_keep_its_constant_learning_rate(tmp_path):
    from unetkit.training.state import resume_config

    data = write_dataset(tmp_path / "d", count=3)
    ended = train(tiny_config(data, tmp_path / "run", epochs=None, lr=1e-3, steps_per_epoch=12, checkpoint_every=0,
                              max_time_s=CUT_INSIDE_AN_EPOCH), report=QUIET)
    assert ended.stopped == "time-limit"
    config = resume_config(tmp_path / "run", epochs=3, max_time_s=1000.0)
    assert config.resolved_schedule == "warmup-constant"  # not a cosine over 3 epochs, near its end at once
    train(config, resume=True, report=QUIET)
    assert read_checkpoint(tmp_path / "run" / "last.pt")["training"]["optimizer"]["param_groups"][0]["lr"] == 1e-3


def test_a_run_cut_by_its_time_budget_says_whether_the_stopping_rule_had_ended_it(tmp_path):
    data = write_dataset(tmp_path / "d", count=3)
    said: list[str] = []
    cut = train(tiny_config(data, tmp_path / "own length", epochs=None, steps_per_epoch=40,
                            max_time_s=CUT_INSIDE_AN_EPOCH), report=said.append)
    assert cut.stopped == "time-limit"
    notes = [line for line in said if "before the stopping rule did" in line]
    assert len(notes) == 1 and "after 5 epochs in a row without a gain above its margin; the run had 0)" in notes[0]
    assert f"unetkit train --resume '{tmp_path / 'own length'}' --max-time 1h" in notes[0]
    said.clear()
    asked = train(tiny_config(data, tmp_path / "asked", epochs=3, steps_per_epoch=40, max_time_s=CUT_INSIDE_AN_EPOCH),
                  report=said.append)
    assert asked.stopped == "time-limit" and not any("stopping rule" in line for line in said)  # --epochs: no rule


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "unetkit", *args]


TRAIN_ARGS = ["--depth", "3", "--base-width", "8", "--epochs", "3", "--steps-per-epoch", "10",
              "--batch-size", "4", "--patch-size", "64", "--checkpoint-every", "3", "--no-progress",
              "--augment", "moderate"]


def weights(path: Path) -> dict[str, torch.Tensor]:
    return read_checkpoint(path)["model_state"]


def test_train_closing_line_counts_the_steps_of_an_epoch_cut_by_the_time_limit(tmp_path):
    data = write_dataset(tmp_path / "d", count=3)
    args = [*TRAIN_ARGS, "--steps-per-epoch", "40", "--checkpoint-every", "0", "--max-time", str(CUT_INSIDE_AN_EPOCH)]
    finished = subprocess.run(cli("train", str(data), "--out", str(tmp_path / "run"), *args), check=True,
                              capture_output=True, text=True)
    written = json.loads((tmp_path / "run" / "result.json").read_text())
    assert written["stopped"] == "time-limit" and 0 < written["steps"] < 40 and written["epochs_completed"] == 0
    step = "step" if written["steps"] == 1 else "steps"
    assert f"): {written['steps']} {step}, 0 whole epoch(s), best validation score" in finished.stdout


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, "training ended before its first checkpoint"
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.005)


def test_sigkill_then_resume_ends_with_the_same_weights_as_an_uninterrupted_run(tmp_path):
    data = write_dataset(tmp_path / "d", count=4, size=(90, 90))
    straight_run = subprocess.run(cli("train", str(data), "--out", str(tmp_path / "straight"), *TRAIN_ARGS),
                                  check=True, capture_output=True, text=True)
    assert "done (completed: all 3 epoch(s) asked for): 30 steps, 3 whole epoch(s)" in straight_run.stdout
    process = subprocess.Popen(cli("train", str(data), "--out", str(tmp_path / "killed"), *TRAIN_ARGS),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(tmp_path / "killed" / "last.pt", process)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    interrupted_at = read_checkpoint(tmp_path / "killed" / "last.pt")["training"]["global_step"]
    assert interrupted_at < 30
    subprocess.run(cli("train", "--resume", str(tmp_path / "killed")), check=True, capture_output=True)
    straight, resumed = weights(tmp_path / "straight" / "last.pt"), weights(tmp_path / "killed" / "last.pt")
    assert all(torch.equal(straight[name], resumed[name]) for name in straight)
    rows = list(csv.DictReader(open(tmp_path / "killed" / "log.csv")))
    assert [row["epoch"] for row in rows] == ["1", "2", "3"]


def test_sigterm_saves_and_exits_cleanly(tmp_path):
    data = write_dataset(tmp_path / "d", count=4, size=(90, 90))
    args = [*TRAIN_ARGS, "--epochs", "100", "--checkpoint-every", "1"]
    process = subprocess.Popen(cli("train", str(data), "--out", str(tmp_path / "run"), *args),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(tmp_path / "run" / "last.pt", process)
    process.send_signal(signal.SIGTERM)
    _, error = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "stopped by a signal" in error and "--resume" in error
    state = read_checkpoint(tmp_path / "run" / "last.pt")["training"]
    assert 0 < state["global_step"] < 100 * 10
    assert not list((tmp_path / "run").glob(".*partial*"))


def test_a_stop_that_code_swallowed_while_the_command_started_still_ends_the_run(tmp_path, monkeypatch, capsys):
    # a stop raised inside an import can come out as an ImportError that an optional dependency's
    # `except ImportError` swallows: the run then trained to its end as if no stop had come
    import os

    from unetkit import cli as command_line

    real_config = command_line._train_config

    def config_while_a_stop_is_swallowed(args):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises before this ends
        except BaseException:  # as such an import did
            pass
        return real_config(args)

    monkeypatch.setattr(command_line, "_train_config", config_while_a_stop_is_swallowed)
    data = write_dataset(tmp_path / "d", count=3)
    code = command_line.main(["train", str(data), "--out", str(tmp_path / "run"), *TRAIN_ARGS, "--epochs", "50"])
    assert code == command_line.EXIT_INTERRUPTED
    assert read_checkpoint(tmp_path / "run" / "last.pt")["training"]["global_step"] <= 1  # saved, not trained on
    assert "stopped by a signal" in capsys.readouterr().err


def test_a_stop_event_from_another_thread_ends_the_run_and_epochs_are_reported(tmp_path):
    import threading

    data = write_dataset(tmp_path / "d", count=3)
    stop = threading.Event()
    rows = []

    def on_epoch(row):
        rows.append(row)
        stop.set()  # as a GUI's stop button would, after the first epoch

    result = train(tiny_config(data, tmp_path / "run", epochs=5), report=QUIET, stop=stop, on_epoch=on_epoch)
    assert result.stopped == "signal" and result.global_step <= 12 + 1
    assert rows[0]["epoch"] == "1" and float(rows[0]["loss"]) > 0
    assert read_checkpoint(tmp_path / "run" / "last.pt")["training"]["global_step"] == result.global_step


# --- the default length: a stopping rule ----------------------------------------------------

def test_the_stopping_rule_on_synthetic_validation_curves():
    from unetkit.training.stopping import CONTINUE, DROP_LR, STOP, StoppingRule, StopState

    def decisions(rule: StoppingRule, scores=None, losses=None) -> list[str]:
        state = StopState()
        values = scores if scores is not None else losses
        return [rule.decide(state, s if scores is not None else None, s if losses is not None else None)
                for s in values]

    rule = StoppingRule(patience=3, min_delta=0.005, lr_drops=0)
    rising = [0.5, 0.7, 0.8, 0.85, 0.88, 0.9]
    assert STOP not in decisions(rule, rising)
    creeping = [0.90, 0.901, 0.902, 0.904]  # better each epoch, never by min_delta over the last real gain
    assert decisions(rule, creeping) == [CONTINUE, CONTINUE, CONTINUE, STOP]
    slow = [0.90, 0.902, 0.904, 0.906]  # tiny steps that add up: 0.906 beats 0.90 by more than min_delta
    assert decisions(rule, slow) == [CONTINUE] * 4
    noisy = [0.90, 0.89, 0.91, 0.90, 0.905, 0.899, 0.90]  # 0.91 counts (> 0.905); then three below it
    assert decisions(rule, noisy).index(STOP) == 5
    with_drop = StoppingRule(patience=2, min_delta=0.005, lr_drops=1)
    assert decisions(with_drop, [0.9, 0.9, 0.9, 0.9, 0.9]) == [CONTINUE, CONTINUE, DROP_LR, CONTINUE, STOP]
    losses = [1.0, 0.5, 0.3, 0.299, 0.298, 0.297]  # without validation: drops below 2 % of the last real one
    assert decisions(StoppingRule(patience=3, lr_drops=0), losses=losses) == [CONTINUE] * 5 + [STOP]


def test_the_rules_default_patience_follows_the_task_and_only_applies_without_epochs():
    pixels = TrainConfig(out="r")
    assert pixels.early_stopping == 5 and pixels.stopping_rule().patience == 5  # config.json records it
    objects = TrainConfig(out="r", task="instances")
    assert objects.early_stopping == 3 and objects.stopping_rule().patience == 3
    assert pixels.replace(task="instances").early_stopping == 3
    assert pixels.replace(early_stopping=7).replace(task="instances").early_stopping == 7  # given: kept
    assert TrainConfig(out="r", epochs=10).stopping_rule() is None  # --epochs means what it says
    assert pixels.replace(epochs=10).stopping_rule() is None  # as though given from the start
    assert TrainConfig(out="r", epochs=10, early_stopping=2).stopping_rule().patience == 2


def test_a_run_saved_before_its_patience_was_recorded_resumes_with_patience_3(tmp_path):
    from unetkit.training.state import resume_config, stored_config

    values = TrainConfig(out=str(tmp_path / "old")).to_dict()
    values["early_stopping"] = None  # what every run that decided its length stored before 2026-12-06
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "config.json").write_text(json.dumps(values))
    assert stored_config(tmp_path / "old").stopping_rule().patience == 3
    assert resume_config(tmp_path / "old", max_time_s=60.0).early_stopping == 3
    assert resume_config(tmp_path / "old", epochs=50).stopping_rule() is None  # exactly 50 epochs
    assert resume_config(tmp_path / "old", epochs=50, early_stopping=4).stopping_rule().patience == 4
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "config.json").write_text(json.dumps(TrainConfig(out=str(tmp_path / "new")).to_dict()))
    assert resume_config(tmp_path / "new").early_stopping == 5


def test_without_epochs_a_run_stops_when_validation_stops_improving(tmp_path):
    data = write_dataset(tmp_path / "d", count=3)
    config = tiny_config(data, tmp_path / "run", epochs=None, lr=1e-9, early_stopping=2, steps_per_epoch=4)
    result = train(config, report=QUIET)
    rows = list(csv.DictReader(open(tmp_path / "run" / "log.csv")))
    assert result.stopped == "early-stopping" and len(rows) == 3 < config.planned_epochs
    assert rows[-1]["note"].startswith("stopped: no validation improvement") and rows[-1]["best"] != ""
    # the same options with --epochs run every epoch: --epochs means what it says
    fixed = train(config.replace(out=str(tmp_path / "fixed"), epochs=5, early_stopping=None), report=QUIET)
    assert fixed.stopped == "completed" and fixed.epochs_completed == 5


def test_a_run_that_decides_its_length_ends_at_the_cap_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr("unetkit.training.stopping.MAX_EPOCHS", 2)  # the cap, small enough for a test
    data = write_dataset(tmp_path / "d", count=3)
    result = train(tiny_config(data, tmp_path / "run", epochs=None, lr=1e-9, steps_per_epoch=2), report=QUIET)
    assert (result.stopped, result.epochs_completed, result.why) == ("epoch-limit", 2, "the limit of 2 epochs")
    assert [row["note"] for row in read_rows(tmp_path / "run" / "log.csv")] == ["", "stopped: the limit of 2 epochs"]
    assert json.loads((tmp_path / "run" / "result.json").read_text())["why"] == "the limit of 2 epochs"


def test_a_resume_whose_smaller_patience_ends_the_run_at_once_says_why_in_the_log_too(tmp_path, monkeypatch):
    from unetkit.training.state import resume_config

    monkeypatch.setattr("unetkit.training.stopping.MAX_EPOCHS", 2)
    data = write_dataset(tmp_path / "d", count=3)
    first = train(tiny_config(data, tmp_path / "run", epochs=None, lr=1e-9, steps_per_epoch=2), report=QUIET)
    assert first.stopped == "epoch-limit"  # epoch 2 gained nothing: one epoch without improvement
    again = train(resume_config(tmp_path / "run", early_stopping=1), resume=True, report=QUIET)
    assert again.stopped == "early-stopping" and again.global_step == first.global_step
    note = read_rows(tmp_path / "run" / "log.csv")[-1]["note"]
    assert note == "stopped: " + json.loads((tmp_path / "run" / "result.json").read_text())["why"]
    assert "no validation improvement" in note


def test_a_run_that_decides_its_length_is_the_first_epochs_of_a_longer_run(tmp_path, monkeypatch):
    # what benchmarks/length_study.py relies on to read the default run off a 40-epoch run:
    # the warm-up-constant schedule and the data order do not depend on where the run ends
    monkeypatch.setattr("unetkit.training.stopping.MAX_EPOCHS", 2)
    data = write_dataset(tmp_path / "d", count=3)
    config = tiny_config(data, tmp_path / "auto", epochs=None, steps_per_epoch=6, checkpoint_every=0)
    assert train(config, report=QUIET).epochs_completed == 2
    longer = config.replace(out=str(tmp_path / "longer"), epochs=3, schedule="warmup-constant")
    cosine = config.replace(out=str(tmp_path / "cosine"), epochs=3)  # its schedule knows the end: differs
    snapshots = {}
    for name, run in (("longer", longer), ("cosine", cosine)):
        def keep_second(row, name=name):
            if row["epoch"] == "3":  # told before its own last.pt: this one holds the end of epoch 2
                snapshots[name] = weights(tmp_path / name / "last.pt")
        train(run.replace(checkpoint_every=0), report=QUIET, on_epoch=keep_second)
    auto = weights(tmp_path / "auto" / "last.pt")
    assert all(torch.equal(a, b) for a, b in zip(auto.values(), snapshots["longer"].values()))
    assert not all(torch.equal(a, b) for a, b in zip(auto.values(), snapshots["cosine"].values()))


def test_best_pt_keeps_the_latest_model_within_the_margin_of_the_best_validation_score(tmp_path, monkeypatch):
    # one validation image cannot tell apart scores a few thousandths apart, and the later model has
    # trained longer (BENCHMARKS.md, "Which model best.pt keeps"): scripted scores, as validation might give
    from unetkit.training.selection import keeps
    from unetkit.training.state import Position, resume_config

    alone = write_dataset(tmp_path / "one", count=1, size=(72, 72))  # one image: no validation, best.pt every epoch
    unscored = train(tiny_config(alone, tmp_path / "unscored", epochs=2, steps_per_epoch=2), report=QUIET)
    assert (unscored.kept_score, unscored.kept_step, unscored.kept_epoch) == (None, 4, 2)
    data = write_dataset(tmp_path / "d", count=3)
    for margin, kept_epochs in ((0.003, [1, 2, 3, 3, 5]), (0.0, [1, 2, 2, 2, 2])):
        scores = iter([0.80, 0.90, 0.898, 0.85, 0.8985])
        monkeypatch.setattr("unetkit.training.loop.validate", lambda parts: {"dice": next(scores), "iou": 0.5})
        run = tmp_path / f"run{margin:g}"
        said: list[str] = []
        result = train(tiny_config(data, run, epochs=5, steps_per_epoch=2, ema=0.0, keep_within=margin,
                                   checkpoint_every=0), report=said.append)
        rows = read_rows(run / "log.csv")
        assert [row["kept_step"] for row in rows] == [str(2 * epoch) for epoch in kept_epochs]
        assert rows[-1]["best"] == "0.90000"
        summary = json.loads((run / "result.json").read_text())
        assert (summary["best_score"], summary["kept_epoch"], summary["kept_step"]) == (
            0.90, kept_epochs[-1], 2 * kept_epochs[-1]) == (result.best_score, result.kept_epoch, result.kept_step)
        assert summary["kept_score"] == [0.80, 0.90, 0.898, 0.85, 0.8985][kept_epochs[-1] - 1]
        best, last = weights(run / "best.pt"), weights(run / "last.pt")
        same = all(torch.equal(a, b) for a, b in zip(best.values(), last.values()))
        assert same == (kept_epochs[-1] == 5)  # best.pt holds the last epoch's model only where it was kept
        kept_lines = [line for line in said if "(kept: within" in line]
        assert len(kept_lines) == (2 if margin else 0)  # epochs 3 and 5, said so
        assert all(line.endswith("(kept: within 0.003 of the best, 0.9000)") for line in kept_lines)
    # runs saved before --keep-within resume keeping the best-scoring model, as they started
    stored = json.loads((tmp_path / "run0.003" / "config.json").read_text())
    del stored["keep_within"]
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "config.json").write_text(json.dumps(stored))
    assert resume_config(tmp_path / "old").keep_within == 0.0
    old = Position.from_state({"best_score": 0.9})  # their last.pt: best.pt held the best, whose step is unknown
    assert (old.best_score, old.kept_score, old.kept_step) == (0.9, None, None)
    assert keeps(0.9, best_so_far=0.9, margin=0.0) is False  # margin 0: the first of equal scores, as before
    assert TrainConfig(out="x", task="instances").keep_within == 0.0  # objects: as issue 13's F1 was measured
    with pytest.raises(ConfigError, match="keep within"):
        tiny_config(data, tmp_path / "bad", keep_within=-0.1)
    assert resume_config(tmp_path / "run0.003", keep_within=0.01).keep_within == 0.01  # it changes no computation
    # a run cut inside an epoch validates the cut model, which is kept like any other: its step says so
    monkeypatch.setattr("unetkit.training.loop.validate", lambda parts: {"dice": 0.9, "iou": 0.5})
    cut = train(tiny_config(data, tmp_path / "cut", epochs=3, steps_per_epoch=40, checkpoint_every=0,
                            max_time_s=CUT_INSIDE_AN_EPOCH), report=QUIET)
    assert cut.stopped == "time-limit" and cut.global_step % 40 != 0
    assert (cut.kept_step, cut.kept_epoch) == (cut.global_step, cut.global_step // 40 + 1)
    assert read_rows(tmp_path / "cut" / "log.csv")[-1]["kept_step"] == str(cut.global_step)


def test_resume_across_a_plateau_decision_takes_the_same_decision(tmp_path):
    import threading

    data = write_dataset(tmp_path / "d", count=3)
    config = tiny_config(data, tmp_path / "straight", epochs=None, lr=1e-9, early_stopping=3, steps_per_epoch=3,
                         checkpoint_every=0)
    straight = train(config, report=QUIET)
    stop = threading.Event()

    def stop_after_the_second_epoch(row):
        if row["epoch"] == "2":  # the plateau count is 1 here: a decision half taken
            stop.set()

    interrupted = train(config.replace(out=str(tmp_path / "resumed")), report=QUIET, stop=stop,
                        on_epoch=stop_after_the_second_epoch)
    assert interrupted.stopped == "signal"
    state = read_checkpoint(tmp_path / "resumed" / "last.pt")["training"]
    assert state["epochs_without_improvement"] >= 1
    from unetkit.training.state import resume_config

    resumed = train(resume_config(tmp_path / "resumed"), resume=True, report=QUIET)
    assert (resumed.stopped, resumed.global_step) == (straight.stopped, straight.global_step)
    assert all(torch.equal(a, b) for a, b in zip(weights(tmp_path / "straight" / "last.pt").values(),
                                                 weights(tmp_path / "resumed" / "last.pt").values()))
    again = train(resume_config(tmp_path / "resumed"), resume=True, report=QUIET)  # an ended run stays ended
    assert again.stopped == "early-stopping" and again.global_step == straight.global_step


def test_a_time_limit_mid_epoch_then_resume_decides_as_an_uninterrupted_run(tmp_path):
    from unetkit.training.state import resume_config

    data = write_dataset(tmp_path / "d", count=3)
    config = tiny_config(data, tmp_path / "straight", epochs=3, lr=1e-9, early_stopping=1, steps_per_epoch=40,
                         checkpoint_every=0)
    straight = train(config, report=QUIET)
    cut = train(config.replace(out=str(tmp_path / "cut"), max_time_s=CUT_INSIDE_AN_EPOCH), report=QUIET)
    assert cut.stopped == "time-limit" and cut.global_step % 40 != 0  # stopped inside an epoch
    resumed = train(resume_config(tmp_path / "cut", max_time_s=1e6), resume=True, report=QUIET)
    assert (resumed.stopped, resumed.global_step) == (straight.stopped, straight.global_step)



def test_a_part_epoch_model_kept_at_a_time_limit_is_judged_again_when_the_resume_finishes_its_epoch(
        tmp_path, monkeypatch):
    # the cut's part-epoch model scored best and was written into last.pt's selection: the resumed run then judged
    # the finished epochs against a score an uninterrupted run never saw, and best.pt held a model it never kept
    import threading

    from unetkit.training.state import BEFORE_CUT, resume_config

    scores = iter([0.80, 0.70, 0.75,  # the uninterrupted run's three epochs: epoch 1 stays the best
                   0.80, 0.95,  # the cut run: epoch 1, then its part of epoch 2, the best of all
                   0.70, 0.75])  # the resumed run: epoch 2 finished, epoch 3
    monkeypatch.setattr("unetkit.training.loop.validate", lambda parts: {"dice": (value := next(scores)), "iou": value})
    data = write_dataset(tmp_path / "d", count=3)
    config = tiny_config(data, tmp_path / "straight", epochs=3, steps_per_epoch=40, checkpoint_every=0)
    straight = train(config, report=QUIET)
    stop = threading.Event()  # the cut lineage: epoch 1, stopped there; then a budget that ends inside epoch 2
    train(config.replace(out=str(tmp_path / "cut")), report=QUIET, stop=stop, on_epoch=lambda row: stop.set())
    spent = read_checkpoint(tmp_path / "cut" / "last.pt")["training"]["elapsed_s"]
    cut = train(resume_config(tmp_path / "cut", max_time_s=spent + CUT_INSIDE_AN_EPOCH), resume=True, report=QUIET)
    assert cut.stopped == "time-limit" and 40 < cut.global_step < 80 and cut.best_score == 0.95
    assert (tmp_path / "cut" / BEFORE_CUT).is_file()  # best.pt of epoch 1, kept aside
    resumed = train(resume_config(tmp_path / "cut", max_time_s=1e6), resume=True, report=QUIET)
    assert (resumed.best_score, resumed.kept_step) == (straight.best_score, straight.kept_step) == (0.80, 40)
    assert all(torch.equal(a, b) for a, b in zip(weights(tmp_path / "straight" / "best.pt").values(),
                                                 weights(tmp_path / "cut" / "best.pt").values()))
    columns = [[(row["best"], row["kept_step"]) for row in read_rows(tmp_path / run / "log.csv")] for run in ("straight", "cut")]
    assert columns[0] == columns[1] and not (tmp_path / "cut" / BEFORE_CUT).exists()



def test_a_stop_that_comes_during_validation_ends_the_run_there_without_another_step(tmp_path, monkeypatch):
    import threading

    from unetkit.training.state import resume_config

    stop = threading.Event()

    def validate_and_be_stopped(parts):
        stop.set()  # Ctrl-C while the epoch's validation runs
        return {"dice": 0.5, "iou": 0.4}

    monkeypatch.setattr("unetkit.training.loop.validate", validate_and_be_stopped)
    data = write_dataset(tmp_path / "d", count=3)
    result = train(tiny_config(data, tmp_path / "run", epochs=3, steps_per_epoch=5, checkpoint_every=0),
                   report=QUIET, stop=stop)
    assert result.stopped == "signal" and result.global_step == 5  # not 6: no step of epoch 2 after the stop
    state = read_checkpoint(tmp_path / "run" / "last.pt")["training"]
    assert (state["epoch"], state["step"], state["global_step"]) == (1, 0, 5)
    monkeypatch.setattr("unetkit.training.loop.validate", lambda parts: {"dice": 0.5, "iou": 0.4})
    resumed = train(resume_config(tmp_path / "run"), resume=True, report=QUIET)
    assert resumed.stopped == "completed" and resumed.global_step == 15


def test_a_stop_during_the_last_epochs_validation_leaves_a_completed_run(tmp_path, monkeypatch):
    import threading

    stop = threading.Event()
    monkeypatch.setattr("unetkit.training.loop.validate", lambda parts: (stop.set(), {"dice": 0.5, "iou": 0.4})[1])
    data = write_dataset(tmp_path / "d", count=3)
    result = train(tiny_config(data, tmp_path / "run", epochs=1, steps_per_epoch=3, checkpoint_every=0),
                   report=QUIET, stop=stop)
    assert result.stopped == "completed" and result.global_step == 3  # nothing was left to stop


def test_a_stop_in_the_step_that_spends_the_budget_ends_the_run_as_the_budget_does(tmp_path):
    # the stop won: the part epoch was never scored, and a resume of the spent budget trains and scores nothing, so
    # the run was left without best.pt, a log row or a best score, which an uncut run of the same budget has
    import threading

    from unetkit.training.state import resume_config

    stop = threading.Event()
    stop.set()  # Ctrl-C during the run's first step, which spends the whole budget
    data = write_dataset(tmp_path / "d", count=3)
    result = train(tiny_config(data, tmp_path / "run", max_time_s=1e-9), report=QUIET, stop=stop)
    assert (result.stopped, result.global_step) == ("time-limit", 1)
    assert (tmp_path / "run" / "best.pt").is_file() and result.best_score is not None
    assert read_rows(tmp_path / "run" / "log.csv")[-1]["note"] == "stopped: time limit of 1e-09 s reached"
    again = train(resume_config(tmp_path / "run"), resume=True, report=QUIET)
    assert (again.stopped, again.best_score, again.kept_step) == ("time-limit", result.best_score, 1)


def test_a_time_limit_at_an_epoch_s_end_then_resume_logs_as_an_uninterrupted_run(tmp_path):
    # the kept row of the epoch the budget ended still said "stopped: time limit" in the middle of the resumed log
    from unetkit.training.state import resume_config

    data = write_dataset(tmp_path / "d", count=3)
    config = tiny_config(data, tmp_path / "straight", steps_per_epoch=1, checkpoint_every=0)
    train(config, report=QUIET)
    cut = train(config.replace(out=str(tmp_path / "cut"), max_time_s=1e-9), report=QUIET)
    assert (cut.stopped, cut.global_step, cut.epochs_completed) == ("time-limit", 1, 1)  # at the end of epoch 1
    train(resume_config(tmp_path / "cut", max_time_s=1e6), resume=True, report=QUIET)
    rows = [[{k: v for k, v in row.items() if k not in ("seconds", "data_wait")}
             for row in read_rows(tmp_path / run / "log.csv")] for run in ("straight", "cut")]
    assert len(rows[0]) == 3 and rows[0] == rows[1]


def test_a_best_pt_set_aside_by_a_cut_never_comes_back_over_a_later_one(tmp_path):
    # a kill between a cut's copy and its last.pt left .best-before-cut.pt without a record; a later cut that kept
    # best.pt wrote none, and its resume put the stale file back over best.pt
    from unetkit.training.state import BEFORE_CUT, BEST, Position, remember_selection_before_cut, undo_cut_selection

    (tmp_path / BEST).write_text("the model kept now")
    (tmp_path / BEFORE_CUT).write_text("a model set aside by a cut that a kill left unrecorded")
    position = Position(best_score=0.8, kept_score=0.8, kept_step=40)
    remember_selection_before_cut(position, tmp_path, replaces_best=False, is_main=True)
    assert not (tmp_path / BEFORE_CUT).exists() and position.selection_before_cut == [0.8, 0.8, 40]
    undo_cut_selection(position, tmp_path, is_main=True)
    assert (tmp_path / BEST).read_text() == "the model kept now" and position.selection_before_cut is None
    (tmp_path / BEFORE_CUT).write_text("set aside, then killed before last.pt: what last.pt's selection goes with")
    undo_cut_selection(Position(), tmp_path, is_main=True)
    assert (tmp_path / BEST).read_text().startswith("set aside") and not (tmp_path / BEFORE_CUT).exists()

def test_an_epoch_cut_by_a_time_limit_then_resumed_logs_the_mean_loss_of_all_its_steps(tmp_path):
    # the epoch's mean loss is the stopping rule's score when there is no validation image: a
    # resumed epoch that averaged only its steps after the resume could decide otherwise
    from unetkit.training.state import resume_config

    data = write_dataset(tmp_path / "d", count=3)
    config = tiny_config(data, tmp_path / "straight", epochs=2, steps_per_epoch=40, checkpoint_every=0)
    train(config, report=QUIET)
    cut = train(config.replace(out=str(tmp_path / "cut"), max_time_s=CUT_INSIDE_AN_EPOCH), report=QUIET)
    assert cut.stopped == "time-limit" and cut.global_step % 40 != 0  # stopped inside an epoch
    train(resume_config(tmp_path / "cut", max_time_s=1e6), resume=True, report=QUIET)
    losses = [[row["loss"] for row in read_rows(tmp_path / run / "log.csv")] for run in ("straight", "cut")]
    assert len(losses[0]) == 2 and losses[0] == losses[1]


def test_the_run_bar_names_the_limits_that_may_end_the_run(capsys):
    from types import SimpleNamespace

    from unetkit.training.loop import _run_bar

    def label(config: TrainConfig) -> str:
        bar = _run_bar(SimpleNamespace(config=config, context=SimpleNamespace(is_main=True)),
                       SimpleNamespace(global_step=0, elapsed_s=0.0))
        bar.close()
        return capsys.readouterr().err

    assert "training (≤40 epochs, ≤180 s of training)" in label(TrainConfig(out="x", max_time_s=180.0))
    bar = _run_bar(SimpleNamespace(config=TrainConfig(out="x", max_time_s=180.0), context=SimpleNamespace(is_main=True)),
                   SimpleNamespace(global_step=600, elapsed_s=171.8))  # resumed with 8.2 s of its budget left
    bar.close()
    assert "600/8000 [00:00<00:08" in capsys.readouterr().err
    assert "training (≤40 epochs)" in label(TrainConfig(out="x"))
    assert "training:" in label(TrainConfig(out="x", epochs=3))  # --epochs: the bar's end is the run's


def test_the_run_bar_counts_down_the_time_budget_not_the_largest_number_of_steps():
    # a 3-minute run on a bar of 40 epochs (8,000 steps) at 3.5 steps/s said "34:10" left
    from unetkit.training.progress import BAR_FORMAT, RunBar

    def shown(budget_s: float | None, spent_s: float) -> str:
        bar = RunBar(total=8000, budget_s=budget_s, disable=True)
        bar.spent_s = spent_s
        values = bar.with_time_left({"n": 641, "total": 8000, "initial": 600, "elapsed": 11.7, "rate": 3.5})
        return RunBar.format_meter(**values, bar_format=BAR_FORMAT, ncols=100, unit="step")

    assert "<00:08," in shown(budget_s=180.0, spent_s=171.8)  # the budget's 8.2 s, not 7,359 steps' 35 min
    assert "<35:02," in shown(budget_s=None, spent_s=171.8)  # no budget: the steps' own estimate
    assert "<00:00," in shown(budget_s=180.0, spent_s=200.0)  # spent: nothing left, not a negative time
    bar = RunBar(total=None, budget_s=None, disable=True)  # no end known: no guess
    assert bar.with_time_left({"n": 641, "total": None, "initial": 0, "elapsed": 11.7, "rate": 3.5})["time_left"] == "?"
    bar = RunBar(total=8000, disable=True)  # before the first step: no rate, no budget, no guess
    assert bar.with_time_left({"n": 600, "total": 8000, "initial": 600, "elapsed": 0.0, "rate": None})["time_left"] == "?"


def test_why_a_run_stopped_is_reported_once(tmp_path):
    lines: list[str] = []
    data = write_dataset(tmp_path / "d", count=3)
    train(tiny_config(data, tmp_path / "run", epochs=10, lr=1e-9, early_stopping=1, steps_per_epoch=2),
          report=lines.append)
    stops = [line for line in lines if "stopped: no validation improvement" in line]
    assert len(stops) == 1 and stops[0].startswith("epoch 2/10"), lines


def test_a_run_cannot_resume_with_another_number_of_processes(tmp_path):
    # the global batch is batch_size x processes: resuming a 2-process run in one process halved it silently
    from unetkit.checkpoint import save_checkpoint
    from unetkit.errors import ConfigError
    from unetkit.training.state import resume_config

    data = write_dataset(tmp_path / "d", count=3)
    train(tiny_config(data, tmp_path / "run", epochs=1, steps_per_epoch=2), report=QUIET)
    last = tmp_path / "run" / "last.pt"
    payload = read_checkpoint(last)
    assert payload["training"]["world_size"] == 1
    payload["training"]["world_size"] = 2  # as a run under torchrun --nproc_per_node 2 stores it
    save_checkpoint(last, payload, overwrite=True)
    with pytest.raises(ConfigError, match="trained by 2 process.*resume with 1") as refused:
        train(resume_config(tmp_path / "run", epochs=2), resume=True, report=QUIET)
    assert "--nproc 2" in refused.value.fix and read_checkpoint(last)["training"]["global_step"] == 2
    del payload["training"]["world_size"]  # a last.pt from before the world size was stored: resumes
    save_checkpoint(last, payload, overwrite=True)
    assert train(resume_config(tmp_path / "run", epochs=2), resume=True, report=QUIET).global_step == 4


def test_paths_may_be_given_as_path_objects(tmp_path):
    # TrainConfig(out=Path(...)) failed writing config.json (a Path is not JSON) and left an empty run folder
    data = write_dataset(tmp_path / "d", count=3)
    config = tiny_config(data, tmp_path / "run", epochs=1, steps_per_epoch=2)
    config = TrainConfig(**{**config.to_dict(), "out": tmp_path / "run", "data": data})
    assert config.out == str(tmp_path / "run") and config.data == str(data)
    assert train(config, report=QUIET).epochs_completed == 1
    assert json.loads((tmp_path / "run" / "config.json").read_text())["out"] == str(tmp_path / "run")


def test_a_run_trains_on_ome_zarr_images_and_resumes_on_them(tmp_path):
    from unetkit.data.writers import write_ome_zarr
    from unetkit.training.state import resume_config

    data = write_dataset(tmp_path / "d", count=3)
    for png in sorted((data / "images").glob("*.png")):  # the images as OME-Zarr folders, the masks as PNGs
        write_ome_zarr(data / "images" / f"{png.stem}.ome.zarr", np.asarray(Image.open(png)), labels=False)
        png.unlink()
    first = train(tiny_config(data, tmp_path / "run", epochs=1, checkpoint_every=0), report=QUIET)
    assert first.epochs_completed == 1
    again = train(resume_config(tmp_path / "run", epochs=2), resume=True, report=QUIET)
    assert again.epochs_completed == 2 and again.global_step > first.global_step


def test_adam_is_fused_on_the_cpu_only_where_torch_has_the_kernel(monkeypatch):
    # torch 2.3 (pyproject.toml allows it) has fused Adam on CUDA only: fused=True on the CPU raised at every run's start
    from unetkit.training.optim import build_optimizer

    parameters = [torch.nn.Parameter(torch.zeros(2))]
    assert build_optimizer("adamw", parameters, lr=1e-3).defaults["fused"] is True
    monkeypatch.setattr(torch, "__version__", "2.3.1")
    assert build_optimizer("adam", parameters, lr=1e-3).defaults["fused"] is None


@pytest.mark.parametrize("cut", [False, True])
def test_a_several_class_run_saved_when_absent_classes_scored_1_resumes_with_a_new_bar(tmp_path, cut):
    # an image's mean Dice counted a class in neither mask nor prediction as 1.0 until 2026-12-07: a run saved then
    # resumed with that higher best score as the bar, which no epoch scored today could pass; where a time limit had
    # cut its last epoch, the selection from before the cut (put back by undo_cut_selection) brought it back
    from unetkit.training.state import resume_config

    data = write_dataset(tmp_path / "d", count=3)
    for path in (data / "masks").iterdir():
        mask = np.asarray(Image.open(path)).copy()
        mask[:, 40:] *= 2  # objects on the right are class 2
        Image.fromarray(mask).save(path)
    config = TrainConfig(out=str(tmp_path / "run"), data=str(data), num_classes=3, depth=2, base_width=4, epochs=1,
                         steps_per_epoch=2, batch_size=2, patch_size=32, progress=False, val_tile_size=64)
    train(config, report=lambda text: None)
    last = tmp_path / "run" / "last.pt"
    payload = read_checkpoint(last)
    training = payload["training"]
    assert training.pop("class_mean") == "present"  # as saved before: no record of the mean
    training["best_score"] = training["reference_score"] = 0.999
    if cut:
        training["selection_before_cut"] = [0.999, 0.999, training["global_step"]]
    save_checkpoint(last, payload, overwrite=True)
    train(resume_config(tmp_path / "run", epochs=2), resume=True, report=lambda text: None)
    rows = list(csv.DictReader(open(tmp_path / "run" / "log.csv")))
    assert float(rows[-1]["best"]) == pytest.approx(float(rows[-1]["val_dice"]), abs=1e-5)  # not the old 0.999
    assert read_checkpoint(last)["training"]["class_mean"] == "present"


def test_a_log_another_program_holds_open_is_said_and_its_rows_written_after_the_next_epoch(tmp_path, monkeypatch):
    # Excel locks a CSV it shows (Windows): the rewrite of log.csv after an epoch failed and ended the run
    import unetkit.training.history as history

    write_rows, refusals = history._write_rows, [2]  # the first two writes (epochs 1 and 2) meet the lock

    def locked_twice(path, rows):
        if refusals[0]:
            refusals[0] -= 1
            raise PermissionError(13, "Permission denied", str(path))
        write_rows(path, rows)

    monkeypatch.setattr(history, "_write_rows", locked_twice)
    said: list[str] = []
    config = TrainConfig(out=str(tmp_path / "run"), data=str(write_dataset(tmp_path / "d", count=2)), depth=2,
                         base_width=4, epochs=3, steps_per_epoch=1, batch_size=1, patch_size=32, progress=False,
                         val_tile_size=64)
    result = train(config, report=said.append)
    assert result.stopped.value == "completed"
    assert [row["epoch"] for row in read_rows(tmp_path / "run" / "log.csv")] == ["1", "2", "3"]
    warnings = [line for line in said if "cannot be written" in line]
    assert len(warnings) == 1 and "open in another program?" in warnings[0], said
    assert (tmp_path / "run" / "curves.png").is_file()


def raising(error: OSError):
    """A stand-in for a writer that fails with ``error``: another program's lock, a full disk."""
    def write(*args):
        raise error
    return write


LOCKED = PermissionError(13, "Permission denied")


def test_a_log_locked_to_the_end_of_the_run_names_the_epochs_it_lacks(tmp_path, monkeypatch):
    import unetkit.training.history as history

    monkeypatch.setattr(history, "_write_rows", raising(LOCKED))
    said: list[str] = []
    log = history.EpochLog(tmp_path, said.append)
    log.add({"epoch": 1, "step": 1, "loss": 0.5})
    log.add({"epoch": 2, "step": 2, "loss": 0.4})
    log.close()
    assert len(said) == 2 and said[-1].endswith("it lacks the rows of epoch(s) 1, 2")


def test_a_resume_names_the_epochs_a_run_killed_with_its_log_locked_never_wrote(tmp_path):
    # rows kept in memory while the log was locked die with a killed run: the resume said nothing of the gap
    config = TrainConfig(out=str(tmp_path / "run"), data=str(write_dataset(tmp_path / "d", count=2)), depth=2,
                         base_width=4, epochs=2, steps_per_epoch=1, batch_size=1, patch_size=32, progress=False,
                         val_tile_size=64)
    train(config, report=lambda text: None)
    log = tmp_path / "run" / "log.csv"
    rows = read_rows(log)
    with open(log, "w", newline="") as handle:  # epoch 2's row was never written when the run was killed
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerow(rows[0])
    said: list[str] = []
    train(dataclasses.replace(config, epochs=3), resume=True, report=said.append)
    assert any("lacks the rows of epoch(s) 2" in line for line in said), said


def test_closing_a_log_that_cannot_be_written_raises_nothing_that_would_hide_the_error_ending_the_run(tmp_path,
                                                                                                   monkeypatch):
    # close() runs in run()'s finally: a disk-full OSError there replaced the error that was ending the run
    import errno

    import unetkit.training.history as history

    monkeypatch.setattr(history, "_write_rows", raising(LOCKED))
    said: list[str] = []
    log = history.EpochLog(tmp_path, said.append)
    log.add({"epoch": 1, "step": 1, "loss": 0.5})
    monkeypatch.setattr(history, "_write_rows", raising(OSError(errno.ENOSPC, "No space left on device")))
    log.close()
    assert said[-1].endswith("it lacks the rows of epoch(s) 1") and "No space left" in said[-1]


def test_curves_another_program_holds_open_are_said_not_an_error(tmp_path, monkeypatch):
    import unetkit.training.history as history

    monkeypatch.setattr(history, "plot_curves", raising(LOCKED))
    said: list[str] = []
    log = history.EpochLog(tmp_path, said.append)
    log.add({"epoch": 1, "step": 1, "loss": 0.5})
    assert len(history.read_rows(tmp_path / "log.csv")) == 1
    assert len(said) == 1 and "curves.png cannot be written" in said[0]


def test_a_resumed_drop_out_run_draws_the_masks_of_an_uncut_one_whatever_generator_state_last_pt_holds(tmp_path):
    # drop-out masks now come from the seed, the rank and the step (each rank its own); the generator state in
    # last.pt (rank 0's only) no longer decides them
    import threading

    data = write_dataset(tmp_path / "d", count=3, size=(72, 72))
    straight = train(tiny_config(data, tmp_path / "straight", epochs=1, steps_per_epoch=4, dropout=0.5), report=QUIET)
    stop = threading.Event()
    stop.set()
    cut = train(tiny_config(data, tmp_path / "cut", epochs=1, steps_per_epoch=4, dropout=0.5), report=QUIET, stop=stop)
    assert cut.global_step == 1
    payload = read_checkpoint(tmp_path / "cut" / "last.pt")
    torch.manual_seed(12345)
    payload["training"]["rng"]["torch"] = torch.get_rng_state()  # as if another rank's state had been saved
    save_checkpoint(tmp_path / "cut" / "last.pt", payload, overwrite=True)
    resumed = train(tiny_config(data, tmp_path / "cut", epochs=1, steps_per_epoch=4, dropout=0.5), resume=True,
                    report=QUIET)
    assert straight.global_step == resumed.global_step == 4
    first, second = weights(tmp_path / "straight" / "last.pt"), weights(tmp_path / "cut" / "last.pt")
    assert all(torch.equal(first[name], second[name]) for name in first)


def test_a_resume_whose_log_another_program_holds_open_is_refused_naming_it_before_anything_changes(tmp_path,
                                                                                                     monkeypatch):
    # the resume cuts the log back to last.pt's epoch: a lock there ended it with a bare PermissionError after
    # config.json had been rewritten
    import unetkit.training.history as history

    config = TrainConfig(out=str(tmp_path / "run"), data=str(write_dataset(tmp_path / "d", count=2)), depth=2,
                         base_width=4, epochs=2, steps_per_epoch=2, batch_size=1, patch_size=32, progress=False,
                         val_tile_size=64, checkpoint_every=1)
    train(config, report=QUIET)
    last = tmp_path / "run" / "last.pt"
    payload = read_checkpoint(last)  # as if killed in epoch 2 after its row was written: the resume redoes it
    payload["training"].update(epoch=1, step=1, global_step=3)
    save_checkpoint(last, payload, overwrite=True)
    before = snapshot(tmp_path / "run")
    monkeypatch.setattr(history, "_write_rows", raising(LOCKED))
    with pytest.raises(ConfigError) as caught:
        train(dataclasses.replace(config, epochs=3), resume=True, report=QUIET)
    assert "log.csv" in str(caught.value) and "open in another program?" in str(caught.value)
    assert "close the log" in str(caught.value)
    assert snapshot(tmp_path / "run") == before


def test_a_resume_that_ends_at_once_with_its_log_locked_warns_and_still_ends(tmp_path, monkeypatch):
    # the log's last row takes the stop's reason: a lock there raised a bare PermissionError
    import unetkit.training.history as history
    from unetkit.training.state import resume_config

    monkeypatch.setattr("unetkit.training.stopping.MAX_EPOCHS", 2)
    data = write_dataset(tmp_path / "d", count=3)
    first = train(tiny_config(data, tmp_path / "run", epochs=None, lr=1e-9, steps_per_epoch=2), report=QUIET)
    assert first.stopped == "epoch-limit"
    monkeypatch.setattr(history, "_write_rows", raising(LOCKED))
    said: list[str] = []
    again = train(resume_config(tmp_path / "run", early_stopping=1), resume=True, report=said.append)
    assert again.stopped == "early-stopping"
    assert any("log.csv cannot be written" in line and "open in another program?" in line for line in said), said
    assert "no validation improvement" in json.loads((tmp_path / "run" / "result.json").read_text())["why"]


def test_an_optimizer_state_saved_by_adam_s_loop_resumes_fused_and_a_fused_one_resumes_where_fusing_is_missing():
    # the saved parameter group's "fused" came back with the state: a run saved before unetkit fused Adam kept the
    # loop for good, and a fused one would be fused where torch refuses it (2.3 on a CPU)
    import copy

    from unetkit.training.optim import build_optimizer, load_optimizer_state

    torch.manual_seed(0)
    start = [torch.randn(4, 3), torch.randn(5)]
    gradients = [[torch.randn_like(p) for p in start] for _ in range(3)]

    def stepped(optimizer, params, steps):
        for step in steps:
            for parameter, gradient in zip(params, gradients[step]):
                parameter.grad = gradient.clone()
            optimizer.step()

    looped_params = [torch.nn.Parameter(p.clone()) for p in start]
    looped = torch.optim.Adam(looped_params, lr=1e-2, fused=None)
    stepped(looped, looped_params, [0, 1])
    resumed_params = [torch.nn.Parameter(p.detach().clone()) for p in looped_params]
    fused = build_optimizer("adam", resumed_params, lr=1e-2)
    load_optimizer_state(fused, copy.deepcopy(looped.state_dict()))  # as read from last.pt: no tensor shared
    assert fused.param_groups[0]["fused"] is True
    stepped(looped, looped_params, [2])
    stepped(fused, resumed_params, [2])
    for a, b in zip(looped_params, resumed_params):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    back = torch.optim.Adam([torch.nn.Parameter(p.detach().clone()) for p in start], lr=1e-2, fused=None)
    load_optimizer_state(back, copy.deepcopy(fused.state_dict()))
    assert not back.param_groups[0]["fused"]
    assert back.state_dict()["state"][0]["step"] == 3


def test_batches_made_in_the_training_thread_where_no_core_is_spare_train_exactly_as_prefetched_ones(tmp_path,
                                                                                                       monkeypatch):
    # on 2 cores both running the steps, the batch thread beside them made an epoch take 1.10 to 1.24 times as long
    import threading

    import unetkit.training.loop as loop

    data = write_dataset(tmp_path / "d", count=4, size=(72, 72))
    threads_seen, original = {}, loop.train_step
    for spare in (True, False):
        monkeypatch.setattr(loop, "spare_core", lambda device_type, spare=spare: spare)
        before = {thread.ident for thread in threading.enumerate()}
        seen = []

        def counting_step(*args, seen=seen, before=before):
            seen.append({thread.ident for thread in threading.enumerate()} - before)
            return original(*args)

        monkeypatch.setattr(loop, "train_step", counting_step)
        train(tiny_config(data, tmp_path / f"run_{spare}", epochs=2), report=QUIET)
        threads_seen[spare] = any(seen)
    assert threads_seen == {True: True, False: False}  # a batch thread only where a core is spare
    logs = [[(row["loss"], row["val_dice"]) for row in read_rows(tmp_path / f"run_{spare}" / "log.csv")]
            for spare in (True, False)]
    assert logs[0] == logs[1]
    weights = [torch.load(tmp_path / f"run_{spare}" / "last.pt", weights_only=False)["model_state"] for spare in (True, False)]
    assert all(torch.equal(weights[0][name], weights[1][name]) for name in weights[0])


def test_a_resume_of_a_run_killed_before_its_first_checkpoint_says_what_it_trains_on(tmp_path):
    # it started again from step 0 without the "training on N image(s)" line a new run prints
    from unetkit.training.state import resume_config

    data = write_dataset(tmp_path / "d", count=3)
    train(tiny_config(data, tmp_path / "run", steps_per_epoch=1, checkpoint_every=0), report=QUIET)
    for name in ("last.pt", "best.pt", "log.csv", "result.json"):  # as a kill before the first save leaves it
        (tmp_path / "run" / name).unlink(missing_ok=True)
    said: list[str] = []
    train(resume_config(tmp_path / "run"), resume=True, report=said.append)
    assert any("stopped before its first checkpoint" in text for text in said), said
    assert sum(text.startswith("training on 2 image(s), validating on 1") for text in said) == 1, said
    resumed: list[str] = []
    train(resume_config(tmp_path / "run", epochs=3), resume=True, report=resumed.append)  # a checkpoint now
    assert not any(text.startswith("training on") for text in resumed), resumed
