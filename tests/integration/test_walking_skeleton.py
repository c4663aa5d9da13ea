"""A purchase travels from the partners API through real Kafka into the points ledger, once."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest

from contracts.events.partners import PartnerPurchaseRecorded, PurchasePayload
from contracts.money import Money
from contracts.topics import PARTNER_PURCHASES
from tests.support.kafka import read_all
from tests.support.ledger import publish
from tests.support.partner_client import SignedPartnerClient, bearer, ops_token, purchase_item, register_partner
from tests.support.services import http, partners_service, points_service, running
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

Database = Callable[[str], Awaitable[str]]


async def stored(dsn: str, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def applied_event(points_api: httpx.AsyncClient, token: str, event_id: object) -> dict[str, Any] | None:
    """The event as the ledger applied it, or None while it has not been applied."""
    answer = await points_api.get(f"/v1/events/{event_id}", headers=bearer(token))
    return answer.json() if answer.status_code == 200 else None


async def test_purchase_posted_to_partners_is_applied_by_points_exactly_once(infra, topic_prefix, database: Database):
    partners_dsn, points_dsn = await database("partners"), await database("points")
    async with (
        running(partners_service(infra.kafka, partners_dsn, topic_prefix)) as partners,
        running(points_service(infra.kafka, points_dsn, topic_prefix)) as points,
        http(partners) as partners_api,
        http(points) as points_api,
    ):
        token = ops_token(partners.settings.jwt_secret)
        credentials = await register_partner(partners_api, token, "skymall", points_per_unit="1")
        partner = SignedPartnerClient(partners_api, credentials)
        item = purchase_item("k-1", 12_999, customer_ref="cust-7")
        first = await partner.purchase(item)
        retry = await partner.purchase(item)
        other = await partner.purchase(purchase_item("k-2", 500, customer_ref="cust-7"))
        assert first.status_code == retry.status_code == other.status_code == 202, first.text
        event_id, other_id = first.json()["event_id"], other.json()["event_id"]
        assert retry.json()["event_id"] == event_id, "a retried request must name the same event"
        assert (first.json()["points"], other.json()["points"]) == (129, 5)  # 129.99 and 5.00 CNY, 1 point per CNY

        async def both_applied() -> list[dict[str, Any]] | None:
            found = [await applied_event(points_api, token, e) for e in (event_id, other_id)]
            return found if all(found) else None  # type: ignore[return-value]

        answer, other_answer = await eventually(both_applied, what="points to apply both purchases")

    for applied, points in ((answer, 129), (other_answer, 5)):
        [transfer] = applied["transfers"]
        assert transfer["amount"] == points, "the ledger credits the points the partners service computed"
        assert transfer["debit_account"] == "partner:skymall:issued"
        assert transfer["credit_account"] == "unclaimed:partner:skymall:cust-7"
    # Of the purchase topic only: the partner's registration sends the ledger its contract too, on its own topic.
    inbox = await stored(
        points_dsn, "SELECT event_id FROM inbox WHERE topic = $1", PARTNER_PURCHASES.qualified(topic_prefix)
    )
    assert sorted(str(r["event_id"]) for r in inbox) == sorted([event_id, other_id]), (
        "the duplicate publish must leave one inbox row per event"
    )


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
            points=amount_minor // 100,
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
    # One key, so one partition: the bad records sit between the good ones.
    await publish(infra.kafka, topic, [good_before, b"{not json", negative_bytes, good_after], key=b"skymall:cust-9")

    async with running(points_service(infra.kafka, points_dsn, topic_prefix)) as points, http(points) as points_api:
        token = ops_token(points.settings.jwt_secret)
        for good in (good_before, good_after):
            applied = await eventually(
                lambda e=good: applied_event(points_api, token, e.event_id), what="the valid purchases around the bad"
            )
            assert [t["amount"] for t in applied["transfers"]] == [good.payload.points]
        # While the service runs: its outbox relay publishes the dead letters after their transaction commits.
        dead = await read_all(infra.kafka, topic_prefix + PARTNER_PURCHASES.dead_letter, expected=2)
    reasons = sorted(dict(m.headers)["dlq-reason"].decode() for m in dead)
    assert any("json" in r.lower() for r in reasons), reasons
    assert any("amount_minor" in r for r in reasons), reasons
    assert {m.value for m in dead} == {b"{not json", negative_bytes}
    assert all(dict(m.headers)["dlq-topic"].decode() == topic for m in dead)


async def test_event_redelivered_after_the_database_commit_is_applied_once(infra, topic_prefix, database: Database):
    """The crash window: effects committed, offset not. Redelivery must find the inbox entry.

    A consumer group that never committed an offset reads the topic again from the start, as a
    consumer restarted after such a crash would.
    """
    points_dsn = await database("points")
    topic = PARTNER_PURCHASES.qualified(topic_prefix)
    event, marker = raw_purchase_event("p-crash", 4_200), raw_purchase_event("p-after", 100)
    await publish(infra.kafka, topic, [event], key=b"skymall:cust-9")
    async with running(points_service(infra.kafka, points_dsn, topic_prefix)) as points, http(points) as points_api:
        token = ops_token(points.settings.jwt_secret)
        await eventually(lambda: applied_event(points_api, token, event.event_id), what="the first delivery")

    await publish(infra.kafka, topic, [marker], key=b"skymall:cust-9")
    group = f"points-redelivery-{uuid.uuid4().hex[:8]}"
    async with (
        running(points_service(infra.kafka, points_dsn, topic_prefix, group=group)) as points,
        http(points) as points_api,
    ):
        token = ops_token(points.settings.jwt_secret)
        await eventually(
            lambda: applied_event(points_api, token, marker.event_id), what="the marker after the redelivery"
        )
        applied = await applied_event(points_api, token, event.event_id)
    assert applied is not None
    assert [t["amount"] for t in applied["transfers"]] == [42], "the redelivered purchase moved its points once"
