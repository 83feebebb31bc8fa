"""clients.demo end to end: it starts the service, shows its answers and stops it."""

from __future__ import annotations

from tests.helpers import run_module


def test_demo_serves_answers_and_stops(trained, mnist_folder):
    proc = run_module("clients.demo", [], {"MNIST_DIR": str(mnist_folder),
                                           "BENTOML_HOME": str(trained[2])})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "-> 415 {'error': 'unsupported image format GIF" in proc.stdout
    assert proc.stdout.strip().endswith("== service stopped")
