"""SIGTERM drains; readiness fails first, then the server stops.

The second security round: docs/journal/security.md.

    pytest tests/security/test_drain.py

`bentoml serve` closed its listening socket within ~100 ms of SIGTERM: requests already
in flight were answered, but a connection made, or a request sent on a kept-alive
connection, in that time was reset. A proxy checking /readyz every second could not have
stopped routing to it yet. What the image runs (service/Dockerfile's CMD) must, on
SIGTERM, answer 503 on /readyz while it keeps serving for MNIST_DRAIN_S, then stop.
The supervisor (service/drain.py) is also tested here with a stand-in child.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from clients.server_process import BENTOML, free_port, http_get
from core.png import encode_png
from service.drain import MARKER_ENV, DrainingReadiness
from tests.helpers import ROOT

DRAIN_S = 3.0  # long enough to see, short enough for the suite
CHILD = """
import os, pathlib, signal, sys, time
marker = pathlib.Path(os.environ["MNIST_DRAIN_MARKER"])
def on(sig, _):
    print(f"{signal.Signals(sig).name} {time.time():.6f} {marker.exists()}", flush=True)
    sys.exit(int(os.environ.get("CHILD_EXIT", "0")))
signal.signal(signal.SIGTERM, on)
signal.signal(signal.SIGINT, on)
print("up", marker, flush=True)
time.sleep(float(os.environ.get("CHILD_LIFE", "60")))
sys.exit(7)
"""


def image_command(port: int) -> list[str]:
    """service/Dockerfile's CMD, on a loopback port, with this checkout's interpreter."""
    text = (ROOT / "service/Dockerfile").read_text().replace("\\\n", " ")
    cmd = json.loads(re.findall(r"^CMD\s+(\[.*\])$", text, re.M)[-1])
    tools = {"python": sys.executable, "bentoml": BENTOML}
    cmd = [tools.get(word, word) for word in cmd]
    cmd[cmd.index("--host") + 1] = "127.0.0.1"
    cmd[cmd.index("--port") + 1] = str(port)
    return cmd


def _outcome(send) -> int | str:
    try:
        return int(send().status_code)
    except httpx.HTTPError as exc:
        return type(exc).__name__


@pytest.mark.slow
def test_what_the_image_runs_fails_readiness_first_and_serves_on_through_sigterm(
        trained, tmp_path, test_digits):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "BENTOML_HOME": str(trained[2]), "MNIST_DRAIN_S": str(DRAIN_S)}
    with open(tmp_path / "serve.log", "w") as log:
        proc = subprocess.Popen(image_command(port), env=env, stdout=log,
                                stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
    try:
        t0 = time.monotonic()
        while http_get(base + "/readyz", timeout=2)[0] != 200:
            assert proc.poll() is None and time.monotonic() - t0 < 90, "never got ready"
            time.sleep(0.1)
        files = {"image": ("d.png", encode_png(test_digits[0][0]), "image/png")}
        kept = httpx.Client(timeout=10)
        assert kept.post(base + "/predict", files=files).status_code == 200
        # As `docker stop` does: SIGTERM to the main process only.
        os.kill(proc.pid, signal.SIGTERM)
        t_term = time.monotonic()
        seen: dict[str, list] = {"new": [], "kept": [], "readyz": []}
        while time.monotonic() - t_term < DRAIN_S / 2:
            seen["new"].append(_outcome(lambda: httpx.post(base + "/predict", files=files,
                                                           timeout=10)))
            seen["kept"].append(_outcome(lambda: kept.post(base + "/predict", files=files)))
            late = time.monotonic() - t_term > 0.5  # a moment for the marker to be made
            status = _outcome(lambda: httpx.get(base + "/readyz", timeout=2))
            seen["readyz"].append(status if late else 503)
        # Kept-alive clients are told to reconnect (elsewhere, once the proxy knows).
        assert kept.post(base + "/predict", files=files).headers["connection"] == "close"
        kept.close()
        assert set(seen["new"]) == {200}, seen
        assert set(seen["kept"]) == {200}, seen
        assert set(seen["readyz"]) == {503}, seen
        assert proc.wait(60) == 0
        assert time.monotonic() - t_term >= DRAIN_S
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _supervise(tmp_path: Path, drain_s: float, **env: str) -> subprocess.Popen:
    """python -m service.drain around the stand-in child; returns once the child is up."""
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    proc = subprocess.Popen(
        [sys.executable, "-m", "service.drain", "--", sys.executable, str(script)],
        env={**os.environ, "MNIST_DRAIN_S": str(drain_s), **env}, cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("up "), line
    return proc


def _rest(proc: subprocess.Popen) -> str:
    out, _ = proc.communicate(timeout=30)
    return out


def test_sigterm_marks_draining_and_stops_the_child_only_after_the_drain(tmp_path):
    proc = _supervise(tmp_path, 1.5)
    t0 = time.time()
    proc.send_signal(signal.SIGTERM)
    out = _rest(proc)
    line = next(ln for ln in out.splitlines() if ln.startswith("SIGTERM"))
    _, at, marker_was_there = line.split()
    assert float(at) - t0 >= 1.5
    assert marker_was_there == "True"
    assert proc.returncode == 0
    assert not any(Path(tempfile_dir).exists() for tempfile_dir in _marker_dirs(out))


def _marker_dirs(out: str) -> list[str]:
    return [str(Path(ln.split()[1]).parent) for ln in out.splitlines() if ln.startswith("up ")]


@pytest.mark.parametrize("second", [signal.SIGTERM, signal.SIGINT])
def test_a_second_signal_or_ctrl_c_stops_at_once(tmp_path, second):
    proc = _supervise(tmp_path, 30)
    if second == signal.SIGTERM:
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
    t0 = time.monotonic()
    proc.send_signal(second)
    out = _rest(proc)
    assert time.monotonic() - t0 < 5, out
    assert f"{second.name} " in out and proc.returncode == 0


def test_the_childs_exit_code_is_the_supervisors(tmp_path):
    assert _supervise(tmp_path, 0, CHILD_LIFE="0").wait(30) == 7
    proc = _supervise(tmp_path, 0, CHILD_EXIT="3")
    proc.send_signal(signal.SIGTERM)
    _rest(proc)
    assert proc.returncode == 3


def test_the_child_does_not_outlive_a_killed_supervisor(tmp_path):
    proc = _supervise(tmp_path, 30)
    child = _children(proc.pid)
    assert child
    proc.kill()
    proc.wait(10)
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() and _state(pid) != "Z" for pid in child):
        assert time.monotonic() < deadline, f"child {child} outlived its supervisor"
        time.sleep(0.1)


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()]


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


async def _call(app, path: str) -> tuple[int, dict[bytes, bytes], bytes]:
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    await app({"type": "http", "path": path, "method": "GET", "headers": []}, receive, send)
    start = sent[0]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], dict(start["headers"]), body


async def _ok(scope, receive, send) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"connection", b"keep-alive")]})
    await send({"type": "http.response.body", "body": b"ok"})


def test_the_middleware_fails_readiness_and_closes_connections_once_marked(tmp_path):
    marker = tmp_path / "draining"
    app = DrainingReadiness(_ok, marker=str(marker))
    assert asyncio.run(_call(app, "/readyz"))[0] == 200
    marker.touch()
    status, _, body = asyncio.run(_call(app, "/readyz"))
    assert status == 503 and b"draining" in body
    status, headers, body = asyncio.run(_call(app, "/predict"))
    assert (status, body, headers[b"connection"]) == (200, b"ok", b"close")
    marker.unlink()  # draining is one way: a drain is not undone
    assert asyncio.run(_call(app, "/readyz"))[0] == 503


def test_the_oip_readiness_check_fails_with_the_drain_too(tmp_path):
    """OIP clients (Triton's, KServe's) ask /v2/health/ready: it fails with /readyz, as
    gRPC's ServerReady does."""
    marker = tmp_path / "draining"
    app = DrainingReadiness(_ok, marker=str(marker))
    assert asyncio.run(_call(app, "/v2/health/ready"))[0] == 200
    marker.touch()
    status, headers, body = asyncio.run(_call(app, "/v2/health/ready"))
    assert (status, body) == (503, b'{"ready": false}')
    assert headers[b"content-type"] == b"application/json"


def test_without_a_supervisor_the_middleware_changes_nothing(monkeypatch):
    monkeypatch.delenv(MARKER_ENV, raising=False)
    status, headers, _ = asyncio.run(_call(DrainingReadiness(_ok), "/readyz"))
    assert status == 200 and headers[b"connection"] == b"keep-alive"
