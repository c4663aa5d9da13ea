"""The catalog in PostgreSQL (asyncpg): offer events applied in batches, members' reads."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime

import asyncpg

from loyalty_runtime import inbox
from redemption.domain.catalog import CatalogEntry, CatalogFilter, Position, PublishedOffer, WithdrawnOffer

# A newer revision replaces every field the partner controls; the order counters stay as they are.
PUBLISH_OFFERS = """
INSERT INTO catalog (partner_id, offer_id, revision, kind, title, description, category, price_points, stock,
                     valid_from, valid_until, fulfilment_url, published_at)
SELECT o.*
  FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[],
              $9::bigint[], $10::timestamptz[], $11::timestamptz[], $12::text[], $13::timestamptz[])
       AS o(partner_id, offer_id, revision, kind, title, description, category, price_points, stock,
            valid_from, valid_until, fulfilment_url, published_at)
 WHERE NOT EXISTS (SELECT 1 FROM catalog_tombstones t
                    WHERE t.partner_id = o.partner_id AND t.offer_id = o.offer_id AND t.revision >= o.revision)
ON CONFLICT (partner_id, offer_id) DO UPDATE
   SET revision = EXCLUDED.revision, kind = EXCLUDED.kind, title = EXCLUDED.title,
       description = EXCLUDED.description, category = EXCLUDED.category, price_points = EXCLUDED.price_points,
       stock = EXCLUDED.stock, valid_from = EXCLUDED.valid_from, valid_until = EXCLUDED.valid_until,
       fulfilment_url = EXCLUDED.fulfilment_url, published_at = EXCLUDED.published_at, withdrawn = false,
       updated_at = now()
 WHERE catalog.revision < EXCLUDED.revision
"""

WITHDRAW_OFFERS = """
UPDATE catalog c
   SET withdrawn = true, revision = w.revision, updated_at = now()
  FROM unnest($1::text[], $2::text[], $3::bigint[]) AS w(partner_id, offer_id, revision)
 WHERE c.partner_id = w.partner_id AND c.offer_id = w.offer_id AND c.revision <= w.revision
"""

REMEMBER_WITHDRAWALS = """
INSERT INTO catalog_tombstones (partner_id, offer_id, revision)
SELECT w.*
  FROM unnest($1::text[], $2::text[], $3::bigint[]) AS w(partner_id, offer_id, revision)
 WHERE NOT EXISTS (SELECT 1 FROM catalog c WHERE c.partner_id = w.partner_id AND c.offer_id = w.offer_id)
ON CONFLICT (partner_id, offer_id) DO UPDATE SET revision = EXCLUDED.revision
 WHERE catalog_tombstones.revision < EXCLUDED.revision
"""

_ENTRY = """partner_id, offer_id, revision, kind, title, description, category, price_points, stock,
       GREATEST(stock - units_reserved - units_sold, 0) AS available, valid_from, valid_until, withdrawn,
       fulfilment_url"""

# Optional filters are `$n IS NULL OR ...`: each execution is planned with its values, so an index still serves.
ON_SALE_PAGE = f"""
SELECT {_ENTRY}
  FROM catalog
 WHERE NOT withdrawn AND valid_from <= $1 AND valid_until > $1
   AND ($2::text IS NULL OR partner_id = $2)
   AND ($3::text IS NULL OR category = $3)
   AND ($4::text IS NULL OR kind = $4)
   AND (NOT $5::boolean OR stock - units_reserved - units_sold > 0)
   AND (price_points, partner_id, offer_id) > ($6::bigint, $7::text, $8::text)
 ORDER BY price_points, partner_id, offer_id
 LIMIT $9
"""

FIND_OFFER = f"SELECT {_ENTRY} FROM catalog WHERE partner_id = $1 AND offer_id = $2"


class CatalogTransaction:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def claim_inbox(self, topic: str, event_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """Record the ids in the inbox; returns those seen for the first time."""
        return await inbox.claim(self.conn, topic, event_ids)

    async def publish(self, offers: Sequence[PublishedOffer]) -> int:
        """Insert or replace with a higher revision, one offer at most once; returns the rows written."""
        if not offers:
            return 0
        columns = [
            [o.partner_id for o in offers], [o.offer_id for o in offers], [o.revision for o in offers],
            [o.kind for o in offers], [o.title for o in offers], [o.description for o in offers],
            [o.category for o in offers], [o.price_points for o in offers], [o.stock for o in offers],
            [o.valid_from for o in offers], [o.valid_until for o in offers], [o.fulfilment_url for o in offers],
            [o.published_at for o in offers],
        ]  # fmt: skip
        return _count(await self.conn.execute(PUBLISH_OFFERS, *columns))

    async def withdraw(self, offers: Sequence[WithdrawnOffer]) -> int:
        """Mark withdrawn what is not newer than the withdrawal, and remember withdrawals of unknown offers."""
        if not offers:
            return 0
        columns = [[o.partner_id for o in offers], [o.offer_id for o in offers], [o.revision for o in offers]]
        await self.conn.execute(REMEMBER_WITHDRAWALS, *columns)
        return _count(await self.conn.execute(WITHDRAW_OFFERS, *columns))


class CatalogStore:
    """Borrows the service's pool, never owns it."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[CatalogTransaction]:
        async with self._pool.acquire() as conn, conn.transaction():
            yield CatalogTransaction(conn)

    async def on_sale(self, where: CatalogFilter, after: Position, limit: int, now: datetime) -> list[CatalogEntry]:
        rows = await self._pool.fetch(
            ON_SALE_PAGE,
            now, where.partner_id, where.category, where.kind, where.in_stock,
            after.price_points, after.partner_id, after.offer_id, limit,
        )  # fmt: skip
        return [CatalogEntry(**dict(row)) for row in rows]

    async def find(self, partner_id: str, offer_id: str) -> CatalogEntry | None:
        row = await self._pool.fetchrow(FIND_OFFER, partner_id, offer_id)
        return CatalogEntry(**dict(row)) if row is not None else None


def _count(status: str) -> int:
    return int(status.split()[-1])
