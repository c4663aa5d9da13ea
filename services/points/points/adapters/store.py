"""PostgreSQL persistence of the points service (asyncpg, hand-written SQL, batch parameters)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from uuid import UUID

import asyncpg

from points.domain.earn import PartnerTransaction

CLAIM_INBOX = """
INSERT INTO inbox (event_id, topic)
SELECT id, $2 FROM unnest($1::uuid[]) AS id
ON CONFLICT (event_id) DO NOTHING
RETURNING event_id
"""

INSERT_PARTNER_TRANSACTIONS = """
INSERT INTO partner_transactions
    (event_id, kind, partner_id, customer_ref, external_id, purchase_id, amount_minor, currency, category, occurred_at)
SELECT * FROM unnest(
    $1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::text[], $9::text[],
    $10::timestamptz[]
)
ON CONFLICT DO NOTHING
"""


APPLIED_EVENT = """
SELECT i.event_id, i.topic, i.received_at, t.kind, t.partner_id, t.customer_ref, t.external_id,
       t.amount_minor, t.currency
FROM inbox i LEFT JOIN partner_transactions t USING (event_id)
WHERE i.event_id = $1
"""


class Transaction:
    """The statements available inside one database transaction."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def claim_inbox(self, topic: str, event_ids: Sequence[UUID]) -> set[UUID]:
        """Record the ids in the inbox; returns those seen for the first time."""
        rows = await self._conn.fetch(CLAIM_INBOX, list(event_ids), topic)
        return {row["event_id"] for row in rows}

    async def insert_partner_transactions(self, items: Sequence[PartnerTransaction]) -> None:
        if not items:
            return
        await self._conn.execute(
            INSERT_PARTNER_TRANSACTIONS,
            [t.event_id for t in items],
            [t.kind for t in items],
            [t.partner_id for t in items],
            [t.customer_ref for t in items],
            [t.external_id for t in items],
            [t.purchase_id for t in items],
            [t.amount_minor for t in items],
            [t.currency for t in items],
            [t.category for t in items],
            [t.occurred_at for t in items],
        )


class PointsStore:
    """Borrows a pool it does not own and hands out transactions."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def applied_event(self, event_id: UUID) -> dict[str, object] | None:
        row = await self._pool.fetchrow(APPLIED_EVENT, event_id)
        return dict(row) if row is not None else None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        async with self._pool.acquire() as conn, conn.transaction():
            yield Transaction(conn)
