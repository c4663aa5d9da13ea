"""What intake accepted, with what each item said, in PostgreSQL (asyncpg): one statement records a whole batch."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

import asyncpg

from partners.domain.idempotency import IntakeEntry
from partners.domain.intake import Kind
from partners.handlers.intake import ContendedIntakeError, Particulars

# Sorted by key, so that two requests with the same items take their row locks in the same order.
CLAIM_ENTRIES = """
INSERT INTO intake_requests (partner_id, kind, idempotency_key, body_hash, external_id, event_id,
                             customer_ref, amount_minor, currency, purchase_id, points)
SELECT $1, $2, e.idempotency_key, e.body_hash, e.external_id, e.event_id,
       e.customer_ref, e.amount_minor, e.currency, e.purchase_id, e.points
  FROM unnest($3::text[], $4::bytea[], $5::text[], $6::uuid[],
              $7::text[], $8::bigint[], $9::text[], $10::text[], $11::bigint[])
       AS e(idempotency_key, body_hash, external_id, event_id,
            customer_ref, amount_minor, currency, purchase_id, points)
 ORDER BY e.idempotency_key
ON CONFLICT DO NOTHING
"""

# A statement of its own: its snapshot sees the rows of the concurrent requests that CLAIM_ENTRIES waited for.
SELECT_RECORDED = """
SELECT idempotency_key, body_hash, external_id, event_id
  FROM intake_requests
 WHERE partner_id = $1 AND kind = $2 AND (idempotency_key = ANY($3::text[]) OR external_id = ANY($4::text[]))
"""


class IntakeTransaction:
    def __init__(self, conn: asyncpg.Connection, partner_id: str, kind: Kind) -> None:
        self._conn = conn
        self._partner_id = partner_id
        self._kind = kind

    async def claim(
        self, entries: Sequence[IntakeEntry], particulars: Sequence[Particulars] | None = None
    ) -> Sequence[IntakeEntry]:
        keys = [e.idempotency_key for e in entries]
        ids = [e.external_id for e in entries]
        said: Sequence[Particulars | None] = particulars if particulars is not None else [None] * len(entries)
        try:
            status: str = await self._conn.execute(
                CLAIM_ENTRIES,
                self._partner_id,
                self._kind,
                keys,
                [e.body_hash for e in entries],
                ids,
                [e.event_id for e in entries],
                [p.customer_ref if p else None for p in said],
                [p.amount_minor if p else None for p in said],
                [p.currency if p else None for p in said],
                [p.purchase_id if p else None for p in said],
                [p.points if p else None for p in said],
            )
        except asyncpg.DeadlockDetectedError as error:
            raise ContendedIntakeError() from error
        if int(status.split()[-1]) == len(entries):
            return []  # all new: the usual case costs one round trip
        rows = await self._conn.fetch(SELECT_RECORDED, self._partner_id, self._kind, keys, ids)
        return [IntakeEntry(r["idempotency_key"], r["body_hash"], r["external_id"], r["event_id"]) for r in rows]


class IntakeStore:
    """Borrows the service's pool (it exists only while the service runs), never owns it."""

    def __init__(self, pool: Callable[[], asyncpg.Pool]) -> None:
        self._pool = pool

    @asynccontextmanager
    async def recording(self, partner_id: str, kind: Kind) -> AsyncIterator[IntakeTransaction]:
        async with self._pool().acquire() as conn, conn.transaction():
            yield IntakeTransaction(conn, partner_id, kind)
