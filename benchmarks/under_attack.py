"""The service under a decode-bomb attack: does it stay ready, fast and within memory?

    python -m benchmarks.under_attack --seconds 20 --json reports/under_attack.json
    make attack                                    # the same, after `make train`

Starts `bentoml serve` on a loopback port (the model in $BENTOML_HOME), then for
--seconds: --attackers clients POST tiny files that declare huge images (a 630-byte
JPEG claiming 9000x2700 and a 97 KB RGBA PNG of 4999x5000) as fast as they are
answered, while one probe GETs /readyz every 100 ms and one user POSTs a real 28x28
digit. Reports the probe's and the user's latencies, the attackers' status codes, and
the worker processes' peak resident memory (VmHWM). Figures in docs/security.md.
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx

from benchmarks.bombs import jpeg_claiming, png_bomb
from clients import server_process
from clients.server_process import descendants, rss_mb
from core.data import resolve_or_exit
from core.png import encode_png


def _pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def attack(base: str, seconds: float, attackers: int, digit_png: bytes) -> dict:
    stop = threading.Event()
    codes: collections.Counter[int] = collections.Counter()
    readyz_ms: list[float] = []
    readyz_failures = [0]
    predict_ms: list[float] = []
    bombs = [("bomb.jpg", jpeg_claiming(9000, 2700)), ("bomb.png", png_bomb(4999, 5000))]

    def attacker(i: int) -> None:
        with httpx.Client(base_url=base, timeout=60) as c:
            n = i
            while not stop.is_set():
                name, data = bombs[n % 2]
                n += 1
                try:
                    codes[c.post("/predict", files={"image": (name, data)}).status_code] += 1
                except httpx.HTTPError:
                    codes[0] += 1

    def probe() -> None:
        with httpx.Client(base_url=base, timeout=5) as c:
            while not stop.is_set():
                t0 = time.perf_counter()
                try:
                    ok = c.get("/readyz").status_code == 200
                except httpx.HTTPError:
                    ok = False
                readyz_ms.append((time.perf_counter() - t0) * 1000)
                readyz_failures[0] += not ok
                stop.wait(0.1)

    def user() -> None:
        with httpx.Client(base_url=base, timeout=30) as c:
            while not stop.is_set():
                t0 = time.perf_counter()
                resp = c.post("/predict", files={"image": ("d.png", digit_png)})
                if resp.status_code == 200:
                    predict_ms.append((time.perf_counter() - t0) * 1000)

    threads = [threading.Thread(target=attacker, args=(i,)) for i in range(attackers)]
    threads += [threading.Thread(target=probe), threading.Thread(target=user)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    return {
        "attackers": attackers, "seconds": seconds,
        "attack_status_codes": {str(k): v for k, v in sorted(codes.items())},
        "readyz_ms": {"max": max(readyz_ms), "p99": _pct(readyz_ms, 0.99),
                      "median": statistics.median(readyz_ms), "n": len(readyz_ms),
                      "failed": readyz_failures[0]},
        "predict_ms": {"median": statistics.median(predict_ms) if predict_ms else None,
                       "p99": _pct(predict_ms, 0.99), "n": len(predict_ms)},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--seconds", type=float, default=20, help="length of the attack")
    p.add_argument("--attackers", type=int, default=8, help="concurrent attacking clients")
    p.add_argument("--json", default=None, help="also write the figures here")
    args = p.parse_args(argv)
    digit = resolve_or_exit(None, allow_download=False).test_images[0]
    with tempfile.NamedTemporaryFile("w+", suffix=".log") as log, \
            server_process.serving(log) as (proc, base):
        workers = descendants(proc.pid)
        idle = max(rss_mb(w) for w in workers)
        result = attack(base, args.seconds, args.attackers, encode_png(digit))
        peak = max(rss_mb(w) for w in workers)
        time.sleep(2)
        result["worker_rss_mb"] = {"peak_idle": idle, "peak_under_attack": peak,
                                   "now_2s_after": max(rss_mb(w, "VmRSS") for w in workers)}
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
