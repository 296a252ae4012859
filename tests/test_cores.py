"""A CPU quota of the process's cgroup limits the cores unetkit counts, and the command
line's torch threads with them."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch

from unetkit import UNet, make_checkpoint, save_checkpoint
from unetkit import cores
from unetkit.cli import main
from unetkit.cores import cgroup_directories, cpu_quota, quota_in, threads_within_cores, usable_cores


def affinity() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, cores", [("200000 100000\n", 2.0), ("50000 100000", 0.5), ("max 100000\n", None),
                                         ("garbage", None), ("", None), ("0 100000", None), ("100000 0", None)])
def test_the_cgroup_v2_quota_is_read_in_cores_and_anything_else_counts_as_none(tmp_path, text, cores):
    assert quota_in(write(tmp_path / "cpu.max", text).parent) == cores


@pytest.mark.parametrize("quota, period, cores", [("150000", "100000", 1.5), ("-1", "100000", None), ("150000", None, None)])
def test_the_cgroup_v1_quota_needs_both_files(tmp_path, quota, period, cores):
    write(tmp_path / "cpu.cfs_quota_us", quota + "\n")
    if period is not None:
        write(tmp_path / "cpu.cfs_period_us", period + "\n")
    assert quota_in(tmp_path) == cores


def test_cgroup_v2_is_read_before_v1(tmp_path):
    write(tmp_path / "cpu.max", "300000 100000")
    write(tmp_path / "cpu.cfs_quota_us", "100000")
    write(tmp_path / "cpu.cfs_period_us", "100000")
    assert quota_in(tmp_path) == 3.0


def test_the_smallest_quota_along_the_cgroup_path_counts(tmp_path):
    # a pod's limit on a parent directory, a looser one on the container's own
    root = tmp_path / "cgroup"
    proc = write(tmp_path / "proc", "0::/kubepods/pod7/box\n")
    write(root / "kubepods" / "pod7" / "box" / "cpu.max", "400000 100000")
    write(root / "kubepods" / "pod7" / "cpu.max", "150000 100000")
    write(root / "kubepods" / "cpu.max", "max 100000")
    assert cpu_quota(root, proc) == 1.5


def test_a_container_that_sees_its_own_cgroup_as_the_root_is_read_at_the_root(tmp_path):
    # cgroup v1 in Docker: /proc/self/cgroup names the host's path, the container mounts its own cgroup
    root = tmp_path / "cgroup"
    proc = write(tmp_path / "proc", "12:cpu,cpuacct:/docker/0123abcd\n1:name=systemd:/docker/0123abcd\n")
    write(root / "cpu" / "cpu.cfs_quota_us", "200000")
    write(root / "cpu" / "cpu.cfs_period_us", "100000")
    assert root / "cpu" / "docker" / "0123abcd" in cgroup_directories(root, proc)
    assert cpu_quota(root, proc) == 2.0


def test_without_cgroup_files_there_is_no_quota_and_the_affinity_counts(tmp_path):
    assert cpu_quota(tmp_path, tmp_path / "missing") is None
    assert usable_cores(tmp_path, tmp_path / "missing") == affinity()


def test_a_quota_below_the_affinity_rounds_up_to_whole_cores(tmp_path):
    no_proc = tmp_path / "missing"
    write(tmp_path / "cpu.max", "50000 100000")
    assert usable_cores(tmp_path, no_proc) == 1
    write(tmp_path / "cpu.max", "150000 100000")
    assert usable_cores(tmp_path, no_proc) == min(2, affinity())
    write(tmp_path / "cpu.max", f"{100000 * (affinity() + 8)} 100000")
    assert usable_cores(tmp_path, no_proc) == affinity()


@pytest.fixture
def torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture
def one_core_quota(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "cgroup"
    write(root / "cpu.max", "100000 100000")
    monkeypatch.setattr(cores, "CGROUP_ROOT", root)
    monkeypatch.setattr(cores, "PROC_CGROUP", tmp_path / "missing")
    return root


def test_torch_runs_no_more_threads_than_the_quota_allows_and_gets_its_own_back(one_core_quota, torch_threads):
    torch.set_num_threads(affinity() + 3)  # as torch starts on a big machine under a small quota
    with threads_within_cores({}) as threads:
        assert threads == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == affinity() + 3


def test_omp_num_threads_decides_where_it_is_set(one_core_quota, torch_threads):
    torch.set_num_threads(affinity() + 3)
    with threads_within_cores({"OMP_NUM_THREADS": "5"}) as threads:
        assert threads is None and torch.get_num_threads() == affinity() + 3


def test_threads_within_the_cores_are_left_alone(tmp_path, torch_threads):
    torch.set_num_threads(1)
    with threads_within_cores({}, write(tmp_path / "cpu.max", "max 100000").parent, tmp_path / "missing") as threads:
        assert threads is None and torch.get_num_threads() == 1


def test_the_predict_command_runs_within_the_quota_and_restores_the_threads(tmp_path, one_core_quota, torch_threads,
                                                                              monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    checkpoint = tmp_path / "model.pt"
    save_checkpoint(checkpoint, make_checkpoint(UNet(depth=2, base_width=4)))
    tifffile.imwrite(tmp_path / "image.tif", np.zeros((32, 32), np.uint8))
    import unetkit.predict

    seen = []
    real = unetkit.predict.predict_files
    monkeypatch.setattr(unetkit.predict, "predict_files", lambda *a, **k: seen.append(torch.get_num_threads()) or real(*a, **k))
    torch.set_num_threads(affinity() + 3)
    assert main(["predict", str(checkpoint), str(tmp_path / "image.tif"), "--out", str(tmp_path / "out"),
                 "--no-progress"]) == 0
    assert seen == [1]
    assert torch.get_num_threads() == affinity() + 3


def test_a_core_is_spare_for_a_helper_thread_only_beyond_every_local_ranks_threads(monkeypatch):
    # under torchrun, two ranks of one thread each on 2 cores saw a spare core each and both started a batch thread
    import unetkit.cores as cores

    monkeypatch.setattr(cores, "usable_cores", lambda *args: 4)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert cores.spare_core("cpu", {}) and cores.spare_core("cpu", {"LOCAL_WORLD_SIZE": "3"})
    assert not cores.spare_core("cpu", {"LOCAL_WORLD_SIZE": "4"})
    assert cores.spare_core("cuda", {"LOCAL_WORLD_SIZE": "4"})  # the GPUs run the networks
