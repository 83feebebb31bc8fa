"""What a challenger in shadow costs the champion: /predict with one against without, and
in process, per answer and per shadow batch.

    python -m benchmarks.shadow_overhead --onnx artifacts/model.onnx   # in process
    python -m benchmarks.run --shadow-only HOME   # the paired A/B against HOME's model

`make bench` (benchmarks/run.py) measures /predict without a challenger and with one
(`MNIST_CHALLENGER_TAG`: the same model version, at the default MNIST_SHADOW_SHARE) in
the same run, interleaved in ABBA order as monitoring's overhead is
(benchmarks/monitoring_overhead.py's `paired`); the ratio of their summed requests per
second is the figure its goal judges. In process: what `offer` adds to an answer (the
request path's whole share of the cost), and how long one shadow batch of both models
runs, which is how long every request would wait if it ran on the event loop
(service/shadow.py says why it runs on a thread).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from service.engine import Engine
from service.settings import Settings
from service.shadow import SHADOW_BATCH, Shadow

DEFAULT_SHARE = float(Settings.model_fields["shadow_share"].default)


class _Nothing:
    """A model that costs nothing: what is left is the shadow's own cost."""

    def logits(self, batch: np.ndarray) -> np.ndarray:
        return np.zeros((len(batch), 10), np.float32)


def offer_cost_us(n: int = 20_000, share: float = DEFAULT_SHARE) -> float:
    """Microseconds `offer` adds to an answer of one image, sampled at `share`, the queue
    emptied as the scoring thread would."""
    shadow = Shadow(_Nothing(), _Nothing(), "bench-offer", "bench:offer", share, n)
    image, logits = np.zeros((1, 28, 28), np.float32), np.zeros((1, 10), np.float32)
    start = time.perf_counter()
    for _ in range(n):
        shadow.offer(image, logits)
    spent = time.perf_counter() - start
    shadow.stop()
    return spent / n * 1e6


def batch_ms(onnx: Path, repeats: int = 50) -> float:
    """Milliseconds of one full shadow batch (both models: here the same file), median."""
    engine = Engine(onnx)
    batch = np.random.default_rng(0).integers(0, 255, (SHADOW_BATCH, 28, 28)).astype(
        np.float32)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        engine.logits(batch)
        engine.logits(batch)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--onnx", type=Path, help="a model.onnx: the batch's run time too")
    args = parser.parse_args(argv)
    print(f"shadow, per answer of one image at share {DEFAULT_SHARE:g}: "
          f"{offer_cost_us():.2f} µs on the request path")
    if args.onnx:
        print(f"one shadow batch of {SHADOW_BATCH} images, both models: "
              f"{batch_ms(args.onnx):.2f} ms (off the event loop)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
