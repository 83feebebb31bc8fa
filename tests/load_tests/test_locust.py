"""Locust for real: the load test against `bentoml serve`, headless, a few seconds."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from load_tests.command import locust_command, read_totals
from load_tests.payloads import multipart
from tests.helpers import ROOT

pytestmark = pytest.mark.slow


def _locust(host: str, mnist_dir: Path, slo: dict[str, float] | None = None,
            **options) -> subprocess.CompletedProcess:
    # The test model is small (~93 %); the production gate is 0.95.
    cmd = locust_command(host, users=10, seconds=4, slo={"min_accuracy": 0.85, **(slo or {})},
                         extra=["--digits", "200"], **options)
    env = {**os.environ, "MNIST_DIR": str(mnist_dir)}
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_load_test_passes_its_slo_and_writes_reports(server, mnist_folder, tmp_path):
    proc = _locust(server, mnist_folder, csv_prefix=tmp_path / "r", html=tmp_path / "r.html")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "SLO PASS" in out and ", 0 failed," in out
    for endpoint in ("/predict", "/predict_batch", "/predict_pixels"):  # 10 users: all classes
        assert endpoint in (tmp_path / "r_stats.csv").read_text()
    assert (tmp_path / "r.html").stat().st_size > 0
    totals = read_totals(tmp_path / "r")  # the run's figures, read back from its CSV
    assert totals.requests > 0 and totals.failures == 0 and totals.rps > 0


def test_load_test_exits_1_when_an_slo_fails(server, mnist_folder):
    proc = _locust(server, mnist_folder, slo={"p99_ms": 0.001})
    assert proc.returncode == 1
    assert "SLO FAIL: p99" in proc.stdout + proc.stderr


def test_multipart_payloads_are_what_the_service_parses(server, test_digits):
    import httpx

    from core.png import encode_png as png

    body, ctype = multipart("images", [png(d) for d in test_digits[0][:3]])
    resp = httpx.post(server + "/predict_batch", content=body, headers={"content-type": ctype})
    assert resp.status_code == 200 and len(resp.json()["predictions"]) == 3
