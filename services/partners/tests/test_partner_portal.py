"""The partner portal: a partner's staff read and manage their own partner, never another; intake stays signed only."""

from __future__ import annotations

import json
import time

import asyncpg
import pytest

from contracts.signing import signed_headers
from loyalty_runtime.auth import Role, TokenAuthority
from partners.domain.intake import event_id_for
from partners.handlers.history import MAX_REASON, ItemFacts, refusals_of
from tests.support.offers import offer_body
from tests.support.partner_client import (
    PartnerCredentials,
    SignedPartnerClient,
    bearer,
    purchase_item,
    refund_item,
    register_partner,
)

pytestmark = pytest.mark.integration


def staff_of(partners_api, partner_id: str) -> dict[str, str]:
    authority = TokenAuthority(partners_api.shell.settings.jwt_secret)
    return bearer(authority.issue(f"staff-of-{partner_id}", Role.PARTNER, partner_id=partner_id))


def portal_calls(partner_id: str, key_id: str) -> list[tuple[str, str, object]]:
    """Every portal call on `partner_id` that its staff may make, with a body that succeeds."""
    base = f"/v1/partners/{partner_id}"
    return [
        ("GET", base, None),
        ("GET", f"{base}/contracts", None),
        ("PUT", f"{base}/offers/v-1", offer_body()),
        ("GET", f"{base}/offers", None),
        ("GET", f"{base}/offers/v-1", None),
        ("DELETE", f"{base}/offers/v-1", None),
        ("GET", f"{base}/statements?period=2026-10", None),
        ("GET", f"{base}/statements.csv?period=2026-10", None),
        ("GET", f"{base}/purchases", None),
        ("POST", f"{base}/link-codes", {"customer_ref": "cust-1"}),
        ("POST", f"{base}/keys", None),
        ("DELETE", f"{base}/keys/{key_id}", None),
    ]


async def rows(dsn: str, query: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(query)
    finally:
        await conn.close()


async def test_staff_read_and_manage_their_own_partner_and_get_403_on_another(partners_api, skymall):
    api = partners_api.client
    skyair = await register_partner(api, partners_api.ops_token, "skyair")
    mine = staff_of(partners_api, "skymall")
    member = bearer(TokenAuthority(partners_api.shell.settings.jwt_secret).issue("member-1", Role.MEMBER))

    for method, path, body in portal_calls("skyair", skyair.key_id):
        foreign = await api.request(method, path, json=body, headers=mine)
        assert foreign.status_code == 403, (method, path, foreign.text)
        assert "may only read and manage their own partner" in foreign.json()["detail"]
        assert "for partner 'skymall', not 'skyair'" in foreign.json()["detail"]
        as_member = await api.request(method, path, json=body, headers=member)
        assert as_member.status_code == 403, (method, path)
        assert "a member token may not act for a partner" in as_member.json()["detail"]

    answers = {}
    for method, path, body in portal_calls("skymall", skymall.key_id):
        answer = await api.request(method, path, json=body, headers=mine)
        assert answer.status_code < 300, (method, path, answer.text)
        answers[(method, path.split("?")[0].removeprefix("/v1/partners/skymall"))] = answer
    assert answers[("GET", "")].json()["partner_id"] == "skymall"
    assert answers[("GET", "/contracts")].json()[0]["currency"] == "CNY"
    assert answers[("PUT", "/offers/v-1")].json()["revision"] == 1
    assert [o["offer_id"] for o in answers[("GET", "/offers")].json()["items"]] == ["v-1"]
    assert answers[("GET", "/statements")].json()["partner_id"] == "skymall"
    assert answers[("GET", "/statements.csv")].headers["content-type"].startswith("text/csv")
    assert answers[("GET", "/purchases")].json() == {"items": [], "next_cursor": None}
    assert answers[("POST", "/link-codes")].json()["customer_ref"] == "cust-1"

    rotated = PartnerCredentials(**answers[("POST", "/keys")].json())
    assert (await SignedPartnerClient(api, rotated).purchase(purchase_item("after-rotation"))).status_code == 202
    revoked = await SignedPartnerClient(api, skymall).purchase(purchase_item("after-revocation"))
    assert (revoked.status_code, "was revoked" in revoked.text) == (401, True)
    untouched = await SignedPartnerClient(api, skyair).purchase(purchase_item("skyair-still-works"))
    assert untouched.status_code == 202, "another partner's staff changed nothing of skyair"


async def test_ops_keep_their_rights_on_every_portal_call(partners_api, skymall):
    ops = bearer(partners_api.ops_token)
    for method, path, body in portal_calls("skymall", skymall.key_id):
        answer = await partners_api.client.request(method, path, json=body, headers=ops)
        assert answer.status_code < 300, (method, path, answer.text)


async def test_a_signed_request_reads_the_portal_but_may_not_manage_keys(partners_api, partner):
    assert (await partner.send("GET", "")).json()["partner_id"] == "skymall"
    assert (await partner.send("GET", "/purchases?limit=5")).status_code == 200
    assert (await partner.send("GET", "/statements.csv?period=2026-10")).status_code == 200
    for method, path in [("POST", "/keys"), ("DELETE", f"/keys/{partner.credentials.key_id}")]:
        refused = await partner.send(method, path)
        assert refused.status_code == 401, (method, path)
        assert "may not make or revoke keys" in refused.json()["detail"]
    assert (await partner.purchase(purchase_item("key-still-works"))).status_code == 202


async def test_a_bearer_token_of_any_role_is_refused_on_intake_and_leaves_no_trace(partners_api, skymall):
    member = bearer(TokenAuthority(partners_api.shell.settings.jwt_secret).issue("member-1", Role.MEMBER))
    tokens = [staff_of(partners_api, "skymall"), bearer(partners_api.ops_token), member]
    bodies = {
        "/purchases": purchase_item("k-1"),
        "/purchases/batch": {"purchases": [purchase_item("k-2")]},
        "/refunds": refund_item("r-1", "order-k-1"),
        "/refunds/batch": {"refunds": [refund_item("r-2", "order-k-1")]},
    }
    for headers in tokens:
        for path, body in bodies.items():
            answer = await partners_api.client.post(f"/v1/partners/skymall{path}", json=body, headers=headers)
            assert answer.status_code == 401, (path, answer.text)
            assert "missing X-Loyalty-Key" in answer.json()["detail"]
    assert await rows(partners_api.dsn, "SELECT 1 FROM intake_requests UNION ALL SELECT 1 FROM intake_refusals") == []


async def test_the_listing_shows_accepted_purchases_and_refunds_and_refusals_with_their_reason(partners_api, partner):
    assert (await partner.purchase(purchase_item("k-1", 25_000, customer_ref="c-7"))).status_code == 202
    assert (await partner.refund(refund_item("r-1", "order-k-1", 5_000))).status_code == 202
    assert (await partner.purchase(purchase_item("k-2", currency="USD"))).status_code == 422
    assert (await partner.purchase(purchase_item("k-1", 99))).status_code == 409
    assert (await partner.purchase(purchase_item("k-3", amount_minor=-5, note="x"))).status_code == 422
    batch = await partner.purchases_batch([purchase_item("b-1"), purchase_item("b-2", currency="USD")])
    assert batch.status_code == 422
    assert (await partner.send("POST", "/purchases", b'{"idempotency_key": ')).status_code == 400
    bad_refunds = [refund_item("rb-1", "order-k-1"), refund_item("rb-2", "order-k-1", amount_minor=0)]
    assert (await partner.refunds_batch(bad_refunds)).status_code == 422

    items = (await partner.send("GET", "/purchases")).json()["items"]
    assert [(i["kind"], i["outcome"], i["idempotency_key"]) for i in items] == [
        ("refund", "refused", "rb-2"),
        ("refund", "refused", "rb-1"),
        ("purchase", "refused", None),
        ("purchase", "refused", "b-2"),
        ("purchase", "refused", "b-1"),
        ("purchase", "refused", "k-3"),
        ("purchase", "refused", "k-1"),
        ("purchase", "refused", "k-2"),
        ("refund", "accepted", "r-1"),
        ("purchase", "accepted", "k-1"),
    ]
    reasons = [i["reason"] or "" for i in items]
    assert reasons[0] == "amount_minor: Input should be greater than 0"
    assert reasons[1] == "not accepted: item 1 of the same request was refused, so nothing of the request was accepted"
    assert "not valid JSON" in reasons[2]
    assert reasons[3].startswith("currency USD differs from your earn contract's CNY")
    assert "item 1 of the same request was refused" in reasons[4]
    assert reasons[5] == "amount_minor: Input should be greater than 0; note: Extra inputs are not permitted"
    assert "idempotency_key 'k-1' was already used" in reasons[6]
    assert "differs from your earn contract's CNY" in reasons[7]
    assert items[5]["amount_minor"] == -5, "what a refused body said, as far as it had the right type"
    assert all(i["event_id"] is None and i["points"] is None for i in items[:8])

    refund, accepted = items[8], items[9]
    assert (refund["purchase_id"], refund["refund_id"], refund["amount_minor"]) == ("order-k-1", "refund-r-1", 5_000)
    assert accepted == {
        **accepted,
        "purchase_id": "order-k-1",
        "refund_id": None,
        "customer_ref": "c-7",
        "amount_minor": 25_000,
        "currency": "CNY",
        "points": 375,  # 250 CNY x 1.5
        "reason": None,
        "event_id": str(event_id_for("purchase", "skymall", "k-1")),
    }


async def test_the_listing_filters_by_outcome_and_pages_newest_first(partners_api, partner):
    for n in range(3):
        assert (await partner.purchase(purchase_item(f"ok-{n}"))).status_code == 202
    assert (await partner.purchase(purchase_item("bad", currency="USD"))).status_code == 422
    staff = staff_of(partners_api, "skymall")

    async def page(**query: object) -> dict:
        answer = await partners_api.client.get("/v1/partners/skymall/purchases", params=query, headers=staff)
        assert answer.status_code == 200, answer.text
        return answer.json()

    first = await page(outcome="accepted", limit=2)
    assert [i["idempotency_key"] for i in first["items"]] == ["ok-2", "ok-1"]
    second = await page(outcome="accepted", limit=2, before=first["next_cursor"])
    assert ([i["idempotency_key"] for i in second["items"]], second["next_cursor"]) == (["ok-0"], None)
    refused = await page(outcome="refused")
    assert [(i["idempotency_key"], i["outcome"]) for i in refused["items"]] == [("bad", "refused")]
    for bad in [{"outcome": "maybe"}, {"limit": 0}, {"limit": 101}, {"before": "x"}]:
        answer = await partners_api.client.get("/v1/partners/skymall/purchases", params=bad, headers=staff)
        assert answer.status_code == 422, bad
    unknown = await partners_api.client.get("/v1/partners/nobody/purchases", headers=bearer(partners_api.ops_token))
    assert unknown.status_code == 404


async def test_requests_that_do_not_prove_their_sender_are_not_stored(partners_api, partner, skymall):
    api, path = partners_api.client, "/v1/partners/skymall/purchases"
    body = json.dumps(purchase_item("k-1", currency="USD")).encode()
    now = int(time.time())
    garbage = [
        {},
        {"X-Loyalty-Key": skymall.key_id, "X-Loyalty-Timestamp": str(now), "X-Loyalty-Signature": "0" * 64},
        signed_headers(skymall.key_id, "not-the-secret", "POST", path, body, now),
        signed_headers(skymall.key_id, skymall.secret, "POST", path, body, now - 3600),
        signed_headers(f"pk_{'x' * 24}", skymall.secret, "POST", path, body, now),
    ]
    for headers in garbage:
        answer = await api.post(path, content=body, headers=headers)
        assert answer.status_code == 401, answer.text
    skyair = await register_partner(api, partners_api.ops_token, "skyair")
    posing = signed_headers(skyair.key_id, skyair.secret, "POST", path, body, now)
    assert (await api.post(path, content=body, headers=posing)).status_code == 403
    too_big = signed_headers(skymall.key_id, skymall.secret, "POST", path, b"x" * (1024 * 1024 + 1), now)
    assert (await api.post(path, content=b"x" * (1024 * 1024 + 1), headers=too_big)).status_code == 413
    replayed = signed_headers(skymall.key_id, skymall.secret, "POST", path, body, now)
    assert (await api.post(path, content=body, headers=replayed)).status_code == 422, "signed: refused and kept"
    assert (await api.post(path, content=body, headers=replayed)).status_code == 409, "a replay is not kept"

    kept = await rows(partners_api.dsn, "SELECT partner_id, idempotency_key FROM intake_refusals")
    assert [tuple(r) for r in kept] == [("skymall", "k-1")]


async def test_ops_list_every_partner_with_its_contract_in_force_and_working_keys(partners_api, skymall):
    api, ops = partners_api.client, bearer(partners_api.ops_token)
    await register_partner(api, partners_api.ops_token, "airasia", name="Air Asia", valid_from="2099-01-01")
    assert (await api.post("/v1/partners/skymall/keys", headers=ops)).status_code == 201
    assert (await api.delete(f"/v1/partners/skymall/keys/{skymall.key_id}", headers=ops)).status_code == 204

    listed = await api.get("/v1/partners", headers=ops)
    assert listed.status_code == 200, listed.text
    [airasia, skymall_line] = listed.json()
    assert (airasia["partner_id"], airasia["name"], airasia["contract"], airasia["active_keys"]) == (
        "airasia",
        "Air Asia",
        None,
        1,
    )
    assert skymall_line["partner_id"] == "skymall"
    contract = skymall_line["contract"]
    assert (contract["valid_from"], contract["points_per_unit"], contract["currency"]) == ("2020-01-01", "1.5", "CNY")
    assert skymall_line["active_keys"] == 1
    assert "created_at" in skymall_line

    as_staff = await api.get("/v1/partners", headers=staff_of(partners_api, "skymall"))
    assert (as_staff.status_code, as_staff.json()["detail"]) == (403, "this endpoint needs an ops token")
    assert (await api.get("/v1/partners")).status_code == 401


async def test_the_statement_csv_holds_only_the_partners_own_lines(partners_api, skymall):
    await register_partner(partners_api.client, partners_api.ops_token, "skyair")
    answer = await partners_api.client.get(
        "/v1/partners/skymall/statements.csv", params={"period": "2026-10"}, headers=staff_of(partners_api, "skymall")
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-disposition"] == 'attachment; filename="statement-skymall-2026-10.csv"'
    header, *lines = answer.text.splitlines()
    assert header.startswith("period,status,partner_id,contract_valid_from,currency,")
    assert [line.split(",")[2] for line in lines] == ["skymall"], "one line: the contract in force, no skyair"
    statement = await partners_api.client.get(
        "/v1/partners/skymall/statements", params={"period": "2026-10"}, headers=bearer(partners_api.ops_token)
    )
    assert len(lines) == len(statement.json()["lines"])


def test_a_refusal_keeps_only_what_fits_and_a_bounded_reason():
    said = {
        "idempotency_key": "k\x00-1",
        "customer_ref": "c" * 129,
        "purchase_id": "\ud800",
        "refund_id": ["not", "text"],
        "amount_minor": True,
        "currency": "CNY",
    }
    assert ItemFacts.sniff(said) == ItemFacts(currency="CNY")
    assert ItemFacts.sniff({"amount_minor": 2**63}).amount_minor is None
    [kept] = refusals_of([], [(None, "x\x00" * 1000)])
    assert (kept.facts, len(kept.reason), kept.reason[-1]) == (ItemFacts(), MAX_REASON, "…")
    assert "\x00" not in kept.reason, "PostgreSQL text cannot hold NUL"
