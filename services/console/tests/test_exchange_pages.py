"""The points exchange's pages: the wallet's exchange, the ops page of rates and programmes, the portal's decisions."""

from __future__ import annotations

import html
import re

import httpx
import pytest

from loyalty_runtime.auth import Role

from .conftest import PARTNERS, POINTS, Browser, FakeServices, json_of

MEMBER = "5b0c7a52-3f0e-4d8a-9a51-6f1d2e3c4b5a"
EXCHANGE = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
BALANCE = {"member_id": MEMBER, "posted": 5000, "pending": 0, "available": 5000, "owed": 0, "expiring_soon": 0,
           "expiring_within_days": 30, "next_expiry_at": None, "next_expiry_points": 0}  # fmt: skip
PROGRAMME = {"partner_id": "skyair", "units_name": "miles", "min_points": 500, "step_points": 100,
             "daily_limit_points": 2000, "active": True,
             "rate_in_force": {"valid_from": "2026-11-01T00:00:00Z", "rate": "0.8"},
             "rates": [{"valid_from": "2026-11-01T00:00:00Z", "rate": "0.8"}]}  # fmt: skip
MADE = {"exchange_id": EXCHANGE, "partner_id": "skyair", "membership_number": "SKY-1", "points": 600, "units": 480,
        "units_name": "miles", "units_per_point": "0.8", "status": "pending", "requested_at": "2026-11-20T10:00:00Z",
        "expires_at": "2026-11-23T10:00:00Z", "partner_reference": None, "decision_reason": None,
        "settled_at": None}  # fmt: skip
REQUEST = {"exchange_id": EXCHANGE, "member_id": MEMBER, "membership_number": "SKY-1", "points": 600, "units": 480,
           "units_name": "miles", "units_per_point": "0.8", "requested_at": "2026-11-20T10:00:00Z",
           "expires_at": "2026-11-23T10:00:00Z", "status": "pending", "partner_reference": None,
           "refuse_reason": None, "decided_at": None, "settled": None}  # fmt: skip


def sent(services: FakeServices, method: str, url: str) -> list[httpx.Request]:
    return [c for c in services.calls if c.method == method and str(c.url).split("?")[0] == url]


@pytest.fixture
async def member(browser: Browser, services: FakeServices) -> Browser:
    services.answer("GET", f"{POINTS}/v1/members/me/balance", BALANCE)
    services.answer("GET", f"{POINTS}/v1/members/me/lots", {"items": [], "next_cursor": None})
    services.answer("GET", f"{POINTS}/v1/members/me/history", {"items": [], "next_cursor": None})
    services.answer("GET", f"{POINTS}/v1/exchange-programmes", [PROGRAMME])
    services.answer("GET", f"{POINTS}/v1/members/me/exchanges", {"items": [{**MADE, "status": "captured"}]})
    await browser.sign_in(Role.MEMBER, MEMBER)
    return browser


async def test_the_wallet_shows_rates_terms_and_history_with_statuses(member: Browser, services: FakeServices) -> None:
    page = await member.client.get("/wallet/exchange")
    assert page.status_code == 200
    for shown in ("miles", "0.8", "500", "2,000", "Credited by the partner", "480 miles", "5,000"):
        assert shown in page.text, shown
    assert 'href="/wallet/exchange"' in page.text, "the nav links the page"


async def test_an_exchange_sends_its_form_id_and_a_refusal_shows_the_reason(
    member: Browser, services: FakeServices
) -> None:
    page = await member.client.get("/wallet/exchange")
    exchange_id = re.search(r'name="exchange_id" value="([^"]+)"', page.text)[1]
    refused = {"detail": "the daily limit is 2000 points; 400 left today (programme day)", "reason": "daily_limit"}
    services.answer("POST", f"{POINTS}/v1/members/me/exchanges", refused, 422)
    form = {"partner_id": "skyair", "points": "600", "membership_number": "SKY-1", "exchange_id": exchange_id}
    answer = await member.submit("/wallet/exchange", form)
    assert answer.status_code == 422
    assert "400 left today" in html.unescape(answer.text)
    assert f'value="{exchange_id}"' in answer.text, "a retry asks under the same id"
    assert json_of(sent(services, "POST", f"{POINTS}/v1/members/me/exchanges")[0]) == {
        "exchange_id": exchange_id, "partner_id": "skyair", "points": 600, "membership_number": "SKY-1"}  # fmt: skip

    services.answer("POST", f"{POINTS}/v1/members/me/exchanges", MADE, 201)
    done = await member.submit("/wallet/exchange", form)
    assert (done.status_code, done.headers["location"]) == (303, "/wallet/exchange")
    assert "held for 480 miles" in (await member.client.get("/wallet/exchange")).text
    assert set(services.bearer_subjects()) - {("ops", "console-sign-in")} == {("member", MEMBER)}


async def test_a_malformed_exchange_is_not_sent(member: Browser, services: FakeServices) -> None:
    form = {"partner_id": "nosuch", "points": "six", "membership_number": "", "exchange_id": "x"}
    answer = await member.submit("/wallet/exchange", form)
    assert answer.status_code == 422
    assert "Choose a programme from the list." in answer.text
    assert "Enter a whole number of points" in answer.text
    assert not sent(services, "POST", f"{POINTS}/v1/members/me/exchanges")


@pytest.fixture
async def ops(browser: Browser, services: FakeServices) -> Browser:
    services.answer(
        "GET", f"{POINTS}/v1/ops/card-points-rates", [{"valid_from": "2026-11-01T00:00:00Z", "rate": "0.25"}]
    )
    services.answer("GET", f"{POINTS}/v1/exchange-programmes", [PROGRAMME])
    await browser.sign_in(Role.OPS, "ops-ann")
    return browser


async def test_ops_see_rates_and_programmes_and_add_versions(ops: Browser, services: FakeServices) -> None:
    page = await ops.client.get("/ops/exchange")
    assert page.status_code == 200
    for shown in ("0.25", "skyair", "miles", "0.8"):
        assert shown in page.text
    services.answer("POST", f"{POINTS}/v1/ops/card-points-rates", {"valid_from": "x", "rate": "0.3"}, 201)
    added = await ops.submit("/ops/exchange/card-points-rates", {"valid_from": "2026-12-01T00:00+08:00", "rate": "0.3"})
    assert added.status_code == 303
    assert json_of(sent(services, "POST", f"{POINTS}/v1/ops/card-points-rates")[0]) == {
        "valid_from": "2026-12-01T00:00:00+08:00", "rate": "0.3"}  # fmt: skip

    naive = await ops.submit("/ops/exchange/rates", {"partner_id": "skyair", "valid_from": "2026-12-01", "rate": "0"})
    assert naive.status_code == 422
    assert "with its offset" in naive.text
    assert not sent(services, "POST", f"{POINTS}/v1/ops/exchange-programmes/skyair/rates")

    services.answer("PUT", f"{POINTS}/v1/ops/exchange-programmes/skyair", PROGRAMME)
    terms = {"partner_id": "skyair", "units_name": "miles", "min_points": "500", "step_points": "100",
             "daily_limit_points": "2000", "active": "on"}  # fmt: skip
    assert (await ops.submit("/ops/exchange/programmes", terms)).status_code == 303
    assert json_of(sent(services, "PUT", f"{POINTS}/v1/ops/exchange-programmes/skyair")[0]) == {
        "units_name": "miles", "min_points": 500, "step_points": 100, "daily_limit_points": 2000,
        "active": True}  # fmt: skip

    services.answer("POST", f"{POINTS}/v1/ops/exchange-programmes/skyair/rates",
                    {"detail": "a rate of this programme already starts at that moment"}, 409)  # fmt: skip
    again = await ops.submit(
        "/ops/exchange/rates", {"partner_id": "skyair", "valid_from": "2026-12-01T00:00Z", "rate": "1"}
    )
    assert again.status_code == 409
    assert "already starts at that moment" in again.text


@pytest.fixture
async def staff(browser: Browser, services: FakeServices) -> Browser:
    services.answer("GET", f"{PARTNERS}/v1/partners/skyair/exchanges", {"items": [REQUEST]})
    await browser.sign_in(Role.PARTNER, "staff-sam", partner_id="skyair")
    return browser


async def test_the_portal_confirms_or_refuses_and_shows_a_second_decisions_reason(
    staff: Browser, services: FakeServices
) -> None:
    page = await staff.client.get("/portal/exchanges")
    assert page.status_code == 200
    for shown in (
        "SKY-1",
        "480 miles",
        f"/portal/exchanges/{EXCHANGE}/confirm",
        f"/portal/exchanges/{EXCHANGE}/refuse",
    ):
        assert shown in page.text
    confirm_url = f"{PARTNERS}/v1/partners/skyair/exchanges/{EXCHANGE}/confirm"
    services.answer("POST", confirm_url, {**REQUEST, "status": "confirmed"})
    done = await staff.submit(f"/portal/exchanges/{EXCHANGE}/confirm", {"partner_reference": "SKY-TX-1"})
    assert done.status_code == 303
    assert json_of(sent(services, "POST", confirm_url)[0]) == {"partner_reference": "SKY-TX-1"}

    refuse_url = f"{PARTNERS}/v1/partners/skyair/exchanges/{EXCHANGE}/refuse"
    conflict = {"detail": f"exchange {EXCHANGE} was confirmed already (SKY-TX-1)", "reason": "already_confirmed"}
    services.answer("POST", refuse_url, conflict, 409)
    refused = await staff.submit(f"/portal/exchanges/{EXCHANGE}/refuse", {"reason": "changed our mind"})
    assert refused.status_code == 409
    assert "was confirmed already" in refused.text
    assert set(services.bearer_subjects()) - {("ops", "console-sign-in")} == {("partner", "staff-sam")}


async def test_the_portal_refuses_an_exchange_id_that_is_not_one(staff: Browser, services: FakeServices) -> None:
    answer = await staff.submit("/portal/exchanges/..%2Fkeys/confirm", {"partner_reference": "x"})
    assert answer.status_code in (404, 422)
    assert not [c for c in services.calls if c.method == "POST"]
