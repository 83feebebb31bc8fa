"""service.backpressure: a bounded number of heavy decodes, a bounded queue, 503 beyond."""

from __future__ import annotations

import asyncio

import pytest

from service.backpressure import HeavyWork
from service.errors import Busy


def test_slots_then_queue_then_503_with_retry_after():
    async def scenario() -> tuple[list[str], Busy]:
        gate, release, log = HeavyWork(slots=1, queue=1), asyncio.Event(), []

        async def job(name: str) -> None:
            async with gate.slot():
                log.append(f"{name} runs")
                await release.wait()

        first = asyncio.create_task(job("a"))
        await asyncio.sleep(0)
        second = asyncio.create_task(job("b"))  # waits in the queue
        await asyncio.sleep(0)
        with pytest.raises(Busy) as info:
            async with gate.slot():
                pass
        release.set()
        await asyncio.gather(first, second)
        return log, info.value

    log, refused = asyncio.run(scenario())
    assert log == ["a runs", "b runs"]
    assert refused.status == 503 and refused.headers == {"Retry-After": "1"}


def test_a_failing_job_gives_its_slot_back():
    async def scenario() -> None:
        gate = HeavyWork(slots=1, queue=0)
        with pytest.raises(ValueError):
            async with gate.slot():
                raise ValueError("decode failed")
        async with gate.slot():  # would be a 503 if the slot had leaked
            pass

    asyncio.run(scenario())
