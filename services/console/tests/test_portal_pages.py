"""The partner portal: what its staff see, what its forms send, and that it only ever names their own partner."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI

from console.web import FLASH_COOKIE, HOME
from loyalty_runtime.auth import Role

from .conftest import CSRF, PARTNERS, REDEMPTION, Browser, FakeServices, json_of

PARTNER = "skyair"
OWN = f"{PARTNERS}/v1/partners/{PARTNER}"
NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
SECRET = "sk_live_" + "s3cr3t" * 6
KEY_OLD = "pk_" + "a" * 24
KEY_NEW = "pk_" + "b" * 24

STATEMENT = {
    "partner_id": PARTNER, "period": "2026-11", "period_start": "2026-11-01T00:00:00Z",
    "period_end": "2026-12-01T00:00:00Z", "status": "provisional", "finalised_at": None,
    "points_issued": 12000, "points_redeemed": 3000, "breakage_points": 0,
    "lines": [{
        "contract_valid_from": "2026-01-01", "currency": "CNY", "issue_price_minor_per_point": "0.8000",
        "redemption_price_minor_per_point": "1.0000", "breakage_rebate_share": "0.5000", "points_issued": 12000,
        "issue_amount_minor": 9600, "points_redeemed": 3000, "redemption_amount_minor": 3000, "breakage_points": 0,
        "breakage_rebate_minor": 0, "net_minor": -6600,
    }],
    "totals": [{"currency": "CNY", "points_issued": 12000, "issue_amount_minor": 9600, "points_redeemed": 3000,
                "redemption_amount_minor": 3000, "breakage_points": 0, "breakage_rebate_minor": 0,
                "net_minor": -6600}],
    "gifts": "",
}  # fmt: skip


def purchase(received_at: str, outcome: str = "accepted", reason: str | None = None) -> dict[str, object]:
    return {
        "received_at": received_at, "kind": "purchase", "outcome": outcome, "reason": reason,
        "idempotency_key": "k", "purchase_id": f"p-{received_at[:10]}", "refund_id": None, "customer_ref": "c-7",
        "amount_minor": 12345, "currency": "CNY", "points": 123 if outcome == "accepted" else None,
        "event_id": None,
    }  # fmt: skip


def offer(**changes: object) -> dict[str, object]:
    return {
        "partner_id": PARTNER, "offer_id": "lounge-1", "revision": 3, "kind": "voucher", "title": "Lounge pass",
        "description": "One visit", "category": "travel", "price_points": 5000, "stock": 200,
        "valid_from": "2026-11-01T00:00:00Z", "valid_until": "2027-01-01T00:00:00Z", "fulfilment_url": None,
        "withdrawn_at": None, "updated_at": "2026-11-02T08:00:00Z", **changes,
    }  # fmt: skip


def partner(*keys: str, revoked: tuple[str, ...] = ()) -> dict[str, object]:
    rows = [{"key_id": k, "created_at": "2026-10-01T00:00:00Z", "revoked_at": None} for k in keys]
    rows += [{"key_id": k, "created_at": "2026-09-01T00:00:00Z", "revoked_at": "2026-10-02T00:00:00Z"} for k in revoked]
    return {"partner_id": PARTNER, "name": "Sky Air", "created_at": "2026-01-01T00:00:00Z", "keys": rows}


@pytest.fixture
async def staff(browser: Browser, services: FakeServices, console_app: FastAPI) -> Browser:
    """Partner staff of skyair, signed in on a console whose clock says 20 November 2026."""
    console_app.state.console.clock = lambda: NOW
    services.answer("GET", f"{OWN}/statements", STATEMENT)
    services.answer("GET", f"{OWN}/purchases", {"items": [], "next_cursor": None})
    await browser.sign_in(Role.PARTNER, "staff-1", PARTNER)
    services.calls.clear()
    return browser


def form_of(page: httpx.Response, action: str) -> dict[str, str]:
    """The hidden and text inputs of the form posting to `action`, as a browser would send them."""
    form = page.text.split(f'action="{action}"')[1].split("</form>")[0]
    return dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', form))


# --- overview ----------------------------------------------------------------------------------------------


async def test_the_overview_shows_the_months_points_money_and_recent_purchases(
    staff: Browser, services: FakeServices
) -> None:
    recent, old = "2026-11-19T09:00:00Z", "2026-10-01T09:00:00Z"
    pages = {"accepted": [purchase(recent), purchase(recent), purchase(old)], "refused": [purchase(recent, "refused")]}

    def by_outcome(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"items": pages[request.url.params["outcome"]], "next_cursor": None})

    services.on("GET", f"{OWN}/purchases", by_outcome)

    page = await staff.client.get("/portal")

    assert page.status_code == 200
    assert 'data-testid="issued">12,000' in page.text
    assert "you pay CN¥96.00" in page.text
    assert 'data-testid="redeemed">3,000' in page.text
    assert "you are paid CN¥30.00" in page.text
    assert "You owe CN¥66.00" in page.text
    assert re.search(r"<dt>Accepted</dt><dd>2<", page.text)
    assert re.search(r"<dt>Refused</dt><dd>1<", page.text)
    statement = next(c for c in services.calls if c.url.path.endswith("/statements"))
    assert statement.url.params["period"] == "2026-11"
    owed = {**STATEMENT, "totals": [{**STATEMENT["totals"][0], "net_minor": 2500}]}  # type: ignore[dict-item]
    services.answer("GET", f"{OWN}/statements", owed)
    assert "You are owed CN¥25.00" in (await staff.client.get("/portal")).text


# --- purchases ---------------------------------------------------------------------------------------------


async def test_refused_purchases_show_their_reason_and_page_to_older_ones(
    staff: Browser, services: FakeServices
) -> None:
    refused = purchase("2026-11-19T09:00:00Z", "refused", "currency USD is not the contract's CNY")
    services.answer("GET", f"{OWN}/purchases", {"items": [refused], "next_cursor": "4711"})

    page = await staff.client.get("/portal/purchases?outcome=refused")

    assert page.status_code == 200
    assert "currency USD is not the contract&#39;s CNY" in page.text
    assert "CN¥123.45" in page.text
    assert dict(services.calls[-1].url.params) == {"outcome": "refused", "limit": "50"}
    assert 'href="/portal/purchases?outcome=refused&amp;cursor=4711"' in page.text
    await staff.client.get("/portal/purchases?outcome=refused&cursor=4711")
    assert services.calls[-1].url.params["before"] == "4711"


# --- offers ------------------------------------------------------------------------------------------------

NEW_OFFER = {
    "offer_id": "summer-1", "kind": "product", "title": "Summer lounge pass", "description": "Two visits",
    "category": "travel", "price_points": "4500", "stock": "120", "valid_from": "2026-12-01T09:00",
    "valid_until": "2027-02-28T18:30", "fulfilment_url": "https://skyair.example/fulfil",
}  # fmt: skip


async def test_publishing_an_offer_sends_its_terms_in_a_put_and_shows_it(
    staff: Browser, services: FakeServices
) -> None:
    services.answer("PUT", f"{OWN}/offers/summer-1", offer(offer_id="summer-1", revision=1), 201)

    form = await staff.client.get("/portal/offers/new")
    assert form.status_code == 200
    answer = await staff.submit("/portal/offers/new", NEW_OFFER)

    assert answer.status_code == 303, answer.text[-3000:]
    assert answer.headers["location"] == "/portal/offers/summer-1"
    put = next(c for c in services.calls if c.method == "PUT")
    assert put.url.path == f"/v1/partners/{PARTNER}/offers/summer-1"
    assert json_of(put) == {
        "kind": "product", "title": "Summer lounge pass", "description": "Two visits", "category": "travel",
        "price_points": 4500, "stock": 120, "valid_from": "2026-12-01T09:00:00+00:00",
        "valid_until": "2027-02-28T18:30:00+00:00", "fulfilment_url": "https://skyair.example/fulfil",
        "tier_prices": [], "segment_prices": [], "tiers_only": [],
    }  # fmt: skip


TIERS = {"version": 2, "base_tier": "green", "tiers": [{"code": "green", "name": "Green"},
                                                       {"code": "gold", "name": "Gold"}]}  # fmt: skip


async def test_member_prices_show_a_row_per_tier_and_are_sent_with_the_offer(
    staff: Browser, services: FakeServices
) -> None:
    services.answer("GET", "http://points.test/v1/tiers", TIERS)
    services.answer("PUT", f"{OWN}/offers/summer-1", offer(offer_id="summer-1", revision=1), 201)
    form = await staff.client.get("/portal/offers/new")
    assert "Gold members pay (points)" in form.text
    assert 'name="tiers_only" value="gold"' in form.text
    assert "Green members" not in form.text, "the base tier's price is the price for everyone"

    prices = {"tier_codes": ["gold"], "tier_price_values": ["3,000"], "tiers_only": ["gold"]}
    wrong = await staff.client.post("/portal/offers/new", data={"csrf_token": staff.csrf, **NEW_OFFER, **prices})
    assert wrong.status_code == 422
    assert "Enter member prices as whole numbers of points" in wrong.text
    assert not [c for c in services.calls if c.method == "PUT"]

    prices["tier_price_values"] = ["3000"]
    answer = await staff.client.post("/portal/offers/new", data={"csrf_token": staff.csrf, **NEW_OFFER, **prices})
    assert answer.status_code == 303, answer.text[-2000:]
    put = next(c for c in services.calls if c.method == "PUT")
    assert json_of(put)["tier_prices"] == [{"tier": "gold", "price_points": 3000}]
    assert json_of(put)["tiers_only"] == ["gold"]


async def test_segment_prices_show_a_row_per_published_segment_and_are_sent_with_the_offer(
    staff: Browser, services: FakeServices
) -> None:
    flyers = "3c2b1a09-8f7e-4d6c-9b5a-493827160504"
    services.answer("GET", "http://points.test/v1/segments/published",
                    {"items": [{"segment_id": flyers, "name": "Frequent flyers", "members": 1234}]})  # fmt: skip
    services.answer("PUT", f"{OWN}/offers/summer-1", offer(offer_id="summer-1", revision=1), 201)
    form = await staff.client.get("/portal/offers/new")
    assert "Frequent flyers (1,234 members) pay (points)" in form.text
    rows = {"segment_ids": [flyers], "segment_price_values": ["3500"]}
    answer = await staff.client.post("/portal/offers/new", data={"csrf_token": staff.csrf, **NEW_OFFER, **rows})
    assert answer.status_code == 303, answer.text[-2000:]
    put = next(c for c in services.calls if c.method == "PUT")
    assert json_of(put)["segment_prices"] == [{"segment_id": flyers, "price_points": 3500}]


async def test_an_offers_member_prices_are_kept_when_the_points_service_cannot_name_the_tiers(
    staff: Browser, services: FakeServices
) -> None:
    services.answer("GET", "http://points.test/v1/tiers", {"detail": "down"}, 503)
    priced = offer(tier_prices=[{"tier": "gold", "price_points": 3000}], tiers_only=["gold"])
    services.answer("GET", f"{OWN}/offers/lounge-1", priced)
    form = await staff.client.get("/portal/offers/lounge-1")
    assert form.status_code == 200
    assert 'name="tier_codes" value="gold"' in form.text
    assert 'value="3000"' in form.text
    assert 'value="gold" checked' in form.text


async def test_a_new_offer_may_not_overwrite_an_existing_one(staff: Browser, services: FakeServices) -> None:
    services.answer("GET", f"{OWN}/offers/summer-1", offer(offer_id="summer-1"))
    answer = await staff.submit("/portal/offers/new", NEW_OFFER)
    assert answer.status_code == 409
    assert "You already have an offer with this id" in answer.text
    assert not [c for c in services.calls if c.method == "PUT"]


@pytest.mark.parametrize(
    ("status", "detail", "shown"),
    [
        (422, [{"loc": ["body", "valid_until"], "msg": "an offer must end in the future", "type": "x"}],
         "valid_until: an offer must end in the future"),
        (409, "the offer changed meanwhile; reload it", "the offer changed meanwhile; reload it"),
    ],
)  # fmt: skip
async def test_a_refused_offer_shows_the_reason_and_keeps_what_was_typed(
    staff: Browser, services: FakeServices, status: int, detail: object, shown: str
) -> None:
    services.answer("PUT", f"{OWN}/offers/summer-1", {"detail": detail}, status)
    answer = await staff.submit("/portal/offers/new", NEW_OFFER)
    assert answer.status_code == status
    assert 'class="problem" role="alert">' + shown in answer.text
    assert 'value="Summer lounge pass"' in answer.text
    assert 'value="2027-02-28T18:30"' in answer.text
    assert ">Two visits</textarea>" in answer.text


async def test_a_mistyped_number_is_refused_by_the_console_with_the_input_kept(
    staff: Browser, services: FakeServices
) -> None:
    answer = await staff.submit("/portal/offers/new", {**NEW_OFFER, "price_points": "lots"})
    assert answer.status_code == 422
    assert "Enter a whole number of points, 1 or more." in answer.text
    assert 'value="lots"' in answer.text
    assert not [c for c in services.calls if c.method == "PUT"]


async def test_revising_an_offer_puts_the_changed_terms_under_its_id(staff: Browser, services: FakeServices) -> None:
    services.answer("GET", f"{OWN}/offers/lounge-1", offer())
    services.answer("PUT", f"{OWN}/offers/lounge-1", offer(revision=4, stock=150))

    page = await staff.client.get("/portal/offers/lounge-1")
    assert 'value="2027-01-01T00:00"' in page.text
    fields = {**form_of(page, "/portal/offers/lounge-1"), "kind": "voucher", "description": "One visit", "stock": "150"}
    answer = await staff.client.post("/portal/offers/lounge-1", data=fields)

    assert answer.status_code == 303
    put = next(c for c in services.calls if c.method == "PUT")
    assert json_of(put)["stock"] == 150
    assert json_of(put)["valid_until"] == "2027-01-01T00:00:00+00:00"


async def test_the_offers_list_shows_state_stock_and_validity(staff: Browser, services: FakeServices) -> None:
    items = [offer(), offer(offer_id="old-1", title="Old pass", withdrawn_at="2026-11-03T00:00:00Z"),
             offer(offer_id="soon-1", title="Winter pass", valid_from="2026-12-01T00:00:00Z")]  # fmt: skip
    services.answer("GET", f"{OWN}/offers", {"items": items, "next_cursor": None})
    page = await staff.client.get("/portal/offers")
    rows = page.text.split("<tbody>")[1].split("<tr>")[1:]
    assert "Lounge pass" in rows[0]
    assert "badge-active" in rows[0]
    assert ">200<" in rows[0]
    assert "badge-withdrawn" in rows[1]
    assert "badge-scheduled" in rows[2]
    assert "Jan 1, 2027" in rows[0]


async def test_withdrawing_an_offer_asks_first_then_deletes_it(staff: Browser, services: FakeServices) -> None:
    services.answer("GET", f"{OWN}/offers/lounge-1", offer())
    services.on("DELETE", f"{OWN}/offers/lounge-1", lambda _r: httpx.Response(204))

    page = await staff.client.get("/portal/offers/lounge-1")
    confirm = page.text.split("<details>")[1].split("</details>")[0]
    assert "Withdraw this offer" in confirm
    assert 'action="/portal/offers/lounge-1/withdraw"' in confirm
    answer = await staff.submit("/portal/offers/lounge-1/withdraw", {})

    assert answer.status_code == 303
    assert answer.headers["location"] == "/portal/offers"
    assert [c.method for c in services.calls if c.url.path.endswith("/offers/lounge-1")] == ["GET", "DELETE"]


# --- statements ----------------------------------------------------------------------------------------------


async def test_the_statement_page_shows_lines_totals_status_and_the_months_to_pick(
    staff: Browser, services: FakeServices
) -> None:
    page = await staff.client.get("/portal/statements")
    assert page.status_code == 200
    assert "<h1>Statement for November 2026</h1>" in page.text
    assert "badge-provisional" in page.text
    assert "CN¥96.00" in page.text
    assert "50.0%" in page.text
    assert 'data-testid="net-CNY"><span class="debit">You owe CN¥66.00' in page.text
    assert 'href="/portal/statements/2026-11.csv"' in page.text
    months = re.findall(r'href="/portal/statements\?period=([0-9-]+)"', page.text)
    assert months == [f"{y}-{m:02d}" for y, m in [*((2026, m) for m in range(10, 0, -1)), (2025, 12), (2025, 11)]]

    await staff.client.get("/portal/statements?period=2026-03")
    assert services.calls[-1].url.params["period"] == "2026-03"


async def test_the_statement_csv_is_the_services_own_as_a_download(staff: Browser, services: FakeServices) -> None:
    text = "period,status,partner_id\r\n2026-10,final,skyair\r\n"
    services.on("GET", f"{OWN}/statements.csv",
                lambda _r: httpx.Response(200, text=text, headers={"content-type": "text/csv"}))  # fmt: skip

    answer = await staff.client.get("/portal/statements/2026-10.csv")

    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert answer.headers["content-disposition"] == 'attachment; filename="statement-skyair-2026-10.csv"'
    assert answer.text == text
    assert services.calls[-1].url.params["period"] == "2026-10"
    assert (await staff.client.get("/portal/statements/2026-13.csv")).status_code == 422


# --- keys ----------------------------------------------------------------------------------------------------


async def test_rotating_a_key_shows_its_secret_once_and_a_resent_form_makes_no_second_key(
    staff: Browser, services: FakeServices
) -> None:
    services.answer("GET", OWN, partner(KEY_OLD))
    services.answer("POST", f"{OWN}/keys", {"partner_id": PARTNER, "key_id": KEY_NEW, "secret": SECRET}, 201)

    keys = await staff.client.get("/portal/keys")
    rotate = form_of(keys, "/portal/keys/rotate")
    made = await staff.client.post("/portal/keys/rotate", data=rotate)

    assert made.status_code == 200
    assert f'<p class="secret" id="new-secret">{SECRET}</p>' in made.text
    assert "The secret is shown only now" in made.text
    assert FLASH_COOKIE not in made.headers.get("set-cookie", "")
    assert made.headers["cache-control"] == "no-store"
    services.answer("GET", OWN, partner(KEY_OLD, KEY_NEW))
    again = await staff.client.post("/portal/keys/rotate", data=rotate)  # the browser's reload of the result
    assert again.status_code == 409
    assert SECRET not in again.text
    assert SECRET not in (await staff.client.get("/portal/keys")).text
    assert len([c for c in services.calls if c.method == "POST"]) == 1


async def test_revoking_a_key_asks_first_then_deletes_it(staff: Browser, services: FakeServices) -> None:
    services.answer("GET", OWN, partner(KEY_OLD, KEY_NEW, revoked=("pk_" + "c" * 24,)))
    services.on("DELETE", f"{OWN}/keys/{KEY_OLD}", lambda _r: httpx.Response(204))

    page = await staff.client.get("/portal/keys")
    active = page.text.split('id="active-keys"')[1].split("</section>")[0]
    assert active.count("<details>") == 2
    assert "pk_" + "c" * 24 not in active
    answer = await staff.submit(f"/portal/keys/{KEY_OLD}/revoke", {})

    assert answer.status_code == 303
    assert answer.headers["location"] == "/portal/keys"
    assert services.calls[-1].method == "DELETE"


# --- orders --------------------------------------------------------------------------------------------------


async def test_orders_waiting_for_fulfilment_show_member_offer_quantity_and_points(
    staff: Browser, services: FakeServices
) -> None:
    order = {"order_id": "7d1f2e7a-0000-4000-8000-000000000001", "member_id": "5b0c1a2e-0000-4000-8000-00000000000a",
             "partner_id": PARTNER, "offer_id": "lounge-1", "kind": "voucher", "quantity": 2, "points": 10000,
             "state": "fulfilling", "voucher_code": None, "partner_reference": None, "cancel_reason": None,
             "created_at": "2026-11-19T08:00:00Z", "updated_at": "2026-11-19T08:00:01Z"}  # fmt: skip
    services.answer("GET", f"{REDEMPTION}/v1/orders", {"items": [order], "next_cursor": None})
    services.answer("GET", f"{OWN}/offers", {"items": [offer()], "next_cursor": None})

    page = await staff.client.get("/portal/orders")

    assert page.status_code == 200
    assert "5b0c1a2e-0000-4000-8000-00000000000a" in page.text
    assert "Lounge pass" in page.text
    assert "10,000" in page.text
    assert "To fulfil" in page.text
    listed = next(c for c in services.calls if c.url.host == "redemption.test")
    assert listed.url.params["partner_id"] == PARTNER
    assert listed.url.params["state"] == "awaiting_fulfilment"
    await staff.client.get("/portal/orders?state=all")
    assert "state" not in next(c for c in reversed(services.calls) if c.url.host == "redemption.test").url.params


# --- who may -------------------------------------------------------------------------------------------------

PORTAL_PAGES = ["/portal", "/portal/purchases", "/portal/offers", "/portal/offers/new", "/portal/statements",
                "/portal/keys", "/portal/orders", "/portal/statements/2026-10.csv"]  # fmt: skip


async def test_members_and_ops_get_403_on_every_portal_page(browser: Browser, services: FakeServices) -> None:
    for role, subject in ((Role.MEMBER, "5b0c1a2e-0000-4000-8000-00000000000a"), (Role.OPS, "ops-1")):
        signin = await browser.client.get("/signin")
        token = CSRF.search(signin.text)
        assert token
        await browser.client.post(
            "/signin/local", data={"csrf_token": token.group(1), "role": role.value, "subject": subject}
        )
        services.calls.clear()
        for path in PORTAL_PAGES:
            answer = await browser.client.get(path)
            assert answer.status_code == 403, (role, path)
        assert f'href="{HOME[role]}"' in answer.text  # the page points to the person's own area
        found = CSRF.search(answer.text)
        assert found
        for path in ("/portal/offers/new", "/portal/keys/rotate", f"/portal/keys/{KEY_OLD}/revoke"):
            answer = await browser.client.post(path, data={"csrf_token": found.group(1), **NEW_OFFER})
            assert answer.status_code == 403, (role, path)
        assert services.calls == [], "the console asked a service before refusing"


async def test_the_console_only_ever_names_the_staffs_own_partner(staff: Browser, services: FakeServices) -> None:
    services.answer("GET", OWN, partner(KEY_OLD))
    services.answer("GET", f"{REDEMPTION}/v1/orders", {"items": [], "next_cursor": None})
    services.answer("GET", f"{OWN}/offers", {"items": [], "next_cursor": None})
    services.answer("PUT", f"{OWN}/offers/summer-1", offer(offer_id="summer-1", revision=1), 201)

    await staff.client.get("/portal/orders?partner_id=evilair")
    await staff.client.get("/portal/keys?partner_id=evilair")
    await staff.client.get("/portal/statements?partner_id=evilair")
    await staff.submit("/portal/offers/new", {**NEW_OFFER, "partner_id": "evilair"})
    await staff.client.get("/portal/offers/..%2F..%2Fevilair")

    assert services.calls
    for call in services.calls:
        if call.url.host == "partners.test":
            assert call.url.path.startswith(f"/v1/partners/{PARTNER}"), call.url
        else:
            assert call.url.params["partner_id"] == PARTNER
    assert set(services.bearer_subjects()) == {("partner", "staff-1")}
