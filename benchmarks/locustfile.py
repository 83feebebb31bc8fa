"""One endpoint, no think time: the load generator of `make bench`.

    BENCH_ENDPOINT=predict locust -f benchmarks/locustfile.py --headless -u 16 -t 20s \
        --host http://127.0.0.1:3000

BENCH_ENDPOINT: predict (one 28x28 PNG), predict_batch (BENCH_BATCH PNGs, default 64)
or predict_pixels (JSON). Payloads are real test digits (load_tests/payloads.py).
"""

from __future__ import annotations

import os
import random

from locust import FastHttpUser, constant, events, task

from load_tests.payloads import build

ENDPOINT = os.environ.get("BENCH_ENDPOINT", "predict")
BATCH = int(os.environ.get("BENCH_BATCH", "64"))


@events.init.add_listener
def _init(environment, **_) -> None:
    environment.bench_payloads = build(n=640, batch_size=BATCH)


class BenchUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def hit(self) -> None:
        p = self.environment.bench_payloads
        if ENDPOINT == "predict_batch":
            body, ctype, _ = random.choice(p.batches)
        elif ENDPOINT == "predict_pixels":
            body, ctype = random.choice(p.pixels), "application/json"
        else:
            body, ctype = random.choice(p.predict)
        with self.client.post(f"/{ENDPOINT}", data=body, headers={"Content-Type": ctype},
                              catch_response=True) as resp:
            if resp.status_code != 200 or b"digit" not in (resp.content or b""):
                resp.failure(f"HTTP {resp.status_code}")
