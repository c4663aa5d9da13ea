"""Members browse the catalog over HTTP: what is on sale now, filters, pages, one offer, tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import asyncpg
import httpx
import pytest

from contracts.envelope import Event
from loyalty_runtime.service import ServiceShell
from redemption.adapters.catalog_store import CatalogStore
from redemption.domain.fulfilment_urls import PERMISSIVE
from redemption.handlers.catalog import BatchOutcome, apply_offer_batch, to_change
from tests.support.ledger import OPS, member_headers
from tests.support.offers import now, published
from tests.support.services import http, redemption_service, running

pytestmark = pytest.mark.integration

MEMBER = member_headers("5d7f1c1e-1b8e-4d55-9d8e-0c1f6a0b9e21")


@dataclass(frozen=True)
class Catalog:
    shell: ServiceShell
    client: httpx.AsyncClient
    dsn: str

    async def apply(self, *events: Event) -> BatchOutcome:
        """What the consumer does with one batch, without Kafka."""
        return await apply_offer_batch(
            CatalogStore(self.shell.pool), "test-offers", [to_change(e, PERMISSIVE) for e in events]
        )

    async def sql(self, statement: str, *args: object) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            await conn.execute(statement, *args)
        finally:
            await conn.close()

    async def browse(self, **query: Any) -> dict[str, Any]:
        answer = await self.client.get("/v1/catalog", params=query, headers=MEMBER)
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    async def every_page(self, **query: Any) -> list[list[str]]:
        pages: list[list[str]] = []
        cursor = None
        while True:
            page = await self.browse(**query, **({"cursor": cursor} if cursor else {}))
            pages.append([o["offer_id"] for o in page["items"]])
            cursor = page["next_cursor"]
            if cursor is None:
                return pages

    async def offer(self, partner_id: str, offer_id: str) -> httpx.Response:
        return await self.client.get(f"/v1/catalog/{partner_id}/{quote(offer_id, safe='')}", headers=MEMBER)


@pytest.fixture
async def catalog(infra, topic_prefix, database) -> AsyncIterator[Catalog]:
    dsn = await database("redemption")
    async with running(redemption_service(infra.kafka, dsn, topic_prefix)) as shell, http(shell) as client:
        yield Catalog(shell, client, dsn)


async def test_members_see_offers_on_sale_cheapest_first_with_what_is_left(catalog: Catalog):
    await catalog.apply(
        published("skymall", "v-100", 1, price_points=10_000, stock=50),
        published("skymall", "v-20", 1, price_points=2_000, stock=3),
        published("skyair", "lounge", 1, kind="product", price_points=5_000, fulfilment_url="https://skyair.example/f"),
    )
    await catalog.sql("UPDATE catalog SET units_reserved = 1, units_sold = 2 WHERE offer_id = 'v-20'")
    page = await catalog.browse()
    assert [(o["partner_id"], o["offer_id"], o["available"]) for o in page["items"]] == [
        ("skymall", "v-20", 0),
        ("skyair", "lounge", 50),
        ("skymall", "v-100", 50),
    ]
    assert page["next_cursor"] is None
    lounge = page["items"][1]
    assert (lounge["kind"], lounge["price_points"], lounge["revision"], lounge["status"]) == (
        "product", 5_000, 1, "on_sale"
    )  # fmt: skip
    assert "fulfilment_url" not in lounge, "where partners fulfil orders is no member's business"
    in_stock = await catalog.browse(in_stock="true")
    assert [o["offer_id"] for o in in_stock["items"]] == ["lounge", "v-100"]


async def test_only_offers_valid_now_are_listed_and_the_others_say_why(catalog: Catalog):
    moment = now()
    await catalog.apply(
        published("skymall", "ended", 1, valid_from=moment - timedelta(days=9), valid_until=moment - timedelta(days=1)),
        published("skymall", "soon", 1, valid_from=moment + timedelta(days=1), valid_until=moment + timedelta(days=9)),
        published("skymall", "now", 1, valid_from=moment - timedelta(days=1), valid_until=moment + timedelta(days=1)),
    )
    assert [o["offer_id"] for o in (await catalog.browse())["items"]] == ["now"]
    assert (await catalog.offer("skymall", "ended")).json()["status"] == "ended"
    assert (await catalog.offer("skymall", "soon")).json()["status"] == "upcoming"


async def test_filters_narrow_the_catalog_and_pages_visit_every_offer_once(catalog: Catalog):
    events = [
        published(partner, f"{kind}-{n}", 1, kind=kind, category=category, price_points=price,
                  fulfilment_url=None if kind == "voucher" else f"https://{partner}.example/f")
        for n, (partner, kind, category, price) in enumerate(
            [(p, k, c, price) for p in ("skymall", "skyair") for k, c in (("voucher", "vouchers"),
             ("product", "electronics"), ("discount", "travel")) for price in (100, 100, 250)]
        )
    ]  # fmt: skip
    await catalog.apply(*events)
    everything = {(e.payload.partner_id, e.payload.offer_id) for e in events}

    pages = await catalog.every_page(limit=4)
    assert [len(p) for p in pages] == [4, 4, 4, 4, 2]
    seen = [offer_id for page in pages for offer_id in page]
    assert sorted(seen) == sorted(o for _, o in everything), "every offer once, none twice"

    listed = (await catalog.browse(limit=100))["items"]
    keys = [(o["price_points"], o["partner_id"], o["offer_id"]) for o in listed]
    assert keys == sorted(keys)
    assert [o["offer_id"] for o in listed] == seen

    skyair = [o for page in await catalog.every_page(partner_id="skyair", limit=2) for o in page]
    assert sorted(skyair) == sorted(o for p, o in everything if p == "skyair")
    travel = (await catalog.browse(category="travel"))["items"]
    assert {(o["category"], o["kind"]) for o in travel} == {("travel", "discount")}
    assert len(travel) == 6
    vouchers_at_skymall = (await catalog.browse(partner_id="skymall", kind="voucher"))["items"]
    assert {(o["partner_id"], o["kind"]) for o in vouchers_at_skymall} == {("skymall", "voucher")}
    assert len(vouchers_at_skymall) == 3
    assert (await catalog.browse(category="no-such"))["items"] == []


async def test_an_offer_id_with_any_printable_characters_can_be_read(catalog: Catalog):
    await catalog.apply(published("skymall", "sku/42?size=L#1", 1))
    answer = await catalog.offer("skymall", "sku/42?size=L#1")
    assert answer.status_code == 200, answer.text
    assert answer.json()["offer_id"] == "sku/42?size=L#1"


async def test_bad_requests_are_refused_with_the_reason(catalog: Catalog):
    unknown = await catalog.offer("skymall", "nope")
    assert unknown.status_code == 404
    assert "the catalog has no offer 'nope' of partner 'skymall'" in unknown.json()["detail"]
    bad_cursor = await catalog.client.get("/v1/catalog", params={"cursor": "bogus"}, headers=MEMBER)
    assert bad_cursor.status_code == 400
    assert "start again without it" in bad_cursor.json()["detail"]
    for query in ({"limit": 0}, {"limit": 101}, {"kind": "cash"}, {"partner_id": "Sky Mall"}, {"in_stock": "maybe"}):
        assert (await catalog.client.get("/v1/catalog", params=query, headers=MEMBER)).status_code == 422, query


async def test_the_catalog_needs_a_member_or_ops_token(catalog: Catalog):
    await catalog.apply(published("skymall", "v-1", 1))
    assert (await catalog.client.get("/v1/catalog")).status_code == 401
    assert (await catalog.client.get("/v1/catalog/skymall/v-1")).status_code == 401
    forged = {"Authorization": "Bearer not.a.token"}
    assert (await catalog.client.get("/v1/catalog", headers=forged)).status_code == 401
    assert (await catalog.client.get("/v1/catalog", headers=OPS)).status_code == 200
    assert (await catalog.client.get("/v1/catalog/skymall/v-1", headers=OPS)).status_code == 200
