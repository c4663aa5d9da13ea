"""What partners post reaches Kafka as events: purchases with their points, refunds with their fields."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from contracts.events.partners import PartnerPurchaseRecorded, PartnerRefundRecorded
from contracts.topics import PARTNER_PURCHASES
from tests.support.kafka import read_all
from tests.support.partner_client import (
    SignedPartnerClient,
    bearer,
    ops_token,
    purchase_item,
    refund_item,
    register_partner,
)
from tests.support.proxy import Proxy
from tests.support.services import http, partners_service, points_service, running
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


async def test_accepted_purchases_and_refunds_are_published_and_refused_batches_are_not(infra, topic_prefix, database):
    dsn = await database("partners")
    async with running(partners_service(infra.kafka, dsn, topic_prefix)) as shell, http(shell) as api:
        credentials = await register_partner(
            api,
            ops_token(shell.settings.jwt_secret),
            "skymall",
            valid_from="2026-01-01",
            points_per_unit="1.5",
            category_rates={"electronics": "2"},
        )
        partner = SignedPartnerClient(api, credentials)
        # One customer, so one partition: a record of the refused batch would come before the others.
        refused = await partner.purchases_batch([purchase_item("bad-0"), purchase_item("bad-1", currency="USD")])
        assert refused.status_code == 422
        refused_refunds = await partner.refunds_batch([refund_item("bad-r", "order-k-1", currency="JPY")])
        assert refused_refunds.status_code == 422

        single = await partner.purchase(purchase_item("k-1", 25_899, category="electronics"))
        batch = await partner.purchases_batch([purchase_item("k-2", 1_000), purchase_item("k-3", 99)])
        refund = await partner.refund(refund_item("k-1", "order-k-1", 10_000))
        assert single.status_code == batch.status_code == refund.status_code == 202

    # Read after the service stopped at once: its outbox relay sends what intake recorded on the way out.
    records = await read_all(infra.kafka, PARTNER_PURCHASES.qualified(topic_prefix), expected=4)
    assert len(records) == 4, "nothing of the refused batches was published"
    assert {r.key for r in records} == {b"skymall:cust-1"}
    events = [PARTNER_PURCHASES.decode(r.value) for r in records]
    by_id = {str(e.event_id): e for e in events}
    accepted = [single.json()["event_id"], *(a["event_id"] for a in batch.json()["accepted"])]
    assert sorted(by_id) == sorted([*accepted, refund.json()["event_id"]])
    assert [dict(r.headers)["type"].decode() for r in records] == [type(e).__name__ for e in events]

    purchases = [by_id[event_id] for event_id in accepted]
    assert all(isinstance(e, PartnerPurchaseRecorded) for e in purchases)
    assert [(e.payload.purchase_id, e.payload.points) for e in purchases] == [
        ("order-k-1", 517),  # 258.99 CNY x 2 (electronics)
        ("order-k-2", 15),  # 10.00 x 1.5
        ("order-k-3", 1),  # 0.99 x 1.5 = 1.485
    ]
    assert {e.payload.contract_valid_from for e in purchases} == {date(2026, 1, 1)}
    assert purchases[0].payload.category == "electronics"
    assert purchases[0].payload.amount.amount_minor == 25_899
    assert purchases[0].occurred_at.isoformat() == "2026-11-20T01:30:00+00:00"
    assert [p["points"] for p in batch.json()["accepted"]] == [15, 1]

    refunded = by_id[refund.json()["event_id"]]
    assert isinstance(refunded, PartnerRefundRecorded)
    assert (refunded.payload.refund_id, refunded.payload.purchase_id) == ("refund-k-1", "order-k-1")
    assert (refunded.payload.amount.amount_minor, refunded.payload.amount.currency) == (10_000, "CNY")
    assert refunded.payload.customer_ref == "cust-1"
    assert "points" not in refunded.payload.model_dump()


async def test_concurrent_identical_purchases_are_one_event_applied_once(infra, topic_prefix, database):
    partners_dsn, points_dsn = await database("partners"), await database("points")
    async with (
        running(partners_service(infra.kafka, partners_dsn, topic_prefix)) as partners,
        running(points_service(infra.kafka, points_dsn, topic_prefix)) as points,
        http(partners) as partners_api,
        http(points) as points_api,
    ):
        token = ops_token(partners.settings.jwt_secret)
        partner = SignedPartnerClient(partners_api, await register_partner(partners_api, token, "skymall"))
        item = purchase_item("k-1", 12_999, customer_ref="cust-7")
        answers = await asyncio.gather(*(partner.purchase(item) for _ in range(10)))
        assert [a.status_code for a in answers] == [202] * 10, [a.text for a in answers]
        assert len({a.json()["event_id"] for a in answers}) == 1
        marker = await partner.purchase(purchase_item("k-2", 500, customer_ref="cust-7"))  # after them, one partition

        async def applied(event_id: str) -> dict[str, Any] | None:
            answer = await points_api.get(f"/v1/events/{event_id}", headers=bearer(token))
            return answer.json() if answer.status_code == 200 else None

        await eventually(lambda: applied(marker.json()["event_id"]), what="the ledger to reach the marker")
        purchase = await applied(answers[0].json()["event_id"])

    assert purchase is not None
    assert [t["amount"] for t in purchase["transfers"]] == [129], "the purchase moved its points once"
    conn = await asyncpg.connect(points_dsn)
    try:
        # Of the purchase topic only: the partner's registration sends the ledger its contract too, on its own topic.
        purchases = await conn.fetchval(
            "SELECT count(*) FROM inbox WHERE topic = $1", PARTNER_PURCHASES.qualified(topic_prefix)
        )
        assert purchases == 2, "one event per purchase, whatever was resent"
    finally:
        await conn.close()


async def test_while_the_database_is_gone_intake_answers_503_and_a_retry_afterwards_is_one_event(
    infra, topic_prefix, database
):
    """Nothing is answered 202 unless it is committed; the partner's retry after the outage is the first and only."""
    dsn = await database("partners")
    parts = urlsplit(dsn)
    proxy = await Proxy(parts.hostname or "127.0.0.1", parts.port or 5432).start()
    through = urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}"))
    try:
        async with running(partners_service(infra.kafka, through, topic_prefix)) as shell, http(shell) as api:
            partner = SignedPartnerClient(api, await register_partner(api, ops_token(shell.settings.jwt_secret), "sky"))
            await proxy.cut()
            refused = await asyncio.gather(*(partner.purchase(purchase_item("k-1", 1_000)) for _ in range(3)))
            assert [a.status_code for a in refused] == [503] * 3, [a.text for a in refused]
            assert all(a.headers["Retry-After"].isdigit() for a in refused)
            await proxy.restore()

            async def retried() -> str | None:
                answer = await partner.purchase(purchase_item("k-1", 1_000))
                return answer.json()["event_id"] if answer.status_code == 202 else None

            event_id = await eventually(retried, timeout=30, what="the retry to be accepted")
            again = await partner.purchase(purchase_item("k-1", 1_000))
            assert again.json()["event_id"] == event_id, "a retry of an accepted purchase is the same event"
            records = await read_all(infra.kafka, PARTNER_PURCHASES.qualified(topic_prefix), expected=1)
            conn = await asyncpg.connect(dsn)
            try:
                assert await conn.fetchval("SELECT count(*) FROM intake_requests") == 1
            finally:
                await conn.close()
    finally:
        await proxy.stop()
    assert [str(PARTNER_PURCHASES.decode(r.value).event_id) for r in records] == [event_id], "one event, once"
