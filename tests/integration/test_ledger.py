"""The ledger through real Kafka and PostgreSQL: earn, link, refund, expiry, exactly once."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

import asyncpg
import pytest

from contracts.events.cards import CardPurchasePosted, CardReversalPosted
from contracts.events.ledger import PointsCredited
from contracts.topics import CARD_TRANSACTIONS, LEDGER_EVENTS, PARTNER_PURCHASES
from points.handlers.verify import verify_ledger
from tests.support.kafka import read_all
from tests.support.ledger import (
    OPS,
    balance,
    card_purchase,
    link,
    member_headers,
    new_member,
    now,
    publish,
    purchase,
    refund,
)
from tests.support.partner_client import SignedPartnerClient, ops_token, purchase_item, register_partner
from tests.support.services import http, partners_service, points_service, running
from tests.support.waiting import eventually
from tools.cardfeed import CardFeed
from tools.cardfeed import publish as publish_cards

pytestmark = pytest.mark.integration
Database = Callable[[str], Awaitable[str]]


async def applied(api, event_id: uuid.UUID) -> bool:
    return (await api.get(f"/v1/events/{event_id}", headers=OPS)).status_code == 200


async def wait_applied(api, *events) -> None:
    for event in events:
        await eventually(lambda e=event: applied(api, e.event_id), what=f"{type(event).__name__} to be applied")


async def assert_invariants(dsn: str) -> None:
    assert await verify_ledger(dsn) == []


@pytest.fixture
async def points(infra, topic_prefix, database: Database):
    dsn = await database("points")
    async with running(points_service(infra.kafka, dsn, topic_prefix)) as shell, http(shell) as api:
        yield api, dsn, topic_prefix


async def test_a_partner_purchase_and_a_card_payment_credit_the_same_member(points, infra):
    api, dsn, prefix = points
    member = await new_member(api)
    await link(api, member, partner_id="skymall", customer_ref="ada-1")
    await link(api, member, card_token="tok_ada00000001")
    shop = purchase("ada-1", "order-1", 25_800, points=258)
    card = card_purchase("tok_ada00000001", "ctx-1", 2_580, mcc="5411")  # grocery: 2 points per CNY
    await publish(infra.kafka, PARTNER_PURCHASES.qualified(prefix), [shop])
    await publish(infra.kafka, CARD_TRANSACTIONS.qualified(prefix), [card])
    await wait_applied(api, shop, card)

    assert (await balance(api, member))["posted"] == 258 + 51
    history = (await api.get(f"/v1/members/{member}/history", headers=member_headers(member))).json()["items"]
    assert sorted((h["reason"], h["amount"], h["direction"]) for h in history if h["kind"] == "transfer") == [
        ("card_purchase", 51, "credit"),
        ("partner_purchase", 258, "credit"),
    ]
    assert [(h["reason"], h["identifier"]) for h in history if h["kind"] == "identifier"] == [
        ("identifier_linked", "card:tok_ada00000001"),
        ("identifier_linked", "partner:skymall:ada-1"),
    ]
    lots = (await api.get(f"/v1/members/{member}/lots", headers=member_headers(member))).json()["items"]
    assert sorted(lot["remaining"] for lot in lots) == [51, 258]
    assert all(lot["expires_at"] > lot["earned_at"] for lot in lots)
    await assert_invariants(dsn)


async def test_points_of_an_unlinked_identifier_wait_and_move_to_the_member_once(points, infra):
    api, dsn, prefix = points
    early = purchase("bob-7", "order-7", 10_000, points=100)
    await publish(infra.kafka, PARTNER_PURCHASES.qualified(prefix), [early])
    await wait_applied(api, early)
    member = await new_member(api, "Bob")

    first = await link(api, member, partner_id="skymall", customer_ref="bob-7")
    again = await link(api, member, partner_id="skymall", customer_ref="bob-7")

    assert first["claimed_points"] == 100
    assert again["claimed_points"] == 0
    later = purchase("bob-7", "order-8", 5_000, points=50)
    await publish(infra.kafka, PARTNER_PURCHASES.qualified(prefix), [later])
    await wait_applied(api, later)
    assert (await balance(api, member))["posted"] == 150
    other = await new_member(api, "Mallory")
    stolen = await api.post(
        f"/v1/members/{other}/identifiers",
        json={"kind": "partner", "partner_id": "skymall", "customer_ref": "bob-7"},
        headers=member_headers(other),
    )
    assert (stolen.status_code, stolen.json()["reason"]) == (403, "link_code_required"), "a member needs a code"
    await assert_invariants(dsn)


async def test_a_duplicate_delivery_is_counted_once(points, infra):
    api, dsn, prefix = points
    member = await new_member(api)
    await link(api, member, partner_id="skymall", customer_ref="dup-1")
    event = purchase("dup-1", "order-d", 10_000, points=100)
    marker = purchase("dup-1", "order-m", 100, points=1)
    await publish(infra.kafka, PARTNER_PURCHASES.qualified(prefix), [event, event, event, marker])
    await wait_applied(api, marker)
    assert (await balance(api, member))["posted"] == 101
    await assert_invariants(dsn)


async def test_a_partial_refund_reverses_points_in_proportion(points, infra):
    api, dsn, prefix = points
    member = await new_member(api)
    await link(api, member, partner_id="skymall", customer_ref="ref-1")
    topic = PARTNER_PURCHASES.qualified(prefix)
    bought = purchase("ref-1", "order-r", 10_000, points=101)
    quarter = refund("ref-1", "order-r", 2_500)
    await publish(infra.kafka, topic, [bought, quarter])
    await wait_applied(api, quarter)
    assert (await balance(api, member))["posted"] == 101 - 25

    rest = refund("ref-1", "order-r", 7_500)
    await publish(infra.kafka, topic, [rest])
    await wait_applied(api, rest)
    assert (await balance(api, member))["posted"] == 0, "refunding every part reverses every point"
    await assert_invariants(dsn)


async def test_a_refund_that_overtakes_its_purchase_waits_for_it(points, infra):
    api, dsn, prefix = points
    member = await new_member(api)
    await link(api, member, partner_id="skymall", customer_ref="ooo-1")
    topic = PARTNER_PURCHASES.qualified(prefix)
    bought = purchase("ooo-1", "order-o", 10_000, points=200)
    # Posted under another customer reference, so it travels on another partition and arrives first.
    early_refund = refund("ooo-other", "order-o", 5_000)
    await publish(infra.kafka, topic, [early_refund])
    await wait_applied(api, early_refund)
    await publish(infra.kafka, topic, [bought])
    await wait_applied(api, bought)
    assert (await balance(api, member))["posted"] == 100
    await assert_invariants(dsn)


async def test_expiry_moves_expired_lots_to_breakage(points, infra):
    api, dsn, prefix = points
    member = await new_member(api)
    await link(api, member, partner_id="skymall", customer_ref="exp-1")
    old = purchase("exp-1", "order-old", 10_000, points=100, at=now() - timedelta(days=800))
    fresh = purchase("exp-1", "order-new", 3_000, points=30)
    await publish(infra.kafka, PARTNER_PURCHASES.qualified(prefix), [old, fresh])
    await wait_applied(api, old, fresh)

    run = await api.post("/v1/ops/expiry-runs", headers=OPS)
    assert run.status_code == 200
    assert run.json()["points_expired"] >= 100

    assert (await balance(api, member))["posted"] == 30
    history = (await api.get(f"/v1/members/{member}/history", headers=member_headers(member))).json()["items"]
    assert history[0]["reason"] == "expiry"
    assert (history[0]["amount"], history[0]["counterparty"]) == (100, "breakage")
    await assert_invariants(dsn)


async def test_a_refund_of_points_already_gone_becomes_a_clawback_repaid_by_later_earnings(points, infra):
    api, dsn, prefix = points
    member = await new_member(api)
    await link(api, member, partner_id="skymall", customer_ref="claw-1")
    topic = PARTNER_PURCHASES.qualified(prefix)
    old = purchase("claw-1", "order-c", 10_000, points=100, at=now() - timedelta(days=800))
    await publish(infra.kafka, topic, [old])
    await wait_applied(api, old)
    await api.post("/v1/ops/expiry-runs", headers=OPS)  # the member no longer has those points

    late_refund = refund("claw-1", "order-c", 10_000)
    await publish(infra.kafka, topic, [late_refund])
    await wait_applied(api, late_refund)
    after_refund = await balance(api, member)
    assert (after_refund["posted"], after_refund["owed"]) == (0, 100)

    payday = purchase("claw-1", "order-p", 15_000, points=150)
    await publish(infra.kafka, topic, [payday])
    await wait_applied(api, payday)
    repaid = await balance(api, member)
    assert (repaid["posted"], repaid["owed"]) == (50, 0)
    await assert_invariants(dsn)


async def test_an_unprocessable_event_goes_to_the_dead_letter_topic(points, infra):
    api, _dsn, prefix = points
    no_points = purchase("dlq-1", "order-x", 1_000, points=0).model_dump(mode="json")
    no_points["payload"]["points"] = None
    marker = purchase("dlq-1", "order-y", 1_000, points=10)
    await publish(infra.kafka, PARTNER_PURCHASES.qualified(prefix), [json.dumps(no_points).encode(), marker], key=b"k")
    await wait_applied(api, marker)
    [dead] = await read_all(infra.kafka, f"{PARTNER_PURCHASES.qualified(prefix)}.dlq", expected=1)
    assert "purchase without points" in dict(dead.headers)["dlq-reason"].decode()


async def test_members_read_only_their_own_points_and_ops_read_any(points):
    api, _dsn, _prefix = points
    ada, bob = await new_member(api, "Ada"), await new_member(api, "Bob")
    assert (await api.get(f"/v1/members/{ada}/balance", headers=member_headers(ada))).status_code == 200
    assert (await api.get("/v1/members/me/balance", headers=member_headers(ada))).json()["member_id"] == str(ada)
    assert (await api.get(f"/v1/members/{bob}/balance", headers=member_headers(ada))).status_code == 403
    assert (await api.get(f"/v1/members/{bob}/history", headers=member_headers(ada))).status_code == 403
    assert (await api.get(f"/v1/members/{bob}/balance", headers=OPS)).status_code == 200
    assert (await api.get(f"/v1/members/{bob}/balance")).status_code == 401
    bad = {"Authorization": "Bearer not-a-token"}
    assert (await api.get(f"/v1/members/{bob}/balance", headers=bad)).status_code == 401
    assert (await api.post("/v1/members", json={}, headers=member_headers(ada))).status_code == 403
    missing = uuid.uuid4()
    assert (await api.get(f"/v1/members/{missing}/balance", headers=OPS)).status_code == 404


async def test_history_is_paginated_newest_first(points, infra):
    api, _dsn, prefix = points
    member = await new_member(api)
    await link(api, member, partner_id="skymall", customer_ref="page-1")
    events = [purchase("page-1", f"order-{i}", 100 * (i + 1), points=i + 1) for i in range(7)]
    await publish(infra.kafka, PARTNER_PURCHASES.qualified(prefix), events)
    await wait_applied(api, events[-1])
    seen: list[int] = []
    cursor = None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await api.get(f"/v1/members/{member}/history", params=params, headers=member_headers(member))).json()
        seen += [item["amount"] for item in page["items"] if item["kind"] == "transfer"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [7, 6, 5, 4, 3, 2, 1]


async def test_verify_reports_the_rows_that_break_an_invariant(points, infra):
    api, dsn, prefix = points
    member = await new_member(api)
    await link(api, member, partner_id="skymall", customer_ref="v-1")
    event = purchase("v-1", "order-v", 1_000, points=10)
    await publish(infra.kafka, PARTNER_PURCHASES.qualified(prefix), [event])
    await wait_applied(api, event)
    await assert_invariants(dsn)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "UPDATE accounts SET credits_posted = credits_posted + 5 WHERE account_id = $1", f"member:{member}"
        )
    finally:
        await conn.close()
    broken = {v.check: v for v in await verify_ledger(dsn)}
    assert {"transfers_balance", "account_totals_match_transfers", "live_lots_sum_to_posted_balance"} <= set(broken)
    assert broken["live_lots_sum_to_posted_balance"].rows[0]["account_id"] == f"member:{member}"


async def test_ledger_events_leave_through_the_outbox(points, infra):
    api, _dsn, prefix = points
    member = await new_member(api)
    await link(api, member, partner_id="skymall", customer_ref="out-1")
    event = purchase("out-1", "order-out", 4_200, points=42)
    await publish(infra.kafka, PARTNER_PURCHASES.qualified(prefix), [event])
    await wait_applied(api, event)

    [record] = await read_all(infra.kafka, LEDGER_EVENTS.qualified(prefix), expected=1)
    credited = LEDGER_EVENTS.decode(record.value)
    assert isinstance(credited, PointsCredited)
    assert (credited.payload.member_id, credited.payload.amount) == (member, 42)
    assert credited.payload.cause_event_id == event.event_id
    assert credited.correlation_id == event.correlation_id
    assert record.key == str(member).encode(), "ledger events are keyed by member"


async def test_signed_partner_purchases_and_the_card_feed_credit_one_member(infra, topic_prefix, database: Database):
    """The whole earn path: a partner's signed HTTP request and the card system's feed, into one balance."""
    partners_dsn, points_dsn = await database("partners"), await database("points")
    async with (
        running(partners_service(infra.kafka, partners_dsn, topic_prefix)) as partners,
        running(points_service(infra.kafka, points_dsn, topic_prefix)) as points,
        http(partners) as partners_api,
        http(points) as api,
    ):
        mall = SignedPartnerClient(
            partners_api,
            await register_partner(partners_api, ops_token(), "skymall", category_rates={"electronics": "2"}),
        )
        member = await new_member(api)
        await link(api, member, partner_id="skymall", customer_ref="cust-1")
        await link(api, member, card_token="tok_feed00000001")

        answer = await mall.purchases_batch(
            [purchase_item("b-1", 25_800, category="electronics"), purchase_item("b-2", 1_050)]
        )
        assert answer.status_code == 202, answer.text
        assert [a["points"] for a in answer.json()["accepted"]] == [516, 10]

        feed = list(CardFeed(["tok_feed00000001"], seed=3, reversal_share=0.3).events(40))
        await publish_cards(infra.kafka, CARD_TRANSACTIONS.qualified(topic_prefix), feed)
        await wait_applied(api, *feed)
        partner_events = [uuid.UUID(a["event_id"]) for a in answer.json()["accepted"]]
        for event_id in partner_events:
            await eventually(lambda e=event_id: _applied_id(api, e), what="the partner purchases")

        history = await _full_history(api, member)
        earned = {h["cause_event_id"]: h for h in history if h["direction"] == "credit"}
        assert {str(e) for e in partner_events} <= set(earned)
        card_purchases = [e for e in feed if isinstance(e, CardPurchasePosted)]
        assert len(card_purchases) == 40
        assert any(isinstance(e, CardReversalPosted) for e in feed), "the feed reverses some purchases"
        posted = sum(h["amount"] if h["direction"] == "credit" else -h["amount"] for h in history)
        assert (await balance(api, member))["posted"] == posted
        assert posted >= 526
    await assert_invariants(points_dsn)


async def _applied_id(api, event_id: uuid.UUID) -> bool:
    return (await api.get(f"/v1/events/{event_id}", headers=OPS)).status_code == 200


async def _full_history(api, member: uuid.UUID) -> list[dict]:
    items, cursor = [], None
    while True:
        params = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        page = (await api.get(f"/v1/members/{member}/history", params=params, headers=member_headers(member))).json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
