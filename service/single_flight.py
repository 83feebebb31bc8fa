"""Concurrent callers of an expensive read share one run of it, off the event loop.

    pytest tests/service/test_single_flight.py

GET /monitoring reads every worker's metric files and recomputes the drift. On a thread
per call, many concurrent callers held the GIL in turns against the event loop, and every
other request of the worker waited (tests/security/test_monitoring_attacks.py). Here
a caller that comes while a run is in progress waits for the next run, which every caller
that came meanwhile shares: each answer is still computed after its caller came, and at
most one run is in progress and one waits, however many call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

import anyio

T = TypeVar("T")


def _ours(task: asyncio.Task | None) -> asyncio.Task | None:
    """The task if it runs on this event loop (a test's earlier loop may be gone)."""
    return task if task is not None and task.get_loop() is asyncio.get_running_loop() \
        else None


class SingleFlight(Generic[T]):
    """`await flight()`: the result of `compute` (a blocking function, run on a thread)
    from a run that started after this call."""

    def __init__(self, compute: Callable[[], T]) -> None:
        self._compute = compute
        self._queued: asyncio.Task[T] | None = None  # the run not started yet: shared
        self._last: asyncio.Task[T] | None = None  # the run made most recently

    async def __call__(self) -> T:
        queued = _ours(self._queued)
        if queued is None:
            queued = self._queued = self._last = asyncio.create_task(
                self._run(_ours(self._last)))
        # A caller that leaves does not cancel the run the others wait for.
        return await asyncio.shield(queued)

    async def _run(self, previous: asyncio.Task[T] | None) -> T:
        if previous is not None and not previous.done():
            await asyncio.wait([previous])
        if self._queued is asyncio.current_task():
            self._queued = None  # whoever comes from now on waits for the next run
        return await anyio.to_thread.run_sync(self._compute)
