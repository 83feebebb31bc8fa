"""Start, await and stop `bentoml serve` as a child process (demo, benchmarks, tests).

    python -m clients.demo      # uses this to run the service for a minute
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[1]
BENTOML = str(Path(sys.executable).with_name("bentoml"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(url: str, timeout: float = 5) -> tuple[int, bytes]:
    """(status, body); status 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError:
        return 0, b""


def start(port: int, log: IO[str] | int | None = subprocess.PIPE,
          env: dict[str, str] | None = None, target: str = "service.service:MNISTService",
          ) -> subprocess.Popen:
    """`bentoml serve` on 127.0.0.1:port in its own process group.

    A long-lived server must log to a file: a pipe nobody reads fills up and blocks it.
    """
    return subprocess.Popen(
        [BENTOML, "serve", target, "--host", "127.0.0.1", "--port", str(port)],
        env={**os.environ, "BENTOML_DO_NOT_TRACK": "true", **(env or {})},
        stdout=log, stderr=subprocess.STDOUT, text=True, start_new_session=True, cwd=ROOT)


def wait_ready(proc: subprocess.Popen, base_url: str, timeout: float = 60,
               path: str = "/readyz") -> float:
    """Seconds until `path` answers 200; raises RuntimeError if the server dies or stalls."""
    t0 = time.monotonic()
    while http_get(base_url + path, timeout=2)[0] != 200:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} before ready")
        if time.monotonic() - t0 > timeout:
            raise RuntimeError(f"server not ready after {timeout:.0f}s")
        time.sleep(0.1)
    return time.monotonic() - t0


def stop(proc: subprocess.Popen, grace: float = 20) -> None:
    """SIGTERM the whole process group (BentoML's workers too), SIGKILL after `grace`."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@contextmanager
def serving(log: IO[str], env: dict[str, str] | None = None,
            port: int = 0) -> Iterator[tuple[subprocess.Popen, str]]:
    """`bentoml serve` on a loopback port (0: a free one), ready: yields (process, base URL)
    and stops it on the way out. A server that dies or stalls before ready is stopped and
    its RuntimeError raised."""
    port = port or free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start(port, log, env)
    try:
        wait_ready(proc, base)
        yield proc, base
    finally:
        stop(proc)
