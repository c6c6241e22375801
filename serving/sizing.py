"""How many worker processes this machine (or this container's CPU limit) can keep busy.

A worker is one process with one event loop: connections cost it a greenlet each, never a thread,
so workers are sized by CPUs, not by expected connections.  The usable CPUs are the fewest of the
CPUs this process may run on and the container's CPU quota (cgroup v2 ``cpu.max``, or v1
``cpu.cfs_quota_us``), rounded up: a pod limited to ``cpu: "1"`` gets one worker on any node.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _quota_cpus(root: Path) -> float | None:
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        if quota != "max":
            return int(quota) / int(period)
        return None
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None


def available_cpus(cgroup_root: Path = CGROUP_ROOT) -> int:
    """CPUs this process can use: affinity, bounded by a container CPU quota, at least 1."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    quota = _quota_cpus(cgroup_root)
    if quota is not None:
        cpus = min(cpus, math.ceil(quota))
    return max(1, cpus)


def default_workers(*, ceiling: int = 4, cgroup_root: Path = CGROUP_ROOT) -> int:
    """One worker per usable CPU, at most ``ceiling`` (each worker keeps its own watch cache)."""
    return max(1, min(ceiling, available_cpus(cgroup_root)))
