"""How many vCPUs the container may use: CPU affinity, capped by the cgroup's CPU quota.

Serverless containers see the host's CPUs but are granted fewer; a thread pool sized to the
host would contend with itself. Both engines size their intra-op threads from this unless
EMBEDDING_NUM_THREADS says otherwise (environment.py; beside ONNX Runtime, torch keeps one
thread: engines.py).
"""

from __future__ import annotations

import math
import os


def _cgroup_cpu_limit() -> float | None:
    """CPUs granted by the cgroup quota (v2 `cpu.max`, else v1 CFS); None when unlimited."""
    try:
        with open("/sys/fs/cgroup/cpu.max") as handle:
            quota, period = handle.read().split()[:2]
        if quota != "max":
            return int(quota) / int(period)
        return None
    except (OSError, ValueError):
        pass
    try:
        with open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") as handle:
            quota_us = int(handle.read().strip())
        with open("/sys/fs/cgroup/cpu/cpu.cfs_period_us") as handle:
            period_us = int(handle.read().strip())
        if quota_us > 0 and period_us > 0:
            return quota_us / period_us
    except (OSError, ValueError):
        pass
    return None


def available_cpus() -> int:
    """vCPUs this process may use: CPU affinity, capped by the cgroup quota."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    limit = _cgroup_cpu_limit()
    if limit is not None:
        cpus = min(cpus, max(1, math.ceil(limit)))
    return max(1, cpus)
