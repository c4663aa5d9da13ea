"""Member prices: an offer's price per tier and tier-only offers reach the catalog through real Kafka; each member
sees its own price, tiers arrive as TierChanged (twice, out of order), and an order is charged the price shown."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest

from contracts.events.tiers import TierChanged, TierChangedPayload
from contracts.topics import MEMBER_TIERS
from tests.support.ledger import OPS, member_headers, new_member, now, publish
from tests.support.offers import offer_body
from tests.support.partner_client import SignedPartnerClient, ops_token, register_partner
from tests.support.services import http, partners_service, points_service, redemption_service, running
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

GOLD_MEMBER, SILVER_MEMBER, NEW_MEMBER = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


@dataclass(frozen=True)
class Platform:
    skymall: SignedPartnerClient
    redemption: httpx.AsyncClient
    kafka: str
    prefix: str

    async def tier(self, member: uuid.UUID, tier: str | None, minutes_ago: int = 0) -> TierChanged:
        event_id = uuid.uuid4()
        at = now() - timedelta(minutes=minutes_ago)
        payload = TierChangedPayload(
            member_id=member, from_tier=None, to_tier=tier, direction="upgrade", reason="qualified",
            qualifying_points=10_000, valid_until=at + timedelta(days=365), changed_at=at, tier_set_version=1,
        )  # fmt: skip
        return TierChanged(event_id=event_id, occurred_at=at, source="points", correlation_id=event_id,
                           payload=payload)  # fmt: skip

    async def announce(self, *events: TierChanged) -> None:
        await publish(self.kafka, MEMBER_TIERS.qualified(self.prefix), list(events))

    async def catalog(self, member: uuid.UUID) -> dict[str, Any]:
        answer = await self.redemption.get("/v1/catalog", params={"limit": 100}, headers=member_headers(member))
        assert answer.status_code == 200, answer.text
        return {"tier": answer.json()["tier"], **{o["offer_id"]: o["price_points"] for o in answer.json()["items"]}}

    async def order(self, member: uuid.UUID, offer_id: str, **extra: Any) -> httpx.Response:
        body = {"partner_id": "skymall", "offer_id": offer_id, "quantity": 2, "idempotency_key": uuid.uuid4().hex}
        return await self.redemption.post("/v1/orders", json={**body, **extra}, headers=member_headers(member))


@pytest.fixture
async def platform(infra, topic_prefix, database) -> AsyncIterator[Platform]:
    partners_dsn, redemption_dsn = await database("partners"), await database("redemption")
    async with (
        running(partners_service(infra.kafka, partners_dsn, topic_prefix)) as partners,
        running(redemption_service(infra.kafka, redemption_dsn, topic_prefix)) as redemption,
        http(partners) as partners_api,
        http(redemption) as redemption_api,
    ):
        token = ops_token(partners.settings.jwt_secret)
        skymall = SignedPartnerClient(partners_api, await register_partner(partners_api, token, "skymall"))
        yield Platform(skymall, redemption_api, infra.kafka, topic_prefix)


async def offers_with_member_prices(platform: Platform) -> None:
    answers = [
        await platform.skymall.put_offer("voucher", offer_body(price_points=4_000, tier_prices=[
            {"tier": "gold", "price_points": 3_000}, {"tier": "platinum", "price_points": 2_500}])),
        await platform.skymall.put_offer("gold-lounge", offer_body(price_points=9_000,
                                                                   tiers_only=["gold", "platinum"])),
    ]  # fmt: skip
    assert [a.status_code for a in answers] == [201, 201], [a.text for a in answers]
    assert answers[0].json()["tier_prices"] == [{"tier": "gold", "price_points": 3_000},
                                                {"tier": "platinum", "price_points": 2_500}]  # fmt: skip


async def test_each_member_sees_its_own_price_and_tier_only_offers_only_at_their_tiers(platform: Platform):
    await offers_with_member_prices(platform)
    # Gold now; an older silver change arrives after it, and the gold change twice: gold stands.
    gold = await platform.tier(GOLD_MEMBER, "gold")
    await platform.announce(gold, await platform.tier(GOLD_MEMBER, "silver", minutes_ago=5), gold)
    await platform.announce(await platform.tier(SILVER_MEMBER, "silver"))

    async def priced() -> dict[str, Any] | None:
        seen = await platform.catalog(GOLD_MEMBER)
        return seen if seen.get("tier") == "gold" and {"voucher", "gold-lounge"} <= seen.keys() else None

    gold_view = await eventually(priced, what="the gold member's catalog at gold prices")
    assert gold_view == {"tier": "gold", "voucher": 3_000, "gold-lounge": 9_000}
    await eventually(lambda: _tier_is(platform, SILVER_MEMBER, "silver"), what="the silver member's tier")
    assert await platform.catalog(SILVER_MEMBER) == {"tier": "silver", "voucher": 4_000}
    assert await platform.catalog(NEW_MEMBER) == {"tier": None, "voucher": 4_000}

    hidden = await platform.redemption.get("/v1/catalog/skymall/gold-lounge", headers=member_headers(SILVER_MEMBER))
    assert hidden.status_code == 404
    refused = await platform.order(SILVER_MEMBER, "gold-lounge")
    assert refused.status_code == 404, refused.text


async def test_an_order_is_charged_the_price_shown_and_refused_when_it_moved(platform: Platform):
    await offers_with_member_prices(platform)
    await platform.announce(await platform.tier(GOLD_MEMBER, "gold"))
    await eventually(lambda: _tier_is(platform, GOLD_MEMBER, "gold"), what="the gold member's tier")

    moved = await platform.order(GOLD_MEMBER, "voucher", expected_unit_points=4_000)
    assert moved.status_code == 409, moved.text
    assert "3000 points now, not 4000" in moved.json()["detail"]

    placed = await platform.order(GOLD_MEMBER, "voucher", expected_unit_points=3_000)
    assert placed.status_code == 202, placed.text
    assert placed.json()["points"] == 2 * 3_000
    at_base = await platform.order(SILVER_MEMBER, "voucher")
    assert at_base.status_code == 202, at_base.text
    assert at_base.json()["points"] == 2 * 4_000


async def _tier_is(platform: Platform, member: uuid.UUID, tier: str) -> bool:
    return (await platform.catalog(member))["tier"] == tier


async def test_a_partner_cannot_price_a_tier_its_tier_only_offer_leaves_out(platform: Platform):
    answer = await platform.skymall.put_offer("odd", offer_body(
        tiers_only=["gold"], tier_prices=[{"tier": "silver", "price_points": 100}]))  # fmt: skip
    assert answer.status_code == 422, answer.text
    assert "silver, which tiers_only leaves out" in answer.text
    twice = await platform.skymall.put_offer("twice", offer_body(
        tier_prices=[{"tier": "gold", "price_points": 1}, {"tier": "gold", "price_points": 2}]))  # fmt: skip
    assert twice.status_code == 422
    assert "names a tier twice" in twice.text


@pytest.fixture
async def with_points(infra, topic_prefix, database) -> AsyncIterator[tuple[Platform, httpx.AsyncClient]]:
    dsns = [await database(name) for name in ("partners", "redemption", "points")]
    async with (
        running(partners_service(infra.kafka, dsns[0], topic_prefix)) as partners,
        running(redemption_service(infra.kafka, dsns[1], topic_prefix)) as redemption,
        running(points_service(infra.kafka, dsns[2], topic_prefix)) as points,
        http(partners) as partners_api,
        http(redemption) as redemption_api,
        http(points) as points_api,
    ):
        token = ops_token(partners.settings.jwt_secret)
        skymall = SignedPartnerClient(partners_api, await register_partner(partners_api, token, "skymall"))
        yield Platform(skymall, redemption_api, infra.kafka, topic_prefix), points_api


async def test_a_published_segments_members_pay_its_price_and_the_lowest_price_that_applies_wins(with_points):
    platform, points = with_points
    flyer, other = await new_member(points, "Fay"), await new_member(points, "Oz")
    rules = {"all": [{"kind": "members", "member_ids": [str(flyer)]}]}
    segment = (await points.post("/v1/ops/segments", json={"name": "Flyers", "rules": rules}, headers=OPS)).json()
    made = await points.post(f"/v1/ops/segments/{segment['segment_id']}/publications", headers=OPS)
    assert made.status_code == 201, made.text
    assert made.json()["members"] == 1
    listed = await points.get("/v1/segments/published", headers=OPS)
    assert [(p["name"], p["members"]) for p in listed.json()["items"]] == [("Flyers", 1)]
    refused = await points.get("/v1/segments/published", headers=member_headers(flyer))
    assert refused.status_code == 403, "members never learn the programme's segments"
    prices = {"segment_prices": [{"segment_id": segment["segment_id"], "price_points": 3_500}],
              "tier_prices": [{"tier": "gold", "price_points": 3_000}]}  # fmt: skip
    answer = await platform.skymall.put_offer("voucher", offer_body(price_points=4_000, **prices))
    assert answer.status_code == 201, answer.text

    async def segment_price() -> dict[str, Any] | None:
        seen = await platform.catalog(flyer)
        return seen if seen.get("voucher") == 3_500 else None

    await eventually(segment_price, what="the segment's price for its member")
    assert await platform.catalog(other) == {"tier": None, "voucher": 4_000}
    await platform.announce(await platform.tier(flyer, "gold"))
    await eventually(lambda: _tier_is(platform, flyer, "gold"), what="the flyer's tier")
    assert (await platform.catalog(flyer))["voucher"] == 3_000, "gold's price is lower than the segment's"
    placed = await platform.order(flyer, "voucher", expected_unit_points=3_000)
    assert placed.status_code == 202, placed.text
    assert placed.json()["points"] == 2 * 3_000
