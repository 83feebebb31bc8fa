"""The training floor: a training run's optimizer steps, and nothing else.

    python -m training.floor artifacts/metrics.json     # prints {"steps": ..., "seconds": ...}

The same number of optimizer steps as the run whose metrics.json is given (epochs run x
batches per epoch), each a forward, backward and optimizer step of the bare MLP of its
widths (Linear, ReLU, Linear: no dropout, no label smoothing, no in-graph normalisation)
on batches already in memory, with its optimizer and batch size. The batches are the
run's own training digits and labels (standardised, in file order): on random ones the
network cannot learn, its first layer dies, Adam's moments decay into denormal floats,
and a step costs three times as much as on digits. `make bench` divides the
whole training command's time by it: how much more than the unavoidable arithmetic the
job costs, a figure that carries from one CPU to another better than seconds do.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from core.contract import CONTRACT
from core.data import resolve_or_exit
from training.loop import make_optimizer

# Distinct ready batches cycled through: the floor reads from memory as a real epoch does.
BATCHES = 64


def bare_mlp(hidden_sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Flatten()]
    width = CONTRACT.height * CONTRACT.width
    for size in hidden_sizes:
        layers += [nn.Linear(width, size), nn.ReLU()]
        width = size
    return nn.Sequential(*layers, nn.Linear(width, CONTRACT.num_classes))


def steps_of(metrics: dict[str, Any]) -> int:
    """The optimizer steps a training run took."""
    batch_size = metrics["config"]["batch_size"]
    return metrics["epochs_run"] * math.ceil(metrics["split"]["train"] / batch_size)


def ready_batches(metrics: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """Up to BATCHES whole batches of the run's training digits, standardised as the
    network reads them, and their labels: [n, batch, 28, 28] and [n, batch]."""
    dataset = resolve_or_exit(metrics["dataset"]["location"], allow_download=False)
    batch_size = metrics["config"]["batch_size"]
    count = min(BATCHES, len(dataset.train_labels) // batch_size) * batch_size
    pixels = torch.as_tensor(dataset.train_images[:count], dtype=torch.float32)
    images = (pixels / CONTRACT.pixel_max - CONTRACT.mean) / CONTRACT.std
    labels = torch.as_tensor(dataset.train_labels[:count], dtype=torch.int64)
    return images.view(-1, batch_size, *images.shape[1:]), labels.view(-1, batch_size)


def floor_seconds(metrics: dict[str, Any], seed: int = 0) -> float:
    """Seconds of steps_of(metrics) bare steps (see the module's docstring)."""
    recipe = metrics["config"]
    torch.manual_seed(seed)
    model = bare_mlp(recipe["model"]["hidden_sizes"])
    optimizer = make_optimizer(recipe["optimizer"], model.parameters(), recipe["lr"], 0.0)
    images, labels = ready_batches(metrics)
    started = time.perf_counter()
    for step in range(steps_of(metrics)):
        batch = step % len(images)
        loss = F.cross_entropy(model(images[batch]), labels[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.floor", description=__doc__.split(
        "\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("metrics", type=Path, help="a training run's metrics.json")
    args = parser.parse_args(argv)
    metrics = json.loads(args.metrics.read_text())
    print(json.dumps({"steps": steps_of(metrics), "seconds": round(floor_seconds(metrics), 3)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
