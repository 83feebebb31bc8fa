"""No worker outlives a `bentoml serve` killed with SIGKILL.

Finding 6 of the first security round: docs/journal/security.md.

    pytest tests/security/test_lifecycle.py

The worker held the listening socket after its parent was SIGKILLed (an OOM kill, a
`kill -9`), so the next start on the same port failed with "Address already in use".
Also here, the other fault tests of that round: a worker SIGKILL is recovered, and
SIGTERM lets an in-flight request finish.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from benchmarks.memory import descendants
from clients import server_process as process
from core.png import encode_png
from load_tests.payloads import multipart

pytestmark = pytest.mark.slow


@contextmanager
def _serving(trained, log_path: Path, port: int = 0):
    """The trained model served on a loopback port, logged to log_path: (process, URL)."""
    with open(log_path, "w") as log, process.serving(
            log, env={"BENTOML_HOME": str(trained[2])}, port=port) as running:
        yield running


def _gone(pids: list[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(map(_alive, pids)):
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
    workers: list[int] = []
    try:
        with _serving(trained, tmp_path / "first.log") as (first, base):
            workers = descendants(first.pid)
            assert workers
            os.kill(first.pid, signal.SIGKILL)
            first.wait(10)
            assert _gone(workers, 10), f"worker(s) {workers} outlived their parent"
            port = int(base.rsplit(":", 1)[1])
            # The same port: nothing holds it any more, so this one gets ready.
            with _serving(trained, tmp_path / "second.log", port=port):
                pass
    finally:
        for pid in filter(_alive, workers):  # an orphan is no longer first's descendant
            os.kill(pid, signal.SIGKILL)


def test_a_killed_worker_is_replaced_and_serves_again(trained, tmp_path, test_digits):
    with _serving(trained, tmp_path / "serve.log") as (proc, base):
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


def test_sigterm_lets_an_in_flight_request_finish(trained, tmp_path, test_digits):
    with _serving(trained, tmp_path / "serve.log") as (proc, base):
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


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""
