"""Reward offers and the outbox in PostgreSQL (asyncpg)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

import asyncpg

from loyalty_runtime.outbox import OutboxMessage, enqueue
from partners.domain.offers import Offer, OfferTerms

_COLUMNS = """partner_id, offer_id, revision, kind, title, description, category, price_points, stock,
              valid_from, valid_until, fulfilment_url, withdrawn_at, updated_at, tier_prices, tiers_only,
              segment_prices"""

# Two-key advisory locks live apart from the outbox relay's one-key lock; this one also covers an offer not yet
# created, so that two first PUTs of the same offer are applied one after the other.
LOCK_OFFER = "SELECT pg_advisory_xact_lock(hashtext('offers'), hashtext($1 || '/' || $2))"

SELECT_OFFER = f"SELECT {_COLUMNS} FROM offers WHERE partner_id = $1 AND offer_id = $2"

SAVE_OFFER = f"""
INSERT INTO offers ({_COLUMNS})
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15::jsonb, $16, $17::jsonb)
ON CONFLICT (partner_id, offer_id) DO UPDATE
   SET revision = EXCLUDED.revision, kind = EXCLUDED.kind, title = EXCLUDED.title,
       description = EXCLUDED.description, category = EXCLUDED.category, price_points = EXCLUDED.price_points,
       stock = EXCLUDED.stock, valid_from = EXCLUDED.valid_from, valid_until = EXCLUDED.valid_until,
       fulfilment_url = EXCLUDED.fulfilment_url, withdrawn_at = EXCLUDED.withdrawn_at,
       updated_at = EXCLUDED.updated_at, tier_prices = EXCLUDED.tier_prices, tiers_only = EXCLUDED.tiers_only,
       segment_prices = EXCLUDED.segment_prices
 WHERE offers.revision < EXCLUDED.revision
RETURNING revision
"""

OFFERS_PAGE = f"""
SELECT {_COLUMNS} FROM offers WHERE partner_id = $1 AND offer_id > $2 ORDER BY offer_id LIMIT $3
"""


class StaleOfferRevisionError(RuntimeError):
    """A revision was saved over a newer one: the lock that orders changes of an offer was not held."""


class OfferTransaction:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def lock(self, partner_id: str, offer_id: str) -> Offer | None:
        await self.conn.execute(LOCK_OFFER, partner_id, offer_id)
        row = await self.conn.fetchrow(SELECT_OFFER, partner_id, offer_id)
        return _offer(row) if row is not None else None

    async def save(self, offer: Offer) -> None:
        t = offer.terms
        saved = await self.conn.fetchval(
            SAVE_OFFER,
            offer.partner_id, offer.offer_id, offer.revision, t.kind, t.title, t.description, t.category,
            t.price_points, t.stock, t.valid_from, t.valid_until, t.fulfilment_url, offer.withdrawn_at,
            offer.updated_at, json.dumps(dict(t.tier_prices)), list(t.tiers_only), json.dumps(dict(t.segment_prices)),
        )  # fmt: skip
        if saved is None:
            raise StaleOfferRevisionError(f"{offer.partner_id}/{offer.offer_id} revision {offer.revision}")

    async def enqueue(self, message: OutboxMessage) -> None:
        await enqueue(self.conn, [message])


class OfferStore:
    """Borrows the service's pool (it exists only while the service runs), never owns it."""

    def __init__(self, pool: Callable[[], asyncpg.Pool]) -> None:
        self._pool = pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[OfferTransaction]:
        async with self._pool().acquire() as conn, conn.transaction():
            yield OfferTransaction(conn)

    async def find(self, partner_id: str, offer_id: str) -> Offer | None:
        row = await self._pool().fetchrow(SELECT_OFFER, partner_id, offer_id)
        return _offer(row) if row is not None else None

    async def page(self, partner_id: str, after_offer_id: str, limit: int) -> Sequence[Offer]:
        rows = await self._pool().fetch(OFFERS_PAGE, partner_id, after_offer_id, limit)
        return [_offer(row) for row in rows]


def _offer(row: asyncpg.Record) -> Offer:
    terms = OfferTerms(
        kind=row["kind"],
        title=row["title"],
        description=row["description"],
        category=row["category"],
        price_points=row["price_points"],
        stock=row["stock"],
        valid_from=row["valid_from"],
        valid_until=row["valid_until"],
        fulfilment_url=row["fulfilment_url"],
        tier_prices=tuple(sorted(json.loads(row["tier_prices"]).items())),
        tiers_only=tuple(sorted(row["tiers_only"])),
        segment_prices=tuple(sorted(json.loads(row["segment_prices"]).items())),
    )
    return Offer(
        row["partner_id"], row["offer_id"], row["revision"], terms, row["updated_at"], withdrawn_at=row["withdrawn_at"]
    )
