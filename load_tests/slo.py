"""The service-level objectives checked when a load test ends.

    locust --config load_tests/locust.conf --slo-p99-ms 200 --slo-min-rps 100

A pure function of the final statistics, so the gate itself is unit-tested.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SLO:
    """The objectives, declared once: load_tests/locustfile.py makes each field an option
    (--slo-p99-ms, LOCUST_SLO_P99_MS) with this default; nothing else sets a value unless
    a user asks for one."""

    max_fail_ratio: float = field(default=0.0, metadata={"help": "most failed requests, a ratio"})
    p99_ms: float = field(default=250.0, metadata={"help": "slowest p99 latency, ms"})
    min_rps: float = field(default=0.0, metadata={"help": "least throughput, requests/s"})
    min_accuracy: float = field(default=0.95, metadata={"help": "least share of right answers"})


@dataclass
class Accuracy:
    correct: int = 0
    total: int = 0

    def add(self, predicted: list[int], truth: list[int]) -> None:
        self.correct += sum(int(p == t) for p, t in zip(predicted, truth, strict=True))
        self.total += len(truth)

    @property
    def ratio(self) -> float:
        return self.correct / self.total if self.total else 0.0


def violations(total: Any, accuracy: Accuracy, slo: SLO) -> list[str]:
    """`total` is Locust's aggregated StatsEntry (environment.stats.total)."""
    out = []
    if total.num_requests == 0:
        return ["no requests were made"]
    if total.fail_ratio > slo.max_fail_ratio:
        out.append(f"failure ratio {total.fail_ratio:.4f} > {slo.max_fail_ratio}")
    p99 = total.get_response_time_percentile(0.99)
    if p99 > slo.p99_ms:
        out.append(f"p99 {p99:.0f} ms > {slo.p99_ms:.0f} ms")
    if total.total_rps < slo.min_rps:
        out.append(f"throughput {total.total_rps:.1f} req/s < {slo.min_rps:.1f}")
    if accuracy.total and accuracy.ratio < slo.min_accuracy:
        out.append(f"accuracy {accuracy.ratio:.4f} < {slo.min_accuracy}")
    return out


def summary(total: Any, accuracy: Accuracy) -> str:
    return (f"{total.num_requests} requests, {total.num_failures} failed, "
            f"{total.total_rps:.1f} req/s, p50 {total.get_response_time_percentile(0.5):.0f} ms, "
            f"p99 {total.get_response_time_percentile(0.99):.0f} ms, accuracy under load "
            f"{accuracy.ratio:.4f} ({accuracy.total} digits)")
