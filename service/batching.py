"""Adaptive batching of single-image inferences across concurrent requests.

    MNIST_BATCH_MAX_LATENCY_MS=1000 bentoml serve service.service:MNISTService  # default

BentoML's own dispatcher (the CORK algorithm behind `@bentoml.api(batchable=True)`):
it holds each call at most `max_latency_ms`, learns how long a batch takes, and
releases a batch when waiting longer would not pay. BentoML applies it only to a whole
batchable endpoint, whose input it parses itself; ours parse their own input
(service/http_input.py), so the dispatcher wraps just the inference step here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import numpy as np
from bentoml._internal.marshal.dispatcher import CorkDispatcher

from service.errors import Overloaded

Infer = Callable[[np.ndarray], np.ndarray]  # float32 [N, 28, 28] -> float32 [N, 10]


def _overloaded() -> np.ndarray:
    # The dispatcher cancels a call it cannot serve within its latency budget.
    raise Overloaded("the server is overloaded; retry later")


def batched(infer: Infer, max_latency_ms: int,
            max_batch_size: int) -> Callable[[np.ndarray], Awaitable[np.ndarray]]:
    """An async version of `infer` for [n, 28, 28] inputs whose concurrent calls share
    one `infer` call (n is usually 1: one request's image) of at most max_batch_size
    images (the service passes MNIST_MAX_BATCH)."""

    async def infer_many(inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        out = infer(np.concatenate(inputs) if len(inputs) > 1 else inputs[0])
        splits = np.cumsum([len(x) for x in inputs])[:-1]
        return list(np.split(out, splits))

    # A dispatcher's queue and task belong to one event loop: a worker has one, an
    # in-process test client may run several in turn. One dispatcher per running loop.
    current: dict[asyncio.AbstractEventLoop, Callable[[np.ndarray], Awaitable[Any]]] = {}

    async def call(x: np.ndarray) -> np.ndarray:
        loop = asyncio.get_running_loop()
        if loop not in current:
            current.clear()
            dispatcher: CorkDispatcher[np.ndarray, np.ndarray] = CorkDispatcher(
                max_latency_ms, max_batch_size, fallback=_overloaded, get_batch_size=len)
            current[loop] = dispatcher(infer_many)
        return await current[loop](x)  # our fallback raises: never None

    return call
