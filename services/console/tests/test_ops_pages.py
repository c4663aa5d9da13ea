"""The ops console's pages: dashboard, members, partners, card rates, settlement, dead letters and expiry."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest

from loyalty_runtime.auth import Role

from .conftest import PARTNERS, POINTS, REDEMPTION, Browser, FakeServices, json_of

MEMBER = "6f1c1f9e-8f5e-4e3b-9a51-2b7f3c1d0a11"
FRIEND = "0d7a4b7e-2a55-4d8c-8a67-5b1f4f1e9c22"
NOW = "2026-11-14T08:30:00Z"
SUMMARY = {
    "as_of": NOW,
    "members": {"total": 12345, "new_today": 17, "new_this_month": 420},
    "points": {
        "issued_today": 1500,
        "issued_this_month": 98765,
        "redeemed_today": 300,
        "redeemed_this_month": 4321,
        "expired_today": 0,
        "expired_this_month": 77,
        "outstanding": 2500000,
    },
}
CONTRACT = {
    "partner_id": "skyair",
    "valid_from": "2026-01-01",
    "currency": "CNY",
    "points_per_unit": "1.5",
    "category_rates": {"books": "2"},
    "issue_price_minor_per_point": "0.8",
    "redemption_price_minor_per_point": "0.6",
    "breakage_rebate_share": "0.25",
}
TOTALS = {
    "currency": "CNY",
    "points_issued": 1000,
    "issue_amount_minor": 80000,
    "points_redeemed": 200,
    "redemption_amount_minor": 12000,
    "breakage_points": 10,
    "breakage_rebate_minor": 200,
    "net_minor": -67800,
}
LINE = {
    **{k: v for k, v in TOTALS.items()},
    "contract_valid_from": "2026-01-01",
    "issue_price_minor_per_point": "0.8",
    "redemption_price_minor_per_point": "0.6",
    "breakage_rebate_share": "0.25",
}
STATEMENT = {
    "partner_id": "skyair",
    "period": "2026-10",
    "period_start": "2026-10-01T00:00:00Z",
    "period_end": "2026-11-01T00:00:00Z",
    "status": "provisional",
    "finalised_at": None,
    "points_issued": 1000,
    "points_redeemed": 200,
    "breakage_points": 10,
    "lines": [LINE],
    "totals": [TOTALS],
    "gifts": "",
}


def down(_request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused")


def quiet_services(services: FakeServices) -> None:
    """Every service answers the dashboard: no dead letters, no lag."""
    services.answer("GET", f"{POINTS}/v1/ops/summary", SUMMARY)
    for base in (POINTS, PARTNERS, REDEMPTION):
        services.answer("GET", f"{base}/v1/ops/dead-letters/summary", {"service": base, "topics": []})
        services.answer("GET", f"{base}/v1/ops/consumers", {"as_of": NOW, "groups": []})


@pytest.fixture
async def ops(browser: Browser, services: FakeServices) -> Browser:
    quiet_services(services)
    await browser.sign_in(Role.OPS, "ops-1", display="Olivia Chen")
    assert browser.csrf
    services.calls.clear()
    return browser


def sent(services: FakeServices, method: str, url: str) -> list[httpx.Request]:
    return [c for c in services.calls if c.method == method and f"{c.url.scheme}://{c.url.host}{c.url.path}" == url]


# --- dashboard ---------------------------------------------------------------------------------------------


async def test_the_dashboard_shows_members_points_dead_letters_and_lag(ops: Browser, services: FakeServices) -> None:
    services.answer(
        "GET",
        f"{PARTNERS}/v1/ops/dead-letters/summary",
        {
            "service": "partners",
            "topics": [{"topic": "loyalty.ledger-transfers.v1", "total": 5, "waiting": 3, "newest": NOW}],
        },
    )
    services.answer(
        "GET",
        f"{REDEMPTION}/v1/ops/consumers",
        {
            "as_of": NOW,
            "groups": [
                {"group_id": "redemption", "topic": "loyalty.holds.v1", "partitions": [], "lag": 1200},
                {"group_id": "redemption", "topic": "loyalty.fulfilment.v1", "partitions": [], "lag": 34},
            ],
        },
    )
    page = await ops.client.get("/ops")
    assert page.status_code == 200
    assert "12,345" in page.text
    assert "420" in page.text
    assert 'data-figure="issued-month">98,765<' in page.text
    assert 'data-figure="redeemed-today">300<' in page.text
    assert 'data-figure="expired-month">77<' in page.text
    assert "2,500,000" in page.text
    assert 'data-figure="partners-waiting">3 waiting' in page.text
    assert 'data-figure="redemption-lag">1,234 records behind' in page.text
    assert 'hx-get="/ops/dashboard" hx-trigger="every 10s"' in page.text
    assert set(services.bearer_subjects()) == {("ops", "ops-1")}


async def test_a_service_that_is_down_shows_its_tile_unavailable_and_the_rest_renders(
    ops: Browser, services: FakeServices
) -> None:
    services.on("GET", f"{PARTNERS}/v1/ops/dead-letters/summary", down)
    services.on("GET", f"{PARTNERS}/v1/ops/consumers", down)
    services.answer("GET", f"{POINTS}/v1/ops/summary", {"detail": "database busy"}, 503)
    for path in ("/ops", "/ops/dashboard"):
        page = await ops.client.get(path, headers={"hx-request": "true"} if path != "/ops" else {})
        assert page.status_code == 200
        partners_tile = page.text.split('data-tile="partners"')[1].split("</section>")[0]
        assert partners_tile.count('data-state="unavailable"') == 2
        assert "partners is not reachable" in partners_tile
        points_tile = page.text.split('data-tile="points"')[1].split("</section>")[0]
        assert "database busy" in points_tile
        assert 'data-figure="redemption-lag">0 records behind' in page.text
    assert "<html" not in page.text  # the refresh is the figures alone


# --- members -----------------------------------------------------------------------------------------------

HIT = {
    "member_id": MEMBER,
    "display_name": "Li Na",
    "created_at": NOW,
    "available": 4200,
    "identifiers": ["card:tok_abcdef123", "partner:skyair:FF-9"],
}


async def test_member_search_sends_what_ops_typed_and_htmx_gets_the_results_alone(
    ops: Browser, services: FakeServices
) -> None:
    services.answer("GET", f"{POINTS}/v1/ops/members", {"items": [HIT]})
    page = await ops.client.get("/ops/members", params={"q": " tok_abcdef123 "})
    assert page.status_code == 200
    assert f'href="/ops/members/{MEMBER}">Li Na<' in page.text
    assert "4,200" in page.text
    assert "partner:skyair:FF-9" in page.text
    assert 'hx-get="/ops/members/search"' in page.text
    assert 'type="submit"' in page.text
    assert sent(services, "GET", f"{POINTS}/v1/ops/members")[-1].url.params["q"] == "tok_abcdef123"
    fragment = await ops.client.get("/ops/members/search", params={"q": "nobody"}, headers={"hx-request": "true"})
    assert "<html" not in fragment.text
    assert "Li Na" in fragment.text
    services.answer("GET", f"{POINTS}/v1/ops/members", {"items": []})
    none = await ops.client.get("/ops/members/search", params={"q": "nobody"})
    assert "No member matches “nobody”." in none.text


def member_services(services: FakeServices) -> None:
    base = f"{POINTS}/v1/members/{MEMBER}"
    services.answer(
        "GET",
        base,
        {
            "member_id": MEMBER,
            "display_name": "Li Na",
            "created_at": "2026-01-02T03:04:05Z",
            "identifiers": [{"identifier": "card:tok_abcdef123", "linked_at": NOW}],
        },
    )
    services.answer(
        "GET",
        f"{base}/balance",
        {
            "member_id": MEMBER,
            "posted": 5000,
            "pending": 800,
            "available": 4200,
            "owed": 0,
            "expiring_soon": 0,
            "expiring_within_days": 30,
            "next_expiry_at": None,
            "next_expiry_points": 0,
        },
    )
    services.answer(
        "GET",
        f"{base}/lots",
        {
            "items": [
                {
                    "lot_id": str(uuid.uuid4()),
                    "amount": 3000,
                    "remaining": 2500,
                    "earned_at": NOW,
                    "expires_at": "2028-11-14T08:30:00Z",
                }
            ],
            "next_cursor": None,
        },
    )
    entry = {
        "seq": 1,
        "kind": "transfer",
        "transfer_id": str(uuid.uuid4()),
        "cause_event_id": None,
        "occurred_at": NOW,
        "posted_at": NOW,
        "expires_at": None,
        "counterparty": "partner:skyair:issued",
    }
    services.answer(
        "GET",
        f"{base}/history",
        {
            "items": [
                {
                    **entry,
                    "seq": 3,
                    "direction": "credit",
                    "amount": 150,
                    "reason": "bonus_multiplier",
                    "counterparty": "activity:a1:budget",
                    "memo": {"activity_id": "a1", "activity": "Double points week"},
                },
                {**entry, "seq": 2, "direction": "credit", "amount": 1500, "reason": "partner_purchase", "memo": {}},
                {
                    **entry,
                    "seq": 1,
                    "kind": "identifier",
                    "transfer_id": None,
                    "direction": None,
                    "amount": 0,
                    "counterparty": None,
                    "reason": "identifier_linked",
                    "memo": {},
                    "identifier": "card:tok_abcdef123",
                    "actor": "ops-1",
                },
            ],
            "next_cursor": "c2",
        },
    )
    services.answer(
        "GET",
        f"{base}/gifts",
        {
            "items": [
                {
                    "gift_id": str(uuid.uuid4()),
                    "direction": "sent",
                    "counterparty_member_id": FRIEND,
                    "points": 250,
                    "message": "Happy birthday",
                    "at": NOW,
                }
            ]
        },
    )
    services.answer(
        "GET",
        f"{REDEMPTION}/v1/orders",
        {
            "items": [
                {
                    "order_id": str(uuid.uuid4()),
                    "member_id": MEMBER,
                    "partner_id": "skyair",
                    "offer_id": "lounge-pass",
                    "kind": "voucher",
                    "quantity": 1,
                    "points": 800,
                    "state": "fulfilling",
                    "voucher_code": None,
                    "partner_reference": None,
                    "cancel_reason": None,
                    "created_at": NOW,
                    "updated_at": NOW,
                }
            ],
            "next_cursor": None,
        },
    )


async def test_a_members_page_shows_balance_lots_history_identifiers_orders_gifts_and_grants(
    ops: Browser, services: FakeServices
) -> None:
    member_services(services)
    page = await ops.client.get(f"/ops/members/{MEMBER}")
    assert page.status_code == 200
    text = page.text
    assert "<h1>Li Na</h1>" in text
    assert "4,200" in text
    assert "800" in text
    assert "Purchase with a partner" in text
    assert "+1,500" in text
    assert "Identifier linked" in text
    grants = text.split('id="grants-title"')[1].split("</section>")[0]
    assert "Double points week" in grants
    assert "Bonus: points multiplier" in grants
    assert "+150" in grants
    assert "lounge-pass" in text
    assert "badge-fulfilling" in text
    assert "Happy birthday" in text
    assert f'href="/ops/members/{FRIEND}"' in text
    assert "−250" in text
    assert "2,500" in text  # the lot's points left
    assert f"/ops/members/{MEMBER}/unlink?identifier=card%3Atok_abcdef123" in text
    assert f"/ops/members/{MEMBER}?cursor=c2" in text
    assert sent(services, "GET", f"{REDEMPTION}/v1/orders")[-1].url.params["member_id"] == MEMBER


async def test_a_members_page_without_the_redemption_service_still_shows_the_rest(
    ops: Browser, services: FakeServices
) -> None:
    member_services(services)
    services.on("GET", f"{REDEMPTION}/v1/orders", down)
    page = await ops.client.get(f"/ops/members/{MEMBER}")
    assert page.status_code == 200
    assert "redemption is not reachable" in page.text.split('id="orders-title"')[1]
    assert "4,200" in page.text


async def test_registering_a_member_sends_its_id_and_name_and_opens_its_page(
    ops: Browser, services: FakeServices
) -> None:
    services.answer("POST", f"{POINTS}/v1/members", {"member_id": MEMBER, "created": True}, 201)
    answer = await ops.submit("/ops/members", {"member_id": MEMBER, "display_name": " Li Na "})
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/ops/members/{MEMBER}"
    assert json_of(sent(services, "POST", f"{POINTS}/v1/members")[-1]) == {"member_id": MEMBER, "display_name": "Li Na"}
    services.answer("POST", f"{POINTS}/v1/members", {"detail": "member_id: Input should be a valid UUID"}, 422)
    refused = await ops.submit("/ops/members", {"member_id": "not-a-uuid", "display_name": "Wang Fang"})
    assert refused.status_code == 422
    assert "Input should be a valid UUID" in refused.text
    assert 'value="not-a-uuid"' in refused.text
    assert 'value="Wang Fang"' in refused.text


async def test_ops_link_a_card_without_a_code_and_a_refusal_keeps_the_input(
    ops: Browser, services: FakeServices
) -> None:
    member_services(services)
    url = f"{POINTS}/v1/members/{MEMBER}/identifiers"
    services.answer("POST", url, {"identifier": "card:tok_zzzzzzzz9", "claimed_points": 300}, 201)
    answer = await ops.submit(f"/ops/members/{MEMBER}/identifiers", {"kind": "card", "card_token": "tok_zzzzzzzz9"})
    assert answer.status_code == 303
    assert json_of(sent(services, "POST", url)[-1]) == {"kind": "card", "card_token": "tok_zzzzzzzz9"}
    services.answer("POST", url, {"detail": "partner:skyair:FF-1 is linked to another member"}, 409)
    form = {"kind": "partner", "partner_id": "skyair", "customer_ref": "FF-1"}
    refused = await ops.submit(f"/ops/members/{MEMBER}/identifiers", form)
    assert refused.status_code == 409
    assert "is linked to another member" in refused.text
    assert 'value="FF-1"' in refused.text
    assert json_of(sent(services, "POST", url)[-1]) == {
        "kind": "partner",
        "partner_id": "skyair",
        "customer_ref": "FF-1",
    }


async def test_unlinking_asks_first_then_deletes_that_identifier(ops: Browser, services: FakeServices) -> None:
    member_services(services)
    confirm = await ops.client.get(f"/ops/members/{MEMBER}/unlink", params={"identifier": "partner:skyair:FF/9"})
    assert confirm.status_code == 200
    assert ">Unlink</button>" in confirm.text
    assert not [c for c in services.calls if c.method == "DELETE"]
    path = f"{POINTS}/v1/members/{MEMBER}/identifiers/partner/skyair/FF/9"
    services.answer("DELETE", path, {"identifier": "partner:skyair:FF/9", "unlinked_at": NOW})
    answer = await ops.submit(f"/ops/members/{MEMBER}/unlink", {"identifier": "partner:skyair:FF/9"})
    assert answer.status_code == 303
    deleted = sent(services, "DELETE", path)
    assert deleted
    assert deleted[-1].url.raw_path.endswith(b"/partner/skyair/FF%2F9")


# --- partners ----------------------------------------------------------------------------------------------

NEW_PARTNER = {
    "partner_id": "skyair",
    "name": "Sky Air",
    "valid_from": "2026-12-01",
    "currency": "cny",
    "points_per_unit": "1.5",
    "category_rates": "books = 2\r\n\r\nflights=0.5",
    "issue_price_minor_per_point": "0.8",
    "redemption_price_minor_per_point": "0.6",
    "breakage_rebate_share": "0.25",
}


async def test_registering_a_partner_sends_its_first_contract_and_shows_the_secret_once(
    ops: Browser, services: FakeServices
) -> None:
    secret = "s3cr3t-" + uuid.uuid4().hex
    services.answer("POST", f"{PARTNERS}/v1/partners", {"partner_id": "skyair", "key_id": "k1", "secret": secret}, 201)
    page = await ops.submit("/ops/partners", NEW_PARTNER)
    assert page.status_code == 201
    assert page.text.count(secret) == 1
    assert f'<p class="secret" id="api-secret">{secret}</p>' in page.text
    assert page.headers["cache-control"] == "no-store"
    assert json_of(sent(services, "POST", f"{PARTNERS}/v1/partners")[-1]) == {
        "partner_id": "skyair",
        "name": "Sky Air",
        "contract": {
            "valid_from": "2026-12-01",
            "currency": "CNY",
            "points_per_unit": "1.5",
            "category_rates": {"books": "2", "flights": "0.5"},
            "issue_price_minor_per_point": "0.8",
            "redemption_price_minor_per_point": "0.6",
            "breakage_rebate_share": "0.25",
        },
    }


async def test_a_refused_registration_shows_the_reason_and_keeps_the_input(
    ops: Browser, services: FakeServices
) -> None:
    services.answer("POST", f"{PARTNERS}/v1/partners", {"detail": "partner skyair exists"}, 409)
    page = await ops.submit("/ops/partners", NEW_PARTNER)
    assert page.status_code == 409
    assert "partner skyair exists" in page.text
    assert 'value="Sky Air"' in page.text
    assert "books = 2" in page.text
    bad = await ops.submit("/ops/partners", {**NEW_PARTNER, "category_rates": "books 2"})
    assert bad.status_code == 422
    assert "Category rates, line 1" in bad.text
    assert len(sent(services, "POST", f"{PARTNERS}/v1/partners")) == 1  # the malformed one never left the console


async def test_a_partners_page_shows_contracts_keys_fulfilment_key_and_this_months_statement(
    ops: Browser, services: FakeServices
) -> None:
    services.answer(
        "GET",
        f"{PARTNERS}/v1/partners/skyair",
        {
            "partner_id": "skyair",
            "name": "Sky Air",
            "created_at": NOW,
            "keys": [{"key_id": "k1", "created_at": NOW, "revoked_at": None}],
        },
    )
    services.answer("GET", f"{PARTNERS}/v1/partners/skyair/contracts", [CONTRACT])
    services.answer("GET", f"{PARTNERS}/v1/partners/skyair/statements", STATEMENT)
    services.answer("GET", f"{REDEMPTION}/v1/ops/fulfilment-keys/skyair", {"detail": "no key yet"}, 404)
    page = await ops.client.get("/ops/partners/skyair")
    assert page.status_code == 200
    assert "<h1>Sky Air</h1>" in page.text
    assert "books = 2" in page.text
    assert "25.0%" in page.text
    assert ">k1<" in page.text
    assert "No fulfilment key yet" in page.text
    assert "-CN¥678.00" in page.text  # net of this month's statement
    assert 'href="/ops/partners/skyair/contracts/new"' in page.text
    services.answer("POST", f"{PARTNERS}/v1/partners/skyair/contracts", {**CONTRACT, "valid_from": "2027-01-01"}, 201)
    added = await ops.submit("/ops/partners/skyair/contracts", {**NEW_PARTNER, "valid_from": "2027-01-01"})
    assert added.status_code == 303
    assert added.headers["location"] == "/ops/partners/skyair"
    assert json_of(sent(services, "POST", f"{PARTNERS}/v1/partners/skyair/contracts")[-1])["valid_from"] == "2027-01-01"


async def test_issuing_a_fulfilment_key_shows_its_secret_once(ops: Browser, services: FakeServices) -> None:
    services.answer(
        "POST",
        f"{REDEMPTION}/v1/ops/fulfilment-keys/skyair",
        {
            "key_id": "fk-2",
            "version": 2,
            "issued": True,
            "created_at": NOW,
            "active_from": NOW,
            "partner_id": "skyair",
            "secret": "fulfil-secret-1",
            "signing_until_then": "fk-1",
        },
        201,
    )
    page = await ops.submit("/ops/partners/skyair/fulfilment-key", {"grace_seconds": "600"})
    assert page.status_code == 201
    assert page.text.count("fulfil-secret-1") == 1
    assert 'class="secret"' in page.text
    assert json_of(sent(services, "POST", f"{REDEMPTION}/v1/ops/fulfilment-keys/skyair")[-1]) == {"grace_seconds": 600}


# --- programme ---------------------------------------------------------------------------------------------


async def test_a_card_rate_is_sent_with_its_start_in_the_display_time_zone(
    ops: Browser, services: FakeServices
) -> None:
    url = f"{POINTS}/v1/ops/card-earn-rates"
    services.answer("GET", url, [{"mcc": "*", "valid_from": "2026-01-01T00:00:00Z", "points_per_unit": "1"}])
    page = await ops.client.get("/ops/card-rates")
    assert "Default (any category)" in page.text
    services.answer("POST", url, {"mcc": "5411", "valid_from": "2026-12-01T00:00:00Z", "points_per_unit": "2"}, 201)
    answer = await ops.submit(
        "/ops/card-rates", {"mcc": "5411", "valid_from": "2026-12-01T00:00", "points_per_unit": "2"}
    )
    assert answer.status_code == 303
    assert json_of(sent(services, "POST", url)[-1]) == {
        "mcc": "5411",
        "valid_from": "2026-12-01T00:00:00+00:00",
        "points_per_unit": "2",
    }
    services.answer("POST", url, {"detail": "a rate for this category already starts at that time"}, 409)
    refused = await ops.submit(
        "/ops/card-rates", {"mcc": "5411", "valid_from": "2026-12-01T00:00", "points_per_unit": "3"}
    )
    assert refused.status_code == 409
    assert "already starts at that time" in refused.text
    assert 'value="3"' in refused.text


def statements_answer(status: str = "provisional") -> dict[str, object]:
    return {
        "period": "2026-10",
        "period_start": "2026-10-01T00:00:00Z",
        "period_end": "2026-11-01T00:00:00Z",
        "status": status,
        "finalised_at": None,
        "finalised_by": None,
        "forced": None,
        "programme": {
            "partners": 1,
            "points_issued": 1000,
            "points_redeemed": 200,
            "breakage_points": 10,
            "gifted_points": 55,
            "totals": [TOTALS],
        },
        "statements": [STATEMENT],
    }


async def test_settlement_shows_the_totals_and_each_partners_lines_and_downloads_the_csv(
    ops: Browser, services: FakeServices
) -> None:
    services.answer("GET", f"{PARTNERS}/v1/ops/statements", statements_answer())
    page = await ops.client.get("/ops/settlement", params={"period": "2026-10"})
    assert page.status_code == 200
    assert "October 2026" in page.text
    assert "badge-provisional" in page.text
    assert "CN¥800.00" in page.text
    assert "-CN¥678.00" in page.text
    assert ">55<" in page.text
    assert ">Finalise month</button>" in page.text
    assert sent(services, "GET", f"{PARTNERS}/v1/ops/statements")[-1].url.params["period"] == "2026-10"
    services.on("GET", f"{PARTNERS}/v1/ops/statements.csv", lambda _r: httpx.Response(200, text="period,status\r\n"))
    csv = await ops.client.get("/ops/settlement.csv", params={"period": "2026-10"})
    assert csv.status_code == 200
    assert csv.text == "period,status\r\n"
    assert csv.headers["content-type"].startswith("text/csv")
    assert 'filename="statements-2026-10.csv"' in csv.headers["content-disposition"]


async def test_a_refused_finalisation_shows_the_services_reason(ops: Browser, services: FakeServices) -> None:
    services.answer("GET", f"{PARTNERS}/v1/ops/statements", statements_answer())
    reason = "period 2026-10 cannot be finalised yet: partition 2 has not reached the watermark"
    services.answer("POST", f"{PARTNERS}/v1/ops/settlement-runs", {"detail": reason}, 409)
    page = await ops.submit("/ops/settlement/finalise", {"period": "2026-10", "force": "true"})
    assert page.status_code == 409
    assert reason in page.text
    assert '<option value="true" selected>' in page.text  # the choice is kept
    assert json_of(sent(services, "POST", f"{PARTNERS}/v1/ops/settlement-runs")[-1]) == {
        "period": "2026-10",
        "force": True,
    }
    services.answer("POST", f"{PARTNERS}/v1/ops/settlement-runs", statements_answer("final"), 201)
    done = await ops.submit("/ops/settlement/finalise", {"period": "2026-10", "force": "false"})
    assert done.status_code == 303
    assert done.headers["location"] == "/ops/settlement?period=2026-10"


LETTER = {
    "id": "redemption:12",
    "number": 12,
    "service": "redemption",
    "topic": "loyalty.holds.v1",
    "partition": 1,
    "offset": 99,
    "key": "m1",
    "event_id": str(uuid.uuid4()),
    "event_type": "HoldRejected",
    "reason": "unknown order",
    "error_class": "OrderNotFound",
    "dead_at": NOW,
    "replays": 0,
    "last_replayed_at": None,
}


async def test_dead_letters_are_listed_filtered_and_replayed_at_the_chosen_service(
    ops: Browser, services: FakeServices
) -> None:
    base = f"{REDEMPTION}/v1/ops/dead-letters"
    services.answer("GET", base, {"items": [LETTER], "next_before": None})
    page = await ops.client.get("/ops/dead-letters", params={"service": "redemption", "reason": "unknown"})
    assert page.status_code == 200
    assert 'href="/ops/dead-letters/redemption/12"' in page.text
    assert sent(services, "GET", base)[-1].url.params["reason"] == "unknown"
    services.answer(
        "GET",
        f"{base}/12",
        {**LETTER, "value": '{"order": 1}', "value_encoding": "utf-8", "headers": {"dlq-reason": "unknown order"}},
    )
    detail = await ops.client.get("/ops/dead-letters/redemption/12")
    assert "&#34;order&#34;: 1" in detail.text
    assert "dlq-reason" in detail.text
    confirm = await ops.client.get("/ops/dead-letters/redemption/12/replay")
    assert ">Replay dead letter</button>" in confirm.text
    services.answer("POST", f"{base}/12/replay", {"replayed": ["redemption:12"]}, 202)
    answer = await ops.submit("/ops/dead-letters/redemption/12/replay", {})
    assert answer.status_code == 303
    services.answer("POST", f"{base}/replay", {"replayed": ["redemption:12", "redemption:13"]}, 202)
    topic = await ops.client.get("/ops/dead-letters/redemption/replay", params={"topic": "loyalty.holds.v1"})
    assert ">Replay topic</button>" in topic.text
    answer = await ops.submit("/ops/dead-letters/redemption/replay", {"topic": "loyalty.holds.v1"})
    assert answer.status_code == 303
    assert json_of(sent(services, "POST", f"{base}/replay")[-1]) == {"topic": "loyalty.holds.v1"}
    replays = [c for c in services.calls if c.method == "POST"]
    assert {c.url.host for c in replays} == {"redemption.test"}


async def test_an_expiry_run_is_asked_for_and_its_outcome_shown(ops: Browser, services: FakeServices) -> None:
    url = f"{POINTS}/v1/ops/expiry-runs"
    services.answer(
        "GET",
        url,
        {
            "items": [
                {
                    "run_id": 1,
                    "started_at": NOW,
                    "finished_at": NOW,
                    "lots_expired": 4,
                    "points_expired": 900,
                    "requested_by": "scheduler",
                }
            ]
        },
    )
    services.answer("POST", url, {"lots_expired": 2, "points_expired": 350})
    answer = await ops.submit("/ops/expiry", {})
    assert answer.status_code == 303
    page = await ops.client.get(answer.headers["location"])
    assert "2 lots expired, 350 points" in page.text
    assert "The schedule" in page.text
    assert "900" in page.text


# --- who may ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("role", "partner_id"), [(Role.MEMBER, ""), (Role.PARTNER, "skyair")])
async def test_members_and_partner_staff_get_403_from_the_ops_console(
    browser: Browser, services: FakeServices, role: Role, partner_id: str
) -> None:
    subject = MEMBER if role is Role.MEMBER else "staff-1"
    await browser.sign_in(role, subject, partner_id)
    services.calls.clear()
    for path in (
        "/ops",
        "/ops/dashboard",
        "/ops/members",
        f"/ops/members/{MEMBER}",
        "/ops/partners/skyair",
        "/ops/settlement",
        "/ops/dead-letters",
        "/ops/expiry",
    ):
        assert (await browser.client.get(path)).status_code == 403, path
    refused = await browser.submit("/ops/partners", NEW_PARTNER)
    assert refused.status_code == 403
    assert not services.calls  # nothing reached a service


INPUT = re.compile(r"<(input|select|textarea)\b([^>]*)>")


def unlabelled_fields(html: str) -> list[str]:
    """Form fields (but hidden ones) without a <label for=...> naming their id."""
    labels = set(re.findall(r'<label for="([^"]+)"', html))
    missing = []
    for _tag, attrs in INPUT.findall(html):
        if 'type="hidden"' in attrs:
            continue
        found = re.search(r'id="([^"]+)"', attrs)
        if not found or found.group(1) not in labels:
            missing.append(attrs.strip())
    return missing


async def test_every_ops_page_renders_with_its_fields_labelled(ops: Browser, services: FakeServices) -> None:
    member_services(services)
    services.answer(
        "GET",
        f"{PARTNERS}/v1/partners",
        [{"partner_id": "skyair", "name": "Sky Air", "created_at": NOW, "contract": CONTRACT, "active_keys": 1}],
    )
    services.answer(
        "GET",
        f"{PARTNERS}/v1/partners/skyair",
        {"partner_id": "skyair", "name": "Sky Air", "created_at": NOW, "keys": []},
    )
    services.answer("GET", f"{PARTNERS}/v1/partners/skyair/contracts", [])
    services.answer("GET", f"{PARTNERS}/v1/partners/skyair/statements", {"detail": "no contract on 2026-11-02"}, 409)
    services.answer(
        "GET",
        f"{REDEMPTION}/v1/ops/fulfilment-keys/skyair",
        {
            "partner_id": "skyair",
            "current_key_id": "fk-1",
            "keys": [{"key_id": "fk-1", "version": 1, "issued": False, "created_at": NOW, "active_from": NOW}],
        },
    )
    services.answer("GET", f"{POINTS}/v1/ops/card-earn-rates", [])
    services.answer("GET", f"{PARTNERS}/v1/ops/statements", {"detail": "partner 'skyair' has points posted"}, 409)
    services.answer("GET", f"{POINTS}/v1/ops/expiry-runs", {"items": []})
    services.answer(
        "GET",
        f"{POINTS}/v1/ops/dead-letters/summary",
        {"service": "points", "topics": [{"topic": "loyalty.purchases.v1", "total": 2, "waiting": 1, "newest": NOW}]},
    )
    services.answer("GET", f"{POINTS}/v1/ops/dead-letters", {"items": [], "next_before": None})
    pages = [
        "/ops",
        "/ops/members",
        "/ops/members/new",
        f"/ops/members/{MEMBER}",
        f"/ops/members/{MEMBER}/link",
        "/ops/partners",
        "/ops/partners/new",
        "/ops/partners/skyair",
        "/ops/partners/skyair/contracts/new",
        "/ops/card-rates",
        "/ops/settlement?period=2026-10",
        "/ops/dead-letters",
        "/ops/expiry",
    ]
    for path in pages:
        page = await ops.client.get(path)
        assert page.status_code == 200, path
        assert page.text.count("<h1>") == 1, path
        assert unlabelled_fields(page.text) == [], path
        assert " style=" not in page.text, path
        assert "<script>" not in page.text, path
    partner = await ops.client.get("/ops/partners/skyair")
    assert "Signing now: fk-1" in partner.text
    assert "no contract on 2026-11-02" in partner.text
    settlement = await ops.client.get("/ops/settlement?period=2026-10")
    assert "partner &#39;skyair&#39; has points posted" in settlement.text
    assert "Finalise month" in settlement.text
    chinese = await ops.client.get("/ops/members", headers={"accept-language": "zh-CN"})
    assert chinese.status_code == 200
