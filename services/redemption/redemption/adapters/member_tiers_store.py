"""Members' tiers as the points service announced them (loyalty.member-tiers.v1), in PostgreSQL (asyncpg)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import asyncpg

from loyalty_runtime import inbox
from redemption.domain.prices import TierNews

# An older change arriving late changes nothing: the latest `changed_at` of a member wins.
SAVE_TIERS = """
INSERT INTO member_tiers (member_id, tier, changed_at, event_id)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::uuid[])
ON CONFLICT (member_id) DO UPDATE
   SET tier = EXCLUDED.tier, changed_at = EXCLUDED.changed_at, event_id = EXCLUDED.event_id
 WHERE member_tiers.changed_at < EXCLUDED.changed_at
"""


class MemberTiersTransaction:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def claim_inbox(self, topic: str, event_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        return await inbox.claim(self.conn, topic, event_ids)

    async def save(self, news: Sequence[TierNews]) -> None:
        """At most one item per member, sorted by member (domain.prices.latest_per_member)."""
        if news:
            columns = [[n.member_id for n in news], [n.tier for n in news],
                       [n.changed_at for n in news], [n.event_id for n in news]]  # fmt: skip
            await self.conn.execute(SAVE_TIERS, *columns)


class MemberTiersStore:
    """Borrows the service's pool, never owns it."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[MemberTiersTransaction]:
        async with self._pool.acquire() as conn, conn.transaction():
            yield MemberTiersTransaction(conn)
