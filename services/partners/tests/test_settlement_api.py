"""Settlement over HTTP: the breakage term of a contract, who may read which statement, and bad periods."""

from __future__ import annotations

import time

import asyncpg
import pytest

from contracts.signing import signed_headers
from loyalty_runtime.auth import Role, TokenAuthority
from tests.support.partner_client import DEFAULT_CONTRACT, bearer, register_partner

pytestmark = pytest.mark.integration


async def test_the_breakage_rebate_share_is_optional_and_kept_exactly(partners_api, partner):
    ops = bearer(partners_api.ops_token)
    await register_partner(partners_api.client, partners_api.ops_token, "skyair", breakage_rebate_share="0.1234")
    skyair = await partners_api.client.get("/v1/partners/skyair/contracts", headers=ops)
    assert [c["breakage_rebate_share"] for c in skyair.json()] == ["0.1234"]
    skymall = await partner.contracts()
    assert [c["breakage_rebate_share"] for c in skymall.json()] == ["0"], "omitted: nothing is refunded"


async def test_a_breakage_rebate_share_outside_0_to_1_is_refused(partners_api):
    cases = [
        ("1.01", "less than or equal to 1"),
        ("-0.1", "greater than or equal to 0"),
        ("0.12345", "no more than 4 decimal places"),
        ("half", "valid decimal"),
    ]
    for share, reason in cases:  # one service for every case: fewer test topics on the broker
        contract = {**DEFAULT_CONTRACT, "breakage_rebate_share": share}
        body = {"partner_id": "skyair", "name": "Sky Air", "contract": contract}
        answer = await partners_api.client.post("/v1/partners", json=body, headers=bearer(partners_api.ops_token))
        assert (answer.status_code, reason in answer.text) == (422, True), (share, answer.text)


async def test_the_database_refuses_a_share_the_api_would_refuse(partners_api, skymall):
    conn = await asyncpg.connect(partners_api.dsn)
    try:
        with pytest.raises(asyncpg.CheckViolationError, match="breakage_rebate_share"):
            await conn.execute("UPDATE earn_contracts SET breakage_rebate_share = 1.5 WHERE partner_id = 'skymall'")
    finally:
        await conn.close()


async def test_a_partner_reads_only_its_own_statement(partners_api, partner):
    own = await partner.send("GET", "/statements?period=2026-10")
    assert own.status_code == 200, own.text
    body = own.json()
    assert (body["partner_id"], body["status"], body["period"]) == ("skymall", "provisional", "2026-10")
    assert [(line["points_issued"], line["net_minor"], line["currency"]) for line in body["lines"]] == [(0, 0, "CNY")]
    assert "no partner money" in body["gifts"]

    other = await register_partner(partners_api.client, partners_api.ops_token, "skyair")
    path = "/v1/partners/skymall/statements"
    anonymous = await partners_api.client.get(path, params={"period": "2026-10"})
    assert anonymous.status_code == 401
    # skyair's key on skymall's path: a valid signature, but not skymall's.
    signed = signed_headers(other.key_id, other.secret, "GET", path, b"", int(time.time()))
    stolen = await partners_api.client.get(path, params={"period": "2026-10"}, headers=signed)
    assert stolen.status_code == 403
    assert "skyair" in stolen.text


async def test_ops_endpoints_need_an_ops_token(partners_api, skymall):
    member = bearer(TokenAuthority(partners_api.shell.settings.jwt_secret).issue("m-1", Role.MEMBER))
    for method, path in [
        ("GET", "/v1/ops/statements?period=2026-10"),
        ("GET", "/v1/ops/statements.csv?period=2026-10"),
        ("POST", "/v1/ops/settlement-runs"),
    ]:
        body = {"period": "2026-10"} if method == "POST" else None
        assert (await partners_api.client.request(method, path, json=body)).status_code == 401
        assert (await partners_api.client.request(method, path, json=body, headers=member)).status_code == 403


async def test_a_bad_period_is_refused_with_the_reason(partners_api, skymall):
    cases = [
        ("", "no period given"),
        ("period=2026-13", "should match pattern"),
        ("period=2026-10&from=2026-10-01T00:00:00Z", "both given"),
        ("from=2026-10-02T00:00:00Z&to=2026-10-01T00:00:00Z", "at or after its end"),
        ("from=2026-01-01T00:00:00Z&to=2027-06-01T00:00:00Z", "days long"),
        ("from=2026-10-01T00:00:00&to=2026-10-02T00:00:00Z", "timezone"),
    ]
    for query, reason in cases:
        answer = await partners_api.client.get(f"/v1/ops/statements?{query}", headers=bearer(partners_api.ops_token))
        assert (answer.status_code, reason in answer.text) == (422, True), (query, answer.text)


async def test_statements_of_an_unknown_partner_are_not_found(partners_api, skymall):
    answer = await partners_api.client.get(
        "/v1/partners/nobody/statements?period=2026-10", headers=bearer(partners_api.ops_token)
    )
    assert answer.status_code == 404


async def test_a_month_that_has_not_ended_cannot_be_finalised_even_by_force(partners_api, skymall):
    ops = bearer(partners_api.ops_token)
    for force in (False, True):
        answer = await partners_api.client.post(
            "/v1/ops/settlement-runs", json={"period": "2099-12", "force": force}, headers=ops
        )
        assert answer.status_code == 409
        assert "ends 2100-01-01T00:00:00Z" in answer.json()["detail"]
    refused = await partners_api.client.post("/v1/ops/settlement-runs", json={"period": "2026-9"}, headers=ops)
    assert refused.status_code == 422


async def test_a_quiet_month_is_finalised_by_force_once_with_a_zero_statement(partners_api, skymall):
    ops = bearer(partners_api.ops_token)
    unproven = await partners_api.client.post("/v1/ops/settlement-runs", json={"period": "2026-08"}, headers=ops)
    assert unproven.status_code == 409
    assert "no transfer was consumed yet" in unproven.json()["detail"]
    forced = await partners_api.client.post(
        "/v1/ops/settlement-runs", json={"period": "2026-08", "force": True}, headers=ops
    )
    assert forced.status_code == 201, forced.text
    assert (forced.json()["status"], forced.json()["forced"]) == ("final", True)
    assert [s["totals"][0]["net_minor"] for s in forced.json()["statements"]] == [0]
    csv = await partners_api.client.get("/v1/ops/statements.csv?period=2026-08", headers=ops)
    assert csv.text.splitlines()[0].startswith("period,status,partner_id,contract_valid_from,currency,")
    assert csv.text.splitlines()[1].startswith("2026-08,final,skymall,2020-01-01,CNY,0.5,0.4,0,0,0,")
