"""A container's CPU quota limits the cores unetkit counts, and torch's threads with them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from unetkit.cores import cpu_quota, match_torch_threads, usable_cores


def affinity() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def cgroup_v2(root: Path, text: str) -> Path:
    (root / "cpu.max").write_text(text)
    return root


def cgroup_v1(root: Path, quota: str, period: str = "100000") -> Path:
    (root / "cpu").mkdir()
    (root / "cpu" / "cpu.cfs_quota_us").write_text(quota + "\n")
    (root / "cpu" / "cpu.cfs_period_us").write_text(period + "\n")
    return root


@pytest.mark.parametrize("text, cores", [("200000 100000\n", 2.0), ("50000 100000", 0.5), ("max 100000\n", None),
                                         ("garbage", None), ("0 100000", None), ("100000 0", None)])
def test_the_cgroup_v2_quota_is_read_in_cores_and_anything_else_counts_as_none(tmp_path, text, cores):
    assert cpu_quota(cgroup_v2(tmp_path, text)) == cores


@pytest.mark.parametrize("quota, cores", [("150000", 1.5), ("-1", None)])
def test_the_cgroup_v1_quota_is_read_too(tmp_path, quota, cores):
    assert cpu_quota(cgroup_v1(tmp_path, quota)) == cores


def test_without_cgroup_files_there_is_no_quota_and_the_affinity_counts(tmp_path):
    assert cpu_quota(tmp_path) is None
    assert usable_cores(tmp_path) == affinity()


def test_a_quota_below_the_affinity_rounds_up_to_whole_cores(tmp_path):
    assert usable_cores(cgroup_v2(tmp_path, "50000 100000")) == 1
    (tmp_path / "cpu.max").write_text("150000 100000")
    assert usable_cores(tmp_path) == min(2, affinity())
    (tmp_path / "cpu.max").write_text(f"{100000 * (affinity() + 8)} 100000")
    assert usable_cores(tmp_path) == affinity()


@pytest.fixture
def torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_torch_starts_no_more_threads_than_the_quota_allows(tmp_path, torch_threads):
    torch.set_num_threads(affinity() + 3)  # as torch does on a big machine under a small quota
    assert match_torch_threads({}, cgroup_v2(tmp_path, "100000 100000")) == 1
    assert torch.get_num_threads() == 1


def test_omp_num_threads_decides_where_it_is_set(tmp_path, torch_threads):
    torch.set_num_threads(affinity() + 3)
    assert match_torch_threads({"OMP_NUM_THREADS": "5"}, cgroup_v2(tmp_path, "100000 100000")) is None
    assert torch.get_num_threads() == affinity() + 3


def test_threads_within_the_cores_are_left_alone(tmp_path, torch_threads):
    torch.set_num_threads(1)
    assert match_torch_threads({}, cgroup_v2(tmp_path, "max 100000")) is None
    assert torch.get_num_threads() == 1
