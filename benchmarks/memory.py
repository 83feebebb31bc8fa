"""Resident memory of a server's worker processes, read from /proc (Linux).

    python -c "from benchmarks.memory import rss_mb; import os; print(rss_mb(os.getpid()))"

`make bench` reads each worker's memory after a load, `make soak` samples it for
minutes, `make attack` follows each worker's peak under attack: all through Workers.
"""

from __future__ import annotations

import collections
import threading
import time
from pathlib import Path

WORKER_MARK = b"_bentoml_impl.worker"  # in the command line of a BentoML worker process


def descendants(pid: int) -> list[int]:
    """Every process below `pid`: its children, theirs, and so on."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children[int(fields[1])].append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def rss_mb(pid: int, field: str = "VmHWM") -> float:
    """A process's peak (VmHWM) or current (VmRSS) resident memory in MB; 0 when gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def is_worker(pid: int) -> bool:
    """Whether `pid` is a BentoML worker (not the supervisor, nor a helper that sleeps)."""
    try:
        return WORKER_MARK in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


class Workers:
    """A server's worker processes, sampled: the ones seen, their highest peak (VmHWM),
    and with every sample the largest current resident memory (VmRSS). A worker that dies
    takes its VmHWM with it, and its successor counts."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid, self.seen, self.peak = server_pid, set[int](), 0.0
        self.started = time.monotonic()
        self.samples: list[tuple[float, float]] = []  # (s since started, largest VmRSS MB)

    def pids(self) -> list[int]:
        return [p for p in descendants(self.server_pid) if is_worker(p)]

    def sample(self) -> list[int]:
        """Reads the workers now; returns their pids."""
        now = self.pids()
        self.seen.update(now)
        self.peak = max([self.peak, *(rss_mb(p) for p in now)])
        current = max((rss_mb(p, "VmRSS") for p in now), default=0.0)
        self.samples.append((round(time.monotonic() - self.started), current))
        return now

    def current_mb(self) -> list[float]:
        """Each worker's current resident memory, largest first."""
        return sorted((round(rss_mb(p, "VmRSS"), 1) for p in self.pids()), reverse=True)

    def watch(self, done: threading.Event, every: float) -> None:
        """sample() every `every` seconds until `done` is set (a thread's target)."""
        while not done.wait(every):
            self.sample()
