"""The CPUs this process may really use, which decides the default worker count.

    python -c "from service.cpus import usable_cpus; print(usable_cpus())"
"""

from __future__ import annotations

import os
from pathlib import Path


def usable_cpus(cgroup: Path = Path("/sys/fs/cgroup")) -> int:
    """The CPUs this process may really use: its affinity mask, capped by a cgroup CPU
    quota (a container's `--cpus`, a pod's limit), which os.cpu_count() ignores. Both
    cgroup v2 (cpu.max: "QUOTA PERIOD" or "max PERIOD") and v1 (cpu.cfs_quota_us)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else os.cpu_count() or 1
    quota = None
    try:
        limit, period = (cgroup / "cpu.max").read_text().split()[:2]
        quota = None if limit == "max" else int(limit) / int(period)
    except (OSError, ValueError):
        try:
            limit = (cgroup / "cpu" / "cpu.cfs_quota_us").read_text().strip()
            period = (cgroup / "cpu" / "cpu.cfs_period_us").read_text().strip()
            quota = None if int(limit) <= 0 else int(limit) / int(period)
        except (OSError, ValueError):
            pass
    if quota is not None:  # 1.5 CPUs of quota: 2 workers would be throttled, 1 is not
        cpus = min(cpus, max(1, int(quota)))
    return max(1, cpus)
