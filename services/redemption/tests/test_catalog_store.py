"""Offer events applied to the catalog on a real database: the highest revision wins, order counters stay."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import pytest

from contracts.envelope import Event
from redemption.adapters.catalog_store import CatalogStore
from redemption.domain.catalog import START, CatalogEntry, CatalogFilter
from redemption.domain.fulfilment_urls import PERMISSIVE
from redemption.domain.prices import EVERYTHING
from redemption.handlers.catalog import BatchOutcome, apply_offer_batch, to_change
from tests.support.offers import now, published, withdrawn

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Catalog:
    pool: asyncpg.Pool

    @property
    def store(self) -> CatalogStore:
        return CatalogStore(self.pool)

    async def apply(self, *events: Event) -> BatchOutcome:
        """What the consumer does with one batch."""
        return await apply_offer_batch(self.store, "test-offers", [to_change(e, PERMISSIVE) for e in events])

    async def entry(self, offer_id: str, partner_id: str = "skymall") -> CatalogEntry | None:
        return await self.store.find(EVERYTHING, partner_id, offer_id)

    async def on_sale(self, at: datetime | None = None) -> list[str]:
        return [e.offer_id for e in await self.store.on_sale(EVERYTHING, CatalogFilter(), START, 100, at or now())]


@pytest.fixture
async def catalog(database) -> AsyncIterator[Catalog]:
    pool = await asyncpg.create_pool(await database("redemption"), min_size=1, max_size=2)
    try:
        yield Catalog(pool)
    finally:
        await pool.close()


async def test_a_newer_revision_replaces_the_offer_and_keeps_the_order_counters(catalog: Catalog):
    await catalog.apply(published("skymall", "v-1", 1, price_points=100, stock=10))
    await catalog.pool.execute("UPDATE catalog SET units_reserved = 2, units_sold = 3 WHERE offer_id = 'v-1'")
    await catalog.apply(published("skymall", "v-1", 2, price_points=80, stock=20, title="Cheaper"))
    entry = await catalog.entry("v-1")
    assert entry is not None
    assert (entry.revision, entry.price_points, entry.stock, entry.title) == (2, 80, 20, "Cheaper")
    assert entry.available == 20 - 2 - 3
    units = await catalog.pool.fetchrow("SELECT units_reserved, units_sold FROM catalog WHERE offer_id = 'v-1'")
    assert tuple(units) == (2, 3)


async def test_stock_lowered_below_what_was_sold_leaves_nothing_available(catalog: Catalog):
    await catalog.apply(published("skymall", "v-1", 1, stock=10))
    await catalog.pool.execute("UPDATE catalog SET units_sold = 8 WHERE offer_id = 'v-1'")
    await catalog.apply(published("skymall", "v-1", 2, stock=5))
    entry = await catalog.entry("v-1")
    assert entry is not None
    assert (entry.stock, entry.available, entry.revision) == (5, 0, 2)


async def test_an_older_revision_arriving_late_changes_nothing(catalog: Catalog):
    await catalog.apply(published("skymall", "v-1", 3, price_points=300))
    assert (await catalog.apply(published("skymall", "v-1", 2, price_points=200))).published == 0
    assert (await catalog.apply(published("skymall", "v-1", 3, price_points=999))).published == 0
    entry = await catalog.entry("v-1")
    assert entry is not None
    assert (entry.revision, entry.price_points) == (3, 300)


async def test_within_one_batch_the_highest_revision_wins_whatever_the_order(catalog: Catalog):
    outcome = await catalog.apply(
        published("skymall", "v-1", 2, price_points=200),
        published("skymall", "v-1", 3, price_points=300),
        published("skymall", "v-1", 1, price_points=100),
    )
    assert (outcome.superseded_in_batch, outcome.published) == (2, 1)
    entry = await catalog.entry("v-1")
    assert entry is not None
    assert entry.price_points == 300


async def test_a_redelivered_event_is_applied_once(catalog: Catalog):
    first = published("skymall", "v-1", 1)
    await catalog.apply(first)
    again = await catalog.apply(first, published("skymall", "v-2", 1))
    assert (again.duplicates, again.published) == (1, 1)


async def test_a_withdrawal_hides_the_offer_and_a_newer_revision_brings_it_back(catalog: Catalog):
    await catalog.apply(published("skymall", "v-1", 1), published("skymall", "v-2", 1))
    await catalog.pool.execute("UPDATE catalog SET units_reserved = 4 WHERE offer_id = 'v-1'")
    assert (await catalog.apply(withdrawn("skymall", "v-1", 2))).withdrawn == 1
    assert await catalog.on_sale() == ["v-2"]
    entry = await catalog.entry("v-1")
    assert entry is not None
    assert (entry.withdrawn, entry.revision) == (True, 2)

    await catalog.apply(published("skymall", "v-1", 1, price_points=1))
    assert await catalog.on_sale() == ["v-2"], "revision 1 is older than the withdrawal"
    await catalog.apply(published("skymall", "v-1", 3, stock=10))
    back = await catalog.entry("v-1")
    assert back is not None
    assert (back.withdrawn, back.revision, back.available) == (False, 3, 10 - 4)


async def test_a_withdrawal_that_overtakes_its_offer_keeps_the_older_publication_out(catalog: Catalog):
    await catalog.apply(withdrawn("skymall", "v-1", 2))
    await catalog.apply(published("skymall", "v-1", 1))
    assert await catalog.entry("v-1") is None
    await catalog.apply(published("skymall", "v-1", 3))
    assert await catalog.on_sale() == ["v-1"]
