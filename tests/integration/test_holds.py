"""Two-phase transfers and gifts on the real ledger: no overspend, exactly-once, expiry."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from contracts.events.holds import HoldCaptured, HoldCaptureRefused, HoldRejected, HoldReleased, PointsHeld
from contracts.events.ledger import TransferPosted
from contracts.topics import HOLD_COMMANDS, HOLD_RESULTS, LEDGER_TRANSFERS, PARTNER_PURCHASES
from points.handlers.verify import verify_ledger
from tests.support.holds import capture, hold, release
from tests.support.kafka import read_all
from tests.support.ledger import OPS, balance, link, member_headers, new_member, now, publish, purchase
from tests.support.services import http, points_service, running
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
async def points(infra, topic_prefix, database):
    dsn = await database("points")
    async with running(points_service(infra.kafka, dsn, topic_prefix)) as shell, http(shell) as api:
        yield api, dsn, topic_prefix


async def member_with(api, infra, prefix: str, points_earned: int, *, old: int = 0) -> uuid.UUID:
    """A member holding `points_earned` points (and `old` more in a lot that expires sooner)."""
    member = await new_member(api)
    ref = f"c-{member.hex[:8]}"
    await link(api, member, partner_id="skymall", customer_ref=ref)
    events = [purchase(ref, f"o-{member.hex[:8]}", points_earned * 100, points=points_earned)]
    if old:
        events.insert(0, purchase(ref, f"old-{member.hex[:8]}", old * 100, points=old, at=now() - timedelta(days=700)))
    await publish(infra.kafka, PARTNER_PURCHASES.qualified(prefix), events)
    total = points_earned + old

    async def earned() -> bool:
        return (await balance(api, member))["posted"] == total

    await eventually(earned, what="the member's points")
    return member


async def results_for(kafka: str, prefix: str, expected: int) -> list:
    records = await read_all(kafka, HOLD_RESULTS.qualified(prefix), expected=expected)
    return [HOLD_RESULTS.decode(r.value) for r in records]


async def test_fifty_concurrent_holds_against_a_balance_for_ten_give_exactly_ten(points, infra):
    api, dsn, prefix = points
    member = await member_with(api, infra, prefix, 100)
    requests = [hold(member, 10) for _ in range(50)]
    # Fifty producers at once, as fifty order requests would.
    await asyncio.gather(*(publish(infra.kafka, HOLD_COMMANDS.qualified(prefix), [r]) for r in requests))

    results = await results_for(infra.kafka, prefix, expected=50)
    held = [r for r in results if isinstance(r, PointsHeld)]
    refused = [r for r in results if isinstance(r, HoldRejected)]
    assert (len(held), len(refused)) == (10, 40)
    assert all(r.payload.reason == "insufficient_points" and r.payload.available == 0 for r in refused)
    state = await balance(api, member)
    assert (state["posted"], state["pending"], state["available"]) == (100, 100, 0)
    assert await verify_ledger(dsn) == []


async def test_capture_posts_the_hold_and_release_gives_the_points_back(points, infra):
    api, dsn, prefix = points
    member = await member_with(api, infra, prefix, 300, old=50)
    kept, dropped = hold(member, 120), hold(member, 200)
    commands = HOLD_COMMANDS.qualified(prefix)
    await publish(infra.kafka, commands, [kept, dropped])
    await results_for(infra.kafka, prefix, expected=2)
    assert (await balance(api, member))["available"] == 350 - 320

    await publish(infra.kafka, commands, [capture(kept), release(dropped), capture(kept), release(kept)])
    results = await results_for(infra.kafka, prefix, expected=4)
    assert [type(r) for r in results[2:]] == [HoldCaptured, HoldReleased], "repeats change nothing"

    state = await balance(api, member)
    assert (state["posted"], state["pending"], state["available"]) == (230, 0, 230)
    lots = (await api.get(f"/v1/members/{member}/lots", headers=member_headers(member))).json()["items"]
    assert [lot["remaining"] for lot in lots] == [230], "the capture took the lot that expires first first"
    history = (await api.get(f"/v1/members/{member}/history", headers=member_headers(member))).json()["items"]
    assert (history[0]["reason"], history[0]["amount"], history[0]["counterparty"]) == (
        "redemption", 120, "partner:skyair:redeemed",
    )  # fmt: skip
    transfers = [
        LEDGER_TRANSFERS.decode(r.value) for r in await read_all(infra.kafka, LEDGER_TRANSFERS.qualified(prefix), 3)
    ]
    assert any(
        isinstance(t, TransferPosted) and t.payload.reason == "redemption" and t.payload.amount == 120
        for t in transfers
    )
    assert await verify_ledger(dsn) == []


async def test_a_hold_nobody_settles_expires_and_is_released(points, infra):
    api, dsn, prefix = points
    member = await member_with(api, infra, prefix, 100)
    forgotten = hold(member, 80, ttl=timedelta(seconds=1))
    await publish(infra.kafka, HOLD_COMMANDS.qualified(prefix), [forgotten])

    results = await results_for(infra.kafka, prefix, expected=2)
    assert isinstance(results[0], PointsHeld)
    assert isinstance(results[1], HoldReleased)
    assert results[1].payload.reason == "expired"
    assert (await balance(api, member))["available"] == 100

    late = capture(forgotten, at=now() - timedelta(hours=1))  # sent before expiry, delivered after
    await publish(infra.kafka, HOLD_COMMANDS.qualified(prefix), [late])
    results = await results_for(infra.kafka, prefix, expected=3)
    assert isinstance(results[2], HoldCaptured), "a capture asked for in time still posts, from what is available"
    assert (await balance(api, member))["posted"] == 20
    assert await verify_ledger(dsn) == []


async def test_a_capture_after_a_release_is_refused(points, infra):
    api, dsn, prefix = points
    member = await member_with(api, infra, prefix, 100)
    request = hold(member, 60)
    await publish(infra.kafka, HOLD_COMMANDS.qualified(prefix), [request, release(request), capture(request)])
    results = await results_for(infra.kafka, prefix, expected=3)
    assert isinstance(results[2], HoldCaptureRefused)
    assert results[2].payload.reason == "hold_released"
    assert (await balance(api, member))["posted"] == 100
    assert await verify_ledger(dsn) == []


async def test_a_gift_moves_points_once_within_the_daily_limit(points, infra):
    api, dsn, prefix = points
    giver = await member_with(api, infra, prefix, 9_000)
    friend = await new_member(api, "Friend")
    gift_id = str(uuid.uuid4())
    body = {"gift_id": gift_id, "to_member_id": str(friend), "amount": 6_000, "message": "happy birthday"}
    first = await api.post(f"/v1/members/{giver}/gifts", json=body, headers=member_headers(giver))
    again = await api.post(f"/v1/members/{giver}/gifts", json=body, headers=member_headers(giver))
    assert (first.status_code, again.status_code) == (201, 200)
    assert (await balance(api, giver))["posted"] == 3_000
    assert (await balance(api, friend))["posted"] == 6_000

    over_limit = {**body, "gift_id": str(uuid.uuid4()), "amount": 4_001}
    refused = await api.post(f"/v1/members/{giver}/gifts", json=over_limit, headers=member_headers(giver))
    assert refused.status_code == 422
    assert "daily gift limit is 10000 points; 4000 left today" in refused.json()["detail"]
    reused = await api.post(f"/v1/members/{giver}/gifts", json={**body, "amount": 1}, headers=member_headers(giver))
    assert reused.status_code == 409
    as_someone_else = await api.post(f"/v1/members/{giver}/gifts", json=body, headers=member_headers(friend))
    assert as_someone_else.status_code == 403

    giver_history = (await api.get(f"/v1/members/{giver}/history", headers=member_headers(giver))).json()["items"]
    friend_history = (await api.get(f"/v1/members/{friend}/history", headers=member_headers(friend))).json()["items"]
    assert (giver_history[0]["reason"], giver_history[0]["direction"], giver_history[0]["amount"]) == (
        "gift",
        "debit",
        6_000,
    )
    assert (friend_history[0]["reason"], friend_history[0]["direction"]) == ("gift", "credit")
    assert friend_history[0]["memo"]["message"] == "happy birthday"
    lots = (await api.get(f"/v1/members/{friend}/lots", headers=OPS)).json()["items"]
    assert sum(lot["remaining"] for lot in lots) == 6_000
    assert await verify_ledger(dsn) == []
