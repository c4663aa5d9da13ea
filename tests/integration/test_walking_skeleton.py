"""A purchase travels from the partners API through real Kafka into the points database, once."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from contracts.events.partners import PartnerPurchaseRecorded, PurchasePayload
from contracts.money import Money
from contracts.topics import PARTNER_PURCHASES
from points.adapters.store import PointsStore
from points.handlers.partner_events import apply_partner_events
from tests.support.services import http, partners_service, points_service, running
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

Database = Callable[[str], Awaitable[str]]


def purchase(key: str, amount_minor: int = 12_999, **overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "idempotency_key": key,
        "customer_ref": "cust-7",
        "purchase_id": f"order-{key}",
        "amount_minor": amount_minor,
        "currency": "CNY",
        "occurred_at": "2026-11-20T09:30:00+08:00",
    }
    body.update(overrides)
    return body


async def stored(dsn: str, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def test_purchase_posted_to_partners_is_stored_by_points_exactly_once(infra, topic_prefix, database: Database):
    partners_dsn, points_dsn = await database("partners"), await database("points")
    async with (
        running(partners_service(infra.kafka, partners_dsn, topic_prefix)) as partners,
        running(points_service(infra.kafka, points_dsn, topic_prefix)) as points,
        http(partners) as partners_api,
        http(points) as points_api,
    ):
        first = await partners_api.post("/v1/partners/skymall/purchases", json=purchase("k-1"))
        retry = await partners_api.post("/v1/partners/skymall/purchases", json=purchase("k-1"))
        other = await partners_api.post("/v1/partners/skymall/purchases", json=purchase("k-2", 500))
        assert first.status_code == retry.status_code == other.status_code == 202
        event_id = first.json()["event_id"]
        assert retry.json()["event_id"] == event_id, "a retried request must name the same event"

        async def both_applied() -> bool:
            found = [await points_api.get(f"/v1/events/{e}") for e in (event_id, other.json()["event_id"])]
            return all(r.status_code == 200 for r in found)

        await eventually(both_applied, what="points to apply both purchases")
        answer = (await points_api.get(f"/v1/events/{event_id}")).json()
        assert answer["amount_minor"] == 12_999
        assert answer["currency"] == "CNY"
        assert answer["partner_id"] == "skymall"
        assert answer["customer_ref"] == "cust-7"

    rows = await stored(points_dsn, "SELECT event_id, amount_minor FROM partner_transactions ORDER BY amount_minor")
    assert [(str(r["event_id"]), r["amount_minor"]) for r in rows] == [
        (other.json()["event_id"], 500),
        (event_id, 12_999),
    ]
    inbox = await stored(points_dsn, "SELECT event_id FROM inbox")
    assert len(inbox) == 2, "the duplicate publish must leave one inbox row per event"


def raw_purchase_event(purchase_id: str, amount_minor: int) -> PartnerPurchaseRecorded:
    event_id = uuid.uuid4()
    return PartnerPurchaseRecorded(
        event_id=event_id,
        occurred_at=datetime(2026, 11, 20, 1, 30, tzinfo=UTC),
        source="test",
        correlation_id=event_id,
        payload=PurchasePayload(
            partner_id="skymall",
            customer_ref="cust-9",
            purchase_id=purchase_id,
            amount=Money(amount_minor=amount_minor, currency="CNY"),
        ),
    )


async def test_malformed_messages_go_to_the_dead_letter_topic_and_the_rest_is_applied(
    infra, topic_prefix, database: Database
):
    points_dsn = await database("points")
    topic = PARTNER_PURCHASES.qualified(topic_prefix)
    good_before, good_after = raw_purchase_event("p-1", 100), raw_purchase_event("p-2", 200)
    negative = raw_purchase_event("p-3", 300).model_dump(mode="json")
    negative["payload"]["amount"]["amount_minor"] = -300
    negative_bytes = json.dumps(negative).encode()
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka, acks="all")
    await producer.start()
    try:
        key = b"skymall:cust-9"  # one partition, so the bad records sit between the good ones
        await producer.send_and_wait(topic, good_before.model_dump_json().encode(), key=key)
        await producer.send_and_wait(topic, b"{not json", key=key, headers=[("traceparent", b"garbage")])
        await producer.send_and_wait(topic, negative_bytes, key=key)
        await producer.send_and_wait(topic, good_after.model_dump_json().encode(), key=key)
    finally:
        await producer.stop()

    async with running(points_service(infra.kafka, points_dsn, topic_prefix)):
        rows = await eventually(
            lambda: _rows_if(points_dsn, 2), what="both valid purchases to be applied around the bad records"
        )
    assert sorted(r["amount_minor"] for r in rows) == [100, 200]

    dead = await _read_all(infra.kafka, topic_prefix + PARTNER_PURCHASES.dead_letter, expected=2)
    reasons = sorted(dict(m.headers)["dlq-reason"].decode() for m in dead)
    assert any("json" in r.lower() for r in reasons), reasons
    assert any("amount_minor" in r for r in reasons), reasons
    assert {m.value for m in dead} == {b"{not json", negative_bytes}
    assert all(dict(m.headers)["dlq-topic"].decode() == topic for m in dead)


async def _rows_if(dsn: str, count: int) -> list[asyncpg.Record] | None:
    rows = await stored(dsn, "SELECT amount_minor FROM partner_transactions")
    return rows if len(rows) >= count else None


async def _read_all(kafka: str, topic: str, expected: int) -> list:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka, auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    found: list = []
    try:

        async def enough() -> list | None:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                found.extend(records)
            return found if len(found) >= expected else None

        return await eventually(enough, what=f"{expected} records on {topic}")
    finally:
        await consumer.stop()


async def test_event_redelivered_after_the_database_commit_is_applied_once(infra, topic_prefix, database: Database):
    """The crash window: effects committed, offset not. Redelivery must find the inbox entry."""
    points_dsn = await database("points")
    topic = PARTNER_PURCHASES.qualified(topic_prefix)
    event = raw_purchase_event("p-crash", 4_200)
    # The consumer's transaction committed, then the process died before committing the offset.
    pool = await asyncpg.create_pool(points_dsn, min_size=1, max_size=2)
    try:
        outcome = await apply_partner_events(PointsStore(pool), topic, [event])
        assert outcome.applied == 1
    finally:
        await pool.close()
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, event.model_dump_json().encode(), key=b"skymall:cust-9")
        marker = raw_purchase_event("p-after", 1)
        await producer.send_and_wait(topic, marker.model_dump_json().encode(), key=b"skymall:cust-9")
    finally:
        await producer.stop()

    async with running(points_service(infra.kafka, points_dsn, topic_prefix)):
        await eventually(lambda: _rows_if(points_dsn, 2), what="the marker event after the redelivered one")
    rows = await stored(points_dsn, "SELECT amount_minor FROM partner_transactions WHERE purchase_id = 'p-crash'")
    assert [r["amount_minor"] for r in rows] == [4_200]
