"""Signed intake: a partner acts only as itself, once per signature, and bad input is refused with a reason."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from contracts.envelope import Event
from contracts.signing import REPLAY_WINDOW_SECONDS, signed_headers
from partners.adapters.store import PartnerStore
from partners.api import errors, intake
from partners.domain.earn import EarnContract
from partners.domain.intake import event_id_for
from partners.handlers.authentication import PartnerAuthenticator
from partners.handlers.intake import EventsUnavailableError
from partners.handlers.registry import register_partner
from tests.support.partner_client import (
    PartnerCredentials,
    SignedPartnerClient,
    purchase_item,
    refund_item,
)
from tests.support.partner_client import (
    register_partner as register_through_api,
)

pytestmark = pytest.mark.integration


def now_iso(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


async def test_an_accepted_purchase_carries_its_points_and_a_stable_event_id(partner):
    answer = await partner.purchase(purchase_item("k-1", 25_899, category="electronics"))
    assert answer.status_code == 202, answer.text
    assert answer.json() == {
        "event_id": str(event_id_for("purchase", "skymall", "k-1")),
        "points": 517,  # 258.99 CNY x 2 (electronics), rounded down
        "status": "accepted",
    }
    retry = await partner.purchase(purchase_item("k-1", 25_899, category="electronics"))
    assert retry.status_code == 202, "a retry is signed afresh and names the same event"
    assert retry.json() == answer.json()
    base = await partner.purchase(purchase_item("k-2", 25_899, category="books"))
    assert base.json()["points"] == 388  # 258.99 x 1.5
    excluded = await partner.purchase(purchase_item("k-3", 25_899, category="gift-cards"))
    assert excluded.json()["points"] == 0


async def test_an_accepted_refund_has_its_own_event_and_no_points(partner):
    answer = await partner.refund(refund_item("k-1", "order-k-1"))
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"event_id": str(event_id_for("refund", "skymall", "k-1")), "status": "accepted"}
    assert answer.json()["event_id"] != str(event_id_for("purchase", "skymall", "k-1"))


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"amount_minor": -1}, "greater than 0"),
        ({"amount_minor": 0}, "greater than 0"),
        ({"amount_minor": 12.5}, "valid integer"),
        ({"amount_minor": 12.0}, "valid integer"),
        ({"amount_minor": "1200"}, "valid integer"),
        ({"currency": "XXX"}, "unknown currency"),
        ({"currency": "USD"}, "differs from your earn contract's CNY"),
        ({"occurred_at": "2026-11-20T09:30:00"}, "timezone"),
        ({"occurred_at": "2019-12-31T12:00:00+00:00"}, "no earn contract valid on 2019-12-31"),
        ({"points": 1000}, "Extra inputs are not permitted"),
        ({"customer_ref": ""}, "at least 1 character"),
    ],
)
async def test_bad_purchases_get_422_with_the_reason(partner, changes: dict[str, object], reason: str):
    answer = await partner.purchase(purchase_item("k-1", **changes))
    assert answer.status_code == 422
    assert reason in answer.text


async def test_a_purchase_dated_more_than_five_minutes_ahead_is_refused(partner):
    answer = await partner.purchase(purchase_item("k-1", occurred_at=now_iso(minutes=6)))
    assert answer.status_code == 422
    [problem] = answer.json()["detail"]
    assert problem["loc"] == ["body", "occurred_at"]
    assert "more than 5 minutes after our clock" in problem["msg"]
    assert (await partner.purchase(purchase_item("k-2", occurred_at=now_iso(minutes=4)))).status_code == 202


async def test_bad_refunds_get_422_with_the_reason(partner):
    for changes, reason in [
        ({"amount_minor": 0}, "greater than 0"),
        ({"currency": "USD"}, "differs from your earn contract's CNY"),
        ({"occurred_at": now_iso(minutes=10)}, "more than 5 minutes after our clock"),
        ({"refund_id": "has space"}, "should match pattern"),
    ]:
        answer = await partner.refund(refund_item("r-1", "order-1", **changes))
        assert answer.status_code == 422, changes
        assert reason in answer.text


async def test_malformed_json_is_refused_with_400(partner):
    answer = await partner.send("POST", "/purchases", b'{"idempotency_key": "k-1",')
    assert answer.status_code == 400
    assert "not valid JSON" in answer.json()["detail"]
    not_an_object = await partner.send("POST", "/purchases", b"[]")
    assert not_an_object.status_code == 422


async def send_with(partner: SignedPartnerClient, body: bytes, changes: dict[str, str | None]) -> httpx.Response:
    """A correctly signed purchase whose signature headers are then changed (None removes one)."""
    path = f"/v1/partners/{partner.partner_id}/purchases"
    key, secret = partner.credentials.key_id, partner.credentials.secret
    headers: dict[str, str | None] = {**signed_headers(key, secret, "POST", path, body, int(time.time())), **changes}
    return await partner.client.post(path, content=body, headers={k: v for k, v in headers.items() if v is not None})


async def test_every_signature_failure_is_a_401_with_its_reason(partners_api, partner):
    api, body = partners_api.client, json.dumps(purchase_item("k-1")).encode()
    path = "/v1/partners/skymall/purchases"

    unsigned = await api.post(path, content=body)
    assert unsigned.status_code == 401
    assert "missing X-Loyalty-Key, X-Loyalty-Timestamp, X-Loyalty-Signature" in unsigned.json()["detail"]
    assert "Loyalty-HMAC-SHA256" in unsigned.headers["www-authenticate"]

    no_signature = await send_with(partner, body, {"X-Loyalty-Signature": None})
    assert no_signature.status_code == 401
    assert "missing X-Loyalty-Signature" in no_signature.json()["detail"]

    unknown = SignedPartnerClient(api, PartnerCredentials("skymall", "pk_" + "z" * 24, partner.credentials.secret))
    answer = await unknown.purchase(purchase_item("k-1"))
    assert answer.status_code == 401
    assert "unknown API key" in answer.json()["detail"]

    wrong_secret = SignedPartnerClient(api, PartnerCredentials("skymall", partner.credentials.key_id, "not-it"))
    answer = await wrong_secret.purchase(purchase_item("k-1"))
    assert answer.status_code == 401
    assert "X-Loyalty-Signature does not match" in answer.json()["detail"]

    for skew in (-REPLAY_WINDOW_SECONDS - 5, REPLAY_WINDOW_SECONDS + 5):
        stale = await partner.send("POST", "/purchases", body, timestamp=int(time.time()) + skew)
        assert stale.status_code == 401
        assert "replay window is ±300 s" in stale.json()["detail"]

    malformed = await send_with(partner, body, {"X-Loyalty-Timestamp": "yesterday"})
    assert malformed.status_code == 401
    assert "must be unix seconds" in malformed.json()["detail"]


async def test_a_signed_body_that_was_changed_on_the_way_is_refused(partners_api, partner):
    signed = await partner.send("POST", "/purchases", json.dumps(purchase_item("k-1", 100)).encode())
    assert signed.status_code == 202
    tampered_body = json.dumps(purchase_item("k-1", 100_000)).encode()
    request = partners_api.client.build_request(
        "POST",
        "/v1/partners/skymall/purchases",
        content=tampered_body,
        headers={k: v for k, v in signed.request.headers.items() if k.lower().startswith("x-loyalty")},
    )
    answer = await partners_api.client.send(request)
    assert answer.status_code == 401
    assert "does not match" in answer.json()["detail"]


async def test_a_replayed_request_is_refused_with_409(partner):
    body, stamp = json.dumps(purchase_item("k-1")).encode(), int(time.time())
    first = await partner.send("POST", "/purchases", body, timestamp=stamp)
    assert first.status_code == 202
    replay = await partner.send("POST", "/purchases", body, timestamp=stamp)
    assert replay.status_code == 409
    assert "replayed request" in replay.json()["detail"]
    resigned = await partner.send("POST", "/purchases", body, timestamp=stamp + 1)
    assert resigned.status_code == 202
    assert resigned.json()["event_id"] == first.json()["event_id"]


async def test_old_signatures_are_forgotten_once_outside_the_window(partners_api, partner):
    body, stamp = json.dumps(purchase_item("k-1")).encode(), int(time.time())
    assert (await partner.send("POST", "/purchases", body, timestamp=stamp)).status_code == 202
    store = PartnerStore(lambda: partners_api.shell.pool)
    assert await store.forget_signed_before(datetime.fromtimestamp(stamp, UTC)) == 0
    assert await store.forget_signed_before(datetime.fromtimestamp(stamp + 1, UTC)) == 1


async def test_a_partner_cannot_act_as_another_partner(partners_api, partner):
    await register_through_api(partners_api.client, partners_api.ops_token, "skyair")
    posing = SignedPartnerClient(
        partners_api.client, PartnerCredentials("skyair", partner.credentials.key_id, partner.credentials.secret)
    )
    for answer in [
        await posing.purchase(purchase_item("k-1")),
        await posing.purchases_batch([purchase_item("k-1")]),
        await posing.refund(refund_item("k-1", "order-1")),
        await posing.refunds_batch([refund_item("k-1", "order-1")]),
    ]:
        assert answer.status_code == 403
        assert "belongs to partner 'skymall', not 'skyair'" in answer.json()["detail"]


async def test_a_body_over_one_mebibyte_is_refused_with_413(partner):
    padded = json.dumps({**purchase_item("k-1"), "pad": "x" * (1024 * 1024)}).encode()
    answer = await partner.send("POST", "/purchases", padded)
    assert answer.status_code == 413
    assert "larger than 1048576 bytes" in answer.json()["detail"]

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit holds on the bytes themselves
        for _ in range(17):
            yield b" " * 65_536

    request = partner.client.build_request("POST", "/v1/partners/skymall/purchases", content=chunks())
    assert "content-length" not in request.headers
    streamed = await partner.client.send(request)
    assert streamed.status_code == 413


async def test_a_batch_of_1000_is_accepted_in_one_request(partner):
    items = [purchase_item(f"k-{i}", 100 + i, customer_ref=f"cust-{i % 50}") for i in range(1000)]
    answer = await partner.purchases_batch(items)
    assert answer.status_code == 202, answer.text[:500]
    accepted = answer.json()["accepted"]
    assert len(accepted) == 1000
    assert accepted[7] == {
        "idempotency_key": "k-7",
        "event_id": str(event_id_for("purchase", "skymall", "k-7")),
        "points": 1,  # 1.07 CNY x 1.5
    }
    refunds = await partner.refunds_batch([refund_item(f"r-{i}", f"order-k-{i}", 50) for i in range(1000)])
    assert refunds.status_code == 202
    assert len(refunds.json()["accepted"]) == 1000


async def test_a_batch_of_1001_or_of_none_is_refused(partner):
    too_many = await partner.purchases_batch([purchase_item(f"k-{i}") for i in range(1001)])
    assert too_many.status_code == 422
    assert "at most 1000 items" in too_many.text
    assert (await partner.purchases_batch([])).status_code == 422
    assert (await partner.refunds_batch([refund_item(f"r-{i}", "o") for i in range(1001)])).status_code == 422


async def test_a_batch_with_one_bad_item_is_refused_whole_naming_each_bad_item(partner):
    items = [
        purchase_item("k-0"),
        purchase_item("k-1", currency="USD"),
        purchase_item("k-2"),
        purchase_item("k-0"),
    ]
    answer = await partner.purchases_batch(items)
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert [p["loc"] for p in detail] == [
        ["body", "purchases", 1, "currency"],
        ["body", "purchases", 3, "idempotency_key"],
    ]
    shape = await partner.purchases_batch([purchase_item("k-0"), purchase_item("k-1", amount_minor=-5)])
    assert shape.status_code == 422
    assert shape.json()["detail"][0]["loc"] == ["body", "purchases", 1, "amount_minor"]


class BrokerDown:
    def __init__(self) -> None:
        self.calls = 0

    async def publish(self, keyed_events: Sequence[tuple[str, Event]]) -> None:
        self.calls += 1
        raise EventsUnavailableError("broker unreachable")


async def test_nothing_is_acknowledged_when_the_broker_did_not_confirm(database):
    pool = await asyncpg.create_pool(await database("partners"), min_size=1, max_size=2)
    try:
        store = PartnerStore(lambda: pool)
        master = "m" * 32
        terms = EarnContract("skymall", date(2020, 1, 1), "CNY", Decimal(1), Decimal(1), Decimal(1))
        credentials = await register_partner(store, master, "skymall", "Sky Mall", terms)
        clock = lambda: datetime.now(UTC)  # noqa: E731
        app = FastAPI()
        broker = BrokerDown()
        app.include_router(intake.router(broker, store, PartnerAuthenticator(store, store, master, clock), clock))
        errors.install(app)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://partners") as client:
            partner = SignedPartnerClient(client, PartnerCredentials(**vars(credentials)))
            answer = await partner.purchase(purchase_item("k-1"))
            batch = await partner.purchases_batch([purchase_item("k-2")])
    finally:
        await pool.close()
    assert answer.status_code == batch.status_code == 503
    assert "retry with the same idempotency_key" in answer.json()["detail"]
    assert "unreachable" not in answer.text, "the broker's details are for our logs, not for partners"
    assert answer.headers["retry-after"] == "1"
    assert broker.calls == 2
