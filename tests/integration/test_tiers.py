"""Tiers on the real ledger: an upgrade at once announced on its topic, the tier bonus and its refund, a review
at the end of a period (time driven by the service's tier clock), a redelivered purchase, the catch-up."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest

import points.app
import points.settings
from contracts.topics import MEMBER_TIERS, PARTNER_PURCHASES
from points.handlers.verify import verify_ledger
from tests.support.kafka import read_all
from tests.support.ledger import OPS, balance, link, member_headers, new_member, publish, purchase, refund
from tests.support.services import http, running
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

TIER_SET = {
    "qualification": "rolling_12_months",
    "grace_days": 30,
    "downgrade_policy": "one_tier_down",
    "tiers": [
        {"code": "green", "name": "Green", "threshold_points": 0},
        {"code": "silver", "name": "Silver", "threshold_points": 2_000, "earn_multiplier": "1.25"},
        {"code": "gold", "name": "Gold", "threshold_points": 10_000, "earn_multiplier": "1.5",
         "benefits": ["Lounge access", "Free shipping"]},
    ],
}  # fmt: skip


@dataclass
class Clock:
    """The service's tier clock: real time, moved forward by `ahead`."""

    ahead: timedelta = field(default_factory=timedelta)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.ahead


@dataclass
class Points:
    api: httpx.AsyncClient
    dsn: str
    kafka: str
    prefix: str
    clock: Clock

    async def put_tiers(self, body: dict[str, Any] = TIER_SET) -> dict[str, Any]:
        answer = await self.api.put("/v1/ops/tier-set", json=body, headers=OPS)
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    async def member(self, ref: str) -> uuid.UUID:
        member = await new_member(self.api)
        await link(self.api, member, partner_id="skymall", customer_ref=ref)
        return member

    async def buy(self, *events: Any) -> None:
        await publish(self.kafka, PARTNER_PURCHASES.qualified(self.prefix), list(events))
        ids = sorted({e.event_id for e in events})
        await eventually(lambda: self.applied(ids), timeout=30, what="the purchases and refunds applied")

    async def applied(self, event_ids: list[uuid.UUID]) -> bool:
        return await self.value("SELECT count(*) = $2 FROM inbox WHERE event_id = ANY($1)", event_ids, len(event_ids))

    async def value(self, sql: str, *args: Any) -> Any:
        conn = await asyncpg.connect(self.dsn)
        try:
            return await conn.fetchval(sql, *args)
        finally:
            await conn.close()

    async def tier(self, member: uuid.UUID) -> dict[str, Any]:
        answer = await self.api.get("/v1/members/me/tier", headers=member_headers(member))
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    async def review(self) -> dict[str, Any]:
        answer = await self.api.post("/v1/ops/tier-reviews", headers=OPS)
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    async def tier_bonuses(self, member: uuid.UUID) -> list[tuple[str, int]]:
        rows = await self.value(
            "SELECT COALESCE(array_agg(reason || ':' || amount ORDER BY seq), '{}') FROM transfers "
            "WHERE memo ? 'tier_bonus_of' AND (credit_account = $1 OR debit_account = $1 "
            "OR debit_account = 'receivable:' || $2)",
            f"member:{member}", str(member),
        )  # fmt: skip
        return [(r.split(":")[0], int(r.split(":")[1])) for r in rows]


@pytest.fixture
async def points_api(infra, topic_prefix, database) -> AsyncIterator[Points]:
    dsn = await database("points")
    clock = Clock()
    settings = points.settings.Settings(
        environment="test", database_url=dsn, kafka_bootstrap_servers=infra.kafka, kafka_topic_prefix=topic_prefix,
        consumer_group=f"points-{uuid.uuid4().hex[:8]}", tier_review_interval_seconds=3_600,
    )  # fmt: skip
    async with running(points.app.build(settings, tier_clock=clock)) as shell, http(shell) as api:
        yield Points(api, dsn, infra.kafka, topic_prefix, clock)


async def test_an_upgrade_happens_at_once_is_announced_and_the_next_purchase_earns_the_multiplier(points_api):
    p = points_api
    await p.put_tiers()
    ada = await p.member("ada-1")
    await p.buy(purchase("ada-1", "o-1", 250_000, points=2_500))

    tier = await p.tier(ada)
    assert (tier["tier"]["code"], tier["history"][0]["reason"], tier["history"][0]["direction"]) == (
        "silver", "qualified", "upgrade",
    )  # fmt: skip
    assert (tier["current_window"]["qualifying_points"], tier["next_tier"]["code"], tier["points_to_reach"]) == (
        2_500, "gold", 7_500,
    )  # fmt: skip
    [record] = await read_all(p.kafka, MEMBER_TIERS.qualified(p.prefix), 1)
    announced = json.loads(record.value)
    assert record.key == str(ada).encode()
    assert {k: announced["payload"][k] for k in ("member_id", "from_tier", "to_tier", "direction", "reason",
                                                 "qualifying_points", "tier_set_version")} == {
        "member_id": str(ada), "from_tier": "green", "to_tier": "silver", "direction": "upgrade",
        "reason": "qualified", "qualifying_points": 2_500, "tier_set_version": 1,
    }  # fmt: skip
    assert announced["payload"]["valid_until"] is not None
    assert announced["payload"]["review_at"] is not None

    await p.buy(purchase("ada-1", "o-2", 100_000, points=1_000))
    assert (await balance(p.api, ada))["posted"] == 2_500 + 1_000 + 250
    assert await p.tier_bonuses(ada) == [("tier_bonus", 250)], "the first purchase earned as green, the next as silver"
    summary = (await p.api.get("/v1/ops/summary", headers=OPS)).json()["points"]
    assert summary["issued_today"] == 2_500 + 1_000 + 250, "a tier bonus is issued (by the programme)"

    # Ops cannot drop the tier Ada holds, nor put a tier set that cannot work; members cannot put one at all.
    no_silver = {**TIER_SET, "tiers": [TIER_SET["tiers"][0], TIER_SET["tiers"][2]]}
    refused = await p.api.put("/v1/ops/tier-set", json=no_silver, headers=OPS)
    assert (refused.status_code, "silver (1 member)" in refused.json()["detail"]) == (409, True), refused.text
    await new_member(p.api, "Bob")  # at green without ever changing tier
    no_green = {**TIER_SET, "tiers": TIER_SET["tiers"][1:]}
    refused = await p.api.put("/v1/ops/tier-set", json=no_green, headers=OPS)
    assert (refused.status_code, "green (1 member)" in refused.json()["detail"]) == (409, True), refused.text
    upside_down = {**TIER_SET, "tiers": list(reversed(TIER_SET["tiers"]))}
    refused = await p.api.put("/v1/ops/tier-set", json=upside_down, headers=OPS)
    assert (refused.status_code, "thresholds must increase" in refused.json()["detail"]) == (422, True), refused.text
    assert (await p.api.put("/v1/ops/tier-set", json=TIER_SET, headers=member_headers(ada))).status_code == 403
    assert await verify_ledger(p.dsn) == []


async def test_a_refund_takes_the_tier_bonus_back_in_proportion_and_lowers_qualifying_points_without_downgrade(
    points_api,
):
    p = points_api
    await p.put_tiers()
    ada = await p.member("ada-2")
    await p.buy(purchase("ada-2", "big", 1_000_000, points=10_000))
    await p.buy(purchase("ada-2", "o-2", 200_000, points=2_000))
    assert await p.tier_bonuses(ada) == [("tier_bonus", 1_000)]

    await p.buy(refund("ada-2", "o-2", 100_000))
    await p.buy(refund("ada-2", "big", 1_000_000))
    assert await p.tier_bonuses(ada) == [("tier_bonus", 1_000), ("tier_bonus_reversal", 500)]
    tier = await p.tier(ada)
    assert tier["tier"]["code"] == "gold", "a refund never downgrades at once"
    assert tier["current_window"]["qualifying_points"] == 1_000
    assert tier["points_to_keep"] == 10_000, "the review judges the next period, which has no points yet"
    assert (await balance(p.api, ada))["posted"] == 1_000 + 500
    gold = await p.api.post("/v1/ops/segments/preview", json={"rules": {"all": [{"kind": "tier", "codes": ["gold"]}]}},
                            headers=OPS)  # fmt: skip
    assert (gold.json()["count"], gold.json()["sample"]) == (1, [str(ada)])
    assert await verify_ledger(p.dsn) == []


async def test_the_review_goes_one_tier_down_after_the_period_and_its_grace_days(points_api):
    p = points_api
    await p.put_tiers()
    ada = await p.member("ada-3")
    await p.buy(purchase("ada-3", "big", 1_000_000, points=10_000))
    gold = await p.tier(ada)
    valid_until = date.fromisoformat(gold["valid_until"])
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()  # the programme's day (PROGRAMME_TIMEZONE's default)
    assert gold["tier"]["code"] == "gold"
    assert valid_until >= today + timedelta(days=364)

    p.clock.ahead = timedelta(days=(valid_until - today).days + 30)  # the last grace day
    assert (await p.review())["reviewed"] == 0
    p.clock.ahead += timedelta(days=1, hours=12)
    ran = await p.review()
    assert (ran["reviewed"], ran["downgraded"]) == (1, 1)
    silver = await p.tier(ada)
    assert (silver["tier"]["code"], silver["history"][0]["reason"]) == ("silver", "review_downgraded")
    assert date.fromisoformat(silver["valid_until"]) > valid_until, "held for the next period"
    assert (await p.review())["reviewed"] == 0, "a review runs once"
    records = await read_all(p.kafka, MEMBER_TIERS.qualified(p.prefix), 2)
    assert [json.loads(r.value)["payload"]["direction"] for r in records] == ["upgrade", "downgrade"]
    assert await verify_ledger(p.dsn) == []


async def test_a_new_tier_set_catches_members_up_and_a_purchase_delivered_twice_earns_one_tier_bonus(points_api):
    p = points_api
    ada = await p.member("ada-4")
    await p.buy(purchase("ada-4", "before-tiers", 1_200_000, points=12_000))
    await p.put_tiers()
    assert (await p.tier(ada))["tier"]["code"] == "green", "until the catch-up runs"
    ran = await p.review()
    assert (ran["upgraded"], ran["caught_up_versions"]) == (1, [1])
    tier = await p.tier(ada)
    assert (tier["tier"]["code"], tier["history"][0]["reason"]) == ("gold", "tier_set_changed")
    assert (await p.review())["upgraded"] == 0

    twice = purchase("ada-4", "o-2", 100_000, points=1_000)
    await p.buy(twice, twice)
    await p.buy(twice)  # and once more, in a batch of its own
    assert await p.tier_bonuses(ada) == [("tier_bonus", 500)]
    assert (await balance(p.api, ada))["posted"] == 12_000 + 1_000 + 500
    summary = (await p.api.get("/v1/ops/tiers/summary", headers=OPS)).json()
    assert [(t["code"], t["members"]) for t in summary["tiers"]] == [("green", 0), ("silver", 0), ("gold", 1)]
    assert await verify_ledger(p.dsn) == []
