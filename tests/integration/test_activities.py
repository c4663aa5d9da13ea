"""Reward activities on the real ledger: exact caps under concurrency, replays, UTC window edges."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from contracts.topics import CARD_TRANSACTIONS, PARTNER_PURCHASES
from points.handlers.verify import verify_ledger
from tests.support.ledger import OPS, balance, card_purchase, link, member_headers, new_member, publish, purchase
from tests.support.services import http, points_service, running
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
async def points(infra, topic_prefix, database):
    dsn = await database("points")
    async with running(points_service(infra.kafka, dsn, topic_prefix)) as shell, http(shell) as api:
        yield api, dsn, topic_prefix


async def activity(api, kind: str, rules: dict, budget: int, **extra) -> dict:
    answer = await api.post(
        "/v1/ops/activities",
        json={"name": f"{kind} test", "kind": kind, "rules": rules, "budget_points": budget, **extra},
        headers=OPS,
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


def in_an_hour() -> str:
    return (datetime.now(UTC) + timedelta(hours=1)).isoformat()


async def lifecycle(api, activity_id: str, action: str, **body) -> dict:
    answer = await api.post(f"/v1/ops/activities/{activity_id}/{action}", json=body, headers=OPS)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def fetch(dsn: str, sql: str, *args):
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchrow(sql, *args)
    finally:
        await conn.close()


async def applied(dsn: str, count: int) -> bool:
    return (await fetch(dsn, "SELECT count(*) AS n FROM inbox"))["n"] >= count


async def test_a_thousand_concurrent_claims_for_a_quantity_of_a_hundred_grant_exactly_a_hundred(points):
    api, dsn, _prefix = points
    members = list(await asyncio.gather(*(new_member(api, f"m{i}") for i in range(1_000))))
    giveaway = await activity(api, "limited_claim", {"claim_points": 100}, budget=1_000_000, quantity_cap=100)
    await lifecycle(api, giveaway["activity_id"], "activate", ends_at=in_an_hour())

    async def claim(member: uuid.UUID) -> int:
        answer = await api.post(
            f"/v1/members/me/activities/{giveaway['activity_id']}/claims", json={}, headers=member_headers(member)
        )
        return answer.status_code

    codes = await asyncio.gather(*(claim(m) for m in members))

    assert (codes.count(201), codes.count(409)) == (100, 900)
    row = await fetch(
        dsn,
        "SELECT grants_count, points_granted FROM activities WHERE activity_id = $1",
        uuid.UUID(giveaway["activity_id"]),
    )
    assert (row["grants_count"], row["points_granted"]) == (100, 10_000)
    winners = await fetch(dsn, "SELECT count(DISTINCT member_id) AS n FROM activity_grants")
    assert winners["n"] == 100
    assert await verify_ledger(dsn) == []


async def test_a_budget_is_never_exceeded_under_concurrent_events(points, infra):
    api, dsn, prefix = points
    members = [await new_member(api, f"m{i}") for i in range(40)]
    for m in members:
        await link(api, m, partner_id="skymall", customer_ref=f"c-{m.hex[:8]}")
        await link(api, m, card_token=f"tok_{m.hex[:12]}")
    double = await activity(api, "multiplier", {"multiplier": "2"}, budget=5_000)
    await lifecycle(api, double["activity_id"], "activate", ends_at=in_an_hour())

    shop = [purchase(f"c-{m.hex[:8]}", f"o-{m.hex[:8]}-{i}", 10_000, points=100) for m in members for i in range(3)]
    cards = [
        card_purchase(f"tok_{m.hex[:12]}", f"t-{m.hex[:8]}-{i}", 5_000, mcc="5411") for m in members for i in range(3)
    ]
    # Both consumers grant from the same budget at the same time.
    await asyncio.gather(
        publish(infra.kafka, PARTNER_PURCHASES.qualified(prefix), shop),
        publish(infra.kafka, CARD_TRANSACTIONS.qualified(prefix), cards),
    )
    await eventually(lambda: applied(dsn, len(shop) + len(cards)), timeout=60, what="every purchase")

    row = await fetch(dsn, "SELECT points_granted, budget_points FROM activities")
    assert row["points_granted"] == 5_000, "demand (24,000 bonus points) outran the budget, which is spent exactly"
    budget = await fetch(
        dsn, "SELECT credits_posted - debits_posted AS left FROM accounts WHERE kind = 'activity_budget'"
    )
    assert budget["left"] == 0
    total = await fetch(dsn, "SELECT sum(amount) AS n FROM transfers WHERE reason = 'bonus_multiplier'")
    assert total["n"] == 5_000
    assert await verify_ledger(dsn) == []


async def test_a_replayed_event_grants_nothing_twice(points, infra):
    api, dsn, prefix = points
    member = await new_member(api)
    await link(api, member, partner_id="skymall", customer_ref="rep-1")
    await activity(api, "first_purchase", {"partner_id": "skymall", "bonus_points": 500}, budget=10_000)
    [first] = (await api.get("/v1/ops/activities", headers=OPS)).json()
    await lifecycle(api, first["activity_id"], "activate", ends_at=in_an_hour())

    event = purchase("rep-1", "order-1", 10_000, points=100)
    second = purchase("rep-1", "order-2", 10_000, points=100)
    await publish(infra.kafka, PARTNER_PURCHASES.qualified(prefix), [event, event, second, event])
    await eventually(lambda: applied(dsn, 2), what="both purchases")

    assert (await balance(api, member))["posted"] == 100 + 100 + 500, "one first-purchase bonus, once"
    grants = await fetch(dsn, "SELECT count(*) AS n FROM activity_grants")
    assert grants["n"] == 1
    assert await verify_ledger(dsn) == []


async def test_window_edges_are_judged_in_utc_from_the_event_time(points, infra):
    api, dsn, prefix = points
    member = await new_member(api)
    await link(api, member, partner_id="skymall", customer_ref="edge-1")
    weekend = await activity(api, "multiplier", {"multiplier": "2"}, budget=10_000)
    start = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0)
    end = start + timedelta(seconds=2)
    await lifecycle(api, weekend["activity_id"], "schedule", starts_at=start.isoformat(), ends_at=end.isoformat())

    tick = timedelta(microseconds=1)
    # Written in Beijing time: 08:00+08:00 is the same instant as 00:00Z.
    beijing = start.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Shanghai"))
    events = [
        purchase("edge-1", "before", 1_000, points=1, at=start - tick),
        purchase("edge-1", "at-start", 2_000, points=2, at=beijing),
        purchase("edge-1", "last", 4_000, points=4, at=end - tick),
        purchase("edge-1", "at-end", 8_000, points=8, at=end),
    ]
    await publish(infra.kafka, PARTNER_PURCHASES.qualified(prefix), events)
    await eventually(lambda: applied(dsn, 4), what="the four purchases")

    bonus = await fetch(dsn, "SELECT sum(amount) AS n FROM transfers WHERE reason = 'bonus_multiplier'")
    assert bonus["n"] == 2 + 4, "the start is in the window, the end is not"
    assert (await balance(api, member))["posted"] == 15 + 6


async def test_an_event_is_judged_by_the_version_in_force_when_it_occurred(points, infra):
    api, dsn, prefix = points
    member = await new_member(api)
    await link(api, member, partner_id="skymall", customer_ref="late-1")
    double = await activity(api, "multiplier", {"multiplier": "2"}, budget=10_000)
    await lifecycle(api, double["activity_id"], "activate", ends_at=in_an_hour())
    during = datetime.now(UTC)
    tripled = await lifecycle(api, double["activity_id"], "revisions", rules={"multiplier": "3"})
    after_revision = datetime.now(UTC)
    await lifecycle(api, double["activity_id"], "pause")
    paused = datetime.now(UTC)
    assert [v["state"] for v in tripled["versions"]] == ["draft", "active", "active"]

    # All three arrive after the pause; each is judged by the version in force when it happened.
    events = [
        purchase("late-1", "p-during", 10_000, points=100, at=during),
        purchase("late-1", "p-tripled", 10_000, points=100, at=after_revision),
        purchase("late-1", "p-paused", 10_000, points=100, at=paused + timedelta(milliseconds=1)),
    ]
    await publish(infra.kafka, PARTNER_PURCHASES.qualified(prefix), events)
    await eventually(lambda: applied(dsn, 3), what="the late purchases")
    assert (await balance(api, member))["posted"] == 300 + 100 + 200


async def test_the_lifecycle_api_refuses_inconsistent_changes_with_a_reason(points):
    api, _dsn, _prefix = points
    draft = await activity(api, "multiplier", {"multiplier": "2"}, budget=1_000)
    paused = await api.post(f"/v1/ops/activities/{draft['activity_id']}/pause", json={}, headers=OPS)
    assert paused.status_code == 409
    assert "a draft activity cannot be paused" in paused.json()["detail"]
    no_end = await api.post(f"/v1/ops/activities/{draft['activity_id']}/activate", json={}, headers=OPS)
    assert no_end.status_code == 422
    assert "ends_at" in no_end.json()["detail"]
    bad = await api.post(
        "/v1/ops/activities",
        json={"name": "x", "kind": "spend_threshold", "rules": {"bonus_points": 5}, "budget_points": 10},
        headers=OPS,
    )
    assert bad.status_code == 422
    assert "needs threshold_minor, currency" in bad.json()["detail"]
    member = await new_member(api)
    body = {"name": "x", "kind": "multiplier", "rules": {"multiplier": "2"}, "budget_points": 10}
    as_member = await api.post("/v1/ops/activities", json=body, headers=member_headers(member))
    assert as_member.status_code == 403
