"""In-process ceilings: decode -> preprocess -> inference, and raw onnxruntime inference.

    python -m benchmarks.ceiling --onnx artifacts/model.onnx --data-dir ../shared/data/mnist
    python -m benchmarks.ceiling ... --providers CUDAExecutionProvider --json gpu.json  # on a GPU

One thread, no HTTP: what the service could reach at best on one core, with its
preprocessing under its settings (MNIST_* variables apply).
"""

from __future__ import annotations

import argparse
import io
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from core.data import load_idx_folder
from core.png import encode_png
from service.engine import Engine
from service.preprocess import to_model_input
from service.settings import Settings, load_settings


def _rate(fn: Callable[[], int], min_seconds: float = 2.0) -> float:
    """Items per second of fn (which returns how many items it did), over >= min_seconds."""
    fn()  # warm-up
    done, t0 = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - t0) < min_seconds:
        done += fn()
    return done / elapsed


def measure(onnx_path: str | Path, data_dir: str, limits: Settings,
            providers: tuple[str, ...] = ()) -> dict:
    images = load_idx_folder(data_dir).test_images[:1024]
    pngs = [encode_png(d) for d in images]
    engine = Engine(onnx_path, providers=providers, threads=1)
    one = images[:1].astype(np.float32)
    big = images[:256].astype(np.float32)
    state = {"i": 0}

    def pipeline_one() -> int:
        data = pngs[state["i"] % len(pngs)]
        state["i"] += 1
        engine.probabilities(to_model_input(data, limits)[None])
        return 1

    def pipeline_batch64() -> int:
        start = state["i"] % (len(pngs) - 64)
        state["i"] += 64
        engine.probabilities(np.stack([to_model_input(d, limits)
                                       for d in pngs[start:start + 64]]))
        return 64

    t0, n = time.perf_counter(), 2000
    for _ in range(n):
        engine.logits(one)
    batch1_us = (time.perf_counter() - t0) / n * 1e6
    # The whole preprocessing of a 28x28 PNG against Pillow's decode of it alone.
    sample = pngs[:256]
    preprocess_us = 1e6 / _rate(lambda: sum(1 for d in sample
                                            if to_model_input(d, limits) is not None))
    decode_us = 1e6 / _rate(lambda: sum(1 for d in sample
                                        if np.asarray(Image.open(io.BytesIO(d))).size))
    return {
        "provider": engine.provider,
        "pipeline_images_per_s": _rate(pipeline_one),
        "pipeline_batch64_images_per_s": _rate(pipeline_batch64),
        "infer_batch1_latency_us": batch1_us,
        "infer_batch1_images_per_s": 1e6 / batch1_us,
        "infer_batch256_images_per_s": _rate(lambda: (engine.logits(big), 256)[1]),
        "preprocess_28_us": preprocess_us,
        "pillow_decode_28_us": decode_us,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--onnx", required=True, help="the exported model.onnx")
    p.add_argument("--data-dir", required=True, help="MNIST IDX folder")
    p.add_argument("--providers", nargs="*", default=[], help="onnxruntime providers")
    p.add_argument("--json", default=None, help="write the figures here too")
    args = p.parse_args(argv)
    result = measure(args.onnx, args.data_dir, load_settings(), tuple(args.providers))
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
