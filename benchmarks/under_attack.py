"""The service under attack: does it stay ready, fast and within memory?

    python -m benchmarks.under_attack --json reports/under_attack.json
    python -m benchmarks.under_attack --baseline-ref REV --attacks png-text jpeg-scans
    make attack ATTACK_ARGS="--baseline-ref REV"   # the same, after `make train`

Each attack (--attacks; all by default) gets a fresh `bentoml serve` of this checkout,
and with --baseline-ref one of that revision too (a `git worktree` of it; the clients
stay this checkout's), one server at a time on a loopback port, with the service's
defaults, on its own copy of the model store. For --seconds, --attackers clients send
the attack as fast as it is answered, a probe GETs /readyz every 100 ms and --users
normal users each POST a real 28x28 digit to /predict every --user-interval, whatever
the answers (a latency counts from when its digit was due).

The attacks: none (the control: what the machine's load alone costs), decode-bomb (a
630-byte JPEG claiming 9000x2700 and a 97 KB RGBA PNG of 4999x5000, in turn, to
/predict), png-text (a /predict_batch of 28x28 PNGs with 64 zTXt chunks of 1 MiB each),
jpeg-scans (a progressive JPEG repeating one scan, to /predict), json-rows (a
/predict_pixels body of one-value rows, just under the body limit). Reports the probe's
and the users' latencies and status codes, the attackers' status codes, the workers'
peak resident memory (VmHWM) and the load; writes --output (docs/attack.md), the goals.
"""

from __future__ import annotations

import argparse
import collections
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import IO, Any

import httpx

from benchmarks import bombs
from benchmarks.memory import Workers, descendants, rss_mb
from benchmarks.render_attack import render
from benchmarks.run import machine
from clients import server_process as process
from core.data import resolve_or_exit
from core.png import encode_png

ROOT = process.ROOT
TARGET = "service.service:MNISTService"
ATTACK_TIMEOUT_S, PROBE_TIMEOUT_S, USER_TIMEOUT_S = 60, 30, 30
USER_THREADS = 32  # normal requests in flight at once, at most; more wait their turn


@dataclass(frozen=True)
class Attack:
    name: str
    what: str
    endpoint: str
    build: Callable[[argparse.Namespace], list[dict]]  # httpx.post keyword sets, in turn


ATTACKS = {a.name: a for a in [
    Attack("none", "no attack, the control: the probe and the normal users alone",
           "/predict", lambda args: []),
    Attack("decode-bomb", "tiny files declaring huge images (JPEG 9000×2700, PNG 4999×5000)",
           "/predict", lambda args: [
               {"files": {"image": ("bomb.jpg", bombs.jpeg_claiming(9000, 2700))}},
               {"files": {"image": ("bomb.png", bombs.png_bomb(4999, 5000))}}]),
    Attack("png-text", "28×28 PNGs with 64 zTXt chunks inflating to 1 MiB each",
           "/predict_batch", lambda args: [{"files": [
               ("images", (f"t{i}.png", png, "image/png")) for i, png in
               enumerate([bombs.png_with_text(64, 1 << 20)] * args.text_batch)]}]),
    Attack("jpeg-scans", "a progressive 512×512 JPEG repeating one scan",
           "/predict", lambda args: [{"files": {"image": (
               "scans.jpg", bombs.jpeg_repeating_scan(512, args.jpeg_scans))}}]),
    Attack("json-rows", "a JSON body of one-value rows, just under the body limit",
           "/predict_pixels", lambda args: [{"content": bombs.pixels_rows(args.pixel_rows),
                                             "headers": {"content-type": "application/json"}}]),
]}


def _pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def _body_bytes(kwargs: dict) -> int:
    return len(httpx.Request("POST", "http://attack/", **kwargs).read())


def _attack(base: str, endpoint: str, requests: list[dict], i: int, stop: EventType,
            codes: Any) -> None:
    """One attacking client: `requests` in turn, each sent when the last is answered,
    until `stop`; codes[status] counts the answers (0: none: an error or a timeout)."""
    with httpx.Client(base_url=base, timeout=ATTACK_TIMEOUT_S) as c:
        while not stop.is_set():
            kwargs = requests[i % len(requests)]
            i += 1
            try:
                code = c.post(endpoint, **kwargs).status_code
            except httpx.HTTPError:
                code = 0
            codes[code] += 1


class _Attackers:
    """The attacking clients, a process each (none shares a GIL with the probe or the
    users), counting their answers in shared memory, which outlives a killed client."""

    def __init__(self, base: str, endpoint: str, requests: list[dict], count: int):
        ctx = multiprocessing.get_context("fork")  # the payloads are not pickled
        self.stop = ctx.Event()
        self.codes = [ctx.RawArray("l", 600) for _ in range(count)]
        self.procs = [ctx.Process(target=_attack, daemon=True, args=(
            base, endpoint, requests, i, self.stop, self.codes[i])) for i in range(count)]

    def start(self) -> None:
        for p in self.procs:
            p.start()

    def finish(self, drain: float) -> dict:
        """Stop sending; a client still waiting for an answer after `drain` s is killed."""
        self.stop.set()
        deadline = time.monotonic() + drain
        for p in self.procs:
            p.join(max(0.0, deadline - time.monotonic()))
        waiting = [p for p in self.procs if p.is_alive()]
        for p in waiting:
            p.kill()
            p.join()
        codes: collections.Counter[int] = collections.Counter()
        for counts in self.codes:
            codes.update({code: n for code, n in enumerate(counts) if n})
        return {"codes": {str(k): v for k, v in sorted(codes.items())},
                "unanswered": len(waiting)}


class _Traffic:
    """The /readyz probe and the normal users, a thread each with its own connection, until
    `stop`; what is in flight then ends."""

    def __init__(self, base: str, digit_png: bytes):
        self.base, self.digit = base, digit_png
        self.stop = threading.Event()
        self.readyz: list[tuple[float, bool]] = []  # (ms, answered 200)
        self.normal: list[tuple[float, int]] = []  # (ms, status; 0: no answer)

    def probe(self) -> None:
        with httpx.Client(base_url=self.base, timeout=PROBE_TIMEOUT_S) as c:
            while not self.stop.is_set():
                t0 = time.perf_counter()
                try:
                    ok = c.get("/readyz").status_code == 200
                except httpx.HTTPError:
                    ok = False
                self.readyz.append(((time.perf_counter() - t0) * 1000, ok))
                self.stop.wait(0.1)

    def users(self, count: int, interval: float) -> None:
        """`count` users, each POSTing a digit every `interval` s whatever the server does:
        open loop, so a stalled answer holds no later digit back, and each latency counts
        from when its digit was due (a stall weighs by its length, not as one answer)."""
        with httpx.Client(base_url=self.base, timeout=USER_TIMEOUT_S,
                          limits=httpx.Limits(max_connections=USER_THREADS)) as c, \
                ThreadPoolExecutor(USER_THREADS) as pool:
            due = time.perf_counter()
            while not self.stop.wait(max(0.0, due - time.perf_counter())):
                pool.submit(self._user_request, c, due)
                due += interval / count

    def _user_request(self, c: httpx.Client, due: float) -> None:
        try:
            code = c.post("/predict", files={"image": ("d.png", self.digit)}).status_code
        except httpx.HTTPError:
            code = 0
        self.normal.append(((time.perf_counter() - due) * 1000, code))

    def figures(self) -> dict:
        ready = [ms for ms, _ in self.readyz]
        normal = [ms for ms, _ in self.normal]
        codes = collections.Counter(code for _, code in self.normal)
        return {
            "readyz_ms": {"max": max(ready, default=float("nan")), "p99": _pct(ready, 0.99),
                          "median": statistics.median(ready) if ready else float("nan"),
                          "n": len(ready), "failed": sum(not ok for _, ok in self.readyz)},
            "normal": {"codes": {str(k): v for k, v in sorted(codes.items())},
                       "p50_ms": statistics.median(normal) if normal else None,
                       "p99_ms": _pct(normal, 0.99), "n": len(normal)},
        }


def _cpu_s() -> tuple[float, float]:
    """(CPU seconds the whole machine has been busy, those of this process and its
    descendants, the servers and the attackers): their difference is the others' load."""
    tick = os.sysconf("SC_CLK_TCK")
    cpu = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    busy = (sum(cpu) - cpu[3] - cpu[4]) / tick  # all but idle and iowait
    mine = 0.0
    for pid in [os.getpid(), *descendants(os.getpid())]:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        mine += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return busy, mine


def measure(server_pid: int, base: str, endpoint: str, requests: list[dict],
            args: argparse.Namespace, digit_png: bytes) -> dict:
    """One attack against one ready server: the figures of the goals, and the load."""
    workers, done = Workers(server_pid), threading.Event()
    idle = max(rss_mb(p) for p in workers.sample())
    count = len(workers.seen)
    attackers = _Attackers(base, endpoint, requests, args.attackers if requests else 0)
    traffic = _Traffic(base, digit_png)
    threads = [threading.Thread(target=traffic.probe),
               threading.Thread(target=traffic.users, args=(args.users, args.user_interval))]
    load, (busy0, mine0) = os.getloadavg()[0], _cpu_s()
    t0 = time.perf_counter()
    attackers.start()  # forked before any thread of this run starts
    sampler = threading.Thread(target=workers.watch, args=(done, 0.25))
    for t in [sampler, *threads]:
        t.start()
    time.sleep(args.seconds)
    traffic.stop.set()
    attackers.stop.set()
    (busy1, mine1), wall = _cpu_s(), time.perf_counter() - t0
    for t in threads:
        t.join()
    attack = attackers.finish(args.drain)
    time.sleep(2)
    after = max(rss_mb(p, "VmRSS") for p in workers.sample())
    done.set()
    sampler.join()
    return {
        **traffic.figures(), "attack": attack,
        "worker_rss_mb": {"idle": idle, "peak": workers.peak, "after": after},
        "workers": count, "worker_restarts": len(workers.seen) - count,
        "load": {"loadavg_before": load,
                 "other_cores": max(0.0, (busy1 - busy0) - (mine1 - mine0)) / wall},
    }


@contextmanager
def serving(tree: Path, home: Path, log: IO[str]) -> Iterator[tuple[subprocess.Popen, str]]:
    """`bentoml serve` of the service in `tree` (its working directory, so its code comes
    first on sys.path) on the store under `home`, with the service's defaults (no MNIST_
    variable passes), ready on a free loopback port: yields (process, base URL)."""
    port = process.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MNIST_")}
    env.update(BENTOML_HOME=str(home), BENTOML_DO_NOT_TRACK="true")
    proc = subprocess.Popen([process.BENTOML, "serve", TARGET, "--host", "127.0.0.1", "--port",
                             str(port)], cwd=tree, env=env, stdout=log,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        process.wait_ready(proc, base, timeout=120)
        yield proc, base
    finally:
        process.stop(proc, grace=10)


@contextmanager
def worktree(ref: str | None, parent: Path) -> Iterator[Path | None]:
    """A checkout of `ref` (git worktree) under `parent`, removed on the way out; None
    without a ref."""
    if ref is None:
        yield None
        return
    path = parent / "baseline"
    subprocess.run(["git", "worktree", "add", "--detach", "--quiet", str(path), ref], cwd=ROOT,
                   check=True)
    try:
        yield path
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT,
                       check=False)


def _git(*cmd: str) -> str:
    return subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout.strip()


def run_attacks(args: argparse.Namespace, trees: dict[str, Path], homes: dict[str, Path],
                digit_png: bytes) -> list[dict]:
    """Every selected attack against each tree's fresh server, one server at a time."""
    out = []
    for name in args.attacks:
        attack = ATTACKS[name]
        requests = attack.build(args)
        entry: dict = {"name": name, "what": attack.what, "endpoint": attack.endpoint,
                       "request_bytes": [_body_bytes(r) for r in requests], "runs": {}}
        for tree, path in trees.items():
            t0 = time.perf_counter()
            with tempfile.NamedTemporaryFile("w+", suffix=".log") as log:
                try:
                    with serving(path, homes[tree], log) as (proc, base):
                        run = measure(proc.pid, base, attack.endpoint, requests, args,
                                      digit_png)
                except RuntimeError:
                    log.seek(0)
                    print(log.read()[-4000:])
                    raise
            entry["runs"][tree] = run
            print(f"{name} on {tree} ({time.perf_counter() - t0:.0f} s): readyz max "
                  f"{run['readyz_ms']['max']:.0f} ms, normal {run['normal']['codes']} p50 "
                  f"{run['normal']['p50_ms']} ms, peak {run['worker_rss_mb']['peak']:.0f} MB, "
                  f"attack {run['attack']}", flush=True)
        out.append(entry)
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--attacks", nargs="+", choices=list(ATTACKS), default=list(ATTACKS),
                   help="the attacks to run, in this order")
    p.add_argument("--baseline-ref", default=None,
                   help="also measure the service of this git revision, side by side")
    p.add_argument("--seconds", type=float, default=15, help="length of each attack")
    p.add_argument("--attackers", type=int, default=8, help="concurrent attacking clients")
    p.add_argument("--users", type=int, default=3, help="normal users POSTing a digit")
    p.add_argument("--user-interval", type=float, default=0.1,
                   help="seconds between a normal user's digits, whatever the answers")
    p.add_argument("--drain", type=float, default=10,
                   help="seconds the attackers' last requests may take after the attack")
    p.add_argument("--text-batch", type=int, default=16, help="png-text: PNGs a request")
    p.add_argument("--jpeg-scans", type=int, default=780_000, help="jpeg-scans: scans")
    p.add_argument("--pixel-rows", type=int, default=2_000_000,
                   help="json-rows: rows (about 5 bytes each)")
    p.add_argument("--store", type=Path, default=Path(os.environ.get(
        "BENTOML_HOME", ROOT / "bentoml_home")) / "models",
                   help="the model store each server gets a copy of")
    p.add_argument("--json", default=None, help="also write the figures here")
    p.add_argument("--output", default="docs/attack.md", help="where the report goes")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.store.is_dir():
        raise SystemExit(f"no model store at {args.store}: run `make train` first")
    started = time.perf_counter()
    digit = encode_png(resolve_or_exit(None, allow_download=False).test_images[0])
    with tempfile.TemporaryDirectory(prefix="under-attack-") as tmp:
        trees = {"current": ROOT}
        meta_trees = {"current": f"this checkout (`{_git('describe', '--always', '--dirty')}`)"}
        with worktree(args.baseline_ref, Path(tmp)) as baseline:
            if baseline:
                trees["baseline"] = baseline
                meta_trees["baseline"] = f"`{args.baseline_ref}`"
            homes = {t: Path(tmp) / f"home-{t}" for t in trees}
            for home in homes.values():
                shutil.copytree(args.store, home / "models")
            attacks = run_attacks(args, trees, homes, digit)
    result = {"meta": {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(),
        "command": " ".join(["python -m benchmarks.under_attack",
                             *(sys.argv[1:] if argv is None else argv)]),
        "seconds": args.seconds, "attackers": args.attackers, "users": args.users,
        "user_interval_s": args.user_interval,
        "trees": meta_trees, "wall_s": time.perf_counter() - started}, "attacks": attacks}
    print(json.dumps(result, indent=2))
    for path, text in [(args.json, json.dumps(result, indent=2) + "\n"),
                       (args.output, render(result))]:
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
