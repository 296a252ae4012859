"""DDP under torchrun (gloo on CPU): 2 x B equals 1 x 2B, one set of outputs, fault recovery."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from unetkit.checkpoint import read_checkpoint

from helpers import write_dataset, write_tiff

COMMON = ["--depth", "3", "--base-width", "4", "--epochs", "2", "--steps-per-epoch", "4", "--patch-size", "48",
          "--loss", "bce", "--precision", "fp32", "--no-progress", "--seed", "7", "--ema", "0.9"]


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    env["OMP_NUM_THREADS"] = "1"
    return env


def torchrun(nproc: int, *args: str, max_restarts: int = 0) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
            f"--max-restarts={max_restarts}", "-m", "unetkit", "train", *args]


def single(*args: str) -> list[str]:
    return [sys.executable, "-m", "unetkit", "train", *args]


@pytest.mark.slow
def test_two_processes_with_batch_b_reach_the_weights_of_one_with_batch_2b(tmp_path):
    data = write_dataset(tmp_path / "d", count=4, size=(80, 80))
    subprocess.run(torchrun(2, str(data), "--out", str(tmp_path / "ddp"), "--batch-size", "2", *COMMON),
                   check=True, capture_output=True, env=environment(), timeout=300)
    subprocess.run(single(str(data), "--out", str(tmp_path / "one"), "--batch-size", "4", *COMMON),
                   check=True, capture_output=True, env=environment(), timeout=300)
    ddp = read_checkpoint(tmp_path / "ddp" / "last.pt")
    one = read_checkpoint(tmp_path / "one" / "last.pt")
    assert ddp["training"]["global_step"] == one["training"]["global_step"] == 8
    for name, value in one["model_state"].items():
        assert torch.allclose(ddp["model_state"][name], value, atol=1e-5, rtol=1e-4), name
    for name, value in one["training"]["averaged"].items():  # the weight average (--ema) too
        assert torch.allclose(ddp["training"]["averaged"][name], value, atol=1e-5, rtol=1e-4), name
    # rank 0 alone writes: exactly one set of logs and checkpoints
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()) == sorted(p.name for p in (tmp_path / "one").iterdir())
    assert (tmp_path / "ddp" / "log.csv").read_text().count("\n") == 3  # header + 2 epochs


@pytest.mark.slow
def test_the_validation_score_of_two_processes_is_that_of_the_batch_norm_model_best_pt_keeps(tmp_path):
    # each rank's batch-norm statistics are its own after its last step: rank 1 scored its half of the
    # validation images with its own, so log.csv and best.pt's score belonged to no model (0.9814 against 0.9808)
    data = write_dataset(tmp_path / "d", count=4, size=(80, 80))
    val = write_dataset(tmp_path / "v", count=4, size=(80, 80), seed=10)
    out = tmp_path / "run"
    subprocess.run(torchrun(2, str(data), "--out", str(out), "--val-data", str(val), "--batch-size", "2", *COMMON,
                            "--batch-norm", "--ema", "0", "--lr", "0.01", "--epochs", "1", "--steps-per-epoch", "30"),
                   check=True, capture_output=True, env=environment(), timeout=300)
    logged = float((out / "log.csv").read_text().splitlines()[1].split(",")[3])
    from unetkit.evaluation import evaluate_checkpoint
    from unetkit.tiling import TileOptions

    scored = evaluate_checkpoint(out / "best.pt", val, TileOptions(tile_size=512), precision="fp32", device="cpu")
    assert 0.1 < logged < 1 and abs(scored.accumulator.means()["dice"] - logged) < 1e-5


@pytest.mark.slow
def test_a_loss_that_is_not_finite_on_one_rank_alone_stops_every_rank_with_the_message(tmp_path):
    # the rank whose loss was NaN skipped its backward pass alone: the other waited in DDP's gradient all-reduce
    # while it joined the step's all-reduce, and gloo aborted on the mismatch (nccl: a hang until the timeout)
    data = write_dataset(tmp_path / "d", count=8, size=(64, 64))
    poisoned = np.full((64, 64), 3e38, np.float32)  # finite, but its convolutions overflow: inf - inf
    poisoned[::2, ::2] = poisoned[1::2, 1::2] = -3e38
    (data / "images" / "img5.png").unlink()
    write_tiff(data / "images" / "img5.tif", poisoned)
    finished = subprocess.run(torchrun(2, str(data), "--out", str(tmp_path / "run"), "--val-fraction", "0",
                                       "--normalization", "none", "--batch-size", "1", *COMMON,
                                       "--epochs", "1", "--steps-per-epoch", "30"),
                              capture_output=True, text=True, env=environment(), timeout=300)
    assert "the loss became NaN or infinite at step" in finished.stderr, finished.stderr[-3000:]
    assert "mismatch" not in finished.stderr and "Connection reset" not in finished.stderr


def worker_pids(parent: int) -> list[int]:
    """Processes whose parent is ``parent`` (torchrun's workers)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            children.append(int(stat.parent.name))
    return children


@pytest.mark.slow
def test_a_killed_rank_does_not_hang_the_others_and_the_run_resumes(tmp_path):
    data = write_dataset(tmp_path / "d", count=4, size=(80, 80))
    out = tmp_path / "run"
    args = [str(data), "--out", str(out), "--auto-resume", "--batch-size", "2", *COMMON,
            "--epochs", "6", "--steps-per-epoch", "6", "--checkpoint-every", "2"]
    process = subprocess.Popen(torchrun(2, *args, max_restarts=1), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env=environment())
    deadline = time.monotonic() + 240
    while not (out / "last.pt").exists():
        assert process.poll() is None, process.stdout.read()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    killed_at = read_checkpoint(out / "last.pt")["training"]["global_step"]
    workers = worker_pids(process.pid)
    assert len(workers) == 2
    os.kill(workers[-1], signal.SIGKILL)
    output, _ = process.communicate(timeout=240)
    assert process.returncode == 0, output
    assert "resumed" in output
    final = read_checkpoint(out / "last.pt")["training"]
    assert killed_at < 36 and final["global_step"] == 36
    assert [line.split(",")[0] for line in (out / "log.csv").read_text().splitlines()[1:]] == [str(e) for e in range(1, 7)]


@pytest.mark.slow
def test_nproc_shortcut_runs_the_same_command_under_torchrun(tmp_path):
    data = write_dataset(tmp_path / "d", count=4, size=(64, 64))
    finished = subprocess.run(
        single(str(data), "--out", str(tmp_path / "run"), "--nproc", "2", *COMMON, "--epochs", "1"),
        capture_output=True, text=True, env=environment(), timeout=300,
    )
    assert finished.returncode == 0, finished.stderr
    assert "world size 2" in finished.stderr
    assert finished.stdout.count("done (completed: all 1 epoch(s) asked for)") == 1  # rank 0 alone reports
    assert read_checkpoint(tmp_path / "run" / "last.pt")["training"]["global_step"] == 4


def test_every_rank_keeps_the_same_weight_average_with_batch_norm(tmp_path):
    port = free_port()
    worker = Path(__file__).with_name("ddp_average_worker.py")
    ranks = [subprocess.Popen([sys.executable, str(worker), str(rank), port, str(tmp_path)], env=environment())
             for rank in (0, 1)]
    assert [rank.wait(timeout=120) for rank in ranks] == [0, 0]
    first, second = (torch.load(tmp_path / f"rank{rank}.pt") for rank in (0, 1))
    assert "1.running_mean" in first
    for name, value in first.items():
        assert torch.equal(value, second[name]), name


def free_port() -> str:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return str(probe.getsockname()[1])


def two_gloo_ranks(worker_name: str, tmp_path: Path) -> tuple[object, object]:
    """Run ``tests/WORKER_NAME`` as ranks 0 and 1 of a gloo job on a small dataset; what each wrote (JSON)."""
    data = write_dataset(tmp_path / "d", count=4, size=(64, 64))
    worker = Path(__file__).with_name(worker_name)
    port, out = free_port(), str(tmp_path / "run")
    ranks = [subprocess.Popen([sys.executable, str(worker), str(rank), port, str(data), out], env=environment(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for rank in (0, 1)]
    try:
        codes = [rank.wait(timeout=120) for rank in ranks]
    finally:
        for rank in ranks:
            rank.kill()
    assert codes == [0, 0], [rank.stderr.read().decode()[-2000:] for rank in ranks]
    first, second = (json.loads(Path(f"{out}.rank{rank}.json").read_text()) for rank in (0, 1))
    return first, second


def test_ranks_whose_clocks_disagree_stop_at_the_same_step_of_a_time_budget(tmp_path):
    # each rank used to stop when its own clock passed --max-time: a slower rank left the others
    # waiting in a collective it never joined; now they count the same time (their mean)
    first, second = two_gloo_ranks("ddp_time_worker.py", tmp_path)
    assert first == second and first["stopped"] == "time-limit" and first["steps"] < 4000


def test_each_rank_draws_its_own_drop_out_masks(tmp_path):
    # every rank was seeded with the run's seed and drew the same masks: one mask over a batch world-size
    # times larger, not the drop-out asked for
    first, second = two_gloo_ranks("ddp_dropout_worker.py", tmp_path)
    assert len(first) == len(second) == 3 and all(len(mask) == 16 for mask in first)
    assert any(any(mask) for mask in first)  # drop-out zeroed channels
    assert first != second


def processes_mentioning(text: str) -> list[int]:
    """Processes whose command line holds ``text``."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text in cmdline.read_bytes().decode(errors="replace"):
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found


@pytest.mark.slow
def test_a_stop_sent_to_the_nproc_command_alone_stops_every_worker_after_they_save(tmp_path):
    # SIGTERM to `unetkit train --nproc 2` used to end that process only: torchrun and its
    # workers went on training in the background (and SIGINT left the workers orphaned)
    data = write_dataset(tmp_path / "d", count=4, size=(64, 64))
    out = tmp_path / "run"
    process = subprocess.Popen(
        single(str(data), "--out", str(out), "--nproc", "2", *COMMON, "--epochs", "200", "--checkpoint-every", "1"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment(), start_new_session=True)
    deadline = time.monotonic() + 240
    while not (out / "last.pt").exists():
        assert process.poll() is None, process.stdout.read()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)  # to the wrapper alone, not its process group
    output, _ = process.communicate(timeout=120)
    assert "stopped by a signal" in output, output
    assert process.returncode == 130  # interrupted, as a single process says it
    assert "Traceback" not in output and "SignalException" not in output  # torchrun's, after our message
    time.sleep(1)
    assert processes_mentioning(str(out)) == []  # no torchrun, no worker left running
    stopped_at = read_checkpoint(out / "last.pt")["training"]["global_step"]
    assert 0 < stopped_at < 200 * 4


@pytest.mark.slow
def test_a_user_error_under_nproc_exits_2_with_its_message_and_no_torchrun_traceback(tmp_path):
    # every worker printed the message, then torchrun its ChildFailedError traceback, and exit 1
    finished = subprocess.run(
        single(str(tmp_path / "missing"), "--out", str(tmp_path / "run"), "--nproc", "2", *COMMON),
        capture_output=True, text=True, env=environment(), timeout=120,
    )
    assert finished.returncode == 2, finished.stderr
    assert f"{tmp_path / 'missing'}: data folder not found" in finished.stderr
    assert "Traceback" not in finished.stderr and "ChildFailedError" not in finished.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_a_stop_while_the_nproc_command_starts_exits_130_without_a_traceback(tmp_path):
    # a stop in its first seconds (imports, torchrun's start) gave 1, -2, 143, -15 or 129, and tracebacks
    data = write_dataset(tmp_path / "d", count=4, size=(64, 64))
    for delay, stop in ((0.3, signal.SIGINT), (1.5, signal.SIGTERM), (3.0, signal.SIGINT)):
        out = tmp_path / f"run{delay}"
        process = subprocess.Popen(
            single(str(data), "--out", str(out), "--nproc", "2", *COMMON, "--epochs", "200"),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment(), start_new_session=True)
        time.sleep(delay)
        process.send_signal(stop)
        output, _ = process.communicate(timeout=120)
        assert process.returncode == 130, (delay, output)
        assert "Traceback" not in output, (delay, output)
        time.sleep(0.5)
        assert processes_mentioning(str(out)) == []


def test_the_torchrun_wrapper_imports_where_signal_has_no_sigkill(monkeypatch):
    # Windows has no signal.SIGKILL: importing unetkit.torchrun (train --nproc) raised AttributeError there
    import importlib

    import unetkit.torchrun

    monkeypatch.delattr(signal, "SIGKILL")
    reloaded = importlib.reload(unetkit.torchrun)
    assert reloaded.SHUTDOWN_CODES == {-signal.SIGTERM}
    monkeypatch.undo()
    assert -signal.SIGKILL in importlib.reload(unetkit.torchrun).SHUTDOWN_CODES
