"""NVIDIA's perf_analyzer against the service: the Open Inference Protocol's own load tool,
over HTTP (binary tensor data, its default) and gRPC, run from a container.

    python -m benchmarks.perf_analyzer --data-dir ../shared/data/mnist \\
        --url 127.0.0.1:3000 --grpc-url 127.0.0.1:8001

`make bench` runs it (benchmarks/run.py) against its own `bentoml serve`, beside Locust.
perf_analyzer's wheel needs glibc >= 2.38, hence an image (IMAGE, or any image with
`perf_analyzer` on its PATH); where Docker or the image is missing, unavailable() says why
and nothing is measured. Each concurrency is one run of perf_analyzer, batch 1, each
request one of the official test digits (FP32, 0-255 as the model contract wants:
perf_analyzer's default random bytes are not intensities, and the service refuses them).
perf_analyzer exits 0 even when it measured nothing (a refused connection, say), so a run
is judged by its CSV report: none, and the error it printed is the result.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from core.contract import MODEL_NAME
from core.data import load_idx_folder
from service.settings import PREFIX

IMAGE = "local/perf-analyzer:2.60"
CONCURRENCY = (1, 8, 32)
PROTOCOLS = {"http": "HTTP", "grpc": "gRPC"}
DIGITS = 100  # distinct test digits, sent round robin
WINDOW_S = 5.0  # seconds of a measurement window
WINDOWS = 3  # measurement windows per concurrency, merged into its figures
# perf_analyzer retries until its last windows agree within this many percent, and gives
# up with no figures after WINDOWS tries. On a shared machine they rarely agree within its
# default 10 %, so the windows are not asked to agree: the figures are all of them.
STABILITY_PERCENT = 1000
TITLE = "perf_analyzer (NVIDIA's OIP client)"
MOUNT = "/pa"  # where the container sees the work folder (input digits, CSV reports)
# perf_analyzer's CSV columns (with --verbose-csv; latencies in µs) -> our figures.
COLUMNS = {"Inferences/Second": "infer_per_s", "p50 latency": "p50_ms",
           "p99 latency": "p99_ms", "Avg latency": "avg_ms"}
ERROR_LINE = re.compile(r"^(error|failed|thread \[\d+\] had error)|^\s*pass \[\d+\] cb::error",
                        re.IGNORECASE)
MAX_ERROR_CHARS = 400


def _docker(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """A docker command's result; one that hangs (a daemon that does not answer) fails."""
    try:
        return subprocess.run(["docker", *args], capture_output=True, text=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(args, 1, "", f"no answer within {timeout:g} s")


def unavailable(image: str = IMAGE) -> str | None:
    """Why perf_analyzer cannot run here (no Docker, Docker not running, no image), or
    None when it can."""
    if not shutil.which("docker"):
        return "Docker is not installed here (no `docker` on PATH)"
    info = _docker("info", "--format", "{{.ServerVersion}}")
    if info.returncode:
        why = (info.stderr.strip().splitlines() or ["no answer"])[-1]
        return f"Docker does not answer here (`docker info`: {why})"
    if _docker("image", "inspect", image).returncode:
        return (f"no image {image} here: build one with NVIDIA's `perf-analyzer` wheel "
                f"(PyPI; it needs glibc >= 2.38, e.g. Debian 13) and tag it so, or pass "
                f"another image's name")
    return None


def write_digits(data_dir: str | Path, path: Path, count: int = DIGITS) -> None:
    """perf_analyzer's --input-data JSON: `count` test digits, one request each."""
    images = load_idx_folder(data_dir).test_images[:count]
    data = [{"pixels": {"content": image.astype(float).ravel().tolist(),
                        "shape": list(image.shape)}} for image in images]
    path.write_text(json.dumps({"data": data}))


def command(image: str, protocol: str, url: str, concurrency: int, window_s: float,
            workdir: Path, name: str) -> list[str]:
    """The `docker run` of one perf_analyzer run: its CSV goes to workdir/{name}.csv."""
    return [
        "docker", "run", "--rm", "--name", name, "--network", "host",
        "--user", f"{os.getuid()}:{os.getgid()}", "-v", f"{workdir.resolve()}:{MOUNT}",
        image, "perf_analyzer", "-m", MODEL_NAME, "-i", protocol, "-u", url,
        "--concurrency-range", str(concurrency), "-p", str(round(window_s * 1000)),
        "-r", str(WINDOWS), "-s", str(STABILITY_PERCENT),
        "--input-data", f"{MOUNT}/digits.json", "-f", f"{MOUNT}/{name}.csv", "--verbose-csv",
    ]


def read_csv(text: str) -> dict[str, float]:
    """The figures of a one-concurrency CSV report: infer/s, and latencies in ms."""
    rows = list(csv.DictReader(text.splitlines()))
    if len(rows) != 1:
        raise ValueError(f"perf_analyzer's CSV holds {len(rows)} rows, not 1")
    missing = [column for column in COLUMNS if column not in rows[0]]
    if missing:
        raise ValueError(f"perf_analyzer's CSV has no column {', '.join(missing)}")
    return {ours: float(rows[0][theirs]) / (1 if ours == "infer_per_s" else 1000)
            for theirs, ours in COLUMNS.items()}


def failure(output: str, protocol: str, url: str, returncode: int) -> str:
    """What perf_analyzer printed when it measured nothing, in one line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if ERROR_LINE.search(line)]
    text = "; ".join(dict.fromkeys(errors)) or (lines[-1] if lines else "no output")
    text = f"{text[:MAX_ERROR_CHARS]}{'…' if len(text) > MAX_ERROR_CHARS else ''}"
    if returncode:
        text += f" (exit code {returncode})"
    if re.search(r"connection refused|failed to connect", output, re.IGNORECASE):
        text += (f"; nothing answers {PROTOCOLS[protocol]} on {url}"
                 + (f" (no gRPC server in this service, or {PREFIX}GRPC_PORT off?)"
                    if protocol == "grpc" else ""))
    return text


def run_one(image: str, protocol: str, url: str, concurrency: int, window_s: float,
            workdir: Path) -> dict[str, Any]:
    """One concurrency: its figures, or {"error": what perf_analyzer said}."""
    name = f"mnist-pa-{os.getpid()}-{protocol}-{concurrency}"
    report = workdir / f"{name}.csv"
    timeout = window_s * (WINDOWS + 2) + 60
    try:
        done = subprocess.run(command(image, protocol, url, concurrency, window_s, workdir,
                                      name), capture_output=True, text=True, timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired:
        _docker("rm", "-f", name)  # the client was killed; its container may live on
        return {"error": f"no report after {timeout:.0f} s"}
    if not report.is_file():
        return {"error": failure(done.stdout + done.stderr, protocol, url, done.returncode)}
    try:
        return read_csv(report.read_text())
    except ValueError as error:
        return {"error": str(error)}


def run_protocol(image: str, protocol: str, url: str, window_s: float, workdir: Path,
                 concurrency: tuple[int, ...] = CONCURRENCY) -> dict[str, Any]:
    """Every concurrency over one protocol, until the first error:
    {"runs": {concurrency: figures}, "error": None or what went wrong, and where}."""
    runs: dict[str, Any] = {}
    for level in concurrency:
        print(f"perf_analyzer over {PROTOCOLS[protocol]}, concurrency {level}...", flush=True)
        figures = run_one(image, protocol, url, level, window_s, workdir)
        if "error" in figures:
            return {"runs": runs, "error": f"concurrency {level}: {figures['error']}"}
        runs[str(level)] = figures
    return {"runs": runs, "error": None}


def measure(image: str, urls: dict[str, str], data_dir: str | Path, window_s: float,
            workdir: Path, concurrency: tuple[int, ...] = CONCURRENCY) -> dict[str, Any]:
    """perf_analyzer over each protocol of `urls` ({"http": "127.0.0.1:3000", ...}), in
    workdir; or {"missing": why} where it cannot run here."""
    missing = unavailable(image)
    if missing:
        return {"missing": missing}
    write_digits(data_dir, workdir / "digits.json")
    return {"image": image, "window_s": window_s, "windows": WINDOWS, "digits": DIGITS,
            **{protocol: run_protocol(image, protocol, url, window_s, workdir, concurrency)
               for protocol, url in urls.items()}}


def _ms(value: float) -> str:
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def section(result: dict[str, Any] | None) -> list[str]:
    """docs/benchmarks.md's section: a table of every run, each protocol's error, or why
    nothing was measured."""
    lines = [f"## {TITLE}", ""]
    if not result or "missing" in result:
        why = result["missing"] if result else "this run's results hold no perf_analyzer figures"
        return [*lines, f"Not measured in this run: {why}.", ""]
    lines += [
        f"`perf_analyzer` (image `{result['image']}`) against the service over the Open "
        f"Inference Protocol: HTTP with binary tensor data (its default) and gRPC. Batch 1, "
        f"each request one of {result['digits']} test digits; per concurrency "
        f"{result['windows']} windows of {result['window_s']:g} s, from the same machine.",
        "", "| protocol | concurrency | infer/s | p50 ms | p99 ms | avg ms |",
        "|---|---|---|---|---|---|"]
    for protocol, label in PROTOCOLS.items():
        for level, x in result.get(protocol, {}).get("runs", {}).items():
            lines.append(f"| {label} | {level} | {x['infer_per_s']:.0f} | {_ms(x['p50_ms'])} | "
                         f"{_ms(x['p99_ms'])} | {_ms(x['avg_ms'])} |")
    lines.append("")
    for protocol, label in PROTOCOLS.items():
        if protocol not in result:
            lines += [f"Not run over {label}.", ""]
        elif result[protocol]["error"]:
            lines += [f"Over {label}, perf_analyzer failed at {result[protocol]['error']}", ""]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("MNIST_DIR"), required=False,
                        help="MNIST IDX folder (the test digits sent)")
    parser.add_argument("--url", default="127.0.0.1:3000", help="the service's HTTP host:port")
    parser.add_argument("--grpc-url", help="its gRPC host:port (none: HTTP only)")
    parser.add_argument("--image", default=IMAGE, help="an image with perf_analyzer")
    parser.add_argument("--window-s", type=float, default=WINDOW_S,
                        help="seconds of each measurement window")
    parser.add_argument("--concurrency", type=int, nargs="+", default=list(CONCURRENCY))
    parser.add_argument("--workdir", type=Path, default=Path("reports/perf_analyzer"),
                        help="where the input digits and CSV reports go")
    args = parser.parse_args(argv)
    if not args.data_dir:
        parser.error("--data-dir or MNIST_DIR is required (the digits sent)")
    args.workdir.mkdir(parents=True, exist_ok=True)
    urls = {"http": args.url, **({"grpc": args.grpc_url} if args.grpc_url else {})}
    result = measure(args.image, urls, args.data_dir, args.window_s, args.workdir,
                     tuple(args.concurrency))
    print(json.dumps(result, indent=2))
    print("\n".join(section(result)))
    errors = [result[p]["error"] for p in PROTOCOLS if p in result and result[p]["error"]]
    return 1 if "missing" in result or errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
