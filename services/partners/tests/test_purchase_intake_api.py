"""Signed intake: a partner acts only as itself, once per signature, and bad input is refused with a reason."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from contracts.envelope import Event
from contracts.signing import REPLAY_WINDOW_SECONDS, signed_headers
from contracts.topics import PARTNER_PURCHASES
from partners.adapters.history_store import HistoryStore
from partners.adapters.intake_store import IntakeStore
from partners.adapters.store import PartnerStore
from partners.api import errors, intake
from partners.api.errors import status_of
from partners.domain.earn import EarnContract
from partners.domain.idempotency import IntakeEntry, purchase_entry
from partners.domain.intake import PricedPurchase, PurchaseReport, event_id_for
from partners.handlers.authentication import PartnerAuthenticator, SignatureClaim
from partners.handlers.intake import ContendedIntakeError, Outcome, Particulars, Submission, _purchase_event
from partners.handlers.registry import register_partner
from tests.support.kafka import read_all
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
        ({"idempotency_key": "k\u0000nul"}, "should match pattern"),  # was a 500: PostgreSQL text holds no NUL
        ({"idempotency_key": "k\nline"}, "should match pattern"),
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


async def test_a_refused_request_uses_its_signature_up_too(partners_api, partner):
    """The signature is claimed with the request's rows, or alone before any refusal: a replay is always a 409."""
    accepted = await partner.purchase(purchase_item("k-1", 1_000))
    assert accepted.status_code == 202, accepted.text
    stamp = int(time.time()) - 10  # not the second `accepted` was signed in: the same body would be its replay
    for item, refused in [
        (purchase_item("k-2", amount_minor=0), 422),  # does not validate
        (purchase_item("k-3", currency="USD"), 422),  # the contract refuses it
        (purchase_item("k-1", 1_200), 409),  # another body under a recorded key
        (purchase_item("k-1", 1_000), 202),  # a retry, judged apart from the one-call path
    ]:
        body = json.dumps(item).encode()
        first = await partner.send("POST", "/purchases", body, timestamp=stamp)
        assert first.status_code == refused, first.text
        replay = await partner.send("POST", "/purchases", body, timestamp=stamp)
        assert replay.status_code == 409, replay.text
        assert "replayed request" in replay.json()["detail"]
    async with partners_api.shell.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM intake_refusals") == 3, "each refusal kept once"
        assert await conn.fetchval("SELECT count(*) FROM intake_requests") == 1


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


async def published(partners_api, partner: SignedPartnerClient, expected: int) -> list[Event]:
    """Every event on the purchases topic, read once a final marker purchase arrived after the others.

    The marker has the customer of the other items, so one partition: a refused item that had been
    published would arrive before it, and be counted.
    """
    marker = await partner.purchase(purchase_item("marker", 100))
    assert marker.status_code == 202, marker.text
    topic = partners_api.shell.topic(PARTNER_PURCHASES.name)
    records = await read_all(partners_api.shell.settings.kafka_bootstrap_servers, topic, expected=expected + 1)
    events = [PARTNER_PURCHASES.decode(r.value) for r in records]
    assert str(events[-1].event_id) == marker.json()["event_id"]
    return events[:-1]


def problems(answer: httpx.Response) -> list[tuple[list[object], str]]:
    return [(p["loc"], p["msg"]) for p in answer.json()["detail"]]


async def test_the_same_key_with_another_body_is_refused_with_409_and_not_published(partners_api, partner):
    first = await partner.purchase(purchase_item("k-1", 10_000))
    assert first.status_code == 202, first.text
    corrected = await partner.purchase(purchase_item("k-1", 12_000))
    assert corrected.status_code == 409, corrected.text
    [(loc, msg)] = problems(corrected)
    assert loc == ["body", "idempotency_key"]
    assert "idempotency_key 'k-1' was already used for another purchase (purchase_id 'order-k-1'" in msg
    assert "use a new idempotency_key for a new purchase, or resend the original body unchanged" in msg
    [event] = await published(partners_api, partner, expected=1)
    assert str(event.event_id) == first.json()["event_id"]
    assert event.payload.amount.amount_minor == 10_000


async def test_the_same_key_with_the_same_fields_written_differently_is_a_retry_of_the_same_event(partner):
    item = purchase_item("k-1", 25_899, category="electronics", occurred_at="2026-11-20T09:30:00+08:00")
    first = await partner.purchase(item)
    assert first.status_code == 202, first.text
    reordered = dict(reversed(list({**item, "occurred_at": "2026-11-20T01:30:00Z"}.items())))
    retry = await partner.purchase(reordered)
    assert retry.status_code == 202, "the same instant, keys in another order: the same purchase"
    assert retry.json() == first.json()
    moved = await partner.purchase({**item, "occurred_at": "2026-11-20T09:31:00+08:00"})
    assert moved.status_code == 409, "another instant is another purchase"


async def test_a_purchase_id_under_a_new_key_is_refused_naming_the_first_key(partners_api, partner):
    first = await partner.purchase(purchase_item("k-1", 10_000, purchase_id="order-7"))
    assert first.status_code == 202, first.text
    again = await partner.purchase(purchase_item("k-2", 10_000, purchase_id="order-7"))
    assert again.status_code == 409, again.text
    [(loc, msg)] = problems(again)
    assert loc == ["body", "purchase_id"]
    assert "purchase_id 'order-7' was already accepted under idempotency_key 'k-1'" in msg
    assert "resend its original body with idempotency_key 'k-1'" in msg
    [event] = await published(partners_api, partner, expected=1)
    assert str(event.event_id) == first.json()["event_id"]


async def test_refunds_refuse_a_reused_key_or_refund_id_and_accept_a_retry(partners_api, partner):
    first = await partner.refund(refund_item("r-1", "order-1", 500))
    assert first.status_code == 202, first.text
    retry = await partner.refund(refund_item("r-1", "order-1", 500))
    assert retry.json() == first.json()
    other_amount = await partner.refund(refund_item("r-1", "order-1", 700))
    assert other_amount.status_code == 409
    assert problems(other_amount)[0][0] == ["body", "idempotency_key"]
    assert "already used for another refund (refund_id 'refund-r-1'" in problems(other_amount)[0][1]
    new_key = await partner.refund(refund_item("r-2", "order-1", 500, refund_id="refund-r-1"))
    assert new_key.status_code == 409
    assert problems(new_key) == [
        (
            ["body", "refund_id"],
            "refund_id 'refund-r-1' was already accepted under idempotency_key 'r-1'; to retry that refund, resend "
            "its original body with idempotency_key 'r-1'; a new refund needs its own refund_id",
        )
    ]
    second_part = await partner.refund(refund_item("r-2", "order-1", 300))
    assert second_part.status_code == 202, "another refund of the same purchase has its own refund_id"
    batch = await partner.refunds_batch([refund_item("r-3", "order-1", 100), refund_item("r-1", "order-1", 900)])
    assert batch.status_code == 409
    assert [loc for loc, _ in problems(batch)] == [["body", "refunds", 1, "idempotency_key"]]
    events = await published(partners_api, partner, expected=2)
    assert [str(e.event_id) for e in events] == [first.json()["event_id"], second_part.json()["event_id"]], (
        "a retry is answered as the first time and publishes nothing more"
    )


async def test_a_batch_with_one_conflicting_item_is_refused_whole_listing_it(partners_api, partner):
    accepted = await partner.purchases_batch([purchase_item("k-1", 1_000), purchase_item("k-2", 2_000)])
    assert accepted.status_code == 202, accepted.text
    items = [
        purchase_item("k-3", 3_000),
        purchase_item("k-1", 1_000),  # an exact repeat: fine
        purchase_item("k-4", 4_000, purchase_id="order-k-2"),
        purchase_item("k-2", 2_000, purchase_id="order-k-5"),
    ]
    refused = await partner.purchases_batch(items)
    assert refused.status_code == 409, refused.text
    detail = refused.json()["detail"]
    assert [(p["loc"], p["type"]) for p in detail] == [
        (["body", "purchases", 2, "purchase_id"], "ExternalIdReusedError"),
        (["body", "purchases", 3, "idempotency_key"], "KeyReusedError"),
    ]
    assert "under idempotency_key 'k-2'" in detail[0]["msg"]
    events = await published(partners_api, partner, expected=2)
    assert [e.payload.purchase_id for e in events] == ["order-k-1", "order-k-2"], "nothing of the refused batch"

    fixed = await partner.purchases_batch([items[0], items[1]])
    assert fixed.status_code == 202, "the new item and the repeat are accepted once the conflicts are gone"
    assert fixed.json()["accepted"][1] == accepted.json()["accepted"][0]


async def test_one_purchase_twice_in_a_batch_under_two_keys_is_refused(partner):
    answer = await partner.purchases_batch([purchase_item("k-1"), purchase_item("k-2", purchase_id="order-k-1")])
    assert answer.status_code == 422
    [(loc, msg)] = problems(answer)
    assert loc == ["body", "purchases", 1, "purchase_id"]
    assert "purchase_id 'order-k-1' is already used by item 0 of this batch" in msg


async def test_concurrent_requests_with_one_key_and_different_bodies_accept_exactly_one(partners_api, partner):
    answers = await asyncio.gather(*(partner.purchase(purchase_item("k-1", 1_000 + i)) for i in range(10)))
    assert sorted(a.status_code for a in answers) == [202] + [409] * 9
    [winner] = [a for a in answers if a.status_code == 202]
    [event] = await published(partners_api, partner, expected=1)
    assert str(event.event_id) == winner.json()["event_id"]


TOPIC = "intake-test.purchases"


@asynccontextmanager
async def intake_with(database) -> AsyncIterator[tuple[SignedPartnerClient, asyncpg.Pool]]:
    """Intake alone, on its own database, with no broker at all and no outbox relay."""
    pool = await asyncpg.create_pool(await database("partners"), min_size=1, max_size=3)
    try:
        store = PartnerStore(lambda: pool)
        master = "m" * 32
        terms = EarnContract("skymall", date(2020, 1, 1), "CNY", Decimal(1), Decimal(1), Decimal(1))
        credentials = await register_partner(store, master, "skymall", "Sky Mall", terms)
        clock = lambda: datetime.now(UTC)  # noqa: E731
        app = FastAPI()
        log = IntakeStore(lambda: pool, TOPIC)
        authenticator = PartnerAuthenticator(store, store, master, clock)
        app.include_router(intake.router(store, log, HistoryStore(lambda: pool), authenticator, clock))
        errors.install(app)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://partners") as client:
            yield SignedPartnerClient(client, PartnerCredentials(**vars(credentials))), pool
    finally:
        await pool.close()


async def outbox_events(pool: asyncpg.Pool) -> list[Event]:
    rows = await pool.fetch("SELECT topic, payload, headers FROM outbox ORDER BY id")
    assert {r["topic"] for r in rows} <= {TOPIC}
    return [PARTNER_PURCHASES.decode(r["payload"]) for r in rows]


async def test_an_accepted_purchase_is_durable_with_its_event_before_any_broker_sees_it(database):
    """No broker is reachable: the 202 means the purchase and its event are committed, for the relay to send."""
    async with intake_with(database) as (partner, pool):
        first = await partner.purchase(purchase_item("k-1", 1_000))
        assert first.status_code == 202, first.text
        batch = await partner.purchases_batch([purchase_item("k-2", 2_000), purchase_item("k-3", 3_000)])
        assert batch.status_code == 202, batch.text
        retry = await partner.purchase(purchase_item("k-1", 1_000))
        assert retry.json() == first.json(), "a retry is answered as the first time"
        changed = await partner.purchase(purchase_item("k-1", 1_200))
        assert changed.status_code == 409, changed.text
        events = await outbox_events(pool)
        assert await pool.fetchval("SELECT count(*) FROM intake_requests") == 3
        assert await pool.fetchval("SELECT count(*) FROM seen_signatures") == 4, "the refused request's too"
    assert [e.payload.amount.amount_minor for e in events] == [1_000, 2_000, 3_000], "one event each, no copy"
    assert str(events[0].event_id) == first.json()["event_id"]


async def test_concurrent_requests_share_calls_and_each_is_judged_alone(database):
    """Many at once (group commit): retries of one purchase give one event, the other body is refused."""
    async with intake_with(database) as (partner, pool):
        same = [partner.purchase(purchase_item("k-same", 1_000)) for _ in range(5)]
        other = [partner.purchase(purchase_item("k-same", 2_000)) for _ in range(3)]
        fresh = [partner.purchase(purchase_item(f"k-{i}", 100 + i)) for i in range(20)]
        answers = await asyncio.gather(*same, *other, *fresh)
        events = await outbox_events(pool)
    by_key = [a.status_code for a in answers[:8]]
    assert all(a.status_code == 202 for a in answers[8:]), [a.text for a in answers[8:] if a.status_code != 202]
    assert sorted(by_key) in ([202] * 3 + [409] * 5, [202] * 5 + [409] * 3), "one body wins, all its copies pass"
    winners = {a.json()["event_id"] for a in answers[:8] if a.status_code == 202}
    assert winners == {str(event_id_for("purchase", "skymall", "k-same"))}
    assert sorted(e.payload.purchase_id for e in events) == sorted(
        ["order-k-same", *(f"order-k-{i}" for i in range(20))]
    ), "one event per purchase, however many retries"


async def test_a_group_call_records_each_request_whole_or_not_at_all(database):
    """In one call: a new request, its retry, a replayed signature, a batch with one item recorded before."""
    pool = await asyncpg.create_pool(await database("partners"), min_size=1, max_size=2)
    store = IntakeStore(lambda: pool, TOPIC)

    def item(key: str) -> tuple[IntakeEntry, Particulars, tuple[str, Event]]:
        report = PurchaseReport(key, "cust-1", f"order-{key}", 100, "CNY", None, datetime.now(UTC))
        entry = purchase_entry("skymall", report)
        priced = PricedPurchase(report, 1, date(2020, 1, 1))
        return entry, Particulars("cust-1", 100, "CNY", points=1), _purchase_event("skymall", priced, entry.event_id)

    def accept(signature: str, *keys: str) -> Awaitable[Outcome]:
        entries, said, keyed = zip(*(item(k) for k in keys), strict=True)
        claim = SignatureClaim(signature, datetime.now(UTC))
        return store.accept(Submission("skymall", "purchase", claim, entries, said, keyed))

    try:
        assert await accept("0" * 64, "k-old") is Outcome.ACCEPTED
        outcomes = await asyncio.gather(
            accept("1" * 64, "k-1"),
            accept("2" * 64, "k-1"),
            accept("1" * 64, "k-2"),
            accept("3" * 64, "k-3", "k-old"),
            accept("4" * 64, "k-4", "k-5"),
        )
        keys = [r["idempotency_key"] for r in await pool.fetch("SELECT idempotency_key FROM intake_requests")]
        signatures = await pool.fetchval("SELECT count(*) FROM seen_signatures")
        events = await outbox_events(pool)
    finally:
        await pool.close()
    assert outcomes == [Outcome.ACCEPTED, Outcome.RECORDED, Outcome.REPLAYED, Outcome.RECORDED, Outcome.ACCEPTED]
    assert sorted(keys) == ["k-1", "k-4", "k-5", "k-old"], "nothing of the requests that were not wholly new"
    assert signatures == 3, "a request sent back to be judged apart has not used its signature yet"
    assert [e.payload.purchase_id for e in events] == ["order-k-old", "order-k-1", "order-k-4", "order-k-5"]


async def test_requests_that_reuse_each_others_keys_at_the_same_moment_are_told_to_retry(database):
    """Each holds a row the other needs: PostgreSQL stops one (a deadlock), which answers 503 and rolls back."""
    pool = await asyncpg.create_pool(await database("partners"), min_size=2, max_size=2)
    log = IntakeStore(lambda: pool, TOPIC)

    def entry(key: str, purchase_id: str) -> IntakeEntry:
        report = PurchaseReport(key, "cust-1", purchase_id, 100, "CNY", None, datetime.now(UTC))
        return purchase_entry("skymall", report)

    async def claim_both(first: IntakeEntry, then: IntakeEntry, holding: asyncio.Event, other: asyncio.Event) -> str:
        try:
            async with log.recording("skymall", "purchase") as claims:
                await claims.claim([first])
                holding.set()
                await other.wait()
                await claims.claim([then])
            return "committed"
        except ContendedIntakeError as error:
            return error.message

    try:
        a, b = asyncio.Event(), asyncio.Event()
        outcomes = await asyncio.gather(
            claim_both(entry("k-1", "p-1"), entry("k-2", "p-2"), a, b),
            claim_both(entry("k-3", "p-2"), entry("k-4", "p-1"), b, a),
        )
        assert len([o for o in outcomes if o == "committed"]) == 1
        [stopped] = [o for o in outcomes if o != "committed"]
        assert "was being recorded at the same moment" in stopped
        assert "retry it unchanged" in stopped
        rows = await pool.fetch("SELECT idempotency_key FROM intake_requests ORDER BY idempotency_key")
    finally:
        await pool.close()
    assert len(rows) == 2, "the stopped request recorded nothing"
    assert status_of(ContendedIntakeError()) == 503
