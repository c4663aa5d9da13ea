"""The member wallet's pages: what they show, what their forms send, and what a refusal looks like."""

from __future__ import annotations

import html
import re
import uuid
from typing import Any

import httpx
import pytest

from loyalty_runtime.auth import Role

from .conftest import POINTS, REDEMPTION, Browser, FakeServices, json_of

MEMBER = "5b0c7a52-3f0e-4d8a-9a51-6f1d2e3c4b5a"
FRIEND = "9e8d7c6b-5a49-4382-8170-6f5e4d3c2b1a"
ORDER = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
ACTIVITY = "3c2b1a09-8f7e-4d6c-9b5a-493827160504"
BALANCE = {"member_id": MEMBER, "posted": 14345, "pending": 2000, "available": 12345, "owed": 50,
           "expiring_soon": 700, "expiring_within_days": 30, "next_expiry_at": "2026-03-01T08:00:00Z",
           "next_expiry_points": 1500}  # fmt: skip
LOT = {"lot_id": str(uuid.uuid4()), "amount": 2500, "remaining": 1500, "earned_at": "2025-03-01T08:00:00Z",
       "expires_at": "2026-03-01T08:00:00Z"}  # fmt: skip
OFFER = {"partner_id": "skyair", "offer_id": "lounge-pass", "revision": 1, "kind": "voucher", "title": "Lounge pass",
         "description": "One visit to the lounge.", "category": "travel", "price_points": 4000, "stock": 50,
         "available": 7, "valid_from": "2026-01-01T00:00:00Z", "valid_until": "2026-12-31T00:00:00Z",
         "status": "on_sale"}  # fmt: skip
KEY = re.compile(r'name="idempotency_key" value="([^"]+)"')


def entry(reason: str, direction: str | None, amount: int, counterparty: str | None = None, **memo: Any) -> dict:
    kind = "identifier" if reason.startswith("identifier_") else "transfer"
    return {"seq": 1, "kind": kind, "transfer_id": None, "direction": direction, "amount": amount,
            "counterparty": counterparty, "reason": reason, "cause_event_id": None,
            "occurred_at": "2026-02-03T10:00:00Z", "posted_at": "2026-02-03T10:00:00Z", "expires_at": None,
            "memo": memo, "identifier": "card:tok_12345678" if kind == "identifier" else None,
            "actor": None}  # fmt: skip


def order(state: str, voucher: str | None = None, cancel_reason: str | None = None) -> dict:
    return {"order_id": ORDER, "member_id": MEMBER, "partner_id": "skyair", "offer_id": "lounge-pass",
            "kind": "voucher", "quantity": 2, "points": 8000, "state": state, "voucher_code": voucher,
            "partner_reference": None, "cancel_reason": cancel_reason, "created_at": "2026-02-03T10:00:00Z",
            "updated_at": "2026-02-03T10:00:01Z"}  # fmt: skip


@pytest.fixture
async def member(browser: Browser, services: FakeServices) -> Browser:
    services.answer("GET", f"{POINTS}/v1/members/me/balance", BALANCE)
    services.answer("GET", f"{POINTS}/v1/members/me/lots", {"items": [LOT], "next_cursor": None})
    services.answer("GET", f"{POINTS}/v1/members/me/history", {"items": [], "next_cursor": None})
    await browser.sign_in(Role.MEMBER, MEMBER)
    return browser


def sent(services: FakeServices, method: str, url: str) -> list[httpx.Request]:
    return [c for c in services.calls if c.method == method and str(c.url).split("?")[0] == url]


async def test_the_wallet_shows_the_balance_the_next_expiry_and_the_latest_movements(
    member: Browser, services: FakeServices
) -> None:
    services.answer("GET", f"{POINTS}/v1/members/me/history", {"items": [
        entry("partner_purchase", "credit", 1200, "partner:skyair:issued", partner_id="skyair", purchase_id="P-77",
              amount_minor=12000, currency="CNY"),
    ], "next_cursor": None})  # fmt: skip
    page = await member.client.get("/wallet")
    assert page.status_code == 200
    assert 'data-testid="available">12,345<' in page.text
    for shown in ("2,000", "Held for orders", "50", "1,500", "Mar 1, 2026", "700", "within 30 days"):
        assert shown in page.text
    assert "Earned at a partner" in page.text
    assert "+1,200" in page.text
    assert "CN¥120.00" in page.text
    for target in ("/wallet/lots", "/wallet/history", "/wallet/catalog", "/wallet/gift", "/wallet/link"):
        assert f'href="{target}"' in page.text


async def test_the_history_words_every_reason_with_its_partner_and_source(
    member: Browser, services: FakeServices
) -> None:
    items = [
        entry("card_purchase", "credit", 88, "card:issued", merchant_name="Noodle Bar", amount_minor=8800,
              currency="CNY"),
        entry("gift", "credit", 300, f"member:{FRIEND}", message="Happy birthday", issuer="partner:skyair:issued"),
        entry("gift", "debit", 100, f"member:{FRIEND}", message=""),
        entry("claim", "credit", 40, "unclaimed:partner:skyair:C-1", identifier="partner:skyair:C-1"),
        entry("redemption", "debit", 8000, "partner:skyair:redeemed", hold_id=str(uuid.uuid4()), order_id=ORDER),
        entry("partner_refund", "debit", 600, "partner:skyair:issued", partner_id="skyair", refund_id="R-9",
              purchase_id="P-77", amount_minor=6000, currency="CNY"),
        entry("clawback_repayment", "debit", 50, f"receivable:{MEMBER}"),
        entry("expiry", "debit", 25, "breakage", issuer="partner:skyair:issued"),
        entry("bonus_limited_claim", "credit", 100, "activity:x:budget", activity="Spring give-away"),
        entry("identifier_linked", None, 0, via="link_code"),
    ]  # fmt: skip
    services.answer("GET", f"{POINTS}/v1/members/me/history", {"items": items, "next_cursor": "c2"})
    page = await member.client.get("/wallet/history")
    assert page.status_code == 200
    for words in ("Earned with your card", "Noodle Bar", "Gift received", f"From member {FRIEND}", "Happy birthday",
                  "Gift sent", f"To member {FRIEND}", "Points brought by a link", "Account C-1 at skyair",
                  "Redeemed for a reward", "Refund at a partner: points taken back", "Refund R-9 of purchase P-77",
                  "Owed points repaid", "Points expired", "Activity claimed", "Spring give-away",
                  "Card or account linked", "Card tok_12345678"):  # fmt: skip
        assert words in page.text, words
    assert f'<a href="/wallet/orders/{ORDER}">Order {ORDER[:8]}</a>' in page.text
    assert '<span class="credit">+300</span>' in page.text
    assert '<span class="debit">−8,000</span>' in page.text
    assert page.text.count("<td>skyair</td>") == 5  # the gift's issuer, the claim, redemption, refund, expiry

    older = await member.client.get("/wallet/history?cursor=c2")
    assert older.status_code == 200
    assert sent(services, "GET", f"{POINTS}/v1/members/me/history")[-1].url.params["cursor"] == "c2"


async def test_the_lots_page_lists_amount_remaining_and_dates_and_pages_on(
    member: Browser, services: FakeServices
) -> None:
    services.answer("GET", f"{POINTS}/v1/members/me/lots", {"items": [LOT], "next_cursor": "n1"})
    page = await member.client.get("/wallet/lots")
    assert page.status_code == 200
    for shown in ("2,500", "1,500", "Mar 1, 2025", "Mar 1, 2026", 'href="/wallet/lots?cursor=n1"'):
        assert shown in page.text


async def test_the_catalog_shows_the_members_price_partner_stock_and_validity(
    member: Browser, services: FakeServices
) -> None:
    member_priced = {**OFFER, "offer_id": "spa/day", "title": "Spa day", "price_points": 3500,
                     "base_price_points": 4200, "tier_prices": {"gold": 3500}}  # fmt: skip
    services.answer("GET", f"{REDEMPTION}/v1/catalog", {"tier": "gold", "items": [OFFER, member_priced],
                                                        "next_cursor": None})  # fmt: skip
    page = await member.client.get("/wallet/catalog")
    assert page.status_code == 200
    assert "4,000 points" in page.text
    assert "3,500 points" in page.text
    assert "your tier's price; others pay 4,200" in page.text
    assert "7 of 50" in page.text
    assert "Dec 31, 2026" in page.text
    assert 'href="/wallet/catalog/skyair/lounge-pass"' in page.text
    assert 'href="/wallet/catalog/skyair/spa/day"' in page.text


async def test_redeeming_posts_the_order_with_the_key_of_the_form_and_opens_the_order(
    member: Browser, services: FakeServices
) -> None:
    services.answer("GET", f"{REDEMPTION}/v1/catalog/skyair/lounge-pass", OFFER)
    services.answer("POST", f"{REDEMPTION}/v1/orders", order("awaiting_hold"), 202)
    page = await member.client.get("/wallet/catalog/skyair/lounge-pass")
    assert page.status_code == 200
    key = KEY.search(page.text)
    assert key
    first = await member.submit("/wallet/catalog/skyair/lounge-pass", {"quantity": "2", "idempotency_key": key[1]})
    again = await member.submit("/wallet/catalog/skyair/lounge-pass", {"quantity": "2", "idempotency_key": key[1]})
    assert first.status_code == again.status_code == 303
    assert first.headers["location"] == f"/wallet/orders/{ORDER}"
    bodies = [json_of(c) for c in sent(services, "POST", f"{REDEMPTION}/v1/orders")]
    assert bodies == [{"partner_id": "skyair", "offer_id": "lounge-pass", "quantity": 2, "idempotency_key": key[1]}] * 2
    shown = await member.submit("/wallet/catalog/skyair/lounge-pass",
                                {"quantity": "1", "idempotency_key": "k-2", "unit_points": "4000"})  # fmt: skip
    assert shown.status_code == 303
    assert json_of(sent(services, "POST", f"{REDEMPTION}/v1/orders")[-1])["expected_unit_points"] == 4000
    assert KEY.search((await member.client.get("/wallet/catalog/skyair/lounge-pass")).text)[1] != key[1]


async def test_the_offer_form_carries_the_price_shown_and_a_moved_price_is_refused_with_the_new_one(
    member: Browser, services: FakeServices
) -> None:
    gold = {**OFFER, "price_points": 3000, "base_price_points": 4000, "tier_prices": {"gold": 3000}}
    services.answer("GET", f"{REDEMPTION}/v1/catalog/skyair/lounge-pass", gold)
    page = await member.client.get("/wallet/catalog/skyair/lounge-pass")
    assert 'name="unit_points" value="3000"' in page.text
    assert "each, your tier's price; others pay 4,000" in page.text
    moved = "one unit costs you 4000 points now, not 3000: look at the offer again and order at that price"
    services.answer("POST", f"{REDEMPTION}/v1/orders", {"detail": moved}, 409)
    services.answer("GET", f"{REDEMPTION}/v1/catalog/skyair/lounge-pass", OFFER)
    answer = await member.submit("/wallet/catalog/skyair/lounge-pass",
                                 {"quantity": "1", "idempotency_key": "k-1", "unit_points": "3000"})  # fmt: skip
    assert answer.status_code == 409
    assert moved in answer.text
    assert 'name="unit_points" value="4000"' in answer.text, "the form now carries the price shown again"


async def test_a_refused_order_shows_the_reason_on_the_form_with_the_input_and_key_kept(
    member: Browser, services: FakeServices
) -> None:
    services.answer("GET", f"{REDEMPTION}/v1/catalog/skyair/lounge-pass", OFFER)
    services.answer("POST", f"{REDEMPTION}/v1/orders", {"detail": "only 12345 points available, 16000 needed"}, 409)
    answer = await member.submit("/wallet/catalog/skyair/lounge-pass", {"quantity": "4", "idempotency_key": "k-1"})
    assert answer.status_code == 409
    assert 'role="alert">only 12345 points available, 16000 needed<' in answer.text
    assert 'name="quantity" type="number" value="4"' in answer.text
    assert KEY.search(answer.text)[1] == "k-1"

    wrong = await member.submit("/wallet/catalog/skyair/lounge-pass", {"quantity": "0", "idempotency_key": "k-1"})
    assert wrong.status_code == 422
    assert "Enter how many you want, from 1 to 100." in wrong.text
    assert len(sent(services, "POST", f"{REDEMPTION}/v1/orders")) == 1


async def test_the_order_page_follows_the_order_until_it_is_final_and_then_shows_the_voucher(
    member: Browser, services: FakeServices
) -> None:
    services.answer("GET", f"{REDEMPTION}/v1/catalog/skyair/lounge-pass", OFFER)
    services.answer("GET", f"{REDEMPTION}/v1/orders/{ORDER}", order("fulfilling"))
    page = await member.client.get(f"/wallet/orders/{ORDER}")
    assert page.status_code == 200
    assert "Your order: Lounge pass" in page.text
    assert "With the partner" in page.text
    assert f'hx-get="/wallet/orders/{ORDER}/status?seen=fulfilling" hx-trigger="every 2s"' in page.text

    poll = f"/wallet/orders/{ORDER}/status?seen=fulfilling"
    unchanged = await member.client.get(poll, headers={"hx-request": "true"})
    assert unchanged.status_code == 204  # nothing to swap while the state stays the same

    services.answer("GET", f"{REDEMPTION}/v1/orders/{ORDER}", order("fulfilled", "AB12-CD34-EF56-7890"))
    final = await member.client.get(poll, headers={"hx-request": "true"})
    assert final.status_code == 200
    assert "<html" not in final.text
    assert '<code id="voucher-code" class="voucher" data-testid="voucher">AB12-CD34-EF56-7890</code>' in final.text
    assert "hx-trigger" not in final.text  # final: the fragment no longer polls
    assert "voucher-code" in (await member.client.get(f"/wallet/orders/{ORDER}")).text


async def test_a_cancelled_order_says_why_and_the_orders_list_words_states(
    member: Browser, services: FakeServices
) -> None:
    services.answer("GET", f"{REDEMPTION}/v1/catalog/skyair/lounge-pass", {"detail": "No such offer."}, 404)
    services.answer("GET", f"{REDEMPTION}/v1/orders/{ORDER}", order("cancelled", cancel_reason="insufficient_points"))
    page = await member.client.get(f"/wallet/orders/{ORDER}")
    assert "You did not have enough points available." in page.text
    assert "Your order: lounge-pass" in page.text
    assert "hx-trigger" not in page.text

    listed = {"items": [order("capturing"), order("payment_failed")], "next_cursor": "o2"}
    services.answer("GET", f"{REDEMPTION}/v1/orders", listed)
    orders = await member.client.get("/wallet/orders")
    assert "Confirming" in orders.text
    assert "Payment failed" in orders.text
    assert "8,000" in orders.text
    assert 'href="/wallet/orders?cursor=o2"' in orders.text


async def test_a_gift_sends_its_form_id_and_a_refusal_keeps_what_was_typed(
    member: Browser, services: FakeServices
) -> None:
    gifts = {"items": [{"gift_id": str(uuid.uuid4()), "direction": "received", "counterparty_member_id": FRIEND,
                        "points": 300, "message": "Happy birthday", "at": "2026-02-03T10:00:00Z"}]}  # fmt: skip
    services.answer("GET", f"{POINTS}/v1/members/me/gifts", gifts)
    page = await member.client.get("/wallet/gift")
    assert "Received" in page.text
    assert "+300" in page.text
    assert "Happy birthday" in page.text
    gift_id = re.search(r'name="gift_id" value="([^"]+)"', page.text)[1]

    services.answer("POST", f"{POINTS}/v1/members/me/gifts", {"detail": "only 12345 points available to give"}, 422)
    form = {"to_member_id": FRIEND, "points": "20000", "message": "For the trip", "gift_id": gift_id}
    refused = await member.submit("/wallet/gift", form)
    assert refused.status_code == 422
    assert 'role="alert">only 12345 points available to give<' in refused.text
    for kept in (f'value="{FRIEND}"', 'value="20000"', ">For the trip</textarea>", f'value="{gift_id}"'):
        assert kept in refused.text
    assert json_of(sent(services, "POST", f"{POINTS}/v1/members/me/gifts")[0]) == {
        "gift_id": gift_id, "to_member_id": FRIEND, "amount": 20000, "message": "For the trip"}  # fmt: skip

    services.answer("POST", f"{POINTS}/v1/members/me/gifts", {"gift_id": gift_id, "amount": 200, "given_at": "x"}, 201)
    given = await member.submit("/wallet/gift", {**form, "points": "200"})
    assert given.status_code == 303
    assert given.headers["location"] == "/wallet/gift"
    assert f"You gave 200 points to member {FRIEND}." in (await member.client.get("/wallet/gift")).text


async def test_a_gift_to_a_malformed_member_id_is_not_sent(member: Browser, services: FakeServices) -> None:
    services.answer("GET", f"{POINTS}/v1/members/me/gifts", {"items": []})
    answer = await member.submit("/wallet/gift", {"to_member_id": "bob", "points": "ten", "gift_id": "x"})
    assert answer.status_code == 422
    assert "Enter your friend&#39;s member id" in answer.text
    assert "Enter a whole number of points" in answer.text
    assert not sent(services, "POST", f"{POINTS}/v1/members/me/gifts")


async def test_a_refused_link_code_shows_the_services_reason_and_a_good_one_links(
    member: Browser, services: FakeServices
) -> None:
    services.answer("GET", f"{POINTS}/v1/members/me/identifiers",
                    [{"identifier": "partner:skyair:C-1", "linked_at": "2026-01-05T10:00:00Z"}])  # fmt: skip
    reason = "this link code expired at 2026-02-01T00:00:00+00:00; ask the bank's card app for a new link code"
    services.answer("POST", f"{POINTS}/v1/members/me/identifiers", {"detail": reason, "reason": "link_code_expired"},
                    410)  # fmt: skip
    refused = await member.submit("/wallet/link/card", {"card_token": "tok_12345678", "card_code": "K7P2QX"})
    assert refused.status_code == 410
    assert reason in html.unescape(refused.text)
    assert 'value="tok_12345678"' in refused.text
    assert "Account C-1 at skyair" in refused.text
    assert json_of(sent(services, "POST", f"{POINTS}/v1/members/me/identifiers")[0]) == {
        "kind": "card", "card_token": "tok_12345678", "link_code": "K7P2QX"}  # fmt: skip

    services.answer("POST", f"{POINTS}/v1/members/me/identifiers",
                    {"identifier": "partner:skyair:C-2", "claimed_points": 1200}, 201)  # fmt: skip
    linked = await member.submit("/wallet/link/partner",
                                 {"partner_id": "skyair", "customer_ref": "C-2", "partner_code": "ZX81"})  # fmt: skip
    assert linked.status_code == 303
    assert json_of(sent(services, "POST", f"{POINTS}/v1/members/me/identifiers")[-1]) == {
        "kind": "partner", "partner_id": "skyair", "customer_ref": "C-2", "link_code": "ZX81"}  # fmt: skip
    assert "Linked. 1,200 points moved to your wallet." in (await member.client.get("/wallet/link")).text


async def test_claim_posts_the_claim_id_of_its_button_and_a_refusal_is_shown(
    member: Browser, services: FakeServices
) -> None:
    items = [
        {"activity_id": ACTIVITY, "name": "Spring give-away", "points": 100, "ends_at": "2026-04-01T00:00:00Z",
         "claimed": False},
        {"activity_id": str(uuid.uuid4()), "name": "New year", "points": 50, "ends_at": None, "claimed": True},
    ]  # fmt: skip
    services.answer("GET", f"{POINTS}/v1/members/me/activities", {"items": items})
    page = await member.client.get("/wallet/activities")
    assert "Spring give-away" in page.text
    assert "New year" in page.text
    assert f'action="/wallet/activities/{ACTIVITY}/claim"' in page.text
    claim_id = re.search(r'name="claim_id" value="([^"]+)"', page.text)[1]

    claims = f"{POINTS}/v1/members/me/activities/{ACTIVITY}/claims"
    services.answer("POST", claims, {"activity_id": ACTIVITY, "points": 100}, 201)
    claimed = await member.submit(f"/wallet/activities/{ACTIVITY}/claim", {"claim_id": claim_id})
    assert claimed.status_code == 303
    assert json_of(sent(services, "POST", claims)[0]) == {"claim_id": claim_id}
    assert "You claimed 100 points." in (await member.client.get("/wallet/activities")).text

    services.answer("POST", claims, {"detail": "the activity has no claims left"}, 409)
    refused = await member.submit(f"/wallet/activities/{ACTIVITY}/claim", {"claim_id": claim_id})
    assert refused.status_code == 409
    assert "the activity has no claims left" in refused.text


async def test_the_invitation_link_and_its_acceptance(member: Browser, services: FakeServices) -> None:
    invite = await member.client.get("/wallet/invite")
    assert f'value="http://127.0.0.1:8104/wallet/invite/accept?referrer={MEMBER}"' in invite.text
    assert 'data-copy="invite-link"' in invite.text

    page = await member.client.get(f"/wallet/invite/accept?referrer={FRIEND}")
    assert f"Member {FRIEND} invited you." in page.text
    assert "Confirm who invited me" in page.text
    own = await member.client.get(f"/wallet/invite/accept?referrer={MEMBER}")
    assert "This is your own invitation link" in own.text
    assert "Confirm who invited me" not in own.text

    referrer = f"{POINTS}/v1/members/me/referrer"
    services.answer("PUT", referrer, {"detail": "a referrer can only be named before the first purchase"}, 409)
    refused = await member.submit("/wallet/invite/accept", {"referrer": FRIEND})
    assert refused.status_code == 409
    assert "a referrer can only be named before the first purchase" in refused.text
    services.answer("PUT", referrer, {"member_id": MEMBER, "referrer_member_id": FRIEND}, 201)
    accepted = await member.submit("/wallet/invite/accept", {"referrer": FRIEND})
    assert accepted.status_code == 303
    assert accepted.headers["location"] == "/wallet"
    assert json_of(sent(services, "PUT", referrer)[-1]) == {"referrer_member_id": FRIEND}


async def test_an_invitation_opened_signed_out_comes_back_after_sign_in(browser: Browser) -> None:
    answer = await browser.client.get(f"/wallet/invite/accept?referrer={FRIEND}")
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/signin?next=%2Fwallet%2Finvite%2Faccept%3Freferrer%3D{FRIEND}"


WALLET_PAGES = ["/wallet", "/wallet/lots", "/wallet/history", "/wallet/catalog", "/wallet/catalog/skyair/lounge-pass",
                "/wallet/orders", f"/wallet/orders/{ORDER}", "/wallet/gift", "/wallet/link", "/wallet/activities",
                "/wallet/invite", f"/wallet/invite/accept?referrer={FRIEND}"]  # fmt: skip


@pytest.mark.parametrize(("role", "partner_id"), [(Role.PARTNER, "skyair"), (Role.OPS, "")])
async def test_partner_staff_and_ops_cannot_open_the_wallet(
    browser: Browser, services: FakeServices, role: Role, partner_id: str
) -> None:
    await browser.sign_in(role, "staff-1", partner_id)
    for page in WALLET_PAGES:
        answer = await browser.client.get(page)
        assert answer.status_code == 403, page
    posted = await browser.submit("/wallet/gift", {"to_member_id": FRIEND, "points": "1", "gift_id": str(uuid.uuid4())})
    assert posted.status_code == 403
    assert not [c for c in services.calls if "/v1/members/me" in str(c.url) or "/v1/orders" in str(c.url)]
