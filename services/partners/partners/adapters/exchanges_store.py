"""PostgreSQL persistence of the exchanges asked of partners (partners.domain.exchanges)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from loyalty_runtime import inbox
from loyalty_runtime.outbox import OutboxMessage, enqueue
from partners.domain.exchanges import ExchangeRequest, ExchangeStatus

_COLUMNS = """exchange_id, partner_id, member_id, membership_number, points, units, units_name, units_per_point,
requested_at, expires_at, status, partner_reference, refuse_reason, decided_by, decided_at, settled, settled_reason"""

INSERT_REQUESTS = f"""
INSERT INTO exchange_requests ({_COLUMNS})
SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::bigint[], $6::bigint[], $7::text[],
                     $8::numeric[], $9::timestamptz[], $10::timestamptz[], $11::text[], $12::text[], $13::text[],
                     $14::text[], $15::timestamptz[], $16::text[], $17::text[])
ON CONFLICT (exchange_id) DO NOTHING
"""

RECORD_SETTLED = """
UPDATE exchange_requests e SET settled = u.settled, settled_reason = u.reason, settled_at = u.at
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[]) AS u(exchange_id, settled, reason, at)
WHERE e.exchange_id = u.exchange_id
"""

LOCK_REQUEST = f"SELECT {_COLUMNS} FROM exchange_requests WHERE partner_id = $1 AND exchange_id = $2 FOR UPDATE"

SAVE_DECISION = """
UPDATE exchange_requests SET status = $2, partner_reference = $3, refuse_reason = $4, decided_by = $5, decided_at = $6
WHERE exchange_id = $1
"""

LIST_REQUESTS = f"""
SELECT {_COLUMNS} FROM exchange_requests
WHERE partner_id = $1
  AND CASE $2::text
        WHEN 'pending' THEN status = 'pending' AND expires_at > $3
        WHEN 'expired' THEN status = 'pending' AND expires_at <= $3
        WHEN 'all' THEN true
        ELSE status = $2
      END
ORDER BY requested_at DESC, exchange_id LIMIT $4
"""


def _request(r: asyncpg.Record) -> ExchangeRequest:
    return ExchangeRequest(**{**dict(r), "status": ExchangeStatus(r["status"])})


@dataclass(frozen=True)
class Settled:
    exchange_id: uuid.UUID
    outcome: str
    reason: str
    at: datetime


class ExchangesTransaction:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def claim_inbox(self, topic: str, event_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        return await inbox.claim(self.conn, topic, event_ids)

    async def add_requests(self, requests: Sequence[ExchangeRequest]) -> None:
        """Store the exchanges asked for; one known already (a redelivery) stays as it is."""
        if not requests:
            return
        columns = [c.strip() for c in _COLUMNS.split(",")]
        values = [[getattr(r, c) for r in requests] for c in columns]
        values[columns.index("status")] = [r.status.value for r in requests]
        await self.conn.execute(INSERT_REQUESTS, *values)

    async def record_settled(self, settled: Sequence[Settled]) -> None:
        if settled:
            await self.conn.execute(RECORD_SETTLED, [s.exchange_id for s in settled], [s.outcome for s in settled],
                                    [s.reason for s in settled], [s.at for s in settled])  # fmt: skip

    async def lock(self, partner_id: str, exchange_id: uuid.UUID) -> ExchangeRequest | None:
        row = await self.conn.fetchrow(LOCK_REQUEST, partner_id, exchange_id)
        return _request(row) if row is not None else None

    async def save_decision(self, decided: ExchangeRequest) -> None:
        d = decided
        await self.conn.execute(SAVE_DECISION, d.exchange_id, d.status.value, d.partner_reference, d.refuse_reason,
                                d.decided_by, d.decided_at)  # fmt: skip

    async def enqueue(self, messages: Sequence[OutboxMessage]) -> None:
        await enqueue(self.conn, messages)


class ExchangesStore:
    """Borrows the service's pool, never owns it."""

    def __init__(self, pool: Callable[[], asyncpg.Pool]) -> None:
        self._pool = pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[ExchangesTransaction]:
        async with self._pool().acquire() as conn, conn.transaction():
            yield ExchangesTransaction(conn)

    async def list(self, partner_id: str, status: str, now: datetime, limit: int) -> list[ExchangeRequest]:
        return [_request(r) for r in await self._pool().fetch(LIST_REQUESTS, partner_id, status, now, limit)]
