"""Bounded heavy work per worker: a few large decodes at once, a short queue, 503 beyond.

    MNIST_DECODE_SLOTS=2 MNIST_DECODE_QUEUE=16 bentoml serve service.service:MNISTService

Large images are decoded on threads, so the event loop (and /readyz) stays free; but
threads only move the cost. Without a bound, eight clients sending 25-Mpx images pile
up decodes until the worker runs out of memory. A request that finds every slot busy
and the queue full gets 503 with Retry-After at once, before any decoding.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from service.errors import Busy


class HeavyWork:
    def __init__(self, slots: int, queue: int) -> None:
        self._slots = asyncio.Semaphore(max(1, slots))
        self._queue = queue
        self.waiting = 0

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one slot for the block; raise Busy (503) when none can be had."""
        if self._slots.locked() and self.waiting >= self._queue:
            raise Busy("the server is busy decoding large images: retry shortly")
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        try:
            yield
        finally:
            self._slots.release()
