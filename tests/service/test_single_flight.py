"""service/single_flight.py: callers share runs, one at a time, each run after its callers came.

    pytest tests/service/test_single_flight.py
"""

from __future__ import annotations

import asyncio
import threading
import time

from service.single_flight import SingleFlight


class Counter:
    """A blocking read that counts its runs and how many ran at once."""

    def __init__(self, seconds: float = 0.05, fail: bool = False) -> None:
        self.seconds, self.fail = seconds, fail
        self.runs = self.running = self.most = 0
        self.lock = threading.Lock()

    def __call__(self) -> int:
        with self.lock:
            self.runs += 1
            self.running += 1
            self.most = max(self.most, self.running)
            run = self.runs
        time.sleep(self.seconds)
        with self.lock:
            self.running -= 1
        if self.fail:
            raise OSError("unreadable")
        return run


def test_callers_during_a_run_share_the_next_one():
    read = Counter()

    async def main() -> list[int]:
        flight = SingleFlight(read)
        first = asyncio.create_task(flight())
        await asyncio.sleep(0.01)  # the first run is on its thread now
        return [await first, *await asyncio.gather(*(flight() for _ in range(30)))]

    results = asyncio.run(main())
    assert read.most == 1 and read.runs == 2
    assert results == [1] + [2] * 30  # the 30 came during run 1: it began before them


def test_a_caller_after_a_run_gets_a_run_of_its_own():
    read = Counter(seconds=0)

    async def main() -> list[int]:
        flight = SingleFlight(read)
        return [await flight(), await flight(), await flight()]

    assert asyncio.run(main()) == [1, 2, 3]


def test_a_caller_that_leaves_does_not_cancel_the_others():
    read = Counter()

    async def main() -> int:
        flight = SingleFlight(read)
        leaving, staying = asyncio.create_task(flight()), asyncio.create_task(flight())
        await asyncio.sleep(0.01)
        leaving.cancel()
        return await staying

    assert asyncio.run(main()) == 1


def test_a_failure_reaches_every_caller_and_the_next_call_reads_again():
    read = Counter(fail=True)

    async def main() -> None:
        flight = SingleFlight(read)
        results = await asyncio.gather(flight(), flight(), return_exceptions=True)
        assert all(isinstance(r, OSError) for r in results)
        read.fail = False
        assert await flight() == 2

    asyncio.run(main())


def test_a_flight_left_on_a_closed_event_loop_does_not_block_the_next_loop():
    read = Counter()
    flight = SingleFlight(read)

    async def leave() -> None:
        asyncio.create_task(flight())
        await asyncio.sleep(0)  # a run made, then this loop ends

    asyncio.run(leave())
    assert asyncio.run(asyncio.wait_for(flight(), 5)) >= 1

