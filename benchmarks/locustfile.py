"""One endpoint, no think time, every answer checked: the load generator of `make bench`.

    BENCH_ENDPOINT=predict BENCH_ONNX_PATH=artifacts/model.onnx locust \
        -f benchmarks/locustfile.py --headless -u 16 -t 20s --host http://127.0.0.1:3000

BENCH_ENDPOINT: predict (one 28x28 PNG), predict_batch (BENCH_BATCH PNGs, default 64)
or predict_pixels (JSON). BENCH_PATH: where to POST it (default /BENCH_ENDPOINT; a peer's
route). Payloads are real test digits (load_tests/payloads.py). BENCH_CHECK=digit (the
default): an answer counts only with a 200 and, for each image, the digit the model gives
in process (BENCH_ONNX_PATH; without it, the true label, so the model's own mistakes fail
too); BENCH_CHECK=status: a 200 is enough (the transport ceiling answers no digit).
"""

from __future__ import annotations

import os
import random
import re

import numpy as np
from locust import FastHttpUser, constant, events, task

from load_tests.payloads import build

ENDPOINT = os.environ.get("BENCH_ENDPOINT", "predict")
PATH = os.environ.get("BENCH_PATH", f"/{ENDPOINT}")
BATCH = int(os.environ.get("BENCH_BATCH", "64"))
CHECK = os.environ.get("BENCH_CHECK", "digit")
DIGIT = re.compile(rb'"digit"\s*:\s*(\d+)')


def expected_digits(images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """What every answer must say: the model's digits run in process, or the labels."""
    onnx_path = os.environ.get("BENCH_ONNX_PATH")
    if not onnx_path:
        return labels
    from service.engine import Engine

    return Engine(onnx_path, threads=1).probabilities(images.astype(np.float32)).argmax(1)


@events.init.add_listener
def _init(environment, **_) -> None:
    payloads = build(n=640, batch_size=BATCH)
    environment.bench_payloads = payloads
    environment.bench_expected = expected_digits(payloads.images, payloads.labels)


def wrong(body: bytes, expected: np.ndarray) -> str | None:
    """Why an answer is not the expected digits (in order), or None when it is."""
    said = [int(d) for d in DIGIT.findall(body)]
    if said != expected.tolist():
        return f"answered {said[:4]}, expected {expected[:4].tolist()}"
    return None


class BenchUser(FastHttpUser):
    wait_time = constant(0)

    def _request(self) -> tuple[bytes, str, np.ndarray]:
        p, expected = self.environment.bench_payloads, self.environment.bench_expected
        if ENDPOINT == "predict_batch":
            k = random.randrange(len(p.batches))
            body, ctype, _ = p.batches[k]
            return body, ctype, expected[k * BATCH:(k + 1) * BATCH]
        i = random.randrange(len(p.labels))
        if ENDPOINT == "predict_pixels":
            return p.pixels[i], "application/json", expected[i:i + 1]
        body, ctype = p.predict[i]
        return body, ctype, expected[i:i + 1]

    @task
    def hit(self) -> None:
        body, ctype, expected = self._request()
        # geventhttpclient sends bytes as they are; its annotation says str.
        with self.client.post(PATH, data=body, headers={"Content-Type": ctype},  # type: ignore[arg-type]
                              catch_response=True, name=ENDPOINT) as resp:
            if resp.status_code != 200:
                resp.failure(f"HTTP {resp.status_code}")
            elif CHECK == "digit" and (why := wrong(resp.content or b"", expected)):
                resp.failure(why)
