"""Partners publish, change and withdraw reward offers, signed; each change leaves through the outbox to Kafka."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from contracts.events.offers import OfferPublished, OfferWithdrawn
from contracts.topics import OFFERS
from partners.domain.offers import event_id_for
from tests.support.kafka import read_all
from tests.support.offers import offer_body
from tests.support.partner_client import PartnerCredentials, SignedPartnerClient, bearer, register_partner
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


async def outbox_rows(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM outbox"))
    finally:
        await conn.close()


async def test_each_change_of_an_offer_is_a_revision_published_once_on_the_offers_topic(
    partners_api, partner, infra, topic_prefix
):
    body = offer_body()
    created = await partner.put_offer("v-100", body)
    assert created.status_code == 201, created.text
    assert created.json()["revision"] == 1
    assert created.json()["withdrawn_at"] is None

    retried = await partner.put_offer("v-100", body)
    assert retried.status_code == 200, retried.text
    assert retried.json()["revision"] == 1, "the same terms again are no change"

    cheaper = await partner.put_offer("v-100", {**body, "price_points": 8_000, "stock": 20})
    assert cheaper.status_code == 200, cheaper.text
    assert (cheaper.json()["revision"], cheaper.json()["price_points"], cheaper.json()["stock"]) == (2, 8_000, 20)

    assert (await partner.withdraw_offer("v-100")).status_code == 204
    assert (await partner.withdraw_offer("v-100")).status_code == 204, "withdrawing twice is no change"
    gone = (await partner.offer("v-100")).json()
    assert (gone["revision"], gone["withdrawn_at"] is not None) == (3, True)

    back = await partner.put_offer("v-100", body)
    assert back.status_code == 200, back.text
    assert (back.json()["revision"], back.json()["withdrawn_at"]) == (4, None)

    records = await read_all(infra.kafka, OFFERS.qualified(topic_prefix), expected=4)
    events = [OFFERS.decode(r.value) for r in records]
    assert [(type(e).__name__, e.payload.revision) for e in events] == [
        ("OfferPublished", 1),
        ("OfferPublished", 2),
        ("OfferWithdrawn", 3),
        ("OfferPublished", 4),
    ]
    assert [e.event_id for e in events] == [event_id_for("skymall", "v-100", r) for r in (1, 2, 3, 4)]
    assert {r.key for r in records} == {b"skymall"}
    assert [dict(r.headers)["type"].decode() for r in records] == [e.type for e in events]
    first, second, withdrawal, last = events
    assert isinstance(first, OfferPublished)
    assert isinstance(second, OfferPublished)
    assert isinstance(withdrawal, OfferWithdrawn)
    assert isinstance(last, OfferPublished)
    assert (first.payload.partner_id, first.payload.offer_id, first.payload.kind) == ("skymall", "v-100", "voucher")
    assert (second.payload.price_points, second.payload.stock) == (8_000, 20)
    assert last.payload.stock == 50
    assert await eventually(lambda: _empty(partners_api.dsn), what="the relay to empty the outbox")


async def _empty(dsn: str) -> bool:
    return await outbox_rows(dsn) == 0


async def test_two_first_puts_of_one_offer_at_once_make_revisions_1_and_2(partner):
    answers = await asyncio.gather(
        partner.put_offer("v-200", offer_body(price_points=100)),
        partner.put_offer("v-200", offer_body(price_points=200)),
    )
    assert sorted(a.status_code for a in answers) == [200, 201], [a.text for a in answers]
    assert sorted(a.json()["revision"] for a in answers) == [1, 2]
    last = max(answers, key=lambda a: a.json()["revision"])
    assert (await partner.offer("v-200")).json()["price_points"] == last.json()["price_points"]


async def test_a_product_needs_a_fulfilment_url_which_is_kept_normalised(partner):
    answer = await partner.put_offer(
        "p-1", offer_body(kind="product", category="electronics", fulfilment_url="https://SkyMall.example/fulfil")
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["fulfilment_url"] == "https://skymall.example/fulfil"


def in_days(days: float) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


# One service for all cases (a loop, not parametrize): every service run creates its own topics on the broker.
BAD_OFFERS: list[tuple[dict[str, object], str, str]] = [
    ({"price_points": 0}, "price_points", "greater than 0"),
    ({"price_points": -5}, "price_points", "greater than 0"),
    ({"price_points": 12.5}, "price_points", "valid integer"),
    ({"price_points": "100"}, "price_points", "valid integer"),
    ({"price_points": 10**9 + 1}, "price_points", "less than or equal to 1000000000"),
    ({"stock": -1}, "stock", "greater than or equal to 0"),
    ({"kind": "cash"}, "kind", "'product', 'voucher' or 'discount'"),
    ({"kind": "product"}, "body", "a product offer needs a fulfilment_url"),
    ({"kind": "discount", "fulfilment_url": "not a url"}, "fulfilment_url", "valid URL"),
    ({"valid_until": in_days(-2)}, "body", "valid_until must be after valid_from"),
    ({"valid_from": in_days(-9), "valid_until": in_days(-2)}, "valid_until", "an offer must end in the future"),
    ({"valid_from": "2026-11-20T09:30:00"}, "valid_from", "timezone"),
    ({"title": ""}, "title", "at least 1 character"),
    ({"title": "two\nlines"}, "title", "should match pattern"),
    ({"description": "nul\u0000"}, "description", "should match pattern"),
    ({"category": "Gift Cards"}, "category", "should match pattern"),
    ({"revision": 7}, "revision", "Extra inputs are not permitted"),
    ({"partner_id": "skyair"}, "partner_id", "Extra inputs are not permitted"),
    ({"stock": None}, "stock", "Field required"),
]


async def test_a_bad_offer_gets_422_naming_the_field_and_nothing_is_published(partner):
    for changes, field, reason in BAD_OFFERS:
        answer = await partner.put_offer("v-1", offer_body(**changes))
        assert answer.status_code == 422, (changes, answer.text)
        [problem] = answer.json()["detail"]
        assert (problem["loc"], reason in problem["msg"]) == (["body", field], True), (changes, problem)
    assert (await partner.offer("v-1")).status_code == 404
    assert (await partner.offers()).json()["items"] == []


async def test_malformed_json_is_400(partner):
    answer = await partner.send("PUT", "/offers/v-1", b'{"kind": "voucher",')
    assert answer.status_code == 400
    assert "not valid JSON" in answer.json()["detail"]


async def test_an_offer_id_outside_the_url_safe_alphabet_is_refused(partner):
    for offer_id, status in [("-starts-with-dash", 422), ("has%20space", 422), ("x" * 129, 422), ("a%2Fb", 404)]:
        answer = await partner.put_offer(offer_id, offer_body())
        assert answer.status_code == status, (offer_id, answer.text)
    assert (await partner.offers()).json()["items"] == []


async def test_an_unknown_offer_is_404_to_read_and_to_withdraw(partner):
    for answer in [await partner.offer("nope"), await partner.withdraw_offer("nope")]:
        assert answer.status_code == 404
        assert "has no offer 'nope'" in answer.json()["detail"]


async def test_a_partner_acts_only_on_its_own_offers(partners_api, partner):
    await partner.put_offer("v-100", offer_body())
    await register_partner(partners_api.client, partners_api.ops_token, "skyair")
    posing = SignedPartnerClient(
        partners_api.client, PartnerCredentials("skyair", partner.credentials.key_id, partner.credentials.secret)
    )
    for answer in [
        await posing.put_offer("v-100", offer_body()),
        await posing.withdraw_offer("v-100"),
        await posing.offers(),
        await posing.offer("v-100"),
    ]:
        assert answer.status_code == 403, answer.text
        assert "belongs to partner 'skymall', not 'skyair'" in answer.json()["detail"]
    unsigned = await partners_api.client.put("/v1/partners/skymall/offers/v-100", json=offer_body())
    assert unsigned.status_code == 401
    assert (await partners_api.client.delete("/v1/partners/skymall/offers/v-100")).status_code == 401
    assert (await partner.offer("v-100")).json()["withdrawn_at"] is None


async def test_the_partner_and_ops_page_through_its_offers_each_once(partners_api, partner):
    ids = [f"v-{n:03d}" for n in range(7)]
    for offer_id in reversed(ids):
        assert (await partner.put_offer(offer_id, offer_body())).status_code == 201
    await partner.withdraw_offer("v-003")

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        answer = await partner.offers(cursor=cursor, limit=3)
        assert answer.status_code == 200, answer.text
        seen += [o["offer_id"] for o in answer.json()["items"]]
        cursor = answer.json()["next_cursor"]
        pages += 1
        if cursor is None:
            break
    assert (seen, pages) == (ids, 3)

    as_ops = await partners_api.client.get("/v1/partners/skymall/offers", headers=bearer(partners_api.ops_token))
    assert as_ops.status_code == 200
    listed = {o["offer_id"]: o for o in as_ops.json()["items"]}
    assert list(listed) == ids
    assert listed["v-003"]["withdrawn_at"] is not None
    assert (await partner.offers(cursor="not-a-cursor")).status_code == 400
