"""The service against the servers a user would pick instead, interleaved, in one run.

    python -m benchmarks.run                      # make bench: this is one of its sections

Every server gets the same workers, the same model.onnx, the same multipart upload of one
28x28 PNG and the same Locust users (benchmarks/locustfile.py: every answer's digit
checked against the model's own). Each round starts each server, runs Locust at every
user count, and stops it; the second round goes through the servers in reverse order, so
that a machine that drifts weighs on all of them alike. The transport ceiling
(benchmarks/transport.py) answers a constant 200: what the HTTP server alone can do.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, NamedTuple

from clients import server_process as process

USERS = (32, 128)
ROUNDS = 3
SERVICE, TRANSPORT = "service", "transport"  # the subject, and the ceiling: not a peer
READY_TIMEOUT_S = 180  # Ray starts a cluster first


class Server(NamedTuple):
    key: str  # its key in docs/benchmarks.json
    label: str  # the table's words
    path: str  # where Locust POSTs the upload
    ready: str  # a GET that answers 200 once it can answer
    check: str  # benchmarks/locustfile.py's BENCH_CHECK
    start: Callable[[int], subprocess.Popen]
    stop: Callable[[subprocess.Popen], None]


def uvicorn(app: str, port: int, workers: int, log: IO[str], env: dict[str, str],
            *extra: str) -> subprocess.Popen:
    """`uvicorn app` of this project on 127.0.0.1:port, in its own process group."""
    cmd = [str(Path(sys.executable).with_name("uvicorn")), app, "--host", "127.0.0.1",
           "--port", str(port), "--workers", str(workers), "--no-access-log", *extra]
    return subprocess.Popen(cmd, cwd=process.ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def run_round(servers: list[Server], users: tuple[int, ...], seconds: int, work: Path,
              load: Callable[..., dict[str, float]]) -> dict[str, dict[str, dict]]:
    """Each server started, loaded at each user count by load(host, endpoint, users,
    seconds, work, path=, check=), stopped: {server: {users: Locust's figures}}."""
    out: dict[str, dict[str, dict]] = {}
    for server in servers:
        port = process.free_port()
        base = f"http://127.0.0.1:{port}"
        proc = server.start(port)
        try:
            process.wait_ready(proc, base, timeout=READY_TIMEOUT_S, path=server.ready)
            out[server.key] = {}
            for count in users:
                print(f"{server.label}: {count} users...", flush=True)
                out[server.key][str(count)] = load(base, "predict", count, seconds, work,
                                                   path=server.path, check=server.check)
        finally:
            server.stop(proc)
    return out


def measure(servers: list[Server], seconds: int, work: Path,
            load: Callable[..., dict[str, float]], rounds: int = ROUNDS,
            users: tuple[int, ...] = USERS) -> dict[str, Any]:
    """`rounds` rounds, every other one in reverse order: each server's runs by users."""
    runs: dict[str, dict[str, Any]] = {
        s.key: {"label": s.label, "runs": {str(u): [] for u in users}} for s in servers}
    for index in range(rounds):
        order = servers if index % 2 == 0 else servers[::-1]
        for key, by_users in run_round(order, users, seconds, work, load).items():
            for count, figures in by_users.items():
                runs[key]["runs"][count].append(figures)
    return {"users": list(users), "rounds": rounds, "seconds": seconds, "servers": runs}


def runs(result: dict[str, Any], key: str) -> list[dict]:
    """Every run of one server, all user counts."""
    return [run for by_users in result["servers"][key]["runs"].values() for run in by_users]


def median(result: dict[str, Any], key: str, users: int, figure: str = "right_rps") -> float:
    """The median of a server's runs at `users`."""
    return statistics.median(run[figure] for run in result["servers"][key]["runs"][str(users)])


def peers(result: dict[str, Any]) -> list[str]:
    """The servers the service is compared with: all but itself and the ceiling."""
    return [k for k in result["servers"] if k not in (SERVICE, TRANSPORT)]
