"""A worker that dies mid-request leaves no request "in progress" behind.

    pytest tests/security/test_in_progress_gauge.py

Each worker of `bentoml serve` keeps its Prometheus samples in a file of its own; a
SIGKILLed worker never decremented its in-progress gauge, so
`bentoml_service_request_in_progress{endpoint="/predict"}` stayed at 1 on an idle server
for as long as it ran. Against a real server, with a store of its own (every
`bentoml serve` empties its store's metrics folder when it starts).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import time
from pathlib import Path

import pytest

from benchmarks.memory import descendants
from clients import server_process as process

pytestmark = pytest.mark.slow

IN_PROGRESS = re.compile(rb'bentoml_service_request_in_progress\{[^}]*endpoint="/predict"'
                         rb'[^}]*\} ([0-9.]+)')


def _in_progress(base: str) -> float:
    status, body = process.http_get(base + "/metrics")
    assert status == 200
    return sum(float(v) for v in IN_PROGRESS.findall(body))


def _half_sent_upload(base: str) -> socket.socket:
    """A /predict whose body is half sent: the request is in progress until it ends."""
    host, port = base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=5)
    sock.sendall(b"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: multipart/form-data; "
                 b"boundary=b\r\nContent-Length: 1000\r\n\r\n--b\r\n")
    return sock


def _until(check, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def test_a_killed_workers_requests_are_not_in_progress(trained, tmp_path):
    shutil.copytree(trained[2] / "models", tmp_path / "home" / "models")
    with open(tmp_path / "serve.log", "w") as log, process.serving(
            log, env={"BENTOML_HOME": str(tmp_path / "home")}) as (proc, base):
        sock = _half_sent_upload(base)
        try:
            assert _until(lambda: _in_progress(base) == 1), "the upload never counted"
            (worker,) = [p for p in descendants(proc.pid)
                         if b"worker" in Path(f"/proc/{p}/cmdline").read_bytes()]
            os.kill(worker, signal.SIGKILL)
            assert _until(lambda: process.http_get(base + "/readyz")[0] == 200
                          and worker not in descendants(proc.pid))
        finally:
            sock.close()
        assert _until(lambda: _in_progress(base) == 0, timeout=10), _in_progress(base)
