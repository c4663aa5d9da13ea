"""Ops register partners, version their contracts and manage their keys; nobody else may."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from loyalty_runtime.auth import Role, TokenAuthority
from partners.domain.credentials import derive_secret
from tests.support.partner_client import (
    DEFAULT_CONTRACT,
    PartnerCredentials,
    SignedPartnerClient,
    bearer,
    purchase_item,
    register_partner,
)
from tests.support.services import http, partners_service, running
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


def now_iso(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


async def test_registration_returns_the_secret_once_and_stores_no_secret(partners_api):
    api = partners_api.client
    body = {"partner_id": "skyair", "name": "Sky Air", "contract": DEFAULT_CONTRACT}
    answer = await api.post("/v1/partners", json=body, headers=bearer(partners_api.ops_token))
    assert answer.status_code == 201, answer.text
    made = answer.json()
    assert set(made) == {"partner_id", "key_id", "secret"}
    assert made["secret"] == derive_secret(partners_api.shell.settings.partner_key_secret, made["key_id"])

    again = await api.post("/v1/partners", json=body, headers=bearer(partners_api.ops_token))
    assert again.status_code == 409
    assert "already exists" in again.json()["detail"]

    shown = await api.get("/v1/partners/skyair", headers=bearer(partners_api.ops_token))
    assert shown.status_code == 200
    assert shown.json()["name"] == "Sky Air"
    assert [k["key_id"] for k in shown.json()["keys"]] == [made["key_id"]]
    assert made["secret"] not in shown.text

    conn = await asyncpg.connect(partners_api.dsn)
    try:
        dump = (
            await conn.fetchval("SELECT string_agg(t::text, ' ') FROM (SELECT * FROM api_keys) t")
            + " "
            + await conn.fetchval("SELECT string_agg(t::text, ' ') FROM (SELECT * FROM partners) t")
        )
    finally:
        await conn.close()
    assert made["key_id"] in dump
    assert made["secret"] not in dump


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"points_per_unit": "0"}, "greater than 0"),
        ({"points_per_unit": "1.23456"}, "no more than 4 decimal places"),
        ({"points_per_unit": "NaN"}, "finite number"),
        ({"currency": "XXX"}, "unknown currency"),
        ({"category_rates": {"electronics": "-1"}}, "greater than or equal to 0"),
        ({"category_rates": {"Bad Category": "1"}}, "should match pattern"),
        ({"issue_price_minor_per_point": "0"}, "greater than 0"),
        ({"redemption_price_minor_per_point": "-0.1"}, "greater than 0"),
        ({"valid_from": "someday"}, "valid date"),
    ],
)
async def test_a_contract_with_bad_terms_is_refused_with_the_reason(partners_api, change, reason):
    body = {"partner_id": "skyair", "name": "Sky Air", "contract": {**DEFAULT_CONTRACT, **change}}
    answer = await partners_api.client.post("/v1/partners", json=body, headers=bearer(partners_api.ops_token))
    assert answer.status_code == 422
    assert reason in answer.text


async def test_the_database_refuses_what_the_api_would_refuse(partners_api):
    conn = await asyncpg.connect(partners_api.dsn)
    try:
        await conn.execute("INSERT INTO partners (partner_id, name) VALUES ('skyair', 'Sky Air')")
        insert = (
            "INSERT INTO earn_contracts (partner_id, valid_from, currency, points_per_unit, category_rates,"
            " issue_price_minor_per_point, redemption_price_minor_per_point) VALUES ('skyair', $1, 'CNY', $2, $3, 1, 1)"
        )
        await conn.execute(insert, datetime(2026, 1, 1).date(), 1.5, '{"electronics": 2, "gift-cards": 0}')
        for points_per_unit, rates in [
            (0, "{}"),
            (1.23456, "{}"),
            (1, '{"electronics": -1}'),
            (1, '{"electronics": "2"}'),
            (1, '{"Electronics": 2}'),
            (1, "[1, 2]"),
        ]:
            with pytest.raises(asyncpg.CheckViolationError):
                await conn.execute(insert, datetime(2026, 2, 1).date(), points_per_unit, rates)
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("INSERT INTO api_keys (key_id, partner_id) VALUES ('not-a-key', 'skyair')")
    finally:
        await conn.close()


async def test_ops_endpoints_refuse_missing_invalid_and_member_tokens(partners_api, skymall):
    api = partners_api.client
    member = TokenAuthority(partners_api.shell.settings.jwt_secret).issue("member-1", Role.MEMBER)
    forged = TokenAuthority("x" * 32).issue("ops-1", Role.OPS)
    register = {"partner_id": "skyair", "name": "Sky Air", "contract": DEFAULT_CONTRACT}
    calls = [
        ("POST", "/v1/partners", register),
        ("GET", "/v1/partners/skymall", None),
        ("POST", "/v1/partners/skymall/contracts", {**DEFAULT_CONTRACT, "valid_from": now_iso(days=1)[:10]}),
        ("GET", "/v1/partners/skymall/contracts", None),
        ("POST", "/v1/partners/skymall/keys", None),
        ("DELETE", f"/v1/partners/skymall/keys/{skymall.key_id}", None),
    ]
    for method, path, body in calls:
        missing = await api.request(method, path, json=body)
        assert missing.status_code == 401, (method, path, missing.text)
        invalid = await api.request(method, path, json=body, headers=bearer(forged))
        assert invalid.status_code == 401, (method, path)
        assert "invalid bearer token" in invalid.json()["detail"]
        as_member = await api.request(method, path, json=body, headers=bearer(member))
        assert as_member.status_code == 403, (method, path)
        assert "needs an ops token" in as_member.json()["detail"]
    assert (await api.get("/v1/partners/skymall", headers=bearer(partners_api.ops_token))).status_code == 200
    assert (await SignedPartnerClient(api, skymall).purchase(purchase_item("still-valid"))).status_code == 202


async def test_a_partner_reads_its_own_contracts_with_a_signed_request_but_not_anothers(partners_api, partner):
    other = await register_partner(partners_api.client, partners_api.ops_token, "skyair", currency="HKD")
    mine = await partner.contracts()
    assert mine.status_code == 200, mine.text
    [version] = mine.json()
    assert version["currency"] == "CNY"
    assert version["category_rates"] == {"electronics": "2", "gift-cards": "0"}

    posing = SignedPartnerClient(
        partners_api.client, PartnerCredentials("skyair", partner.credentials.key_id, partner.credentials.secret)
    )
    foreign = await posing.contracts()
    assert foreign.status_code == 403
    assert "may only act as itself" in foreign.json()["detail"]
    assert (await SignedPartnerClient(partners_api.client, other).contracts()).json()[0]["currency"] == "HKD"
    unsigned = await partners_api.client.get("/v1/partners/skymall/contracts")
    assert unsigned.status_code == 401
    assert "ops bearer token" in unsigned.json()["detail"]


async def test_contract_versions_apply_from_their_first_day_and_never_change(partners_api, partner):
    api, ops = partners_api.client, bearer(partners_api.ops_token)
    today = datetime.now(UTC).date()
    terms = {**DEFAULT_CONTRACT, "valid_from": today.isoformat(), "points_per_unit": "3"}
    added = await api.post("/v1/partners/skymall/contracts", json=terms, headers=ops)
    assert added.status_code == 201, added.text
    assert added.json()["points_per_unit"] == "3"
    duplicate = await api.post("/v1/partners/skymall/contracts", json=terms, headers=ops)
    assert duplicate.status_code == 409
    assert "already has a contract version starting" in duplicate.json()["detail"]
    backdated = {**terms, "valid_from": (today - timedelta(days=1)).isoformat()}
    refused = await api.post("/v1/partners/skymall/contracts", json=backdated, headers=ops)
    assert refused.status_code == 422
    assert "cannot start in the past" in refused.json()["detail"]
    unknown = await api.post("/v1/partners/nobody/contracts", json=terms, headers=ops)
    assert unknown.status_code == 404

    listed = (await api.get("/v1/partners/skymall/contracts", headers=ops)).json()
    assert [(v["valid_from"], v["points_per_unit"]) for v in listed] == [
        ("2020-01-01", "1.5"),
        (today.isoformat(), "3"),
    ]

    yesterday = await partner.purchase(purchase_item("y", 10_000, occurred_at=now_iso(days=-1)))
    current = await partner.purchase(purchase_item("t", 10_000, occurred_at=now_iso()))
    assert (yesterday.json()["points"], current.json()["points"]) == (150, 300)


async def test_a_rotated_key_works_alongside_the_old_one_until_that_is_revoked(partners_api, skymall):
    api, ops = partners_api.client, bearer(partners_api.ops_token)
    rotated = await api.post("/v1/partners/skymall/keys", headers=ops)
    assert rotated.status_code == 201
    new = PartnerCredentials(**rotated.json())
    assert new.key_id != skymall.key_id
    old_client, new_client = SignedPartnerClient(api, skymall), SignedPartnerClient(api, new)
    assert (await old_client.purchase(purchase_item("a"))).status_code == 202
    assert (await new_client.purchase(purchase_item("b"))).status_code == 202

    revoked = await api.delete(f"/v1/partners/skymall/keys/{skymall.key_id}", headers=ops)
    assert revoked.status_code == 204
    refused = await old_client.purchase(purchase_item("c"))
    assert refused.status_code == 401
    assert "was revoked" in refused.json()["detail"]
    assert (await new_client.purchase(purchase_item("d"))).status_code == 202

    keys = {k["key_id"]: k["revoked_at"] for k in (await api.get("/v1/partners/skymall", headers=ops)).json()["keys"]}
    assert keys[new.key_id] is None
    assert keys[skymall.key_id] is not None
    again = await api.delete(f"/v1/partners/skymall/keys/{skymall.key_id}", headers=ops)
    assert again.status_code == 204
    unknown = await api.delete(f"/v1/partners/skymall/keys/pk_{'x' * 24}", headers=ops)
    assert unknown.status_code == 404
    assert (await api.post("/v1/partners/nobody/keys", headers=ops)).status_code == 404


async def test_a_key_revoked_on_another_replica_stops_working_within_seconds(
    infra, topic_prefix, partners_api, skymall
):
    other_replica = partners_service(infra.kafka, partners_api.dsn, topic_prefix)
    async with running(other_replica), http(other_replica) as other_api:
        partner_there = SignedPartnerClient(other_api, skymall)
        assert (await partner_there.purchase(purchase_item("warm-the-cache"))).status_code == 202
        revoked = await partners_api.client.delete(
            f"/v1/partners/skymall/keys/{skymall.key_id}", headers=bearer(partners_api.ops_token)
        )
        assert revoked.status_code == 204

        attempt = 0

        async def refused() -> bool:
            nonlocal attempt
            attempt += 1
            answer = await partner_there.purchase(purchase_item(f"after-revoke-{attempt}"))
            return answer.status_code == 401

        await eventually(refused, timeout=other_replica.settings.credential_cache_seconds + 3, what="revocation")
