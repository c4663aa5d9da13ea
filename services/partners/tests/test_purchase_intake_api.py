"""The intake API answers only after the broker confirmed, and refuses bad input with a reason."""

from __future__ import annotations

from collections.abc import Sequence

import httpx
import pytest
from fastapi import FastAPI

from contracts.envelope import Event
from contracts.events.partners import PartnerPurchaseRecorded
from partners.api import purchases
from partners.domain.intake import event_id_for
from partners.handlers.intake import EventsUnavailableError


class RecordingPublisher:
    def __init__(self) -> None:
        self.published: list[tuple[str, Event]] = []

    async def publish(self, keyed_events: Sequence[tuple[str, Event]]) -> None:
        self.published.extend(keyed_events)


class BrokerDown:
    async def publish(self, keyed_events: Sequence[tuple[str, Event]]) -> None:
        raise EventsUnavailableError("broker unreachable")


def client(publisher: object) -> httpx.AsyncClient:
    app = FastAPI()
    app.include_router(purchases.router(publisher))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://t")


def body(**changes: object) -> dict[str, object]:
    payload: dict[str, object] = {
        "idempotency_key": "k-1",
        "customer_ref": "cust-1",
        "purchase_id": "order-1",
        "amount_minor": 25_800,
        "currency": "CNY",
        "category": "electronics",
        "occurred_at": "2026-11-20T09:30:00+08:00",
    }
    payload.update(changes)
    return payload


async def test_accepted_purchase_is_published_keyed_by_customer_with_a_stable_event_id():
    publisher = RecordingPublisher()
    async with client(publisher) as api:
        answer = await api.post("/v1/partners/skymall/purchases", json=body())
    assert answer.status_code == 202
    [(key, event)] = publisher.published
    assert key == "skymall:cust-1"
    assert isinstance(event, PartnerPurchaseRecorded)
    assert event.event_id == event_id_for("skymall", "k-1")
    assert answer.json() == {"event_id": str(event.event_id), "status": "accepted"}
    assert event.payload.amount.amount_minor == 25_800
    assert event.occurred_at.isoformat() == "2026-11-20T01:30:00+00:00"


async def test_the_same_key_from_another_partner_is_another_event():
    assert event_id_for("skymall", "k-1") != event_id_for("skyair", "k-1")
    assert event_id_for("skymall", "k-1") == event_id_for("skymall", "k-1")


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"amount_minor": -1}, "greater than 0"),
        ({"amount_minor": 0}, "greater than 0"),
        ({"amount_minor": 12.5}, "valid integer"),
        ({"currency": "XXX"}, "unknown currency"),
        ({"occurred_at": "2026-11-20T09:30:00"}, "timezone"),
        ({"points": 1000}, "Extra inputs are not permitted"),
        ({"customer_ref": ""}, "at least 1 character"),
    ],
)
async def test_bad_purchases_get_422_with_the_reason(changes: dict[str, object], reason: str):
    publisher = RecordingPublisher()
    async with client(publisher) as api:
        answer = await api.post("/v1/partners/skymall/purchases", json=body(**changes))
    assert answer.status_code == 422
    assert reason in answer.text
    assert publisher.published == []


async def test_a_malformed_partner_id_is_refused():
    async with client(RecordingPublisher()) as api:
        answer = await api.post("/v1/partners/Sky%20Mall/purchases", json=body())
    assert answer.status_code == 422


async def test_nothing_is_acknowledged_when_the_broker_did_not_confirm():
    async with client(BrokerDown()) as api:
        answer = await api.post("/v1/partners/skymall/purchases", json=body())
    assert answer.status_code == 503
    assert "retry with the same idempotency_key" in answer.json()["detail"]
    assert answer.headers["retry-after"] == "1"
