"""The training floor: a run's optimizer steps on the bare MLP, over its own digits."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import torch
from torch import nn

from training.floor import BATCHES, bare_mlp, ready_batches, steps_of


def _metrics(trained) -> dict:
    return json.loads((trained[1] / "metrics.json").read_text())


def test_the_floor_takes_the_runs_steps_and_widths(trained):
    metrics = _metrics(trained)
    batch_size = metrics["config"]["batch_size"]
    assert steps_of(metrics) == metrics["epochs_run"] * math.ceil(
        metrics["split"]["train"] / batch_size)
    linears = [m for m in bare_mlp(metrics["config"]["model"]["hidden_sizes"])
               if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(784, 256), (256, 10)]


def test_the_batches_are_the_runs_digits_standardised_in_whole_batches(trained):
    metrics = _metrics(trained)
    images, labels = ready_batches(metrics)
    batch_size = metrics["config"]["batch_size"]
    # 4,000 training digits: fewer than BATCHES whole batches, and no partial one.
    assert images.shape == (4000 // batch_size, batch_size, 28, 28) and 4000 // batch_size < BATCHES
    assert labels.shape == images.shape[:2] and set(labels.unique().tolist()) == set(range(10))
    assert abs(images.mean().item()) < 0.1 and 0.9 < images.std().item() < 1.1  # as read
    assert torch.isfinite(images).all()


def test_the_command_prints_the_steps_and_their_seconds(trained, tmp_path):
    metrics = _metrics(trained)
    short = {**metrics, "epochs_run": 2}
    (tmp_path / "metrics.json").write_text(json.dumps(short))
    proc = subprocess.run([sys.executable, "-m", "training.floor", str(tmp_path / "metrics.json")],
                          capture_output=True, text=True, check=True)
    result = json.loads(proc.stdout)
    assert result["steps"] == steps_of(short) and result["seconds"] > 0
