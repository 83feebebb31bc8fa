"""The soak: mixed endpoints for minutes, every answer checked, memory sampled.

    python -m benchmarks.soak --minutes 3 --users 16 --json reports/soak.json
    make soak                                      # the same, after `make train`

Starts `bentoml serve` on a loopback port (the model in $BENTOML_HOME) and runs the
project's own Locust test against it (load_tests/: /predict, /predict_batch and
/predict_pixels, every answer compared with its true label, the SLO gate on quit) with
the `soak` profile. Every 10 s it samples the worker processes' resident memory; flat
memory means the last samples sit where the first ones after warm-up did.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from clients import server_process
from clients.server_process import descendants, rss_mb


def sample_rss(pid: int, stop: threading.Event, every: float, out: list[tuple[float, float]]):
    t0 = time.monotonic()
    while not stop.wait(every):
        workers = descendants(pid)
        out.append((round(time.monotonic() - t0), max((rss_mb(w, "VmRSS") for w in workers),
                                                       default=0.0)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--minutes", type=float, default=3, help="length of the soak")
    p.add_argument("--users", type=int, default=16, help="Locust users")
    p.add_argument("--json", default=None, help="also write the figures here")
    args = p.parse_args(argv)
    samples: list[tuple[float, float]] = []
    with tempfile.NamedTemporaryFile("w+", suffix=".log") as log, \
            server_process.serving(log) as (proc, base):
        stop = threading.Event()
        sampler = threading.Thread(target=sample_rss, args=(proc.pid, stop, 10, samples),
                                   daemon=True)
        sampler.start()
        try:
            locust = subprocess.run(
                [str(Path(sys.executable).with_name("locust")), "--config",
                 "load_tests/locust.conf", "--host", base, "--load-profile", "soak",
                 "--users", str(args.users), "--spawn-rate", str(args.users),
                 "--run-time", f"{int(args.minutes * 60)}s", "--only-summary",
                 "--slo-p99-ms", "1000"],
                cwd=server_process.ROOT, capture_output=True, text=True,
                timeout=args.minutes * 60 + 300)
        finally:
            stop.set()
            sampler.join()
    out = locust.stdout + locust.stderr
    summary = re.search(r"^\d+ requests, .*$", out, re.M)
    warm = [mb for t, mb in samples if t >= 60] or [mb for _, mb in samples] or [0.0]
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
