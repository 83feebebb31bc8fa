"""Where each microsecond of a request goes: py-spy samples of a server's workers under load.

    python -m benchmarks.breakdown --server-pid 123 --seconds 10 --rps 1500
    python -m benchmarks.breakdown --pid 124 --pid 125 --seconds 10 --requests 15000

One `py-spy record` per worker process, all at once, while a load runs; every sampled
stack is put in one category (CATEGORIES) by the rules below, and the samples become
microseconds of a worker per answered request. From code, beside a load: profile()
starts py-spy and returns, Recording.wait() gives the Samples, per_request() divides them
by the requests answered in the same window (Locust's count).

Sampling choices:
- `--idle`: the event loop waiting in epoll is where the batcher's wait and "no work" go,
  and with it every tick samples the event loop's thread once, so its samples are the
  window's wall time and the categories add up to workers x seconds. Other threads that
  wait (thread pools, a gRPC loop, uvicorn's ping thread: WAITS) are parked, not
  serving: their idle samples are dropped.
- No `--native` by default: py-spy can only unwind C frames by pausing the process
  (it refuses `--native` with `--nonblocking`), which slows the server it measures.
  Without it, uvloop's own C work (its callbacks, timers, I/O polling) shows as the bare
  loop frame, the same as waiting: `idle` holds both. `--native` splits them (epoll is
  idle, uvloop's C is asyncio; the C part is small) at the price of pausing the workers
  at every sample.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.memory import Workers, descendants

PY_SPY = str(Path(sys.executable).with_name("py-spy"))
RATE = 100  # samples per second per worker: py-spy's default
CATEGORIES = ("http", "multipart", "framework", "ours", "decode", "inference",
              "serialisation", "asyncio", "idle", "other")
# What each category holds, as docs/benchmarks.md says it (RULES decide it).
MEANING = {
    "http": "uvicorn and httptools: parsing, the protocol, writing the answer to the socket",
    "multipart": "reading the body and parsing the multipart upload",
    "framework": "the framework's routing, middlewares and dispatch (BentoML, Starlette, "
                 "FastAPI, OpenTelemetry)",
    "ours": "the server's own code outside the other categories (for the service: metrics, "
            "security headers, monitoring, shadow, the adaptive batcher)",
    "decode": "PNG decode and preprocessing",
    "inference": "onnxruntime, and the engine around it",
    "serialisation": "building the answer and encoding its JSON",
    "asyncio": "the event loop's own Python bookkeeping",
    "idle": "the event loop waiting (and uvloop's C code, which sampling cannot tell apart)",
    "other": "stacks no rule matches",
}
MAIN_THREAD = "MainThread"  # every server here runs its event loop on the main thread
# A uvicorn worker started by `uvicorn --workers N` (multiprocessing's spawn).
SPAWNED_MARK = b"multiprocessing.spawn"

# A frame as py-spy writes it: "function (path/to/file.py:line)"; native ones may lack
# the line, or be a bare address "0x7f... (libc.so.6)".
_FRAME = re.compile(r"^(?P<func>.*) \((?P<path>[^()]*?)(?::\d+)?\)$")
# Where installed and standard modules lie: a path is made relative to it (py-spy runs with
# --full-filenames: its own shortening keeps only the innermost folders that hold an
# __init__.py, which cuts a namespace package such as opentelemetry's to "asgi/...").
_LIBRARY = re.compile(r".*/(?:site-packages|dist-packages|lib/python3\.\d+)/")

# Frames of generic libraries: passed over, so that the code that called them decides.
# A stack of nothing else is the event loop's own bookkeeping (asyncio).
GENERIC = ("asyncio/", "contextlib.py", "typing.py", "functools.py")
# The frames that run the event loop: what is above them (the process's start-up, click,
# uvicorn's Server.run) is not the request's; with nothing below them, the loop is
# waiting in epoll (or, without --native, busy in uvloop's C code).
LOOP = {("Runner.run", "asyncio/runners.py"),
        ("BaseEventLoop.run_forever", "asyncio/base_events.py"),
        ("BaseEventLoop.run_until_complete", "asyncio/base_events.py")}
# Innermost frames (function, a piece of its path) of a thread that waits: the event loop
# in epoll (with --native), threads parked on a lock, a queue or a pipe (uvicorn's
# worker answers its supervisor's pings from a thread that reads a pipe).
WAITS = (("epoll_wait", "libc."), ("epoll_pwait", "libc."), ("select", "selectors.py"),
         ("EpollSelector.select", "selectors.py"), ("Condition.wait", "threading.py"),
         ("Event.wait", "threading.py"), ("Queue.get", "queue.py"),
         ("_worker", "concurrent/futures/thread.py"),
         ("Connection._recv", "multiprocessing/connection.py"))
# Threads that wait in C code which py-spy cannot see waiting: gRPC's asyncio poller (a
# worker that serves the Open Inference Protocol over gRPC) blocks in grpc's own poll,
# no Python frame below its thread's run(), and /proc shows it using no CPU.
PARKED_THREADS = ("(_poll_wrapper)",)


@dataclass(frozen=True)
class Rule:
    """Frames whose path contains `path` (and, if given, whose function is one of
    `functions`) belong to `category`."""

    category: str
    path: str
    functions: tuple[str, ...] = ()

    def matches(self, func: str, path: str) -> bool:
        """`path` as module_path() gives it: a library's relative to where it is installed
        (it must start with self.path), the project's absolute (a folder of it must)."""
        where = path.startswith(self.path) or (path.startswith("/") and f"/{self.path}" in path)
        return where and (not self.functions or func in self.functions)


# Innermost frame outwards, the first frame a rule matches decides; within a frame, the
# first rule. Frames no rule matches (numpy, pydantic, inspect, prometheus_client, C
# frames) are passed over like generic ones: their caller decides.
RULES = (
    Rule("inference", "onnxruntime/"),
    Rule("inference", "service/engine.py"),  # the engine around Session.run, softmax
    Rule("decode", "service/preprocess.py"),
    Rule("decode", "service/image_structure.py"),
    Rule("decode", "core/png.py"),
    Rule("decode", "PIL/"),
    # The answer built and encoded: pydantic models made from the probabilities, JSON.
    Rule("serialisation", "service/schemas.py"),
    Rule("serialisation", "_bentoml_impl/serde.py"),
    Rule("serialisation", "_bentoml_sdk/io_models.py", ("IOMixin.to_http_response",)),
    Rule("serialisation", "fastapi/routing.py", ("serialize_response",
                                                 "_prepare_response_content")),
    Rule("serialisation", "fastapi/encoders.py"),
    Rule("serialisation", "starlette/responses.py", ("JSONResponse.render",)),
    Rule("serialisation", "json/"),
    Rule("serialisation", "orjson"),
    # The body read and the multipart parse.
    Rule("multipart", "service/http_input.py"),
    Rule("multipart", "python_multipart/"),
    Rule("multipart", "multipart/"),
    Rule("multipart", "starlette/formparsers.py"),
    Rule("multipart", "starlette/requests.py", ("Request.stream", "Request.body",
                                                "Request.form", "Request._get_form")),
    Rule("multipart", "starlette/datastructures.py", (
        "UploadFile.read", "UploadFile.write", "UploadFile.close", "UploadFile.__init__",
        "FormData.__init__", "FormData.close")),
    Rule("multipart", "tempfile.py"),  # the upload's SpooledTemporaryFile
    # The adaptive batcher (ours, on BentoML's dispatcher): it stays without BentoML's
    # per-API machinery, so it is not counted as the framework's.
    Rule("ours", "bentoml/_internal/marshal/"),
    Rule("ours", "service/"),
    Rule("ours", "benchmarks/"),  # a peer's endpoint: its own code, as service/ is ours
    Rule("http", "uvicorn/"),
    Rule("http", "httptools/"),
    Rule("http", "h11/"),
    Rule("framework", "_bentoml_impl/"),
    Rule("framework", "_bentoml_sdk/"),
    Rule("framework", "bentoml/"),
    Rule("framework", "simple_di/"),
    Rule("framework", "opentelemetry/"),
    Rule("framework", "starlette/"),
    Rule("framework", "fastapi/"),
)


def module_path(path: str) -> str:
    """A library's or the standard library's file relative to where it lies; else as is."""
    m = _LIBRARY.match(path)
    return path[m.end():] if m else path


def split_frame(frame: str) -> tuple[str, str]:
    """(function, module path) of a py-spy frame; a frame without a path is all function."""
    m = _FRAME.match(frame)
    return (m["func"], module_path(m["path"])) if m else (frame, "")


def _is_wait(func: str, path: str) -> bool:
    return any(func == f and p in path for f, p in WAITS)


def decide(stack: str | list[str]) -> tuple[str, str]:
    """The category of one sampled stack and the frame that decided it ("function
    (module path)", or "" where none did): frames outermost first, ';'-separated as in
    py-spy's raw output (a leading "thread (...)" element is ignored)."""
    parts = stack.split(";") if isinstance(stack, str) else stack
    if parts and parts[0].startswith("thread (") and parts[0].endswith(PARKED_THREADS):
        return "idle", ""
    frames = [split_frame(f) for f in parts if not f.startswith("thread (")]
    loops = [i for i, f in enumerate(frames) if f in LOOP]
    inside = frames[loops[-1] + 1:] if loops else frames
    if (loops and not inside) or (inside and _is_wait(*inside[-1])):
        return "idle", ""
    generic = False
    for func, path in reversed(inside):
        if path.startswith(GENERIC):
            generic = True
            continue
        for rule in RULES:
            if rule.matches(func, path):
                return rule.category, f"{func} ({module_path(path)})"
    return ("asyncio" if generic or loops else "other"), ""


def classify(stack: str | list[str]) -> str:
    """The category of one sampled stack (see decide())."""
    return decide(stack)[0]


def thread_of(stack: str) -> str:
    """The thread's name of a raw stack recorded with --threads ("thread (tid): Name")."""
    head = stack.split(";", 1)[0]
    return head.split(": ", 1)[1] if head.startswith("thread (") and ": " in head else ""


def parse_raw(text: str) -> Counter[str]:
    """py-spy's raw (collapsed) output, "frame;frame;... count" per line, as counts."""
    stacks: Counter[str] = Counter()
    for line in text.splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        if stack and count.isdigit():
            stacks[stack] += int(count)
    return stacks


@dataclass
class Samples:
    """The stacks sampled from `workers` processes over `seconds`, at `rate` per second."""

    stacks: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    rate: int = RATE
    workers: int = 0
    errors: int = 0  # ticks py-spy could not read a stack (--nonblocking races)

    def tally(self) -> Counter[str]:
        """Samples per category; the idle samples of threads other than the event loop's
        are dropped (parked threads, not time of a request)."""
        out: Counter[str] = Counter({c: 0 for c in CATEGORIES})
        for stack, n in self.stacks.items():
            category = classify(stack)
            if category != "idle" or thread_of(stack) in (MAIN_THREAD, ""):
                out[category] += n
        return out

    @property
    def effective_rate(self) -> float:
        """Samples per second of each worker's event-loop thread: with --idle, one per
        tick py-spy managed, which is fewer than asked on a busy machine."""
        ticks = sum(n for s, n in self.stacks.items() if thread_of(s) == MAIN_THREAD)
        return ticks / (self.workers * self.seconds) if ticks else float(self.rate)


def per_request(samples: Samples, rate: float, requests: int) -> dict[str, dict[str, float]]:
    """Each category's worker time per answered request (µs) and share of the total, then
    the total and the busy part of it (all but idle). `rate`: samples per second of one
    thread (Samples.effective_rate, or the rate asked of py-spy)."""
    counts = samples.tally()
    total = sum(counts.values())
    rows = {c: counts[c] for c in CATEGORIES} | {"total": total, "busy": total - counts["idle"]}
    return {name: {"us": n / rate / max(requests, 1) * 1e6, "share": n / total if total else 0.0}
            for name, n in rows.items()}


def py_spy_command(pid: int, seconds: float, rate: int, out: Path,
                   native: bool = False) -> list[str]:
    cmd = [PY_SPY, "record", "--format", "raw", "--rate", str(rate), "--duration",
           str(round(seconds)), "--pid", str(pid), "--idle", "--threads", "--full-filenames",
           "-o", str(out)]
    # py-spy can unwind C frames only while the process is paused.
    return cmd + (["--native"] if native else ["--nonblocking"])


@dataclass
class Recording:
    """py-spy running on every worker at once; wait() for the Samples."""

    procs: list[subprocess.Popen]
    files: list[Path]
    seconds: float
    rate: int

    def wait(self) -> Samples:
        samples = Samples(seconds=self.seconds, rate=self.rate, workers=len(self.procs))
        for proc, path in zip(self.procs, self.files, strict=True):
            _, err = proc.communicate(timeout=self.seconds + 60)
            if proc.returncode != 0 or not path.is_file():
                raise RuntimeError(f"py-spy failed ({proc.returncode}): {err.strip()}")
            samples.stacks.update(parse_raw(path.read_text()))
            found = re.search(r"Errors: (\d+)", err)
            samples.errors += int(found[1]) if found else 0
        return samples


def profile(pids: Iterable[int], seconds: float, rate: int = RATE, out: Path | None = None,
            native: bool = False) -> Recording:
    """Starts one py-spy per worker (`out`: the folder of its raw files) and returns at
    once, so that the load it measures runs meanwhile."""
    folder = Path(out or tempfile.mkdtemp(prefix="breakdown-"))
    folder.mkdir(parents=True, exist_ok=True)
    procs, files = [], []
    for pid in pids:
        files.append(folder / f"py-spy-{pid}.txt")
        procs.append(subprocess.Popen(py_spy_command(pid, seconds, rate, files[-1], native),
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                      text=True))
    return Recording(procs, files, seconds, rate)


def record(pids: Iterable[int], seconds: float, rate: int = RATE, out: Path | None = None,
           native: bool = False) -> Samples:
    """py-spy on every worker at once for `seconds`; their samples."""
    return profile(pids, seconds, rate, out, native).wait()


def _spawned(pid: int) -> bool:
    try:
        return SPAWNED_MARK in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def worker_pids(server_pid: int) -> list[int]:
    """The worker processes of a server: BentoML's (below its arbiter), else the
    processes uvicorn's master spawned (not multiprocessing's resource tracker)."""
    return Workers(server_pid).pids() or [p for p in descendants(server_pid) if _spawned(p)]


def table(result: dict[str, dict[str, float]]) -> str:
    lines = [f"{'category':<14} {'µs/request':>10} {'share':>7}"]
    lines += [f"{name:<14} {row['us']:>10.1f} {row['share']:>7.1%}" for name, row in result.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--pid", type=int, action="append", help="a worker process (repeat)")
    who.add_argument("--server-pid", type=int, help="the server: its workers are profiled")
    p.add_argument("--seconds", type=float, default=10, help="sampling window")
    p.add_argument("--rate", type=int, default=RATE, help="samples per second per worker")
    many = p.add_mutually_exclusive_group(required=True)
    many.add_argument("--requests", type=int, help="requests answered in the window")
    many.add_argument("--rps", type=float, help="requests answered per second meanwhile")
    p.add_argument("--out", type=Path, help="keep py-spy's raw files in this folder")
    p.add_argument("--native", action="store_true",
                   help="C frames too (pauses the workers at every sample)")
    args = p.parse_args(argv)
    pids = args.pid or worker_pids(args.server_pid)
    if not pids:
        p.error(f"no worker processes below {args.server_pid}")
    samples = record(pids, args.seconds, args.rate, args.out, args.native)
    requests = args.requests or round(args.rps * args.seconds)
    print(f"{len(pids)} workers, {args.seconds:g} s, {requests} requests, "
          f"{samples.effective_rate:.0f} samples/s per worker ({samples.errors} errors)")
    print(table(per_request(samples, samples.effective_rate, requests)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
