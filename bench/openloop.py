"""An open-loop sender: request k starts at its scheduled time, whether or not earlier ones were answered.

A closed loop (each client waits for its answer) slows down with the system it measures and hides the
queue; an open loop keeps the offered rate, so a queue shows as latency counted from the scheduled time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

Send = Callable[[int, float], Coroutine[Any, Any, None]]
"""send(k, due): the k-th request, scheduled at `due` (time.perf_counter)."""


async def send_on_schedule(
    started: float, count: int, every: float, send: Send, in_flight: dict[asyncio.Task[None], float], timeout: float
) -> None:
    """Start `send(k, started + k * every)` for k below `count`, each on time, then wait at most `timeout` for the
    last answers; `in_flight` holds the requests under way (task: scheduled time), those left at the end too."""
    for k in range(count):
        due = started + k * every
        if (delay := due - time.perf_counter()) > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(send(k, due))
        in_flight[task] = due
        task.add_done_callback(in_flight.pop)
    if in_flight:
        await asyncio.wait(list(in_flight), timeout=timeout)
