"""The liability page in the console: the statement by issuer with its reconciliation, the two charts, the CSV, the
issue price form (what it sends, the service's refusal on the form), and the token every call carries."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from loyalty_runtime.auth import Role

from .conftest import POINTS, Browser, FakeServices, json_of

SKY = "partner:skymall:issued"


def line(issuer: str, closing: int, gifts: int = 0, price: dict[str, Any] | None = None, **m: int) -> dict[str, Any]:
    return {
        "issuer": issuer, "opening": m.get("opening", 0), "issued": m.get("issued", 0),
        "redeemed": m.get("redeemed", 0), "expired": m.get("expired", 0), "moved": m.get("moved", 0),
        "other": m.get("other", 0), "closing": closing, "received_as_gifts": gifts, "price": price,
        "closing_value_minor": None if price is None else closing // 2,
        "received_as_gifts_value_minor": None if price is None else gifts // 2,
    }  # fmt: skip


PRICE = {"issuer": SKY, "valid_from": "2020-01-01", "currency": "CNY", "price_minor_per_point": "0.5",
         "source": "partner_contract", "set_by": "partners"}  # fmt: skip
STATEMENT = {
    "month": "2026-11", "time_zone": "Asia/Shanghai", "starts_at": "2026-10-31T16:00:00Z",
    "ends_at": "2026-11-30T16:00:00Z", "status": "closed", "valued_on": "2026-11-30",
    "lines": [line(SKY, 12_900, 50, PRICE, opening=12_000, issued=1_200, redeemed=100, expired=200),
              line("card:issued", 200, issued=200)],
    "totals": {"opening": 12_000, "issued": 1_400, "redeemed": 100, "expired": 200, "moved": 0, "other": 0,
               "closing": 13_100, "received_as_gifts": 50},
    "values": [{"currency": "CNY", "value_minor": 6_450}], "unpriced": ["card:issued"],
    "reconciliation": {"ledger_points": 13_100, "statement_points": 13_100, "difference": 0},
}  # fmt: skip
RATES = {"time_zone": "Asia/Shanghai", "months": [
    {"month": "2026-10", "issued": 0, "redeemed": 0, "expired": 0, "breakage_rate": None, "redemption_rate": None},
    {"month": "2026-11", "issued": 1_400, "redeemed": 100, "expired": 200, "breakage_rate": "0.6667",
     "redemption_rate": "0.3333"}]}  # fmt: skip
FORECAST = {"as_of": "2026-11-20T00:00:00Z", "time_zone": "Asia/Shanghai", "valued_on": "2026-11-20",
            "months": [{"month": f"{2026 + (10 + i) // 12}-{(10 + i) % 12 + 1:02d}", "points": 1_000 * i,
                        "values": [{"currency": "CNY", "value_minor": 500 * i}]} for i in range(24)],
            "later_points": 7, "unpriced": []}  # fmt: skip


@pytest.fixture
async def ops(browser: Browser, services: FakeServices) -> Browser:
    services.answer("GET", f"{POINTS}/v1/ops/liability/rates", RATES)
    services.answer("GET", f"{POINTS}/v1/ops/liability/forecast", FORECAST)
    services.answer("GET", f"{POINTS}/v1/ops/issue-prices", {"items": [PRICE]})
    services.answer("GET", f"{POINTS}/v1/ops/liability/statements/2026-11", STATEMENT)
    await browser.sign_in(Role.OPS, "ops-1", display="Olivia Chen")
    services.calls.clear()
    return browser


def sent(services: FakeServices, method: str, path: str) -> list[httpx.Request]:
    return [c for c in services.calls if c.method == method and c.url.path == path]


async def test_the_page_shows_this_months_statement_reconciled_with_both_charts(
    ops: Browser, services: FakeServices
) -> None:
    page = await ops.client.get("/ops/liability")
    assert page.status_code == 200
    assert len(sent(services, "GET", "/v1/ops/liability/statements/2026-11")) == 1, "the rates' last month"
    table = page.text.split('data-testid="liability-statement"')[1].split("</table>")[0]
    assert "Partner skymall" in table
    assert "12,900" in table
    assert "13,100" in table
    assert "CN¥64.50" in table  # 6,450 fen
    assert "not priced" in table  # the card has no price
    assert "Reconciled" in page.text
    assert 'data-testid="expiry-forecast"' in page.text
    assert 'data-testid="breakage-rates"' in page.text
    assert "66.7%" in page.text
    assert 'href="/ops/liability/statements/2026-11.csv"' in page.text
    assert 'href="/ops/liability"' in page.text  # in the nav
    assert set(services.bearer_subjects()) == {("ops", "ops-1")}


async def test_a_statement_that_does_not_reconcile_says_so(ops: Browser, services: FakeServices) -> None:
    broken = {**STATEMENT, "reconciliation": {"ledger_points": 13_099, "statement_points": 13_100, "difference": 1}}
    services.answer("GET", f"{POINTS}/v1/ops/liability/statements/2026-10", broken)
    page = await ops.client.get("/ops/liability?month=2026-10")
    assert "Does not reconcile" in page.text


async def test_a_future_month_shows_the_services_reason(ops: Browser, services: FakeServices) -> None:
    reason = "month 2027-01 has not started (this is 2026-11 in the programme's time zone)"
    services.answer("GET", f"{POINTS}/v1/ops/liability/statements/2027-01", {"detail": reason}, 422)
    page = await ops.client.get("/ops/liability?month=2027-01")
    assert page.status_code == 422
    assert "has not started" in page.text


async def test_the_csv_comes_from_the_service_with_the_ops_token(ops: Browser, services: FakeServices) -> None:
    body = "month,issuer,closing\r\n2026-11,'=cmd,1\r\n"
    services.on("GET", f"{POINTS}/v1/ops/liability/statements/2026-11.csv",
                lambda _r: httpx.Response(200, text=body, headers={"content-type": "text/csv"}))  # fmt: skip
    answer = await ops.client.get("/ops/liability/statements/2026-11.csv")
    assert answer.status_code == 200
    assert answer.text == body
    assert 'filename="liability-2026-11.csv"' in answer.headers["content-disposition"]
    assert (await ops.client.get("/ops/liability/statements/2026-1x.csv")).status_code == 422
    assert set(services.bearer_subjects()) == {("ops", "ops-1")}


async def test_the_price_form_sends_the_price_and_shows_a_refusal_on_the_form(
    ops: Browser, services: FakeServices
) -> None:
    form = {"issuer": "card:issued", "valid_from": "2026-12-01", "currency": "CNY", "price_minor_per_point": "1.25",
            "month": "2026-11"}  # fmt: skip
    reason = "card:issued already has an issue price from 2026-12-01; a version never changes: add one from a later day"
    services.answer("POST", f"{POINTS}/v1/ops/issue-prices", {"detail": reason}, 409)
    refused = await ops.submit("/ops/liability/prices", form)
    assert refused.status_code == 409
    assert "a version never changes" in refused.text
    assert 'value="1.25"' in refused.text, "the form keeps what was typed"
    assert json_of(sent(services, "POST", "/v1/ops/issue-prices")[-1]) == {
        "issuer": "card:issued",
        "valid_from": "2026-12-01",
        "currency": "CNY",
        "price_minor_per_point": "1.25",
    }

    wrong = await ops.submit("/ops/liability/prices", {**form, "price_minor_per_point": "half"})
    assert wrong.status_code == 422
    assert "minor units per point" in wrong.text
    assert len(sent(services, "POST", "/v1/ops/issue-prices")) == 1, "nothing sent for a price that is no number"

    services.answer("POST", f"{POINTS}/v1/ops/issue-prices", {**PRICE, "issuer": "card:issued"}, 201)
    done = await ops.submit("/ops/liability/prices", form)
    assert (done.status_code, done.headers["location"]) == (303, "/ops/liability?month=2026-11")
    assert set(services.bearer_subjects()) == {("ops", "ops-1")}


async def test_members_cannot_open_the_liability_page(browser: Browser, services: FakeServices) -> None:
    await browser.sign_in(Role.MEMBER, "5b0c7a52-3f0e-4d8a-9a57-6f1d2e3c4b5a")
    services.calls.clear()
    answer = await browser.client.get("/ops/liability")
    assert answer.status_code in (303, 403)
    assert services.calls == []
