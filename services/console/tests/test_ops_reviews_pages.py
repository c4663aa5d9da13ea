"""Earning reviews and velocity rules in the console: the queue shows the rule that fired, member, partner, amount
and points; release and reject send the note; a review decided by someone else shows who; the rules form sends
the rules and refuses nonsense before calling; the wallet shows pending points."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from loyalty_runtime.auth import Role

from .conftest import POINTS, Browser, FakeServices, json_of

MEMBER = "5b0c7a52-3f0e-4d8a-9a51-6f1d2e3c4b5a"
REVIEW = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
QUEUE = f"{POINTS}/v1/ops/reviews"
RULES = f"{POINTS}/v1/ops/velocity-rules"


def review(**changes: Any) -> dict[str, Any]:
    return {
        "review_id": REVIEW, "source_key": "partner:skymall:o-9", "identifier": "partner:skymall:c-1",
        "member_id": MEMBER, "partner_id": "skymall", "amount_minor": 1_250_000, "currency": "CNY", "points": 12_500,
        "points_pending": 12_500, "rule": "member_points_per_day",
        "detail": f"member:{MEMBER} earned 900 points today (UTC); 12500 more is above its limit of 10000",
        "earned_at": "2026-02-10T08:00:00Z", "lot_expires_at": "2028-02-10T08:00:00Z", "status": "open",
        "opened_at": "2026-02-10T08:00:01Z", "decided_by": None, "decided_at": None, "note": None,
        "decided_points": None, "transfer_id": None, **changes,
    }  # fmt: skip


NO_RULES: dict[str, Any] = {
    "member": {"points_per_day": None, "purchases_per_hour": None},
    "identifier": {"points_per_day": None, "purchases_per_hour": None},
    "partner": {"points_per_day": None, "purchases_per_hour": None},
    "new_member_days": None, "new_member_points": None, "unusual_factor": None, "unusual_min_purchases": 5,
    "unusual_days": 90, "gifts_per_day": None, "redemptions_per_day": None, "version": 0, "set_by": None,
    "set_at": None,
}  # fmt: skip


def sent(services: FakeServices, method: str, url: str) -> list[httpx.Request]:
    return [c for c in services.calls if c.method == method and str(c.url).split("?")[0] == url]


@pytest.fixture
async def ops(browser: Browser, services: FakeServices) -> Browser:
    services.answer("GET", QUEUE, {"items": [review()]})
    services.answer("GET", RULES, NO_RULES)
    await browser.sign_in(Role.OPS, "ops-1", display="Olivia Chen")
    services.calls.clear()
    return browser


async def test_the_queue_shows_the_rule_member_partner_amount_and_points(ops: Browser, services: FakeServices) -> None:
    page = await ops.client.get("/ops/reviews")
    assert page.status_code == 200
    assert "Member: points per day" in page.text
    assert "above its limit of 10000" in page.text
    assert f'href="/ops/members/{MEMBER}"' in page.text
    assert "skymall" in page.text
    assert "12,500" in page.text
    assert f'action="/ops/reviews/{REVIEW}/release"' in page.text
    assert f'formaction="/ops/reviews/{REVIEW}/reject"' in page.text
    assert 'href="/ops/reviews"' in page.text  # in the nav
    assert sent(services, "GET", QUEUE)[-1].url.params["status"] == "open"
    assert {who for who in services.bearer_subjects()} == {("ops", "ops-1")}


async def test_release_sends_the_note_and_a_review_decided_first_by_another_shows_who(
    ops: Browser, services: FakeServices
) -> None:
    services.answer("POST", f"{QUEUE}/{REVIEW}/release", {"review_id": REVIEW, "status": "released",
                                                          "points": 12_500, "transfer_id": REVIEW})  # fmt: skip
    done = await ops.submit(f"/ops/reviews/{REVIEW}/release", {"note": " called the member "})
    assert (done.status_code, done.headers["location"]) == (303, "/ops/reviews")
    assert json_of(sent(services, "POST", f"{QUEUE}/{REVIEW}/release")[-1]) == {"note": "called the member"}
    after = await ops.client.get("/ops/reviews")
    assert "Released: 12,500 points credited to the member." in after.text

    detail = f"review {REVIEW} was already released by ops-2 at 2026-02-10T09:00:00+00:00; reload the queue"
    services.answer("POST", f"{QUEUE}/{REVIEW}/reject", {"detail": detail}, 409)
    refused = await ops.submit(f"/ops/reviews/{REVIEW}/reject", {"note": ""})
    assert refused.status_code == 409
    assert "already released by ops-2" in refused.text
    assert json_of(sent(services, "POST", f"{QUEUE}/{REVIEW}/reject")[-1]) == {"note": None}


async def test_other_statuses_list_decided_reviews_without_actions(ops: Browser, services: FakeServices) -> None:
    services.answer("GET", QUEUE, {"items": [review(status="rejected", decided_by="ops-2", note="stolen card",
                                                    decided_at="2026-02-10T09:00:00Z")]})  # fmt: skip
    page = await ops.client.get("/ops/reviews?status=rejected")
    assert "stolen card" in page.text
    assert "/release" not in page.text
    assert sent(services, "GET", QUEUE)[-1].url.params["status"] == "rejected"
    assert (await ops.client.get("/ops/reviews?status=bogus")).status_code == 422


async def test_the_rules_form_sends_the_rules_and_refuses_nonsense_before_calling(
    ops: Browser, services: FakeServices
) -> None:
    page = await ops.client.get("/ops/velocity-rules")
    assert page.status_code == 200
    assert "No rules set yet: every rule is off." in page.text
    bad = await ops.submit("/ops/velocity-rules", {"member_points_per_day": "lots", "unusual_factor": "0.5"})
    assert bad.status_code == 422
    assert "Enter a whole number" in bad.text
    assert "Enter a number above 1" in bad.text
    assert sent(services, "PUT", RULES) == []

    services.answer("PUT", RULES, {**NO_RULES, "version": 3, "set_by": "ops-1", "set_at": "2026-02-10T09:00:00Z"})
    done = await ops.submit("/ops/velocity-rules", {"member_points_per_day": "10,000", "partner_purchases_per_hour":
                                                    "500", "unusual_factor": "3.5", "gifts_per_day": "3"})  # fmt: skip
    assert (done.status_code, done.headers["location"]) == (303, "/ops/velocity-rules")
    body = json_of(sent(services, "PUT", RULES)[-1])
    assert body["member"] == {"points_per_day": 10_000, "purchases_per_hour": None}
    assert body["partner"] == {"points_per_day": None, "purchases_per_hour": 500}
    assert (body["unusual_factor"], body["unusual_min_purchases"], body["gifts_per_day"]) == ("3.5", 5, 3)
    assert body["redemptions_per_day"] is None

    services.answer("PUT", RULES, {"detail": "the cool-off for new members needs both new_member_days and ..."}, 422)
    refused = await ops.submit("/ops/velocity-rules", {"new_member_days": "7"})
    assert refused.status_code == 422
    assert "needs both new_member_days" in refused.text
    assert 'value="7"' in refused.text


async def test_the_wallet_shows_points_pending_review(browser: Browser, services: FakeServices) -> None:
    balance = {
        "member_id": MEMBER,
        "posted": 600,
        "pending": 0,
        "available": 600,
        "owed": 0,
        "expiring_soon": 0,
        "expiring_within_days": 30,
        "next_expiry_at": None,
        "next_expiry_points": 0,
        "pending_review": 900,
    }
    services.answer("GET", f"{POINTS}/v1/members/me/balance", balance)
    services.answer("GET", f"{POINTS}/v1/members/me/lots", {"items": [], "next_cursor": None})
    services.answer("GET", f"{POINTS}/v1/members/me/history", {"items": [], "next_cursor": None})
    await browser.sign_in(Role.MEMBER, MEMBER)
    page = await browser.client.get("/wallet")
    assert page.status_code == 200, page.text[:300]
    assert "Pending review" in page.text
    assert "900" in page.text
