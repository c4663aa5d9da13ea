"""The open-loop sender keeps its schedule even when earlier requests are still waiting for answers."""

from __future__ import annotations

import asyncio
import time

from bench.openloop import send_on_schedule


async def test_requests_start_on_schedule_while_earlier_ones_still_wait_and_the_slow_ones_are_left_in_flight():
    started_at: dict[int, float] = {}
    release = asyncio.Event()

    async def send(k: int, due: float) -> None:
        started_at[k] = due
        if k == 0:
            await release.wait()  # the first request never gets its answer within the timeout

    in_flight: dict[asyncio.Task[None], float] = {}
    origin = time.perf_counter()

    await send_on_schedule(origin, 4, 0.01, send, in_flight, timeout=0.05)

    assert sorted(started_at) == [0, 1, 2, 3], "every request started although the first one waits"
    assert [round(started_at[k] - origin, 3) for k in range(4)] == [0.0, 0.01, 0.02, 0.03]
    assert list(in_flight.values()) == [origin], "only the unanswered first request is still in flight"
    release.set()
    await asyncio.wait(list(in_flight))
