"""How a program runs the load test and reads its result: Locust's command line, built in
one place, and the "Aggregated" row of the statistics it writes.

    python -c "import load_tests.command as c; print(c.locust_command('URL', users=8, seconds=9))"

The demo, the benchmarks, the soak, the Swarm proof and the tests all start Locust through
locust_command() (run from the project root: its paths are relative to it) and read
its figures with read_totals(). Standard library only: deploy/swarm/e2e.py imports it.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

from load_tests.slo import SLO

CONFIG = "load_tests/locust.conf"
SLO_FIELDS = frozenset(f.name for f in fields(SLO))


def slo_options(slo: Mapping[str, float]) -> list[str]:
    """`--slo-p99-ms 100`... for the SLO fields given, and nothing for the others: the
    load test's own defaults (load_tests/slo.py) stand unless a caller sets a value."""
    unknown = sorted(set(slo) - SLO_FIELDS)
    if unknown:
        raise ValueError(f"not fields of the SLO: {', '.join(unknown)}")
    return [arg for name, value in slo.items()
            for arg in (f"--slo-{name.replace('_', '-')}", str(value))]


def locust_command(host: str, *, users: int, seconds: int, locustfile: str | None = None,
                   config: str | None = CONFIG, spawn_rate: int | None = None,
                   csv_prefix: str | Path | None = None, html: str | Path | None = None,
                   slo: Mapping[str, float] | None = None,
                   extra: Sequence[str] = ()) -> list[str]:
    """A headless Locust run of `seconds` against `host` with `users` (spawned all at once
    unless spawn_rate says otherwise), printing only its summary.

    config: the load test's defaults (None: none, e.g. for another locustfile);
    locustfile: instead of the config's; csv_prefix: where the statistics go
    (read_totals(csv_prefix) reads them); html: the report; slo: SLO fields set by the
    caller, by name; extra: further Locust options.
    """
    return [
        sys.executable, "-m", "locust",
        *(["--config", config] if config else []),
        *(["--locustfile", locustfile] if locustfile else []),
        "--headless", "--host", host, "--users", str(users),
        "--spawn-rate", str(spawn_rate or users), "--run-time", f"{seconds}s",
        *(["--csv", str(csv_prefix)] if csv_prefix else []),
        *(["--html", str(html)] if html else []),
        "--only-summary", *slo_options(slo or {}), *extra,
    ]


@dataclass(frozen=True)
class Totals:
    """The figures of Locust's "Aggregated" row: all requests of a run together."""

    requests: int
    failures: int
    rps: float
    p50_ms: float
    p99_ms: float


def read_totals(csv_prefix: str | Path) -> Totals:
    """The "Aggregated" row of `{csv_prefix}_stats.csv`, which Locust rewrites while it
    runs. Raises OSError when the file is not there yet, LookupError or ValueError when
    it holds no complete row."""
    with open(f"{csv_prefix}_stats.csv", newline="") as f:
        row = next((r for r in csv.DictReader(f) if r["Name"] == "Aggregated"), None)
    if row is None:
        raise LookupError(f"no Aggregated row in {csv_prefix}_stats.csv yet")
    return Totals(requests=int(row["Request Count"]), failures=int(row["Failure Count"]),
                  rps=float(row["Requests/s"]), p50_ms=float(row["50%"]),
                  p99_ms=float(row["99%"]))
