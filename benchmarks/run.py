"""`make bench`: the service against its peers and its ceiling, side by side, in one run.

    python -m benchmarks.run --data-dir ../shared/data/mnist --seconds 20 --users 32

Trains the default model (timed), then on the same machine in the same run: cold
start, the in-process ceilings and preprocessing costs, /predict_batch and /predict_pixels
under Locust, /predict against every peer a user would pick instead (two FastAPI peers,
benchmarks/peer.py; KServe, LitServe and Ray Serve, benchmarks/frameworks/, each in the
virtual environment `make bench-frameworks` installs) and the transport's own ceiling,
interleaved (benchmarks/side_by_side.py), where a request's time goes in the service and
in the FastAPI peer (py-spy: benchmarks/breakdown.py),
/predict at 1, 8, 32 and 128 users with and without adaptive batching, NVIDIA's
perf_analyzer over the Open Inference Protocol (HTTP and gRPC, where Docker and its image
are here: benchmarks/perf_analyzer.py), /predict with monitoring on and off (interleaved:
benchmarks/monitoring_overhead.py), /predict without and with a challenger in shadow
(interleaved: benchmarks/shadow_overhead.py), 1 worker against one per usable CPU, and resident
memory per worker after a 60 s load. Prints
the tables and writes the results (docs/benchmarks.json), the page rendered from them
(docs/benchmarks.md) and README.md's summary block. Absolute numbers drift on shared
machines; the ratios are the point.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import (
    breakdown,
    ceiling,
    frameworks,
    goals,
    monitoring_overhead,
    perf_analyzer,
    render,
    shadow_overhead,
    side_by_side,
)
from benchmarks.memory import Workers
from clients import server_process as process
from load_tests.command import locust_command, read_totals
from service.cpus import usable_cpus
from service.settings import PREFIX, Settings, load_settings

ROOT = process.ROOT
# /predict's own figures come from the side-by-side rounds (benchmarks/side_by_side.py).
ENDPOINTS = ["predict_batch", "predict_pixels"]
# The servers whose request time is broken down (py-spy), and the part of that run's start
# and end left out of the profile.
PROFILED = (side_by_side.SERVICE, "fastapi")
PROFILE_MARGIN_S = 3


def locust(host: str, endpoint: str, users: int, seconds: int, out: Path,
           path: str | None = None, check: str = "digit") -> dict[str, float]:
    """A headless Locust run (benchmarks/locustfile.py: every answer checked, `check`);
    returns req/s, right answers/s, p50, p99 (ms) and failures of the aggregate."""
    prefix = out / f"locust-{endpoint}-{host.rsplit(':', 1)[1]}-{users}"
    cmd = locust_command(host, users=users, seconds=seconds, config=None,
                         locustfile="benchmarks/locustfile.py", csv_prefix=prefix,
                         extra=["--loglevel", "WARNING"])
    env = {**os.environ, "BENCH_ENDPOINT": endpoint, "BENCH_PATH": path or f"/{endpoint}",
           "BENCH_CHECK": check}
    subprocess.run(cmd, cwd=ROOT, env=env, check=False, capture_output=True, timeout=seconds + 120)
    totals = read_totals(prefix)
    right = totals.requests - totals.failures
    return {"rps": totals.rps, "right_rps": totals.rps * right / max(totals.requests, 1),
            "p50": totals.p50_ms, "p99": totals.p99_ms, "failures": totals.failures,
            "requests": totals.requests}


def train_command(data_dir: str, out: Path, home: Path, *extra: str) -> dict:
    """`python -m training` with the default recipe; its metrics.json."""
    subprocess.run([sys.executable, "-m", "training", "--data-dir", data_dir, "--output-dir",
                    str(out), *extra], cwd=ROOT, env={**os.environ, "BENTOML_HOME": str(home)},
                   check=True, capture_output=True)
    return json.loads((out / "metrics.json").read_text())


def train(data_dir: str, out: Path, home: Path) -> dict:
    """The default command, timed and registered (the service serves it); its training
    floor, measured next; the other seeds of goals.ACCURACY_SEEDS, for the mean accuracy."""
    t0 = time.perf_counter()
    metrics = train_command(data_dir, out, home)
    seconds = time.perf_counter() - t0
    floor = json.loads(subprocess.run(
        [sys.executable, "-m", "training.floor", str(out / "metrics.json")], cwd=ROOT,
        check=True, capture_output=True, text=True).stdout)
    seeds = {str(goals.ACCURACY_SEEDS[0]): metrics["test_accuracy"]}
    for seed in goals.ACCURACY_SEEDS[1:]:
        print(f"training, seed {seed}...", flush=True)
        seeds[str(seed)] = train_command(data_dir, out.parent / f"seed{seed}", home, "--seed",
                                         str(seed), "--no-register")["test_accuracy"]
    robustness = {k: v for k, v in metrics["robustness"].items() if k != "clean"}
    return {"seconds": seconds, "floor_s": floor["seconds"], "steps": floor["steps"],
            "accuracy": metrics["test_accuracy"], "seed_accuracy": seeds,
            "epochs": metrics["epochs_run"], "ece": metrics["calibration"]["ece"],
            "robustness": robustness}


def start_service(port: int, home: Path, log, workers: int, batch_ms: int | None = None,
                  grpc_port: int | None = None,
                  monitoring: bool | None = None,
                  challenger: str | None = None) -> subprocess.Popen:
    """`bentoml serve` with `workers`, and batching, gRPC, monitoring and a challenger in
    shadow as the service's defaults unless given."""
    env = {"BENTOML_HOME": str(home), f"{PREFIX}WORKERS": str(workers)}
    if challenger is not None:
        env[f"{PREFIX}CHALLENGER_TAG"] = challenger
    if monitoring is not None:
        env[f"{PREFIX}MONITORING"] = str(int(monitoring))
    if batch_ms is not None:
        env[f"{PREFIX}BATCH_MAX_LATENCY_MS"] = str(batch_ms)
    if grpc_port is not None:
        env[f"{PREFIX}GRPC_PORT"] = str(grpc_port)
    return process.start(port, log, env=env)


def start_peer(port: int, onnx_path: Path, workers: int, log,
               app: str = "app") -> subprocess.Popen:
    return side_by_side.uvicorn(f"benchmarks.peer:{app}", port, workers, log,
                                {**os.environ, "BENCH_ONNX_PATH": str(onnx_path)})


def framework_servers(onnx_path: Path, workers: int, log) -> list[side_by_side.Server]:
    """The framework peers whose virtual environment is here (make bench-frameworks)."""
    out = []
    for fw in frameworks.FRAMEWORKS:
        if why := fw.missing():
            print(f"{fw.label}: not run ({why})", flush=True)
            continue
        start = functools.partial(fw.start, onnx_path=onnx_path, workers=workers, log=log)
        out.append(side_by_side.Server(fw.name, fw.label,
                                       fw.predict_path, fw.ready_path, "digit", start,
                                       frameworks.stop))
    return out


def side_by_side_servers(home: Path, onnx_path: Path, workers: int,
                         log) -> list[side_by_side.Server]:
    """The service, the FastAPI peers, the framework peers here, the transport ceiling."""
    Server = side_by_side.Server
    return [
        Server(side_by_side.SERVICE, "this service (`bentoml serve`, defaults)", "/predict",
               "/readyz", "digit", lambda port: start_service(port, home, log, workers),
               process.stop),
        Server("fastapi", "FastAPI + uvicorn, the service's own validation and "
               "preprocessing (benchmarks/peer.py)", "/predict", "/readyz", "digit",
               lambda port: start_peer(port, onnx_path, workers, log), process.stop),
        Server("fastapi_minimal", "FastAPI + uvicorn, Pillow decode + model only",
               "/predict", "/readyz", "digit",
               lambda port: start_peer(port, onnx_path, workers, log, "minimal"),
               process.stop),
        *framework_servers(onnx_path, workers, log),
        Server(side_by_side.TRANSPORT, "transport ceiling: uvicorn + httptools, a constant "
               "200 (benchmarks/transport.py)", "/predict", "/", "status",
               lambda port: side_by_side.uvicorn("benchmarks.transport:app", port, workers,
                                                 log, dict(os.environ), "--http", "httptools"),
               process.stop),
    ]


def profiled(server: side_by_side.Server, users: int, seconds: int, work: Path) -> dict:
    """Where a request's time goes in `server`: py-spy on its workers (benchmarks/
    breakdown.py) over the middle of a Locust run at `users`, per answered request."""
    port = process.free_port()
    base = f"http://127.0.0.1:{port}"
    proc = server.start(port)
    try:
        process.wait_ready(proc, base, timeout=side_by_side.READY_TIMEOUT_S, path=server.ready)
        with ThreadPoolExecutor(1) as pool:
            load = pool.submit(locust, base, "predict", users, seconds, work,
                               path=server.path, check=server.check)
            time.sleep(PROFILE_MARGIN_S)  # past Locust's start and its users' spawn
            window = seconds - 2 * PROFILE_MARGIN_S
            samples = breakdown.profile(breakdown.worker_pids(proc.pid), window).wait()
            run = load.result()
    finally:
        server.stop(proc)
    requests = round(run["rps"] * window)
    return {"label": server.label, "users": users, "seconds": window, "rps": run["rps"],
            "failures": run["failures"],
            "us": breakdown.per_request(samples, samples.effective_rate, requests)}


def cold_start(home: Path, log, workers: int, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        port = process.free_port()
        proc = start_service(port, home, log, workers)
        try:
            times.append(process.wait_ready(proc, f"http://127.0.0.1:{port}"))
        finally:
            process.stop(proc)
    return statistics.median(times)


def under_load(start, users: int, seconds: int, out: Path, endpoints: list[str],
               rss: bool = False) -> dict:
    """Locust runs against one server, started by start(port); with rss, the resident
    memory (MB) of each of its worker processes after the runs."""
    port = process.free_port()
    proc = start(port)
    try:
        process.wait_ready(proc, f"http://127.0.0.1:{port}")
        result: dict = {ep: locust(f"http://127.0.0.1:{port}", ep, users, seconds, out)
                        for ep in endpoints}
        if rss:  # each worker's current resident memory, after the runs
            result["rss_mb"] = Workers(proc.pid).current_mb()
        return result
    finally:
        process.stop(proc)


def under_perf_analyzer(args: argparse.Namespace, home: Path, work: Path, log) -> dict:
    """perf_analyzer against the service of the defaults, its gRPC on a free port; or why
    it could not run here."""
    missing = perf_analyzer.unavailable(args.perf_analyzer_image)
    if missing:
        print(f"perf_analyzer: not run ({missing})", flush=True)
        return {"missing": missing}
    port, grpc_port = process.free_port(), process.free_port()
    proc = start_service(port, home, log, args.workers, grpc_port=grpc_port)
    try:
        process.wait_ready(proc, f"http://127.0.0.1:{port}")
        return perf_analyzer.measure(
            args.perf_analyzer_image, {"http": f"127.0.0.1:{port}",
                                       "grpc": f"127.0.0.1:{grpc_port}"},
            args.data_dir, args.perf_analyzer_window_s, work)
    finally:
        process.stop(proc)


def with_and_without_monitoring(args: argparse.Namespace, home: Path, work: Path,
                                log) -> dict:
    """/predict with monitoring on and off, interleaved (benchmarks/monitoring_overhead.py),
    and its in-process cost per answer."""
    def one(on: bool) -> dict:
        print(f"/predict, monitoring {'on' if on else 'off'}...", flush=True)
        return under_load(lambda port: start_service(port, home, log, args.workers,
                                                     monitoring=on),
                          args.users, args.seconds, work, ["predict"])["predict"]

    result = monitoring_overhead.paired(one, args.monitoring_rounds)
    return {**result, "users": args.users, "seconds": args.seconds,
            "cost_us": monitoring_overhead.cost_us()}


def with_and_without_shadow(args: argparse.Namespace, home: Path, work: Path, log) -> dict:
    """/predict without and with a challenger in shadow (the served model's own version,
    at the default share), interleaved, and the in-process cost of sampling."""
    tag = str(Settings.model_fields["model_tag"].default)

    def one(on: bool) -> dict:
        print(f"/predict, {'with' if on else 'without'} a challenger in shadow...", flush=True)
        return under_load(lambda port: start_service(port, home, log, args.workers,
                                                     challenger=tag if on else ""),
                          args.users, args.seconds, work, ["predict"])["predict"]

    result = monitoring_overhead.paired(one, args.shadow_rounds)
    return {**result, "users": args.users, "seconds": args.seconds,
            "share": shadow_overhead.DEFAULT_SHARE,
            "offer_us": shadow_overhead.offer_cost_us()}


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text()
                .splitlines() if line.startswith("model name")), platform.processor())
    mem = int(Path("/proc/meminfo").read_text().split()[1]) / 2**20
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB, {platform.platform()}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data-dir", default=os.environ.get("MNIST_DIR"), help="MNIST IDX folder")
    p.add_argument("--seconds", type=int, default=20, help="duration of each Locust run")
    p.add_argument("--users", type=int, default=32, help="Locust users of the side-by-side runs")
    p.add_argument("--workers", type=int, default=usable_cpus(),
                   help="server worker processes (all servers): the service's default")
    p.add_argument("--sweep-users", type=int, nargs="*", default=[1, 8, 32, 128],
                   help="users of the /predict runs with and without adaptive batching")
    p.add_argument("--batch-ms", type=int,
                   default=Settings.model_fields["batch_max_latency_ms"].default,
                   help="MNIST_BATCH_MAX_LATENCY_MS of the batching runs (a budget under "
                        "the p99 turns the dispatcher's cancellations into 503s)")
    p.add_argument("--baseline", type=float, nargs=2,
                   default=[goals.BEFORE_RPS, goals.BEFORE_P99_MS], metavar=("RPS", "P99_MS"),
                   help="/predict req/s and p99 of the tree to compare with, at the sweep's "
                        "highest user count: the speed-up goal's reference")
    p.add_argument("--soak-seconds", type=int, default=60,
                   help="duration of the load before resident memory is read")
    p.add_argument("--perf-analyzer-image", default=perf_analyzer.IMAGE,
                   help="a Docker image with NVIDIA's perf_analyzer on its PATH")
    p.add_argument("--perf-analyzer-window-s", type=float, default=perf_analyzer.WINDOW_S,
                   help="seconds of each perf_analyzer measurement window")
    p.add_argument("--side-by-side-rounds", type=int, default=side_by_side.ROUNDS,
                   help="rounds of the service against its peers (every other one reversed)")
    p.add_argument("--monitoring-rounds", type=int, default=2,
                   help="ABBA rounds (4 runs each) of /predict with monitoring off and on")
    p.add_argument("--monitoring-only", type=Path, metavar="BENTOML_HOME",
                   help="measure only monitoring's overhead against the model in this store, "
                        "print it, write nothing")
    p.add_argument("--shadow-rounds", type=int, default=2,
                   help="ABBA rounds (4 runs each) of /predict without and with a challenger")
    p.add_argument("--shadow-only", type=Path, metavar="BENTOML_HOME",
                   help="measure only the shadow's overhead against the model in this store, "
                        "print it, write nothing")
    p.add_argument("--training-only", action="store_true",
                   help="measure only the training figures and their goals, print them, "
                        "write nothing")
    p.add_argument("--gpu-json", default="docs/benchmarks-gpu.json",
                   help="GPU figures recorded on a lent GPU (benchmarks/ceiling.py --json)")
    return p.parse_args(argv)


def measure(args: argparse.Namespace, work: Path, log) -> dict:
    """Every measurement of the report, one server at a time, in `work`."""
    home, arts = work / "bentoml", work / "artifacts"
    print("training (default command)...", flush=True)
    results: dict = {"training": train(args.data_dir, arts, home)}
    onnx_path = arts / "model.onnx"
    print("cold start...", flush=True)
    results["cold_start_s"] = cold_start(home, log, args.workers)
    print("ceilings (in process)...", flush=True)
    results["ceiling"] = ceiling.measure(onnx_path, args.data_dir, load_settings())
    workers, users, seconds = args.workers, args.users, args.seconds
    # Every Locust run from here on checks each answer against the model's own digits.
    os.environ["BENCH_ONNX_PATH"] = str(onnx_path)
    print(f"service under load ({workers} workers, {users} users)...", flush=True)
    results["service"] = under_load(
        lambda port: start_service(port, home, log, workers), users, seconds, work, ENDPOINTS)
    servers = side_by_side_servers(home, onnx_path, workers, log)
    results["side_by_side"] = side_by_side.measure(servers, seconds, work, locust,
                                                   args.side_by_side_rounds)
    results["breakdown"] = {}
    for server in (s for s in servers if s.key in PROFILED):
        print(f"{server.label}: where a request's time goes...", flush=True)
        results["breakdown"][server.key] = profiled(server, users, seconds, work)
    results["perf_analyzer"] = under_perf_analyzer(args, home, work, log)
    results["monitoring"] = with_and_without_monitoring(args, home, work, log)
    results["shadow"] = with_and_without_shadow(args, home, work, log)
    results["sweep"] = {}
    for sweep_users in args.sweep_users:  # off and on side by side: the machine drifts
        for batch_ms in (0, args.batch_ms):
            print(f"/predict, {sweep_users} users, batching {batch_ms} ms...", flush=True)
            results["sweep"][f"{batch_ms}:{sweep_users}"] = under_load(
                lambda port, b=batch_ms: start_service(port, home, log, workers, b),
                sweep_users, seconds, work, ["predict"])["predict"]
    results["workers"] = {}
    for count in sorted({1, workers}):
        print(f"/predict with {count} worker(s), {args.soak_seconds} s for memory...",
              flush=True)
        results["workers"][str(count)] = under_load(
            lambda port, c=count: start_service(port, home, log, c), users,
            args.soak_seconds, work, ["predict"], rss=True)
    return results


def meta(args: argparse.Namespace, wall_s: float) -> dict:
    """How the run was made: when, where, with what load, against which baseline."""
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(),
        "users": args.users, "seconds": args.seconds, "workers": args.workers,
        "batch_ms": args.batch_ms, "soak_seconds": args.soak_seconds,
        "baseline_rps": args.baseline[0], "baseline_p99": args.baseline[1],
        "wall_s": wall_s,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for home, measure_one in ((args.monitoring_only, with_and_without_monitoring),
                              (args.shadow_only, with_and_without_shadow)):
        if home:
            with tempfile.TemporaryDirectory(prefix="mnist-bench-") as tmp, \
                    open(Path(tmp) / "servers.log", "w") as log:
                result = measure_one(args, home, Path(tmp), log)
            print(json.dumps(result, indent=2))
            return 0
    if not args.data_dir:
        print("error: --data-dir or MNIST_DIR is required (the timed training needs it)")
        return 2
    if args.training_only:
        with tempfile.TemporaryDirectory(prefix="mnist-bench-") as tmp:
            result = train(args.data_dir, Path(tmp) / "artifacts", Path(tmp) / "bentoml")
        print(json.dumps(result, indent=2))
        for goal in goals.model_goals(result):
            print(f"{render.met(goal.met)}  {goal.goal}: {goal.measured}")
        return 0
    os.environ["MNIST_DIR"] = str(Path(args.data_dir).resolve())
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mnist-bench-") as tmp, \
            open(Path(tmp) / "servers.log", "w") as log:
        results = measure(args, Path(tmp), log)
    results["meta"] = meta(args, time.perf_counter() - started)
    gpu = Path(args.gpu_json)
    results["gpu"] = json.loads(gpu.read_text()) if gpu.is_file() else None
    page = render.publish(results, ROOT)
    print("\n" + page)
    print(f"written: {render.RESULTS}, {render.PAGE}, the {render.SUMMARY_BLOCK} block of "
          f"{render.README}, the {render.SEEDS_BLOCK} block of {render.TRAINING}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
