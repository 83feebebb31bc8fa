"""Locust for real: the load test against `bentoml serve`, headless, a few seconds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from load_tests.payloads import multipart

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _locust(host: str, mnist_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [str(Path(sys.executable).with_name("locust")), "--config", "load_tests/locust.conf",
           "--host", host, "-t", "4s", "-u", "10", "-r", "10", "--digits", "200",
           # The test model is small (~93 %); the production gate is 0.95.
           "--slo-min-accuracy", "0.85", "--only-summary", *extra]
    env = {**os.environ, "MNIST_DIR": str(mnist_dir)}
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_load_test_passes_its_slo_and_writes_reports(server, mnist_folder, tmp_path):
    proc = _locust(server, mnist_folder, "--csv", str(tmp_path / "r"), "--html",
                   str(tmp_path / "r.html"))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "SLO PASS" in out and ", 0 failed," in out
    for endpoint in ("/predict", "/predict_batch", "/predict_pixels"):  # 10 users: all classes
        assert endpoint in (tmp_path / "r_stats.csv").read_text()
    assert (tmp_path / "r.html").stat().st_size > 0


def test_load_test_exits_1_when_an_slo_fails(server, mnist_folder):
    proc = _locust(server, mnist_folder, "--slo-p99-ms", "0.001")
    assert proc.returncode == 1
    assert "SLO FAIL: p99" in proc.stdout + proc.stderr


def test_multipart_payloads_are_what_the_service_parses(server, test_digits):
    import httpx

    from core.png import encode_png as png

    body, ctype = multipart("images", [png(d) for d in test_digits[0][:3]])
    resp = httpx.post(server + "/predict_batch", content=body, headers={"content-type": ctype})
    assert resp.status_code == 200 and len(resp.json()["predictions"]) == 3
