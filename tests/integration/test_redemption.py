"""Redeem anywhere: the saga through real Kafka between points and redemption; no overspend, no oversell."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from contracts.envelope import Event
from contracts.events.holds import (
    CapturedPayload,
    CaptureRefusedPayload,
    HeldPayload,
    HoldCaptured,
    HoldCaptureRefused,
    PointsHeld,
)
from contracts.topics import HOLD_RESULTS, OFFER_STOCK, OFFERS, PARTNER_PURCHASES, REDEMPTION_ORDERS
from points.handlers.verify import verify_ledger
from redemption.domain.orders import hold_id_for
from tests.support.kafka import read_all
from tests.support.ledger import OPS, balance, link, member_headers, new_member, publish, purchase
from tests.support.offers import published
from tests.support.services import http, points_service, redemption_service, running
from tests.support.waiting import eventually
from tools.reconcile_orders import reconcile_orders

pytestmark = pytest.mark.integration


class Partner:
    """A partner's fulfilment endpoint: answers each callback as `answer` says, and remembers deliveries."""

    def __init__(self, answer: Callable[[httpx.Request], httpx.Response]) -> None:
        self.answer = answer
        self.delivered: set[str] = set()
        self.calls = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        response = self.answer(request)
        if response.is_success:
            self.delivered.add(request.headers["Idempotency-Key"])
        return response

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)


@pytest.fixture
def partner() -> Partner:
    return Partner(
        lambda request: httpx.Response(200, json={"reference": f"SKY-{request.headers['Idempotency-Key'][:8]}"})
    )


@pytest.fixture
async def stack(infra, topic_prefix, database, partner: Partner):
    points_dsn, redemption_dsn = await database("points"), await database("redemption")
    async with (
        running(points_service(infra.kafka, points_dsn, topic_prefix)) as points,
        running(
            redemption_service(
                infra.kafka, redemption_dsn, topic_prefix, partners=partner.transport, fulfilment_timeout_seconds=4
            )
        ) as redemption,
        http(points) as points_api,
        http(redemption) as redemption_api,
    ):
        yield points_api, redemption_api, points_dsn, redemption_dsn, topic_prefix


async def members_with(points_api, infra, prefix: str, count: int, each: int, points_dsn: str) -> list[uuid.UUID]:
    members = [await new_member(points_api, f"m{i}") for i in range(count)]
    for member in members:
        await link(points_api, member, partner_id="skymall", customer_ref=f"c-{member.hex[:10]}")
    events = [purchase(f"c-{m.hex[:10]}", f"o-{m.hex[:10]}", each * 100, points=each) for m in members]
    await publish(infra.kafka, PARTNER_PURCHASES.qualified(prefix), events)

    async def all_earned() -> bool:
        conn = await asyncpg.connect(points_dsn)
        try:
            return await conn.fetchval("SELECT count(*) FROM earnings") >= count
        finally:
            await conn.close()

    await eventually(all_earned, what="members' points")
    return members


async def offer(redemption_api, infra, prefix: str, offer_id: str, **fields) -> None:
    await publish(infra.kafka, OFFERS.qualified(prefix), [published("skyair", offer_id, 1, **fields)], key=b"skyair")

    async def listed() -> bool:
        answer = await redemption_api.get(f"/v1/catalog/skyair/{offer_id}", headers=OPS)
        return answer.status_code == 200

    await eventually(listed, what=f"offer {offer_id} in the catalog")


async def order(redemption_api, member: uuid.UUID, offer_id: str, key: str | None = None) -> dict:
    found = await order_unless_sold_out(redemption_api, member, offer_id, key)
    assert found is not None, "the offer was sold out"
    return found


async def order_unless_sold_out(
    redemption_api, member: uuid.UUID, offer_id: str, key: str | None = None
) -> dict | None:
    """The order placed; None when the offer had no unit left to order (409)."""
    answer = await redemption_api.post(
        "/v1/orders",
        json={"partner_id": "skyair", "offer_id": offer_id, "idempotency_key": key or uuid.uuid4().hex},
        headers=member_headers(member),
    )
    if answer.status_code == 409 and "left in stock" in answer.text:
        return None
    assert answer.status_code in (200, 202), answer.text
    return answer.json()


async def final(redemption_api, member: uuid.UUID, order_id: str) -> dict:
    async def done() -> dict | None:
        found = (await redemption_api.get(f"/v1/orders/{order_id}", headers=member_headers(member))).json()
        return found if found["state"] in ("fulfilled", "cancelled", "payment_failed") else None

    return await eventually(done, timeout=60, what=f"order {order_id} to end")


async def stock(dsn: str, offer_id: str) -> tuple[int, int]:
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow("SELECT units_reserved, units_sold FROM catalog WHERE offer_id = $1", offer_id)
    finally:
        await conn.close()
    return row["units_reserved"], row["units_sold"]


async def test_fifty_concurrent_orders_from_a_member_with_points_for_ten_fulfil_exactly_ten(stack, infra):
    points_api, redemption_api, points_dsn, redemption_dsn, prefix = stack
    [member] = await members_with(points_api, infra, prefix, 1, each=100, points_dsn=points_dsn)
    await offer(redemption_api, infra, prefix, "coffee", price_points=10, stock=1_000)

    placed = await asyncio.gather(*(order(redemption_api, member, "coffee") for _ in range(50)))
    ended = await asyncio.gather(*(final(redemption_api, member, o["order_id"]) for o in placed))

    states = sorted(o["state"] for o in ended)
    assert states.count("fulfilled") == 10
    assert states.count("cancelled") == 40
    assert {o["cancel_reason"] for o in ended if o["state"] == "cancelled"} == {"insufficient_points"}
    assert all(o["voucher_code"] for o in ended if o["state"] == "fulfilled")
    assert (await balance(points_api, member))["posted"] == 0
    assert await stock(redemption_dsn, "coffee") == (0, 10)
    assert await verify_ledger(points_dsn) == []


async def test_five_hundred_members_racing_for_a_hundred_units_get_exactly_a_hundred(stack, infra):
    points_api, redemption_api, points_dsn, redemption_dsn, prefix = stack
    members = await members_with(points_api, infra, prefix, 500, each=25, points_dsn=points_dsn)
    await offer(redemption_api, infra, prefix, "lounge-pass", price_points=25, stock=100)

    answers = await asyncio.gather(*(order_unless_sold_out(redemption_api, m, "lounge-pass") for m in members))
    # Orders placed once the last unit was reserved are refused at once (409); the others end one way or the other.
    placed = [(m, o) for m, o in zip(members, answers, strict=True) if o is not None]
    ended = await asyncio.gather(*(final(redemption_api, m, o["order_id"]) for m, o in placed))

    fulfilled = [o for o in ended if o["state"] == "fulfilled"]
    cancelled = [o for o in ended if o["state"] == "cancelled"]
    assert (len(fulfilled), len(cancelled) + len(members) - len(placed)) == (100, 400)
    assert {o["cancel_reason"] for o in cancelled} <= {"out_of_stock"}
    assert await stock(redemption_dsn, "lounge-pass") == (0, 100)
    [sold_out] = await read_all(infra.kafka, OFFER_STOCK.qualified(prefix), 1)  # the last unit went once
    assert OFFER_STOCK.decode(sold_out.value).payload.model_dump() == {
        "partner_id": "skyair",
        "offer_id": "lounge-pass",
        "stock": 100,
        "units_reserved": 100,
        "units_sold": 0,
    }
    winners = {uuid.UUID(o["member_id"]) for o in fulfilled}
    for member in members[:60]:
        expected = 0 if member in winners else 25
        state = await balance(points_api, member)
        assert (state["posted"], state["pending"]) == (expected, 0), "losers get every point back"
    assert await verify_ledger(points_dsn) == []
    checked, mismatches = await reconcile_orders(points_dsn, redemption_dsn)
    assert (checked, mismatches) == (len(placed), []), "every order fulfilled for its price or cancelled uncaptured"


async def test_a_product_is_paid_only_after_the_partner_delivered(stack, infra, partner: Partner):
    points_api, redemption_api, points_dsn, redemption_dsn, prefix = stack
    [member] = await members_with(points_api, infra, prefix, 1, each=1_000, points_dsn=points_dsn)
    await offer(redemption_api, infra, prefix, "headphones", kind="product", price_points=400, stock=5,
                fulfilment_url="https://partner.example/fulfil")  # fmt: skip

    made = await order(redemption_api, member, "headphones", key="k-1")
    again = await order(redemption_api, member, "headphones", key="k-1")
    assert again["order_id"] == made["order_id"], "the same idempotency key is the same order"
    done = await final(redemption_api, member, made["order_id"])

    assert done["state"] == "fulfilled"
    assert done["partner_reference"] == f"SKY-{made['order_id'][:8]}"
    assert partner.delivered == {made["order_id"]}
    assert (await balance(points_api, member))["posted"] == 600
    assert await stock(redemption_dsn, "headphones") == (0, 1)
    assert await verify_ledger(points_dsn) == []


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (lambda request: httpx.Response(409, json={"error": "discontinued"}), "partner_declined_409"),
        (lambda request: httpx.Response(503), "fulfilment_timeout"),
    ],
)
async def test_a_declined_or_unreachable_partner_cancels_and_refunds(stack, infra, partner: Partner, answer, reason):
    partner.answer = answer
    points_api, redemption_api, points_dsn, redemption_dsn, prefix = stack
    [member] = await members_with(points_api, infra, prefix, 1, each=1_000, points_dsn=points_dsn)
    await offer(redemption_api, infra, prefix, "spa-day", kind="product", price_points=700, stock=3,
                fulfilment_url="https://partner.example/fulfil")  # fmt: skip

    made = await order(redemption_api, member, "spa-day")
    done = await final(redemption_api, member, made["order_id"])

    assert (done["state"], done["cancel_reason"]) == ("cancelled", reason)
    assert partner.delivered == set()
    assert partner.calls >= 1
    state = await balance(points_api, member)
    assert (state["posted"], state["pending"], state["available"]) == (1_000, 0, 1_000)
    assert await stock(redemption_dsn, "spa-day") == (0, 0)
    assert await verify_ledger(points_dsn) == []


async def test_members_see_their_own_orders_only(stack, infra):
    points_api, redemption_api, points_dsn, _redemption_dsn, prefix = stack
    ada, bob = await members_with(points_api, infra, prefix, 2, each=50, points_dsn=points_dsn)
    await offer(redemption_api, infra, prefix, "tea", price_points=10, stock=10)
    made = await order(redemption_api, ada, "tea")
    assert (await redemption_api.get(f"/v1/orders/{made['order_id']}", headers=member_headers(bob))).status_code == 403
    assert (await redemption_api.get(f"/v1/orders/{made['order_id']}", headers=OPS)).status_code == 200
    mine = (await redemption_api.get("/v1/orders", headers=member_headers(ada))).json()["items"]
    assert [o["order_id"] for o in mine] == [made["order_id"]]
    assert (await redemption_api.get("/v1/orders", headers=member_headers(bob))).json()["items"] == []
    unknown = await redemption_api.post(
        "/v1/orders",
        json={"partner_id": "skyair", "offer_id": "nope", "idempotency_key": "x"},
        headers=member_headers(ada),
    )
    assert unknown.status_code == 404


def ledger_answer(member: uuid.UUID, order_id: str, kind: type[Event], payload: type[Any], **fields: Any) -> Event:
    """A hold result as the points service publishes it for one order."""
    ref = {"hold_id": hold_id_for(uuid.UUID(order_id)), "member_id": member, "order_id": uuid.UUID(order_id)}
    return kind(
        event_id=uuid.uuid4(), occurred_at=datetime.now(UTC), source="points", correlation_id=ref["order_id"],
        payload=payload(**ref, **fields),
    )  # fmt: skip


async def test_a_refused_capture_ends_payment_failed_returns_the_stock_and_shows_no_voucher(
    infra, topic_prefix, database
):
    dsn = await database("redemption")
    results = HOLD_RESULTS.qualified(topic_prefix)
    async with running(redemption_service(infra.kafka, dsn, topic_prefix)) as shell, http(shell) as api:
        await offer(api, infra, topic_prefix, "voucher", kind="voucher", price_points=30, stock=5)
        member = uuid.uuid4()
        refused, paid = [await order(api, member, "voucher") for _ in range(2)]
        expires = datetime.now(UTC) + timedelta(minutes=30)
        held = [ledger_answer(member, o["order_id"], PointsHeld, HeldPayload, amount=30, expires_at=expires)
                for o in (refused, paid)]  # fmt: skip
        await publish(infra.kafka, results, held, key=str(member).encode())

        async def both_capturing() -> list[dict] | None:
            found = [(await api.get(f"/v1/orders/{o['order_id']}", headers=member_headers(member))).json()
                     for o in (refused, paid)]  # fmt: skip
            return found if {o["state"] for o in found} == {"capturing"} else None

        capturing = await eventually(both_capturing, what="both orders to wait for their capture")
        assert [o["voucher_code"] for o in capturing] == [None, None], "no voucher code before the capture"
        assert await stock(dsn, "voucher") == (2, 0)

        await publish(
            infra.kafka,
            results,
            [
                ledger_answer(member, refused["order_id"], HoldCaptureRefused, CaptureRefusedPayload,
                              reason="hold_expired"),
                ledger_answer(member, paid["order_id"], HoldCaptured, CapturedPayload, amount=30,
                              transfer_id=uuid.uuid4()),
            ],
            key=str(member).encode(),
        )  # fmt: skip
        failed = await final(api, member, refused["order_id"])
        fulfilled = await final(api, member, paid["order_id"])

        assert (failed["state"], failed["cancel_reason"], failed["voucher_code"]) == (
            "payment_failed", "hold_expired", None,
        )  # fmt: skip
        assert fulfilled["state"] == "fulfilled", "the next result was applied too"
        assert fulfilled["voucher_code"], "a captured voucher order shows its code"
        assert await stock(dsn, "voucher") == (0, 1), "the refused order's unit is back on sale"
        listed = (await api.get(f"/v1/orders?member_id={member}", headers=OPS)).json()["items"]
        assert {o["order_id"]: o["voucher_code"] for o in listed}[refused["order_id"]] is None
        # While the service runs: its outbox relay publishes the order events after their transaction commits.
        events = await read_all(infra.kafka, REDEMPTION_ORDERS.qualified(topic_prefix), expected=4)
    payment_failed = [json.loads(r.value) for r in events if json.loads(r.value)["type"] == "OrderPaymentFailed"]
    assert [(e["payload"]["order_id"], e["payload"]["reason"], e["payload"]["delivered"]) for e in payment_failed] == [
        (refused["order_id"], "hold_expired", False)
    ]
    conn = await asyncpg.connect(dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM dead_letters") == 0, "nothing was dead-lettered"
    finally:
        await conn.close()
