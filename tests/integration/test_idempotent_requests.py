"""Requests sent again at the same moment (a client's retries, two taps) answer the original result."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from contracts.topics import PARTNER_PURCHASES
from points.handlers.verify import verify_ledger
from tests.support.ledger import OPS, balance, member_headers, new_member, publish, purchase
from tests.support.services import http, points_service, running
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
async def points(infra, topic_prefix, database):
    dsn = await database("points")
    async with running(points_service(infra.kafka, dsn, topic_prefix)) as shell, http(shell) as api:
        yield api, dsn, topic_prefix


async def member_holding(api, infra, prefix: str, points: int) -> uuid.UUID:
    """A member whose linked partner account earned `points` (linked by ops, who may link without a code)."""
    member = await new_member(api)
    ref = f"c-{member.hex[:8]}"
    linked = await api.post(
        f"/v1/members/{member}/identifiers",
        json={"kind": "partner", "partner_id": "skymall", "customer_ref": ref},
        headers=OPS,
    )
    assert linked.status_code in (200, 201), linked.text
    await publish(infra.kafka, PARTNER_PURCHASES.qualified(prefix), [purchase(ref, f"o-{ref}", points * 100, points)])

    async def earned() -> bool:
        return (await balance(api, member))["posted"] == points

    await eventually(earned, what="the member's points")
    return member


async def test_twenty_identical_gift_requests_at_once_give_one_gift_and_move_its_points_once(points, infra):
    api, dsn, prefix = points
    giver = await member_holding(api, infra, prefix, 5_000)
    friend = await new_member(api, "Friend")
    body = {"gift_id": str(uuid.uuid4()), "to_member_id": str(friend), "amount": 1_000}

    answers = await asyncio.gather(
        *(api.post(f"/v1/members/{giver}/gifts", json=body, headers=member_headers(giver)) for _ in range(20))
    )

    codes = sorted(a.status_code for a in answers)
    assert codes == [200] * 19 + [201], [a.text for a in answers if a.status_code not in (200, 201)]
    assert {(a.json()["gift_id"], a.json()["amount"], a.json()["given_at"]) for a in answers} == {
        (body["gift_id"], 1_000, answers[0].json()["given_at"])
    }, "every answer is the one gift"
    assert (await balance(api, giver))["posted"] == 4_000
    assert (await balance(api, friend))["posted"] == 1_000
    assert await verify_ledger(dsn) == []


async def test_one_gift_id_sent_at_once_with_other_amounts_gives_one_gift_and_refuses_the_others(points, infra):
    api, dsn, prefix = points
    giver = await member_holding(api, infra, prefix, 5_000)
    friend = await new_member(api, "Friend")
    gift_id = str(uuid.uuid4())

    answers = await asyncio.gather(
        *(
            api.post(
                f"/v1/members/{giver}/gifts",
                json={"gift_id": gift_id, "to_member_id": str(friend), "amount": amount},
                headers=member_headers(giver),
            )
            for amount in range(100, 1_100, 100)
        )
    )

    [won] = [a for a in answers if a.status_code == 201]
    refused = [a for a in answers if a.status_code != 201]
    assert [a.status_code for a in refused] == [409] * 9
    assert all("already given with other details; use a new gift_id" in a.json()["detail"] for a in refused)
    given = won.json()["amount"]
    assert (await balance(api, giver))["posted"] == 5_000 - given
    assert (await balance(api, friend))["posted"] == given
    assert await verify_ledger(dsn) == []


async def giveaway(api, claim_points: int, quantity: int) -> str:
    made = await api.post(
        "/v1/ops/activities",
        json={"name": "First members", "kind": "limited_claim", "rules": {"claim_points": claim_points},
              "budget_points": 100_000, "quantity_cap": quantity},
        headers=OPS,
    )  # fmt: skip
    assert made.status_code == 201, made.text
    activity = made.json()["activity_id"]
    ends = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    started = await api.post(f"/v1/ops/activities/{activity}/activate", json={"ends_at": ends}, headers=OPS)
    assert started.status_code == 200, started.text
    return str(activity)


async def test_twenty_identical_claims_at_once_grant_once_and_answer_the_grant(points):
    api, dsn, _prefix = points
    member = await new_member(api)
    activity = await giveaway(api, 100, quantity=10)
    body = {"claim_id": str(uuid.uuid4())}

    answers = await asyncio.gather(
        *(
            api.post(f"/v1/members/{member}/activities/{activity}/claims", json=body, headers=member_headers(member))
            for _ in range(20)
        )
    )

    assert sorted(a.status_code for a in answers) == [200] * 19 + [201]
    assert {a.json()["points"] for a in answers} == {100}
    assert (await balance(api, member))["posted"] == 100
    assert await verify_ledger(dsn) == []


async def test_a_claim_id_is_scoped_to_its_member(points):
    api, dsn, _prefix = points
    ada, bob, cleo, dan = [await new_member(api, name) for name in ("Ada", "Bob", "Cleo", "Dan")]
    activity = await giveaway(api, 100, quantity=3)
    claim_id = str(uuid.uuid4())

    async def claim(member: uuid.UUID):
        return await api.post(
            f"/v1/members/{member}/activities/{activity}/claims",
            json={"claim_id": claim_id},
            headers=member_headers(member),
        )

    ada_first = await claim(ada)
    bob_same_id = await claim(bob)
    ada_again = await claim(ada)
    # Cleo sends the id before Bob's retry: neither blocks the other.
    cleo_same_id, bob_again = await asyncio.gather(claim(cleo), claim(bob))

    assert (ada_first.status_code, ada_again.status_code) == (201, 200)
    assert bob_same_id.status_code == 201, "Bob's claim is his own, not an answer with Ada's grant"
    assert (cleo_same_id.status_code, bob_again.status_code) == (201, 200)
    for member in (ada, bob, cleo):
        assert (await balance(api, member))["posted"] == 100
    sold_out = await claim(dan)
    assert sold_out.status_code == 409
    assert "all of this activity has been claimed" in sold_out.json()["detail"]
    assert await verify_ledger(dsn) == []
