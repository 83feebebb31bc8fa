"""Finding 6 of the hardening issue: no worker outlives a `bentoml serve` killed with SIGKILL.

    pytest tests/security/test_lifecycle.py

The worker held the listening socket after its parent was SIGKILLed (an OOM kill, a
`kill -9`), so the next start on the same port failed with "Address already in use".
Also here, the other fault tests of the issue: a worker SIGKILL is recovered, and
SIGTERM lets an in-flight request finish.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from clients import server_process as process
from clients.server_process import descendants
from core.png import encode_png
from load_tests.payloads import multipart

pytestmark = pytest.mark.slow


def _serve(home, port: int, log) -> subprocess.Popen:
    return process.start(port, log, env={"BENTOML_HOME": str(home)})


def _gone(pids: list[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(os.path.exists(f"/proc/{p}") and _alive(p) for p in pids):
            return True
        time.sleep(0.1)
    return False


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_sigkill_of_the_main_process_takes_its_worker_along(trained, tmp_path):
    port = process.free_port()
    base = f"http://127.0.0.1:{port}"
    with open(tmp_path / "first.log", "w") as log:
        first = _serve(trained[2], port, log)
    try:
        process.wait_ready(first, base)
        workers = descendants(first.pid)
        assert workers
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
        assert _gone(workers, 10), f"worker(s) {workers} outlived their parent"
        with open(tmp_path / "second.log", "w") as log:
            second = _serve(trained[2], port, log)
        try:
            process.wait_ready(second, base)  # the same port: nothing holds it any more
        finally:
            process.stop(second)
    finally:
        for pid in descendants(first.pid):
            os.kill(pid, signal.SIGKILL)
        if first.poll() is None:
            process.stop(first)


def test_a_killed_worker_is_replaced_and_serves_again(trained, tmp_path, test_digits):
    port = process.free_port()
    base = f"http://127.0.0.1:{port}"
    with open(tmp_path / "serve.log", "w") as log:
        proc = _serve(trained[2], port, log)
    try:
        process.wait_ready(proc, base)
        (worker,) = [p for p in descendants(proc.pid) if "worker" in _cmdline(p)]
        os.kill(worker, signal.SIGKILL)
        t0 = time.monotonic()
        body = encode_png(test_digits[0][0])
        while time.monotonic() - t0 < 30:
            try:
                if httpx.post(base + "/predict", files={"image": ("d.png", body)},
                              timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            pytest.fail("no worker answered within 30 s of the kill")
        assert worker not in descendants(proc.pid)
    finally:
        process.stop(proc)


def test_sigterm_lets_an_in_flight_request_finish(trained, tmp_path, test_digits):
    port = process.free_port()
    base = f"http://127.0.0.1:{port}"
    with open(tmp_path / "serve.log", "w") as log:
        proc = _serve(trained[2], port, log)
    try:
        process.wait_ready(proc, base)
        results: dict[str, object] = {}
        body, ctype = multipart("images", [encode_png(d) for d in test_digits[0][:64]])
        sent_half = threading.Event()

        def slowly():  # the body takes ~1 s to arrive: the request is surely in flight
            half = len(body) // 2
            yield body[:half]
            sent_half.set()
            time.sleep(1.0)
            yield body[half:]

        def slow_client() -> None:
            with httpx.Client(timeout=30) as c:
                results["resp"] = c.post(base + "/predict_batch", content=slowly(),
                                         headers={"content-type": ctype})

        t = threading.Thread(target=slow_client)
        t.start()
        assert sent_half.wait(10)
        time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGTERM)
        t.join(30)
        resp = results.get("resp")
        assert resp is not None and resp.status_code == 200, resp
        assert len(resp.json()["predictions"]) == 64
        proc.wait(30)
    finally:
        process.stop(proc)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""
