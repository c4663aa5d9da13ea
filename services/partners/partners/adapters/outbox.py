"""The outbox on its own, for events that change no other table of the service (loyalty_runtime.outbox)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import asyncpg

from loyalty_runtime.outbox import OutboxMessage, enqueue


class OutboxWriter:
    """Borrows the service's pool; each call is one statement, so it commits whole or not at all."""

    def __init__(self, pool: Callable[[], asyncpg.Pool]) -> None:
        self._pool = pool

    async def enqueue(self, messages: Sequence[OutboxMessage]) -> None:
        async with self._pool().acquire() as conn:
            await enqueue(conn, messages)
