"""The soak: mixed endpoints for minutes, every answer checked, memory sampled.

    python -m benchmarks.soak --minutes 3 --users 16 --json reports/soak.json
    make soak                                      # the same, after `make train`

Starts `bentoml serve` on a loopback port (the model in $BENTOML_HOME) and runs the
project's own Locust test against it (load_tests/: /predict, /predict_batch and
/predict_pixels, every answer compared with its true label, the SLO gate on quit, its
p99 the soak's goal in benchmarks/goals.py) with the `soak` profile. Every 10 s it
samples the worker processes' resident memory; flat memory means the last samples sit
where the first ones after warm-up did.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import tempfile
import threading
from pathlib import Path

from benchmarks.goals import SOAK_SLO
from benchmarks.memory import Workers
from clients import server_process
from load_tests.command import locust_command

SAMPLE_EVERY_S = 10
WARM_UP_S = 60


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--minutes", type=float, default=3, help="length of the soak")
    p.add_argument("--users", type=int, default=16, help="Locust users")
    p.add_argument("--json", default=None, help="also write the figures here")
    args = p.parse_args(argv)
    with tempfile.NamedTemporaryFile("w+", suffix=".log") as log, \
            server_process.serving(log) as (proc, base):
        workers, stop = Workers(proc.pid), threading.Event()
        sampler = threading.Thread(target=workers.watch, args=(stop, SAMPLE_EVERY_S),
                                   daemon=True)
        sampler.start()
        try:
            locust = subprocess.run(
                locust_command(base, users=args.users, seconds=int(args.minutes * 60),
                               slo=SOAK_SLO, extra=["--load-profile", "soak"]),
                cwd=server_process.ROOT, capture_output=True, text=True,
                timeout=args.minutes * 60 + 300)
        finally:
            stop.set()
            sampler.join()
    samples = workers.samples
    out = locust.stdout + locust.stderr
    summary = re.search(r"^\d+ requests, .*$", out, re.M)
    warm = [mb for t, mb in samples if t >= WARM_UP_S] or [mb for _, mb in samples] or [0.0]
    result = {
        "minutes": args.minutes, "users": args.users, "locust_exit_code": locust.returncode,
        "verdict": next((ln for ln in out.splitlines() if ln.startswith("SLO ")), None),
        "summary": summary.group(0) if summary else None,
        "worker_rss_mb": {"samples": samples, "first_after_warmup": warm[0],
                          "last": warm[-1], "max": max(warm)},
    }
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return locust.returncode


if __name__ == "__main__":
    raise SystemExit(main())
