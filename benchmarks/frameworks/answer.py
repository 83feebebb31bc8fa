"""The model every framework peer serves: one PNG in, the digit and its probabilities out.

    python -m benchmarks.frameworks.answer artifacts/model.onnx some-digit.png

Runs inside each peer's own virtual environment (onnxruntime, numpy and Pillow only, never
the project's packages), so it is written the way a user of those frameworks would: Pillow
decodes the upload, onnxruntime runs the graph on one thread, as the service's default.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image


class DigitModel:
    """An onnxruntime session of model.onnx, one intra- and one inter-op thread."""

    def __init__(self, onnx_path: str | Path) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(onnx_path), options, providers=["CPUExecutionProvider"])
        self.answered = False

    def __call__(self, png: bytes) -> dict:
        """{"digit", "confidence", "probabilities"} of one PNG upload."""
        pixels = np.asarray(Image.open(io.BytesIO(png)), dtype=np.float32)[None]
        logits = self.session.run(["logits"], {"pixels": pixels})[0][0]
        exp = np.exp(logits - logits.max())
        probabilities = exp / exp.sum()
        digit = int(probabilities.argmax())
        if not self.answered:  # once per process: which workers answered, not how often
            self.answered = True
            print(f"first answer from pid {os.getpid()}", file=sys.stderr, flush=True)
        return {"digit": digit, "confidence": float(probabilities[digit]),
                "probabilities": probabilities.tolist()}


if __name__ == "__main__":
    print(DigitModel(sys.argv[1])(Path(sys.argv[2]).read_bytes()))
