"""How many cores this process may use: its CPU affinity, and a CPU quota of its cgroup.

torch starts one thread per physical core that the process's affinity allows, and it does
not see a CPU quota: in a container limited with ``docker run --cpus 2`` or a Kubernetes CPU
limit, or a systemd unit with ``CPUQuota=200%``, on a 64-core machine, it starts 32 threads
or more for the time of 2 cores. :func:`usable_cores` counts what the process may use, and
:func:`threads_within_cores` lowers torch's threads to it for the length of a command (the
command line's ``train``, ``predict`` and ``evaluate`` do this; the Python API and the
napari plugin leave torch's threads as they are). ``OMP_NUM_THREADS``, where set, decides.

The quota is the smallest along the process's cgroup path (``/proc/self/cgroup``) up to the
root of ``/sys/fs/cgroup``: cgroup v2's ``cpu.max`` or cgroup v1's ``cpu.cfs_quota_us`` and
``cpu.cfs_period_us`` (under ``cpu/``). Inside a container the path is often not mounted
(the container sees its own cgroup as the root), so each directory on the path is read
where it exists, and the root always is.
"""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path
from typing import Iterator, Mapping

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")


def quota_in(directory: Path) -> float | None:
    """The CPU quota set in one cgroup directory, in cores (``1.5``: one and a half); None
    where it sets none or it cannot be read. cgroup v2's ``cpu.max`` is read first, then
    cgroup v1's pair of files.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     _ = (Path(folder) / "cpu.max").write_text("150000 100000\\n")
    ...     quota_in(Path(folder))
    1.5
    """
    v2 = directory / "cpu.max"
    v1_quota, v1_period = directory / "cpu.cfs_quota_us", directory / "cpu.cfs_period_us"
    try:
        if v2.is_file():
            quota, period = v2.read_text().split()[:2]
        elif v1_quota.is_file() and v1_period.is_file():
            quota, period = v1_quota.read_text().strip(), v1_period.read_text().strip()
        else:
            return None
        if quota in ("max", "-1"):
            return None
        cores = int(quota) / int(period)
    except (OSError, ValueError, ZeroDivisionError):  # unreadable or unexpected: no quota known
        return None
    return cores if cores > 0 else None


def cgroup_directories(cgroup_root: Path, proc_cgroup: Path) -> list[Path]:
    """The directories whose quota limits this process: its cgroup v2 path and its cgroup v1
    ``cpu`` path, each with every parent, up to and with their roots (which are read even
    where ``/proc/self/cgroup`` cannot be).

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     proc = Path(folder) / "cgroup"
    ...     _ = proc.write_text("0::/pod7/box\\n")
    ...     [str(path) for path in cgroup_directories(Path("/cg"), proc)]
    ['/cg/pod7/box', '/cg/pod7', '/cg', '/cg/cpu']
    """
    paths = {"": "", "cpu": ""}  # the roots
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        _, controllers, path = line.split(":", 2) if line.count(":") >= 2 else ("", "-", "")
        if controllers == "":
            paths[""] = path
        elif "cpu" in controllers.split(","):
            paths["cpu"] = path
    directories: list[Path] = []
    for mount, path in paths.items():
        parts = [part for part in path.split("/") if part and part not in (".", "..")]
        for depth in range(len(parts), -1, -1):
            directories.append(cgroup_root.joinpath(mount, *parts[:depth]) if mount else
                               cgroup_root.joinpath(*parts[:depth]))
    return directories


def cpu_quota(cgroup_root: Path | None = None, proc_cgroup: Path | None = None) -> float | None:
    """The CPU time this process may use, in cores: the smallest quota along its cgroup
    path (:func:`cgroup_directories`); None where no quota is set.

    >>> cpu_quota(Path("/no/such/cgroup"), Path("/no/such/file")) is None
    True
    """
    directories = cgroup_directories(cgroup_root or CGROUP_ROOT, proc_cgroup or PROC_CGROUP)
    quotas = [quota for quota in map(quota_in, directories) if quota is not None]
    return min(quotas, default=None)


def spare_core(device_type: str = "cpu", environment: Mapping[str, str] | None = None) -> bool:
    """Whether a helper thread (reading ahead, writing behind, preparing the next batches) can overlap the network's
    work: it runs on a GPU (``device_type`` other than ``"cpu"``), or this process may use more cores than torch's
    threads keep busy, those of every process torchrun started on this machine counted (``LOCAL_WORLD_SIZE`` in
    ``environment``, by default the process's: two ranks of one thread on 2 cores leave none spare).

    Where it cannot (2 cores, both running the network), the helper takes a core from the network's threads, which
    then wait for each other, and the work is slower than doing one thing after the other: prediction of many files
    (BENCHMARKS.md, "Predicting thousands of files"), and training, whose epochs took 1.10 times as long (the
    reference network; 1.24 at a quarter of its width) with the batches made in a thread beside the steps
    (BENCHMARKS.md, "Batches made beside the training steps"). The cores counted are the logical CPUs this process
    may run on, and torch uses one thread per physical core by default, so a machine with hyper-threading counts as
    having spare cores (its siblings); a CPU quota (a container's ``--cpus``) counts as the cores it allows
    (:func:`usable_cores`).

    >>> import torch
    >>> spare_core("cpu", {}) == (usable_cores() > torch.get_num_threads()), spare_core("cuda")
    (True, True)
    >>> spare_core("cpu", {"LOCAL_WORLD_SIZE": str(usable_cores())})  # a rank per core: each core runs a network
    False
    """
    import torch

    environment = os.environ if environment is None else environment
    processes_here = max(1, int(environment.get("LOCAL_WORLD_SIZE", "1") or 1))
    return device_type != "cpu" or usable_cores() > torch.get_num_threads() * processes_here


def usable_cores(cgroup_root: Path | None = None, proc_cgroup: Path | None = None) -> int:
    """The cores this process may use: those it may run on (a SLURM allocation, ``taskset``),
    fewer where a CPU quota, rounded up to whole cores, allows less; at least 1.

    >>> usable_cores(Path("/no/such/cgroup"), Path("/no/such/file")) == len(os.sched_getaffinity(0))
    True
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = cpu_quota(cgroup_root, proc_cgroup)
    if quota is not None:
        cores = min(cores, math.ceil(quota))
    return max(1, cores)


@contextlib.contextmanager
def threads_within_cores(environment: Mapping[str, str], cgroup_root: Path | None = None,
                         proc_cgroup: Path | None = None) -> Iterator[int | None]:
    """For the length of the block, torch's threads lowered to :func:`usable_cores` where it
    starts more, unless ``OMP_NUM_THREADS`` is set in ``environment`` (the user's or
    torchrun's choice). Yields the threads set (None: nothing changed); restores torch's
    count after the block.

    >>> with threads_within_cores({"OMP_NUM_THREADS": "64"}) as threads:
    ...     threads is None
    True
    """
    import torch

    before = torch.get_num_threads()
    cores = usable_cores(cgroup_root, proc_cgroup)
    if "OMP_NUM_THREADS" in environment or before <= cores:
        yield None
        return
    torch.set_num_threads(cores)
    try:
        yield cores
    finally:
        torch.set_num_threads(before)
