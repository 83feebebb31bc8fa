"""docker/monitoring_e2e.py's judging, without Docker: a stream's sender against a local
server, and a stream's verdict from what Prometheus and /monitoring say.

    make monitoring-e2e     # the drift proof itself, on compose and a real Prometheus
"""

from __future__ import annotations

import importlib.util
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from load_tests.shifts import SIGNAL, Request
from tests.helpers import ROOT


@pytest.fixture(scope="module")
def e2e():
    spec = importlib.util.spec_from_file_location("monitoring_e2e",
                                                  ROOT / "docker/monitoring_e2e.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


class _Handler(BaseHTTPRequestHandler):
    """200 to /predict, 422 to anything else; drains every body (keep-alive)."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # its headers and body go out apart: no 40 ms ACK waits

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers["Content-Length"]))
        status, body = (200, b"{}") if self.path == "/predict" else (422, b'{"error": "no"}')
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_) -> None:
        pass


@pytest.fixture(scope="module")
def port():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


ANSWERED, REFUSED = Request("/predict", b"x", "image/png"), Request("/other", b"y", "x/y")


def _send(e2e, port: int, sent: list[Request], rate: float, seconds: float):
    sender = e2e.Sender(port, sent, rate)
    sender.start()
    time.sleep(seconds)
    sender.stopped.set()
    sender.join()
    return sender


def test_the_sender_keeps_its_rate_and_counts_refusals_apart(e2e, port) -> None:
    sender = _send(e2e, port, [ANSWERED, ANSWERED, REFUSED], rate=40, seconds=1.0)
    total = sender.answers + sender.refused
    assert 30 <= total <= 42  # paced: about rate x seconds, never a burst
    assert sender.refused == total // 3 and sender.first_refusal.startswith("422")


class _Stack:
    """What run_stream asks of a stack: its api, its alerts, /monitoring and its page."""

    def __init__(self, port: int, firing_after_s: float | None, status: str) -> None:
        self.api_port, self.status = port, status
        self.fires_at = None if firing_after_s is None else time.monotonic() + firing_after_s

    def drift_alerts(self) -> list[dict]:
        state = "firing" if self.fires_at and time.monotonic() >= self.fires_at else "pending"
        return [{"labels": {"alertname": "MnistDrift", "signal": s}, "state": state}
                for s in ("ink", "digit_mix")]

    def monitoring(self) -> dict:
        return {"drift": {"status": self.status}}

    def page_served(self) -> bool:
        return True


def test_a_stream_passes_when_its_signal_fires_within_the_bound(e2e, port) -> None:
    timing = e2e.Timing(scrape_s=1.0, eval_s=0.5, for_s=1.0, window_s=5.0)
    out = e2e.run_stream(_Stack(port, 1.0, "drift"), "class_mix", [ANSWERED], timing)
    assert out.passed, out.problems
    assert out.expected == SIGNAL["class_mix"] == "digit_mix" and out.fired == ["digit_mix",
                                                                               "ink"]
    assert 1.0 <= out.seconds <= timing.fire_bound_s and out.answers > 0


def test_a_stream_fails_on_no_firing_refusals_or_no_drift_on_monitoring(e2e, port) -> None:
    timing = e2e.Timing(scrape_s=0.5, eval_s=0.5, for_s=0.5, window_s=5.0)
    started = time.monotonic()
    out = e2e.run_stream(_Stack(port, None, "ok"), "inverted", [ANSWERED, REFUSED], timing)
    assert time.monotonic() - started >= timing.fire_bound_s
    assert not out.passed and out.seconds is None
    not_fired, monitoring, refused = out.problems
    assert not_fired.startswith("MnistDrift{signal=ink} not firing")
    assert monitoring == "/monitoring says 'ok', not 'drift'"
    assert refused.endswith("requests refused, first 422: b'{\"error\": \"no\"}'")
    assert "FAIL: MnistDrift{signal=ink} not firing" in e2e.table([out])
