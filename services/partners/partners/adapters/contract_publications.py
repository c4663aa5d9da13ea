"""Earn contract versions not yet published, and their publication through the outbox (one transaction)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import asyncpg

from loyalty_runtime.outbox import OutboxMessage, enqueue
from partners.handlers.contract_events import UnpublishedVersion

# SKIP LOCKED: two partners processes publish disjoint versions; oldest first, so a partner's versions leave in order.
CLAIM_UNPUBLISHED = """
SELECT partner_id, valid_from, currency, issue_price_minor_per_point, redemption_price_minor_per_point, created_at
  FROM earn_contracts
 WHERE published_at IS NULL
 ORDER BY partner_id, valid_from
 LIMIT $1
   FOR UPDATE SKIP LOCKED
"""

MARK_PUBLISHED = """
UPDATE earn_contracts SET published_at = now()
 WHERE (partner_id, valid_from) IN (SELECT * FROM unnest($1::text[], $2::date[]))
"""


class ContractPublications:
    """Borrows the service's pool; `publish` claims, enqueues and marks in one transaction."""

    def __init__(self, pool: Callable[[], asyncpg.Pool]) -> None:
        self._pool = pool

    async def publish(
        self, limit: int, messages: Callable[[Sequence[UnpublishedVersion]], Sequence[OutboxMessage]]
    ) -> int:
        """Publish up to `limit` unpublished versions; the number published (0: none was waiting)."""
        async with self._pool().acquire() as conn, conn.transaction():
            rows = await conn.fetch(CLAIM_UNPUBLISHED, limit)
            if not rows:
                return 0
            versions = [UnpublishedVersion(**dict(row)) for row in rows]
            await enqueue(conn, messages(versions))
            await conn.execute(MARK_PUBLISHED, [v.partner_id for v in versions], [v.valid_from for v in versions])
        return len(versions)
