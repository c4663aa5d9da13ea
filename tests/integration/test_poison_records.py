"""No record stops a partition: every consumer of every service isolates what it cannot apply.

Each test puts records that a handler refuses among good ones, on the real broker, so that they
arrive in the same batches; the good ones are all applied, each refused record is dead-lettered
once (even when another consumer group reads the whole topic again), unchanged, with headers that
say why and where it came from.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from contracts.envelope import Event
from contracts.events.holds import (
    CaptureHold,
    HoldPoints,
    HoldRef,
    HoldRejected,
    HoldReleased,
    HoldRequest,
    RejectedPayload,
    ReleasedPayload,
)
from contracts.events.ledger import TransferPayload, TransferPosted
from contracts.topics import HOLD_COMMANDS, HOLD_RESULTS, LEDGER_TRANSFERS, OFFERS, PARTNER_PURCHASES
from loyalty_runtime.consumer import group_of
from points.handlers.verify import verify_ledger
from redemption.domain.orders import hold_id_for
from tests.support.kafka import caught_up, headers_of, read_all
from tests.support.ledger import OPS, balance, link, member_headers, new_member, publish, purchase, refund
from tests.support.offers import published
from tests.support.services import http, partners_service, points_service, redemption_service, running
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

MEMBERS = 12
PURCHASES_EACH = 8


def assert_dead_letter_headers(record: Any, *, service: str, topic: str, error_class: str, reason: str) -> None:
    headers = headers_of(record)
    assert headers["dlq-service"] == service
    assert headers["dlq-topic"] == topic
    assert headers["dlq-error-class"] == error_class
    assert reason in headers["dlq-reason"]
    assert int(headers["dlq-partition"]) >= 0
    assert int(headers["dlq-offset"]) >= 0
    assert headers["dlq-id"].startswith(f"{service}:")


async def count(dsn: str, sql: str, *args: Any) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(sql, *args))
    finally:
        await conn.close()


async def test_points_isolates_a_refused_refund_and_applies_the_rest_of_every_batch(infra, topic_prefix, database):
    dsn = await database("points")
    topic = PARTNER_PURCHASES.qualified(topic_prefix)
    group = f"points-poison-{uuid.uuid4().hex[:6]}"
    async with running(points_service(infra.kafka, dsn, topic_prefix, group=group)) as shell, http(shell) as api:
        members = [await new_member(api, f"m{i}") for i in range(MEMBERS)]
        for i, member in enumerate(members):
            await link(api, member, partner_id="skymall", customer_ref=f"poison-{i}")

    # Everything is published while points is down, so that it arrives in the same few batches.
    first = purchase("poison-0", "p-0", 10_000, points=100)
    wrong_currency = refund("poison-0", "p-0", 5_000, currency="USD")
    twice = refund("poison-0", "p-0", 2_000)  # a partner's retried publish: the same event twice
    later = [
        purchase(f"poison-{i}", f"q-{i}-{n}", 1_000, points=10) for n in range(PURCHASES_EACH) for i in range(MEMBERS)
    ]
    await publish(infra.kafka, topic, [first, wrong_currency, twice, twice, *later])
    garbage = b'{"type": "PartnerPurchaseRecorded", "payload": "not a purchase"}'
    await publish(infra.kafka, topic, [garbage], key=b"poison-0")

    async with running(points_service(infra.kafka, dsn, topic_prefix, group=group)) as shell, http(shell) as api:

        async def all_applied() -> bool:
            return await count(dsn, "SELECT count(*) FROM inbox WHERE topic = $1", topic) >= 2 + len(later)

        await eventually(all_applied, timeout=30, what="every good record to be applied")
        # 100 earned, 20 reversed once for the 2,000 of 10,000 refunded, then 8 × 10 earned.
        assert (await balance(api, members[0]))["posted"] == 100 - 20 + 10 * PURCHASES_EACH
        for member in members[1:]:
            assert (await balance(api, member))["posted"] == 10 * PURCHASES_EACH
        # While the service runs: its outbox relay publishes the dead letters after their transaction commits.
        dead = await read_all(infra.kafka, topic_prefix + PARTNER_PURCHASES.dead_letter, expected=2)
    by_class = {headers_of(r)["dlq-error-class"]: r for r in dead}
    assert set(by_class) == {"CurrencyMismatchError", "ValidationError"}
    refused = by_class["CurrencyMismatchError"]
    assert refused.value == wrong_currency.model_dump_json().encode()  # unchanged
    assert refused.key == b"skymall:poison-0"
    assert_dead_letter_headers(
        refused, service="points", topic=topic, error_class="CurrencyMismatchError", reason="resend it in CNY"
    )
    assert by_class["ValidationError"].value == garbage

    # Another group reads the whole topic again (as after a crash or a reset): nothing twice, no new dead letter.
    again = f"points-again-{uuid.uuid4().hex[:6]}"
    async with running(points_service(infra.kafka, dsn, topic_prefix, group=again)):
        await eventually(
            lambda: caught_up(infra.kafka, group_of(again, PARTNER_PURCHASES), topic),
            timeout=30,
            what="the second group to catch up",
        )
    assert await count(dsn, "SELECT count(*) FROM dead_letters") == 2
    assert len(await read_all(infra.kafka, topic_prefix + PARTNER_PURCHASES.dead_letter, expected=2)) == 2
    assert await verify_ledger(dsn) == []


async def test_points_dead_letters_a_hold_command_the_ledger_refuses_and_answers_the_next(
    infra, topic_prefix, database
):
    dsn = await database("points")
    commands = HOLD_COMMANDS.qualified(topic_prefix)
    async with running(points_service(infra.kafka, dsn, topic_prefix)) as shell, http(shell) as api:
        ada, bob = await new_member(api, "Ada"), await new_member(api, "Bob")
        await link(api, ada, partner_id="skymall", customer_ref="hold-ada")
        earned = purchase("hold-ada", "h-1", 50_000, points=500)
        await publish(infra.kafka, PARTNER_PURCHASES.qualified(topic_prefix), [earned])
        await eventually(lambda: _posted(api, ada, 500), what="Ada's points")

        order, hold = uuid.uuid4(), uuid.uuid4()
        expires = datetime.now(UTC) + timedelta(minutes=30)
        place = HoldPoints(
            event_id=uuid.uuid4(), occurred_at=datetime.now(UTC), source="redemption", correlation_id=order,
            payload=HoldRequest(hold_id=hold, member_id=ada, order_id=order, amount=200, partner_id="skymall",
                                expires_at=expires),
        )  # fmt: skip
        # A capture that names another member than the hold's: the ledger cannot apply it.
        wrong_member = CaptureHold(
            event_id=uuid.uuid4(), occurred_at=datetime.now(UTC), source="redemption", correlation_id=order,
            payload=HoldRef(hold_id=hold, member_id=bob, order_id=order),
        )  # fmt: skip
        second_order, second_hold = uuid.uuid4(), uuid.uuid4()
        next_one = HoldPoints(
            event_id=uuid.uuid4(), occurred_at=datetime.now(UTC), source="redemption", correlation_id=second_order,
            payload=HoldRequest(hold_id=second_hold, member_id=ada, order_id=second_order, amount=100,
                                partner_id="skymall", expires_at=expires),
        )  # fmt: skip
        await publish(infra.kafka, commands, [place, wrong_member, next_one], key=str(ada).encode())

        results = await read_all(infra.kafka, HOLD_RESULTS.qualified(topic_prefix), expected=2)
        assert sorted(json.loads(r.value)["type"] for r in results) == ["PointsHeld", "PointsHeld"]
        [dead] = await read_all(infra.kafka, topic_prefix + HOLD_COMMANDS.dead_letter, expected=1)
        assert dead.value == wrong_member.model_dump_json().encode()
        assert_dead_letter_headers(dead, service="points", topic=commands, error_class="LedgerError", reason="")
        assert (await balance(api, ada))["available"] == 500 - 300
    assert await verify_ledger(dsn) == []


async def _posted(api, member: uuid.UUID, points: int) -> bool:
    return (await balance(api, member))["posted"] == points


def transfer(amount: int, at: datetime) -> TransferPosted:
    event_id = uuid.uuid4()
    return TransferPosted(
        event_id=event_id, occurred_at=at, source="points", correlation_id=event_id,
        payload=TransferPayload(
            transfer_id=uuid.uuid4(), debit_account="partner:skymall:issued",
            credit_account=f"member:{uuid.uuid4()}", amount=amount, reason="partner_purchase",
            cause_event_id=uuid.uuid4(),
        ),
    )  # fmt: skip


async def test_partners_settlement_isolates_a_transfer_it_cannot_store(infra, topic_prefix, database):
    dsn = await database("partners")
    topic = LEDGER_TRANSFERS.qualified(topic_prefix)
    at = datetime.now(UTC)
    good = [transfer(10 + n, at) for n in range(40)]
    too_big = transfer(2**63, at)  # valid JSON and a positive amount, but beyond PostgreSQL's bigint
    await publish(infra.kafka, topic, [*good[:20], too_big, *good[20:]], key=b"ledger")
    async with running(partners_service(infra.kafka, dsn, topic_prefix)):

        async def stored() -> bool:
            return await count(dsn, "SELECT count(*) FROM ledger_transfers") == len(good)

        await eventually(stored, timeout=30, what="every storable transfer")
        [dead] = await read_all(infra.kafka, topic_prefix + LEDGER_TRANSFERS.dead_letter, expected=1)
        assert dead.value == too_big.model_dump_json().encode()
        assert_dead_letter_headers(dead, service="partners", topic=topic, error_class="DataError", reason="int64")

        async def watermark_past_every_record() -> bool:
            return await count(dsn, "SELECT coalesce(max(next_offset), 0) FROM ledger_partitions") == len(good) + 1

        await eventually(watermark_past_every_record, what="the watermark to move past the dead letter too")


async def test_redemption_isolates_a_hold_result_it_cannot_store(infra, topic_prefix, database):
    dsn = await database("redemption")
    topic = HOLD_RESULTS.qualified(topic_prefix)
    async with running(redemption_service(infra.kafka, dsn, topic_prefix)) as shell, http(shell) as api:
        await publish(infra.kafka, OFFERS.qualified(topic_prefix), [published("skyair", "lounge", 1)], key=b"skyair")
        await eventually(lambda: _status(api, "/v1/catalog/skyair/lounge", 200), what="the offer in the catalog")
        member = uuid.uuid4()
        orders = [await _order(api, member) for _ in range(5)]

        def answer(order: dict[str, Any], kind: type[Event], payload: type[Any], **fields: Any) -> Event:
            ref = {"hold_id": hold_id_for(uuid.UUID(order["order_id"])), "member_id": member,
                   "order_id": uuid.UUID(order["order_id"])}  # fmt: skip
            return kind(
                event_id=uuid.uuid4(), occurred_at=datetime.now(UTC), source="points",
                correlation_id=ref["order_id"], payload=payload(**ref, **fields),
            )  # fmt: skip

        refused = [
            answer(o, HoldRejected, RejectedPayload, reason="insufficient_points", available=0)
            for o in orders[:2] + orders[3:]
        ]
        poison = answer(orders[2], HoldReleased, ReleasedPayload, amount=10_000, reason="exp\x00ired")  # no NUL in text
        await publish(infra.kafka, topic, [*refused[:2], poison, *refused[2:]], key=str(member).encode())

        async def others_cancelled() -> bool:
            states = [(await _get(api, member, o["order_id"]))["state"] for o in orders]
            return states == ["cancelled", "cancelled", "awaiting_hold", "cancelled", "cancelled"]

        await eventually(others_cancelled, timeout=30, what="every other order to end")
    [dead] = await read_all(infra.kafka, topic_prefix + HOLD_RESULTS.dead_letter, expected=1)
    assert dead.value == poison.model_dump_json().encode()
    assert_dead_letter_headers(
        dead, service="redemption", topic=topic, error_class="CharacterNotInRepertoireError", reason=""
    )


async def _status(api, path: str, expected: int) -> bool:
    return (await api.get(path, headers=OPS)).status_code == expected


async def _order(api, member: uuid.UUID) -> dict[str, Any]:
    body = {"partner_id": "skyair", "offer_id": "lounge", "idempotency_key": uuid.uuid4().hex}
    answer = await api.post("/v1/orders", json=body, headers=member_headers(member))
    assert answer.status_code == 202, answer.text
    placed: dict[str, Any] = answer.json()
    return placed


async def _get(api, member: uuid.UUID, order_id: str) -> dict[str, Any]:
    found: dict[str, Any] = (await api.get(f"/v1/orders/{order_id}", headers=member_headers(member))).json()
    return found
