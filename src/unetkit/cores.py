"""How many cores this process may use: its CPU affinity, and a container's CPU quota.

torch starts one thread per core it sees, and it does not see a quota: in a container
limited with ``docker run --cpus 2`` or a Kubernetes CPU limit, on a 64-core machine, torch
starts 32 threads or more, which then share the time of 2 cores and wait for each other at
every layer. :func:`usable_cores` counts what the process may really use, and
:func:`match_torch_threads` lowers torch's threads to it (the command line does this before
training or predicting; ``OMP_NUM_THREADS``, where set, is left to decide).

Quotas are read from cgroup v2 (``cpu.max``) or cgroup v1 (``cpu/cpu.cfs_quota_us`` and
``cpu/cpu.cfs_period_us``) under ``/sys/fs/cgroup``, as they appear inside the container.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Mapping

CGROUP_ROOT = Path("/sys/fs/cgroup")


def cpu_quota(cgroup_root: Path = CGROUP_ROOT) -> float | None:
    """The CPU time this process's cgroup may use, in cores (``1.5``: one and a half); None
    where there is no quota or it cannot be read.

    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> _ = (root / "cpu.max").write_text("150000 100000\\n")
    >>> cpu_quota(root)
    1.5
    >>> _ = (root / "cpu.max").write_text("max 100000\\n")
    >>> cpu_quota(root) is None
    True
    """
    v2 = cgroup_root / "cpu.max"
    v1 = (cgroup_root / "cpu" / "cpu.cfs_quota_us", cgroup_root / "cpu" / "cpu.cfs_period_us")
    try:
        if v2.is_file():
            quota, period = v2.read_text().split()[:2]
        elif v1[0].is_file() and v1[1].is_file():
            quota, period = v1[0].read_text().strip(), v1[1].read_text().strip()
        else:
            return None
        if quota in ("max", "-1"):
            return None
        cores = int(quota) / int(period)
    except (OSError, ValueError, ZeroDivisionError):  # unreadable or unexpected: no quota known
        return None
    return cores if cores > 0 else None


def usable_cores(cgroup_root: Path = CGROUP_ROOT) -> int:
    """The cores this process may use: those it may run on (a SLURM allocation, ``taskset``),
    fewer where a CPU quota (rounded up) allows less; at least 1.

    >>> 1 <= usable_cores() <= (os.cpu_count() or 1)
    True
    """
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0))
    else:
        cores = os.cpu_count() or 1
    quota = cpu_quota(cgroup_root)
    if quota is not None:
        cores = min(cores, math.ceil(quota))
    return max(1, cores)


def match_torch_threads(environment: Mapping[str, str], cgroup_root: Path = CGROUP_ROOT) -> int | None:
    """Lower torch's threads to :func:`usable_cores` where it starts more, unless
    ``OMP_NUM_THREADS`` is set in ``environment`` (the user's or torchrun's choice). Returns
    the threads set, or None where nothing changed.

    >>> match_torch_threads({"OMP_NUM_THREADS": "64"}) is None
    True
    """
    if "OMP_NUM_THREADS" in environment:
        return None
    import torch

    cores = usable_cores(cgroup_root)
    if torch.get_num_threads() <= cores:
        return None
    torch.set_num_threads(cores)
    return cores
