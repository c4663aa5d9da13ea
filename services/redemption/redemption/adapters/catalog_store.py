"""The catalog in PostgreSQL (asyncpg): offer events applied in batches, members' reads."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime

import asyncpg

from loyalty_runtime import inbox
from redemption.domain.catalog import CatalogEntry, CatalogFilter, Position, PublishedOffer, WithdrawnOffer
from redemption.domain.prices import Reader

# A newer revision replaces every field the partner controls; the order counters stay as they are.
PUBLISH_OFFERS = """
INSERT INTO catalog (partner_id, offer_id, revision, kind, title, description, category, price_points, stock,
                     valid_from, valid_until, fulfilment_url, published_at, tier_prices, tiers_only, segment_prices)
SELECT o.partner_id, o.offer_id, o.revision, o.kind, o.title, o.description, o.category, o.price_points, o.stock,
       o.valid_from, o.valid_until, o.fulfilment_url, o.published_at, o.tier_prices,
       ARRAY(SELECT jsonb_array_elements_text(o.tiers_only)), o.segment_prices
  FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[],
              $9::bigint[], $10::timestamptz[], $11::timestamptz[], $12::text[], $13::timestamptz[], $14::jsonb[],
              $15::jsonb[], $16::jsonb[])
       AS o(partner_id, offer_id, revision, kind, title, description, category, price_points, stock,
            valid_from, valid_until, fulfilment_url, published_at, tier_prices, tiers_only, segment_prices)
 WHERE NOT EXISTS (SELECT 1 FROM catalog_tombstones t
                    WHERE t.partner_id = o.partner_id AND t.offer_id = o.offer_id AND t.revision >= o.revision)
ON CONFLICT (partner_id, offer_id) DO UPDATE
   SET revision = EXCLUDED.revision, kind = EXCLUDED.kind, title = EXCLUDED.title,
       description = EXCLUDED.description, category = EXCLUDED.category, price_points = EXCLUDED.price_points,
       stock = EXCLUDED.stock, valid_from = EXCLUDED.valid_from, valid_until = EXCLUDED.valid_until,
       fulfilment_url = EXCLUDED.fulfilment_url, published_at = EXCLUDED.published_at, withdrawn = false,
       tier_prices = EXCLUDED.tier_prices, tiers_only = EXCLUDED.tiers_only,
       segment_prices = EXCLUDED.segment_prices, updated_at = now()
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

# $1 is the reader's tier (NULL: none, or ops), $4 its segments: what one unit costs it is the lowest of its
# tier's and its segments' prices (LEAST ignores NULLs), else price_points (domain/prices.py).
_ENTRY = """partner_id, offer_id, revision, kind, title, description, category, price_points, stock,
       GREATEST(stock - units_reserved - units_sold, 0) AS available, valid_from, valid_until, withdrawn,
       fulfilment_url, tier_prices, tiers_only, segment_prices,
       COALESCE(LEAST((tier_prices ->> $1::text)::bigint,
                      (SELECT min(p.value::bigint) FROM jsonb_each_text(segment_prices) p
                        WHERE p.key::uuid = ANY($4::uuid[]))), price_points) AS unit_points"""

# Optional filters are `$n IS NULL OR ...`: each execution is planned with its values, so an index still serves.
# $10: the reader sees every offer (ops); else only offers open to everyone or to its tier.
ON_SALE_PAGE = f"""
SELECT * FROM (
    SELECT {_ENTRY}
      FROM catalog
     WHERE NOT withdrawn AND valid_from <= $2 AND valid_until > $2
       AND ($3::text IS NULL OR partner_id = $3)
       AND ($5::text IS NULL OR category = $5)
       AND ($6::text IS NULL OR kind = $6)
       AND (NOT $7::boolean OR stock - units_reserved - units_sold > 0)
       AND ($11::boolean OR cardinality(tiers_only) = 0 OR $1::text = ANY(tiers_only))
) priced
 WHERE (unit_points, partner_id, offer_id) > ($8::bigint, $9::text, $10::text)
 ORDER BY unit_points, partner_id, offer_id
 LIMIT $12
"""

FIND_OFFER = f"SELECT {_ENTRY} FROM catalog WHERE partner_id = $2 AND offer_id = $3"
# $4 there too: the reader's segments.


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
            [o.published_at for o in offers], [json.dumps(dict(o.tier_prices)) for o in offers],
            [json.dumps(list(o.tiers_only)) for o in offers], [json.dumps(dict(o.segment_prices)) for o in offers],
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

    async def on_sale(
        self, reader: Reader, where: CatalogFilter, after: Position, limit: int, now: datetime
    ) -> list[CatalogEntry]:
        rows = await self._pool.fetch(
            ON_SALE_PAGE,
            reader.tier, now, where.partner_id, list(reader.segments), where.category, where.kind, where.in_stock,
            after.price_points, after.partner_id, after.offer_id, reader.everything, limit,
        )  # fmt: skip
        return [entry_of(row) for row in rows]

    async def find(self, reader: Reader, partner_id: str, offer_id: str) -> CatalogEntry | None:
        row = await self._pool.fetchrow(FIND_OFFER, reader.tier, partner_id, offer_id, list(reader.segments))
        return entry_of(row) if row is not None else None

    async def reader(self, member_id: uuid.UUID) -> Reader:
        """The member as its prices see it: its tier as the points service announced it last (None if it never
        did), and the published segments it is in now."""
        row = await self._pool.fetchrow(MEMBER_STANDING, member_id)
        assert row is not None
        return Reader(tier=row["tier"], segments=tuple(row["segments"]))


MEMBER_STANDING = """
SELECT (SELECT tier FROM member_tiers WHERE member_id = $1) AS tier,
       ARRAY(SELECT c.segment_id FROM segment_publication_members m
             JOIN segment_current c ON c.publication_id = m.publication_id
             WHERE m.member_id = $1 ORDER BY c.segment_id) AS segments
"""


def entry_of(row: asyncpg.Record) -> CatalogEntry:
    fields = dict(row)
    fields["tier_prices"] = json.loads(fields["tier_prices"])
    fields["tiers_only"] = tuple(fields["tiers_only"])
    fields["segment_prices"] = json.loads(fields["segment_prices"])
    return CatalogEntry(**fields)


def _count(status: str) -> int:
    return int(status.split()[-1])
