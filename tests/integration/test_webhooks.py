"""Webhooks to partners on the real broker and database, delivered to a tiny HTTP receiver in the test.

The partners service runs without its background dispatcher; the test attempts due deliveries itself
(`Dispatcher.dispatch_due`, what the background task calls) on the service's own injectable clock, so a
day of retries takes no time.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

import partners.app
import partners.settings
from contracts import webhooks as wire
from contracts.envelope import Event
from contracts.events.orders import CancelledPayload, OrderCancelled, OrderFulfilled, OrderPayload, OrderPlaced
from contracts.events.outcomes import PurchaseRefused, PurchaseRefusedPayload
from contracts.events.stock import OfferOutOfStock, StockPayload
from contracts.money import Money
from contracts.topics import OFFER_STOCK, PARTNER_WEBHOOKS, PURCHASE_OUTCOMES, REDEMPTION_ORDERS, Topic
from loyalty_runtime.auth import Role, TokenAuthority
from loyalty_runtime.service import ServiceShell
from partners.adapters.webhooks_store import Message, WebhookStore
from partners.handlers.webhooks import Dispatcher
from partners.webhooks_app import dispatcher_of
from tests.support.kafka import read_all
from tests.support.partner_client import bearer, ops_token, register_partner
from tests.support.services import http, running
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

START = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


class Clock:
    """The service's clock, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Receiver:
    """A partner's webhook endpoint: records each request, answers with the next status of `answers` (then 204)."""

    answers: list[int] = field(default_factory=list)
    delay: float = 0.0
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/loyalty/webhooks"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")[1:]
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines if line)}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.received.append((headers, body))
        await asyncio.sleep(self.delay)
        code = self.answers.pop(0) if self.answers else 204
        writer.write(f"HTTP/1.1 {code} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".encode())
        await writer.drain()
        writer.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    made = Receiver()
    server = await asyncio.start_server(made.handle, "127.0.0.1", 0)
    made.port = server.sockets[0].getsockname()[1]
    async with server:
        yield made


@dataclass
class Partners:
    shell: ServiceShell
    api: httpx.AsyncClient
    clock: Clock
    staff: dict[str, str]
    ops: dict[str, str]

    def dispatcher(self) -> Dispatcher:
        made = dispatcher_of(self.shell, self.shell.settings, self.clock)  # type: ignore[arg-type]
        made.jitter = lambda: 0.0
        return made

    async def subscribe(self, url: str, *types: str) -> dict[str, Any]:
        answer = await self.api.post(
            "/v1/partners/skymall/webhook-endpoints",
            headers=self.staff,
            json={"url": url, "event_types": list(types), "description": "orders desk"},
        )
        assert answer.status_code == 201, answer.text
        return dict(answer.json())

    async def deliveries(self) -> list[dict[str, Any]]:
        answer = await self.api.get("/v1/partners/skymall/webhook-deliveries", headers=self.staff)
        assert answer.status_code == 200, answer.text
        return list(answer.json()["deliveries"])

    async def finalise(self, period: str) -> None:
        run = {"period": period, "force": True}
        answer = await self.api.post("/v1/ops/settlement-runs", headers=self.ops, json=run)
        assert answer.status_code in (200, 201), answer.text


@pytest.fixture
async def service(infra, topic_prefix, database) -> AsyncIterator[Partners]:  # type: ignore[no-untyped-def]
    settings = partners.settings.Settings(
        environment="test", database_url=await database("partners"), kafka_bootstrap_servers=infra.kafka,
        kafka_topic_prefix=topic_prefix, consumer_group=f"partners-{uuid.uuid4().hex[:8]}", webhook_dispatcher=False,
    )  # fmt: skip
    clock = Clock(START)
    shell = partners.app.build(settings, clock=clock)
    async with running(shell), http(shell) as api:
        await register_partner(api, ops_token(settings.jwt_secret), "skymall")
        staff = bearer(TokenAuthority(settings.jwt_secret).issue("li.na", Role.PARTNER, partner_id="skymall"))
        yield Partners(shell, api, clock, staff, bearer(ops_token(settings.jwt_secret)))


def verified(secret: str, request: tuple[dict[str, str], bytes], now: datetime) -> tuple[str, dict[str, Any]]:
    headers, body = request
    return wire.verify(secret, headers, body, now), json.loads(body)


async def test_a_finalised_statement_is_delivered_signed_and_a_replay_keeps_its_webhook_id(service, receiver):
    endpoint = await service.subscribe(receiver.url, "statement.finalised")
    assert endpoint["secret"].startswith("whsec_")
    shown = await service.api.get(f"/v1/partners/skymall/webhook-endpoints/{endpoint['endpoint_id']}",
                                  headers=service.staff)  # fmt: skip
    assert "secret" not in shown.json(), "the secret is shown once"

    await service.finalise("2026-09")
    await service.finalise("2026-09")  # finalised before: no second message
    assert await service.dispatcher().dispatch_due() == 1
    message_id, body = verified(endpoint["secret"], receiver.received[0], service.clock())
    assert body["type"] == "statement.finalised"
    assert body["data"]["partner_id"] == "skymall"
    assert body["data"]["period"] == "2026-09"
    assert body["data"]["statement_path"] == "/v1/partners/skymall/statements?period=2026-09"
    [delivery] = await service.deliveries()
    assert (delivery["status"], delivery["attempts"], delivery["last_status"], delivery["message_id"]) == (
        "delivered", 1, 204, message_id)  # fmt: skip

    service.clock.now += timedelta(hours=3)
    replayed = await service.api.post(f"/v1/partners/skymall/webhook-deliveries/{delivery['delivery_id']}/replay",
                                      headers=service.staff)  # fmt: skip
    assert replayed.status_code == 202, replayed.text
    assert await service.dispatcher().dispatch_due() == 1
    again, _ = verified(endpoint["secret"], receiver.received[1], service.clock())
    assert again == message_id, "a replay is the same message: the partner's idempotency holds"
    detail = (await service.api.get(f"/v1/partners/skymall/webhook-deliveries/{delivery['delivery_id']}",
                                    headers=service.staff)).json()  # fmt: skip
    assert [(a["attempt"], a["status_code"]) for a in detail["attempt_log"]] == [(1, 204), (2, 204)]

    other = bearer(TokenAuthority(service.shell.settings.jwt_secret).issue("x", Role.PARTNER, partner_id="teashop"))
    refused = await service.api.get("/v1/partners/skymall/webhook-deliveries", headers=other)
    assert refused.status_code == 403
    assert "not 'skymall'" in refused.json()["detail"]


async def test_a_failing_endpoint_is_retried_on_schedule_for_a_day_then_disabled_and_its_partner_told(
    service, receiver, infra, topic_prefix
):
    receiver.answers = [500] * 20
    endpoint = await service.subscribe(receiver.url, "statement.finalised")
    await service.finalise("2026-09")
    dispatcher = service.dispatcher()
    assert await dispatcher.dispatch_due() == 1
    assert await dispatcher.dispatch_due() == 0, "not due again before its retry"
    attempted_at = [service.clock()]
    while (delivery := (await service.deliveries())[0])["status"] == "pending":
        service.clock.now = datetime.fromisoformat(delivery["next_attempt_at"])
        attempted_at.append(service.clock())
        assert await dispatcher.dispatch_due() == 1
    assert delivery["status"] == "failed"
    assert delivery["attempts"] == 8
    assert delivery["last_status"] == 500
    assert attempted_at[1] - attempted_at[0] == timedelta(seconds=5)
    assert attempted_at[-1] - attempted_at[0] == timedelta(hours=24)
    assert len(receiver.received) == 8

    shown = (await service.api.get(f"/v1/partners/skymall/webhook-endpoints/{endpoint['endpoint_id']}",
                                   headers=service.staff)).json()  # fmt: skip
    assert shown["enabled"] is False
    assert shown["failing"] is True
    assert "every attempt failed for 24 h (last: 500)" in shown["disabled_reason"]
    ops_view = await service.api.get("/v1/ops/webhook-endpoints/disabled", headers=service.ops)
    assert [e["endpoint_id"] for e in ops_view.json()] == [endpoint["endpoint_id"]]
    [told] = await read_all(infra.kafka, PARTNER_WEBHOOKS.qualified(topic_prefix), 1)
    event = PARTNER_WEBHOOKS.decode(told.value)
    assert event.payload.endpoint_id == uuid.UUID(endpoint["endpoint_id"])
    assert event.payload.last_status == 500

    refused = await service.api.post(f"/v1/partners/skymall/webhook-deliveries/{delivery['delivery_id']}/replay",
                                     headers=service.staff)  # fmt: skip
    assert refused.status_code == 409
    assert "enable it first" in refused.json()["detail"]
    enabled = await service.api.patch(f"/v1/partners/skymall/webhook-endpoints/{endpoint['endpoint_id']}",
                                      headers=service.staff, json={"enabled": True})  # fmt: skip
    assert enabled.json()["enabled"] is True
    replay = f"/v1/partners/skymall/webhook-deliveries/{delivery['delivery_id']}/replay"
    assert (await service.api.post(replay, headers=service.staff)).status_code == 202
    assert await dispatcher.dispatch_due() == 1
    [again] = await service.deliveries()
    assert (again["status"], again["attempts"]) == ("pending", 9)
    waited = datetime.fromisoformat(again["next_attempt_at"]) - service.clock()
    assert waited == timedelta(seconds=5), "a replay that fails starts the schedule anew"
    audit = await service.shell.pool.fetch("SELECT actor, action FROM audit_log WHERE subject = $1 ORDER BY seq",
                                           f"webhook_endpoint:{endpoint['endpoint_id']}")  # fmt: skip
    assert [(r["actor"], r["action"]) for r in audit] == [
        ("li.na", "webhook_endpoint.created"), ("webhook-dispatcher", "webhook_endpoint.disabled"),
        ("li.na", "webhook_endpoint.enabled")]  # fmt: skip


async def test_two_dispatchers_send_each_attempt_once(service, receiver):
    receiver.delay = 0.02
    await service.subscribe(receiver.url, "order.placed")
    messages = [Message("skymall", "order.placed", f"msg_t{i}", b'{"type": "order.placed"}') for i in range(30)]
    async with WebhookStore(lambda: service.shell.pool).transaction() as tx:
        await tx.enqueue_messages(messages, service.clock())
    one, two = service.dispatcher(), service.dispatcher()
    one.batch = two.batch = 20
    counts = await asyncio.gather(one.dispatch_due(), two.dispatch_due(), one.dispatch_due(), two.dispatch_due())
    assert sum(counts) == 30
    assert sorted(h["webhook-id"] for h, _ in receiver.received) == sorted(m.message_id for m in messages)
    assert {(d["status"], d["attempts"]) for d in await service.deliveries()} == {("delivered", 1)}


async def test_orders_refused_purchases_and_sold_out_offers_reach_the_partner_that_subscribed(
    service, receiver, infra, topic_prefix
):
    endpoint = await service.subscribe(receiver.url, "order.placed", "order.settled", "purchase.refused",
                                       "offer.out_of_stock")  # fmt: skip
    order = OrderPayload(order_id=uuid.uuid4(), member_id=uuid.uuid4(), partner_id="skymall", offer_id="mug",
                         quantity=1, points=900)  # fmt: skip
    refusal = PurchaseRefusedPayload(partner_id="skymall", customer_ref="c-1", purchase_id="p-1", kind="purchase",
                                     amount=Money(amount_minor=100, currency="CNY"), reason="no points",
                                     refused_event_id=uuid.uuid4())  # fmt: skip
    stock = StockPayload(partner_id="skymall", offer_id="mug", stock=5, units_reserved=1, units_sold=4)
    events: list[tuple[Topic, Event]] = [
        (REDEMPTION_ORDERS, fact(OrderPlaced, order)),
        (REDEMPTION_ORDERS, fact(OrderCancelled, CancelledPayload(**order.model_dump(), reason="out_of_stock"))),
        (REDEMPTION_ORDERS, fact(OrderFulfilled, order)),
        (PURCHASE_OUTCOMES, fact(PurchaseRefused, refusal)),
        (OFFER_STOCK, fact(OfferOutOfStock, stock)),
        (OFFER_STOCK, fact(OfferOutOfStock, stock.model_copy(update={"partner_id": "teashop"}))),
    ]
    await publish(infra.kafka, topic_prefix, events + events[:1])  # the first one twice: one message

    async def four() -> list[dict[str, Any]] | None:
        found = await service.deliveries()
        return found if len(found) >= 4 else None

    await eventually(four, timeout=30, what="four deliveries")
    assert await service.dispatcher().dispatch_due() == 4
    bodies = [verified(endpoint["secret"], r, service.clock())[1] for r in receiver.received]
    assert sorted(b["type"] for b in bodies) == ["offer.out_of_stock", "order.placed", "order.settled",
                                                 "purchase.refused"]  # fmt: skip
    assert all("member_id" not in json.dumps(b) for b in bodies), "no member's personal data leaves"
    refused = next(b for b in bodies if b["type"] == "purchase.refused")
    assert refused["data"]["purchase_id"] == "p-1"
    assert refused["data"]["reason"] == "no points"


def fact(kind: type[Event], payload: Any) -> Event:
    event_id = uuid.uuid4()
    return kind(event_id=event_id, occurred_at=START, source="test", correlation_id=event_id, payload=payload)


async def publish(kafka: str, prefix: str, events: list[tuple[Topic, Event]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for topic, event in events:
            await producer.send_and_wait(topic.qualified(prefix), event.model_dump_json().encode(), key=b"skymall")
    finally:
        await producer.stop()


async def test_endpoint_changes_refused_with_reasons_and_a_rotated_secret_signs_beside_the_old(service, receiver):
    base = "/v1/partners/skymall/webhook-endpoints"
    cases = [
        ({"url": "http://hooks.partner.example/x", "event_types": ["order.placed"]}, 422, "must use https"),
        ({"url": receiver.url, "event_types": ["order.shipped"]}, 422, "order.shipped"),
        ({"url": receiver.url, "event_types": []}, 422, "event_types"),
    ]
    for body, code, reason in cases:
        answer = await service.api.post(base, headers=service.staff, json=body)
        assert (answer.status_code, reason in answer.text) == (code, True), answer.text
    member = bearer(TokenAuthority(service.shell.settings.jwt_secret).issue(str(uuid.uuid4()), Role.MEMBER))
    answer = await service.api.post(base, headers=member, json={"url": receiver.url, "event_types": ["order.placed"]})
    assert answer.status_code == 403
    assert "member token" in answer.json()["detail"]
    assert (await service.api.get(base)).status_code == 401

    chosen = str(uuid.uuid4())
    body = {"url": receiver.url, "event_types": ["statement.finalised"], "endpoint_id": chosen}
    first = await service.api.post(base, headers=service.staff, json=body)
    repeat = await service.api.post(base, headers=service.staff, json=body)
    assert (first.status_code, repeat.status_code, repeat.json()["secret"]) == (201, 200, None), "a double submit"
    assert len((await service.api.get(base, headers=service.staff)).json()) == 1

    rotated = await service.api.post(f"{base}/{chosen}/secret", headers=service.ops)
    assert rotated.status_code == 200, rotated.text
    await service.finalise("2026-10")
    assert await service.dispatcher().dispatch_due() == 1
    [request] = receiver.received
    assert len(request[0]["webhook-signature"].split(" ")) == 2
    for secret in (first.json()["secret"], rotated.json()["secret"]):
        verified(secret, request, service.clock())
    actions = await service.shell.pool.fetch("SELECT role, action FROM audit_log WHERE subject = $1 ORDER BY seq",
                                             f"webhook_endpoint:{chosen}")  # fmt: skip
    assert [(r["role"], r["action"]) for r in actions] == [
        ("partner", "webhook_endpoint.created"), ("ops", "webhook_endpoint.secret_rotated")]  # fmt: skip
