"""Redeem anywhere, item 1: offers partners publish reach the members' catalog through real Kafka."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from contracts.topics import OFFERS
from tests.support.kafka import read_all
from tests.support.ledger import OPS, member_headers, publish
from tests.support.offers import now, offer_body, published
from tests.support.partner_client import SignedPartnerClient, ops_token, register_partner
from tests.support.services import http, partners_service, redemption_service, running
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

MEMBER = member_headers(uuid.uuid4())


@dataclass(frozen=True)
class Platform:
    skymall: SignedPartnerClient
    skyair: SignedPartnerClient
    catalog: httpx.AsyncClient
    redemption_dsn: str
    kafka: str
    prefix: str

    @property
    def offers_topic(self) -> str:
        return OFFERS.qualified(self.prefix)

    async def browse(self, **query: Any) -> dict[str, Any]:
        answer = await self.catalog.get("/v1/catalog", params=query, headers=MEMBER)
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    async def listed(self, **query: Any) -> dict[tuple[str, str], dict[str, Any]]:
        items = (await self.browse(limit=100, **query))["items"]
        return {(o["partner_id"], o["offer_id"]): o for o in items}

    async def offer(self, partner_id: str, offer_id: str) -> dict[str, Any] | None:
        answer = await self.catalog.get(f"/v1/catalog/{partner_id}/{offer_id}", headers=MEMBER)
        if answer.status_code == 404:
            return None
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    async def wait_for_offer(self, partner_id: str, offer_id: str, **expected: Any) -> dict[str, Any]:
        async def matches() -> dict[str, Any] | None:
            found = await self.offer(partner_id, offer_id)
            return found if found is not None and expected.items() <= found.items() else None

        return await eventually(matches, what=f"{partner_id}/{offer_id} with {expected} in the catalog")

    async def consumed(self, event_id: uuid.UUID) -> bool:
        conn = await asyncpg.connect(self.redemption_dsn)
        try:
            return bool(await conn.fetchval("SELECT true FROM inbox WHERE event_id = $1", event_id))
        finally:
            await conn.close()


@pytest.fixture
async def platform(infra, topic_prefix, database) -> AsyncIterator[Platform]:
    partners_dsn, redemption_dsn = await database("partners"), await database("redemption")
    async with (
        running(partners_service(infra.kafka, partners_dsn, topic_prefix)) as partners,
        running(redemption_service(infra.kafka, redemption_dsn, topic_prefix)) as redemption,
        http(partners) as partners_api,
        http(redemption) as catalog,
    ):
        token = ops_token(partners.settings.jwt_secret)
        skymall = SignedPartnerClient(partners_api, await register_partner(partners_api, token, "skymall"))
        skyair = SignedPartnerClient(partners_api, await register_partner(partners_api, token, "skyair"))
        yield Platform(skymall, skyair, catalog, redemption_dsn, infra.kafka, topic_prefix)


def product(**overrides: Any) -> dict[str, Any]:
    return offer_body(kind="product", category="electronics", fulfilment_url="https://shop.example/fulfil", **overrides)


async def test_offers_partners_publish_change_and_withdraw_become_the_members_catalog(platform: Platform):
    voucher = offer_body(price_points=10_000, stock=50)
    answers = [
        await platform.skymall.put_offer("v-100", voucher),
        await platform.skymall.put_offer("earbuds", product(price_points=30_000, stock=5)),
        await platform.skyair.put_offer("lounge", offer_body(kind="discount", category="travel",
                                        fulfilment_url="https://skyair.example/f", price_points=5_000)),
        await platform.skyair.put_offer("upgrade", offer_body(category="travel", price_points=7_000,
                                        valid_from=(now() + timedelta(days=2)).isoformat())),
    ]  # fmt: skip
    assert [a.status_code for a in answers] == [201, 201, 201, 201], [a.text for a in answers]

    upcoming = await platform.wait_for_offer("skyair", "upgrade", status="upcoming")
    assert upcoming["price_points"] == 7_000
    await platform.wait_for_offer("skymall", "earbuds", status="on_sale")
    listed = await platform.listed()
    assert list(listed) == [("skyair", "lounge"), ("skymall", "v-100"), ("skymall", "earbuds")], "cheapest first"
    assert listed[("skymall", "earbuds")]["available"] == 5
    assert listed[("skymall", "v-100")]["revision"] == 1

    changed = await platform.skymall.put_offer("v-100", {**voucher, "price_points": 8_000, "stock": 0})
    assert changed.json()["revision"] == 2
    await platform.wait_for_offer("skymall", "v-100", revision=2, price_points=8_000, stock=0, available=0)
    assert ("skymall", "v-100") in await platform.listed(), "a sold-out offer is still shown, with available 0"
    assert ("skymall", "v-100") not in await platform.listed(in_stock="true")

    assert (await platform.skymall.withdraw_offer("earbuds")).status_code == 204
    await platform.wait_for_offer("skymall", "earbuds", status="withdrawn", revision=2)
    assert list(await platform.listed()) == [("skyair", "lounge"), ("skymall", "v-100")]

    assert list(await platform.listed(partner_id="skyair")) == [("skyair", "lounge")]
    assert list(await platform.listed(category="vouchers")) == [("skymall", "v-100")]
    assert list(await platform.listed(kind="discount")) == [("skyair", "lounge")]
    assert list(await platform.listed(partner_id="skymall", category="travel")) == []

    assert (await platform.catalog.get("/v1/catalog")).status_code == 401
    assert (await platform.catalog.get("/v1/catalog/skymall/v-100")).status_code == 401
    assert (await platform.catalog.get("/v1/catalog", headers=OPS)).status_code == 200


async def test_pages_of_the_catalog_visit_every_offer_exactly_once(platform: Platform):
    wanted = set()
    for n in range(9):
        partner = platform.skymall if n % 2 else platform.skyair
        # Equal prices, so the order falls back on partner and offer id.
        answer = await partner.put_offer(f"o-{n}", offer_body(price_points=100 * (n % 3 + 1)))
        assert answer.status_code == 201, answer.text
        wanted.add((partner.partner_id, f"o-{n}"))
    await eventually(lambda: _count_is(platform, 9), what="9 offers in the catalog")

    seen: list[tuple[str, str]] = []
    cursor = None
    while True:
        page = await platform.browse(limit=2, **({"cursor": cursor} if cursor else {}))
        assert len(page["items"]) <= 2
        seen += [(o["partner_id"], o["offer_id"]) for o in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 9
    assert set(seen) == wanted


async def _count_is(platform: Platform, count: int) -> bool:
    return len(await platform.listed()) == count


async def test_an_older_revision_arriving_after_a_newer_one_is_ignored(platform: Platform):
    newer = published("skymall", "v-1", 2, price_points=200, title="Revision 2")
    older = published("skymall", "v-1", 1, price_points=100, title="Revision 1")
    await publish(platform.kafka, platform.offers_topic, [newer], key=b"skymall")
    await eventually(lambda: platform.consumed(newer.event_id), what="the newer revision to be consumed")
    await publish(platform.kafka, platform.offers_topic, [older], key=b"skymall")
    await eventually(lambda: platform.consumed(older.event_id), what="the older revision to be consumed")
    offer = await platform.offer("skymall", "v-1")
    assert offer is not None
    assert (offer["revision"], offer["price_points"], offer["title"]) == (2, 200, "Revision 2")

    # Both in one send, so most likely in one batch: the batch keeps its highest revision too.
    pair = [published("skymall", "v-2", 5, price_points=500), published("skymall", "v-2", 4, price_points=400)]
    await publish(platform.kafka, platform.offers_topic, pair, key=b"skymall")
    await eventually(lambda: platform.consumed(pair[1].event_id), what="both revisions to be consumed")
    offer = await platform.offer("skymall", "v-2")
    assert offer is not None
    assert (offer["revision"], offer["price_points"]) == (5, 500)


async def test_offers_outside_their_window_are_not_listed(platform: Platform):
    moment = now()
    ended = published(
        "skymall", "ended", 1, valid_from=moment - timedelta(days=9), valid_until=moment - timedelta(days=1)
    )
    await publish(platform.kafka, platform.offers_topic, [ended], key=b"skymall")
    upcoming = offer_body(valid_from=(moment + timedelta(hours=1)).isoformat())
    assert (await platform.skymall.put_offer("soon", upcoming)).status_code == 201
    assert (await platform.skymall.put_offer("now", offer_body())).status_code == 201

    await platform.wait_for_offer("skymall", "ended", status="ended")
    await platform.wait_for_offer("skymall", "soon", status="upcoming")
    await platform.wait_for_offer("skymall", "now", status="on_sale")
    assert list(await platform.listed()) == [("skymall", "now")]


async def test_a_malformed_offer_message_goes_to_the_dead_letter_topic_and_the_rest_is_applied(platform: Platform):
    before = published("skymall", "before", 1)
    after = published("skymall", "after", 1)
    free = json.loads(published("skymall", "free", 1).model_dump_json())
    free["payload"]["price_points"] = 0
    nul = published("skymall", "nul", 1, title="bad\x00title")
    await publish(
        platform.kafka,
        platform.offers_topic,
        [before, b"{not json", json.dumps(free).encode(), nul, after],
        key=b"skymall",
    )
    await platform.wait_for_offer("skymall", "after", status="on_sale")
    assert await platform.offer("skymall", "before") is not None
    assert await platform.offer("skymall", "free") is None
    assert await platform.offer("skymall", "nul") is None

    dead = await read_all(platform.kafka, platform.prefix + OFFERS.dead_letter, expected=3)
    assert len(dead) == 3
    reasons = [dict(r.headers)["dlq-reason"].decode() for r in dead]
    assert "json_invalid" in reasons[0] or "Invalid JSON" in reasons[0], reasons
    assert "price_points" in reasons[1], reasons
    assert "payload.title: contains a NUL character" in reasons[2], reasons
    assert {dict(r.headers)["dlq-service"] for r in dead} == {b"redemption"}
    assert dead[0].value == b"{not json", "a dead letter is the message unchanged"
