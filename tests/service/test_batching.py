"""Adaptive batching (service/batching.py): concurrent calls share inference calls, and
each caller gets its own rows back."""

from __future__ import annotations

import asyncio

import numpy as np

from service.batching import batched
from service.errors import Overloaded


def test_concurrent_calls_are_batched_and_answered_in_order():
    sizes: list[int] = []

    def infer(x: np.ndarray) -> np.ndarray:
        sizes.append(len(x))
        return np.repeat(x.reshape(len(x), -1)[:, :1], 10, axis=1)  # row i: its pixel [0, 0]

    async def main() -> list[np.ndarray]:
        infer_one = batched(infer, max_latency_ms=10_000, max_batch_size=256)
        inputs = [np.full((1, 28, 28), i, np.float32) for i in range(200)]
        return await asyncio.gather(*(infer_one(x) for x in inputs))

    outs = asyncio.run(main())
    assert [o.shape for o in outs] == [(1, 10)] * 200
    assert [int(o[0, 0]) for o in outs] == list(range(200))  # each caller, its own answer
    assert sum(sizes) >= 200 and max(sizes) > 1  # some calls really shared a batch


def test_an_inference_error_reaches_every_caller_of_its_batch():
    def infer(x: np.ndarray) -> np.ndarray:
        raise RuntimeError("boom")

    async def main() -> list[object]:
        infer_one = batched(infer, max_latency_ms=10_000, max_batch_size=256)
        return await asyncio.gather(*(infer_one(np.zeros((1, 28, 28), np.float32))
                                      for _ in range(20)), return_exceptions=True)

    assert all(isinstance(r, RuntimeError) for r in asyncio.run(main()))


def test_a_call_over_the_latency_budget_is_a_503():
    import time

    def slow(x: np.ndarray) -> np.ndarray:
        time.sleep(0.05)
        return np.zeros((len(x), 10), np.float32)

    async def main() -> list[object]:
        infer_one = batched(slow, max_latency_ms=1, max_batch_size=1)
        return await asyncio.gather(*(infer_one(np.zeros((1, 28, 28), np.float32))
                                      for _ in range(30)), return_exceptions=True)

    results = asyncio.run(main())
    refused = [r for r in results if isinstance(r, Overloaded)]
    assert refused and all(r.status == 503 for r in refused)


def test_one_batcher_serves_successive_event_loops():
    """A dispatcher belongs to the loop it started on; an in-process client runs one loop
    per test module, and the service's batcher must answer on each."""
    infer_one = batched(lambda x: np.zeros((len(x), 10), np.float32), max_latency_ms=10_000,
                        max_batch_size=256)
    for _ in range(2):
        out = asyncio.run(asyncio.wait_for(infer_one(np.zeros((1, 28, 28), np.float32)), 5))
        assert out.shape == (1, 10)
