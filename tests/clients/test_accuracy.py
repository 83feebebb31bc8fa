"""clients.accuracy against the live service, run as users run it."""

from __future__ import annotations

import json

from tests.helpers import run_module


def test_accuracy_is_reported_per_upload_style(server, mnist_folder, tmp_path):
    out = tmp_path / "eval.json"
    proc = run_module("clients.accuracy", ["--url", server, "--limit", "40", "--styles",
                                           "already_mnist", "jpeg_on_paper", "--json", str(out)],
                      {"MNIST_DIR": str(mnist_folder)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads(out.read_text())["results"]
    assert set(results) == {"already_mnist", "jpeg_on_paper"}
    assert all(r["n"] == 40 and r["accuracy"] >= 0.75 for r in results.values())


def test_without_data_it_says_how_to_provide_it_and_exits_2(tmp_path):
    proc = run_module("clients.accuracy", ["--data-dir", str(tmp_path / "nope")], {})
    assert proc.returncode == 2
    assert proc.stdout.strip().splitlines()[-1].startswith("error: ")
