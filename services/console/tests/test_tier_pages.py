"""Tier pages: the member's tier with its progress and history, the ops tier set form, members per tier, reviews
on demand, and tiers in the segment builder and the activity form."""

from __future__ import annotations

import re
from typing import Any

import pytest

from loyalty_runtime.auth import Role

from .conftest import PARTNERS, POINTS, Browser, FakeServices, json_of

MEMBER = "5b0c7a52-3f0e-4d8a-9a51-6f1d2e3c4b5a"
TIERS = [
    {"code": "green", "name": "Green", "threshold_points": 0, "earn_multiplier": "1.00", "benefits": []},
    {"code": "silver", "name": "Silver", "threshold_points": 2000, "earn_multiplier": "1.25",
     "benefits": ["Priority service"]},
    {"code": "gold", "name": "Gold", "threshold_points": 10000, "earn_multiplier": "1.50",
     "benefits": ["Lounge access", "Free shipping"]},
]  # fmt: skip
TIER_SET = {"version": 3, "effective_from": "2026-11-01T00:00:00Z", "qualification": "rolling_12_months",
            "grace_days": 30, "downgrade_policy": "one_tier_down", "base_tier": "green", "tiers": TIERS}  # fmt: skip
MINE = {
    "member_id": MEMBER, "tier": TIERS[1], "since": "2026-11-20T02:00:00Z", "valid_until": "2027-11-20",
    "review_at": "2027-12-20T16:00:00Z", "review_on": "2027-12-21",
    "current_window": {"first_day": "2025-11-21", "last_day": "2026-11-20", "qualifying_points": 4000},
    "review_window": {"first_day": "2026-11-21", "last_day": "2027-11-20", "qualifying_points": 1500},
    "points_to_keep": 500, "next_tier": TIERS[2], "points_to_reach": 6000, "tier_set_version": 3,
    "history": [
        {"from_tier": "green", "to_tier": "silver", "direction": "upgrade", "reason": "qualified",
         "qualifying_points": 2500, "at": "2026-11-20T02:00:00Z", "valid_until": "2027-11-20", "tier_set_version": 3},
    ],
}  # fmt: skip
SUMMARY = {"tier_set_version": 3, "members": 120, "tiers": [
    {"code": "green", "name": "Green", "members": 100}, {"code": "silver", "name": "Silver", "members": 15},
    {"code": "gold", "name": "Gold", "members": 5}]}  # fmt: skip


def sent(services: FakeServices, method: str, path: str) -> list[Any]:
    found = [c for c in services.calls if c.method == method and c.url.path == path]
    return [json_of(c) if c.content else None for c in found]


def values_of(page: str, name: str) -> str:
    found = re.search(rf'name="{name}"[^>]*value="([^"]*)"', page)
    assert found, f"no input {name}"
    return found.group(1)


@pytest.fixture
async def member(browser: Browser, services: FakeServices) -> Browser:
    services.answer("GET", f"{POINTS}/v1/tiers", TIER_SET)
    services.answer("GET", f"{POINTS}/v1/members/me/tier", MINE)
    await browser.sign_in(Role.MEMBER, MEMBER)
    return browser


@pytest.fixture
async def ops(browser: Browser, services: FakeServices) -> Browser:
    services.answer("GET", f"{POINTS}/v1/tiers", TIER_SET)
    services.answer("GET", f"{POINTS}/v1/ops/tiers/summary", SUMMARY)
    services.answer("GET", f"{PARTNERS}/v1/partners", [])
    services.answer("GET", f"{POINTS}/v1/ops/segments", {"items": [], "next_cursor": None})
    await browser.sign_in(Role.OPS, "ops-1")
    return browser


# --- the wallet ---------------------------------------------------------------------------------------------


async def test_the_member_sees_the_tier_its_benefits_the_way_to_the_next_and_what_keeps_it(
    member: Browser, services: FakeServices
) -> None:
    page = await member.client.get("/wallet/tier")
    assert page.status_code == 200
    assert '<h2 id="tier-title">Silver</h2>' in page.text
    assert "Priority service" in page.text
    assert "×1.25" in page.text
    assert '<label for="tier-meter">Progress to Gold</label>' in page.text
    assert 'min="0" max="10000" value="4000"' in page.text
    assert "4,000 of 10,000 qualifying points" in page.text
    assert "6,000 more qualifying points to reach Gold." in page.text
    assert "Earn 500 more qualifying points from Nov 21, 2026 to Nov 20, 2027 to keep Silver at its review on " \
           "Dec 21, 2027." in page.text  # fmt: skip
    assert "Lounge access, Free shipping" in page.text  # the programme's tiers
    assert "Up to Silver" in page.text
    assert "Your qualifying points reached it" in page.text
    assert 'href="/wallet/tier" aria-current="page"' in page.text
    assert ("member", MEMBER) in services.bearer_subjects()
    assert "style=" not in page.text
    assert "<script>" not in page.text


async def test_the_top_tier_has_no_next_and_a_kept_tier_says_so(member: Browser, services: FakeServices) -> None:
    top = {**MINE, "tier": TIERS[2], "next_tier": None, "points_to_reach": None, "points_to_keep": 0}
    services.answer("GET", f"{POINTS}/v1/members/me/tier", top)
    page = await member.client.get("/wallet/tier")
    assert "You are at the top tier." in page.text
    assert "You have earned enough to keep Gold at its review on Dec 21, 2027." in page.text
    assert "<meter" not in page.text


async def test_without_a_tier_set_the_wallet_says_the_programme_has_no_tiers(
    member: Browser, services: FakeServices
) -> None:
    services.answer("GET", f"{POINTS}/v1/members/me/tier", {"detail": "no tier set yet"}, status=404)
    page = await member.client.get("/wallet/tier")
    assert page.status_code == 200
    assert "The programme has no tiers yet." in page.text


# --- ops ----------------------------------------------------------------------------------------------------


async def test_ops_see_members_per_tier_and_the_tier_set_as_a_form_with_five_rows(
    ops: Browser, services: FakeServices
) -> None:
    page = await ops.client.get("/ops/tiers")
    assert page.status_code == 200
    assert "Members per tier now, tier set version 3" in page.text
    assert re.search(r"Gold</th><td class=\"num\">5<", page.text)
    assert values_of(page.text, "t2_code") == "gold"
    assert values_of(page.text, "t2_multiplier") == "1.50"
    assert "Lounge access\nFree shipping</textarea>" in page.text
    assert values_of(page.text, "t4_code") == ""  # five rows: three tiers and two empty ones
    assert 'name="t5_code"' not in page.text
    assert values_of(page.text, "grace_days") == "30"
    assert 'action="/ops/tiers/reviews"' in page.text


async def test_saving_the_tier_set_puts_the_rows_typed_and_leaves_empty_ones_out(
    ops: Browser, services: FakeServices
) -> None:
    services.answer("PUT", f"{POINTS}/v1/ops/tier-set", {**TIER_SET, "version": 4})
    form = {"qualification": "calendar_year", "grace_days": "10", "downgrade_policy": "to_qualified",
            "t0_code": "green", "t0_name": "Green", "t0_threshold": "0", "t0_multiplier": "1", "t0_benefits": "",
            "t1_code": "gold", "t1_name": "Gold", "t1_threshold": "10,000", "t1_multiplier": "1.5",
            "t1_benefits": "Lounge access\n\n Free shipping ",
            "t2_code": "", "t2_name": "", "t2_threshold": "", "t2_multiplier": "1", "t2_benefits": ""}  # fmt: skip
    answer = await ops.submit("/ops/tiers", form)
    assert answer.status_code == 303
    assert sent(services, "PUT", "/v1/ops/tier-set") == [{
        "qualification": "calendar_year", "grace_days": 10, "downgrade_policy": "to_qualified",
        "tiers": [
            {"code": "green", "name": "Green", "threshold_points": 0, "earn_multiplier": "1", "benefits": []},
            {"code": "gold", "name": "Gold", "threshold_points": "10,000", "earn_multiplier": "1.5",
             "benefits": ["Lounge access", "Free shipping"]},
        ],
    }]  # fmt: skip
    done = await ops.client.get(answer.headers["location"])
    assert "Tier set saved: version 4." in done.text


async def test_a_refused_tier_set_shows_the_services_reason_on_the_form_as_typed(
    ops: Browser, services: FakeServices
) -> None:
    reason = "the new tier set removes tiers that members hold: silver (15 members); keep those codes"
    services.answer("PUT", f"{POINTS}/v1/ops/tier-set", {"detail": reason}, status=409)
    form = {"qualification": "rolling_12_months", "grace_days": "30", "downgrade_policy": "one_tier_down",
            "t0_code": "green", "t0_name": "Green", "t0_threshold": "0", "t0_multiplier": "1",
            "t1_code": "gold", "t1_name": "Gold!", "t1_threshold": "10000", "t1_multiplier": "1.5"}  # fmt: skip
    page = await ops.submit("/ops/tiers", form)
    assert page.status_code == 409
    assert 'role="alert">the new tier set removes tiers that members hold: silver (15 members)' in page.text
    assert values_of(page.text, "t1_name") == "Gold!"
    assert values_of(page.text, "t4_code") == ""


async def test_run_reviews_now_reports_what_the_reviews_did(ops: Browser, services: FakeServices) -> None:
    ran = {"reviewed": 7, "confirmed": 4, "downgraded": 3, "upgraded": 2, "caught_up_versions": [3]}
    services.answer("POST", f"{POINTS}/v1/ops/tier-reviews", ran)
    answer = await ops.submit("/ops/tiers/reviews", {})
    assert answer.status_code == 303
    page = await ops.client.get(answer.headers["location"])
    assert "Reviews done: 7 reviewed, 4 kept, 3 down, 2 up." in page.text
    assert ("ops", "ops-1") in services.bearer_subjects()


async def test_without_a_tier_set_ops_get_an_empty_form(ops: Browser, services: FakeServices) -> None:
    services.answer("GET", f"{POINTS}/v1/tiers", {"detail": "no tier set yet"}, status=404)
    services.answer("GET", f"{POINTS}/v1/ops/tiers/summary", {"detail": "no tier set yet"}, status=404)
    page = await ops.client.get("/ops/tiers")
    assert page.status_code == 200
    assert "The programme has no tier set yet: put one below." in page.text
    assert values_of(page.text, "t0_code") == ""


# --- tiers in segments and activities -----------------------------------------------------------------------


async def test_the_segment_builder_offers_a_tier_condition(ops: Browser, services: FakeServices) -> None:
    preview = {"count": 5, "sample": [], "as_of": "2026-11-20T08:00:00Z"}
    services.answer("POST", f"{POINTS}/v1/ops/segments/preview", preview)
    page = await ops.submit("/ops/segments/new", {"name": "Best", "c0_field": "tier", "c0_op": "one_of",
                                                  "c0_value": "Silver, gold", "action": "preview"})  # fmt: skip
    assert page.status_code == 200
    assert 'name="c0_value"' in page.text
    assert 'name="c0_days"' not in page.text  # a tier looks back over no days
    assert sent(services, "POST", "/v1/ops/segments/preview") == [
        {"rules": {"all": [{"kind": "tier", "codes": ["silver", "gold"]}]}}
    ]


async def test_an_activity_for_some_tiers_sends_their_codes(ops: Browser, services: FakeServices) -> None:
    services.answer("POST", f"{POINTS}/v1/ops/activities", {"activity_id": "a1"}, status=201)
    answer = await ops.submit("/ops/activities/new", {"kind": "limited_claim", "name": "Gold gift",
                                                      "claim_points": "100", "budget_points": "1000",
                                                      "quantity_cap": "10", "tiers": "gold, silver"})  # fmt: skip
    assert answer.status_code == 303
    assert sent(services, "POST", "/v1/ops/activities")[0]["rules"] == {"claim_points": 100,
                                                                        "tiers": ["gold", "silver"]}  # fmt: skip
