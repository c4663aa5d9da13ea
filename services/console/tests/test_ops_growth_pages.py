"""Ops growth pages: segments with their rule builder and preview, activities from draft to report."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from loyalty_runtime.auth import Role

from .conftest import PARTNERS, POINTS, Browser, FakeServices, json_of

SEGMENT_ID = "5f0c3a52-4e4b-4a8e-9a57-2b1f7c0d9e11"
ACTIVITY_ID = "8d1e6f0a-93c4-4d0b-b7f1-6a2c9e5d4b33"
MEMBER_A = "0b7c1e2d-1111-4a5b-8c9d-000000000001"
MEMBER_B = "0b7c1e2d-2222-4a5b-8c9d-000000000002"
PREVIEW = {"count": 1234, "sample": [MEMBER_A, MEMBER_B], "as_of": "2026-11-20T08:00:00Z"}
SEGMENT = {
    "segment_id": SEGMENT_ID, "name": "Frequent flyers", "created_at": "2026-11-01T09:00:00Z",
    "rules": {"all": [{"kind": "spend", "window_days": 90, "min_minor": 200000, "currency": "CNY", "mcc": "4511"},
                      {"kind": "last_activity", "within_days": 30}]},
}  # fmt: skip
SKYAIR = {"partner_id": "skyair", "name": "Sky Air", "created_at": "2026-01-01T00:00:00Z", "contract": None,
          "active_keys": 1}  # fmt: skip


def activity(status: str = "draft", **changes: Any) -> dict[str, Any]:
    window = {"window_start": "2026-11-21T00:00:00Z", "window_end": "2026-11-23T00:00:00Z"}
    return {
        "activity_id": ACTIVITY_ID, "name": "Double points weekend", "kind": "multiplier", "status": status,
        "budget_points": 100000, "points_granted": 30000, "points_reversed": 500, "grants_count": 120,
        "quantity_cap": None, "per_member_cap": 5000, "segment_id": SEGMENT_ID, "holdout_share": "0.1",
        "versions": [
            {"version": 1, "effective_from": "2026-11-20T08:00:00Z", "state": "draft",
             "rules": {"multiplier": "2", "scope": {"partner_id": "skyair"}}, "window_start": None,
             "window_end": None, "changed_by": "ops-1"},
            {"version": 2, "effective_from": "2026-11-21T00:00:00Z", "state": "active",
             "rules": {"multiplier": "2", "scope": {"partner_id": "skyair"}}, **window, "changed_by": "ops-1"},
        ],
        **changes,
    }  # fmt: skip


REPORT = {
    "activity_id": ACTIVITY_ID, "name": "Double points weekend", "kind": "multiplier",
    "generated_at": "2026-11-24T10:00:00Z", "window_start": "2026-11-21T00:00:00Z",
    "window_end": "2026-11-23T00:00:00Z", "holdout_share": "0.1", "targeted": 900, "holdout": 100,
    "responded": 180, "response_rate": "0.2000", "members_granted": 180, "points_granted": 30000,
    "points_reversed": 500, "points_net": 29500, "budget_points": 100000, "budget_left": 70500,
    "spend": [{
        "currency": "CNY", "targeted_spend_minor": 4068000, "targeted_average_minor": "4520.00",
        "holdout_spend_minor": 300000, "holdout_average_minor": "3000.00", "responders_spend_minor": 1800000,
        "responders_average_minor": "10000.00", "lift_per_member_minor": "1520.00",
        "incremental_spend_minor": 1368000,
    }],
}  # fmt: skip


async def ops(browser: Browser, services: FakeServices) -> None:
    services.answer("GET", f"{PARTNERS}/v1/partners", [SKYAIR])
    services.answer("GET", f"{POINTS}/v1/ops/segments", {"items": [SEGMENT], "next_cursor": None})
    await browser.sign_in(Role.OPS, "ops-1")


def sent(services: FakeServices, method: str, path: str) -> list[Any]:
    """The JSON bodies the console sent to the points service at `path`."""
    found = [c for c in services.calls if c.method == method and c.url.path == path]
    return [json_of(c) if c.content else None for c in found]


def values_of(page: str, name: str) -> str:
    found = re.search(rf'name="{name}"[^>]*value="([^"]*)"', page)
    assert found, f"no input {name}"
    return found.group(1)


def first_row(**values: str) -> dict[str, str]:
    row = {"field": "spend", "op": "at_least", "value": "500.00", "currency": "CNY", "days": "90", "channel": "",
           "partner": "", "category": "", "mcc": ""}  # fmt: skip
    row.update(values)
    return {f"c0_{key}": value for key, value in row.items()}


# --- segments ---------------------------------------------------------------------------------------------


async def test_the_segment_list_shows_each_segment_and_its_conditions_in_words(
    browser: Browser, services: FakeServices
) -> None:
    await ops(browser, services)
    page = await browser.client.get("/ops/segments")
    assert page.status_code == 200
    assert f'href="/ops/segments/{SEGMENT_ID}">Frequent flyers<' in page.text
    assert "Net spend of at least CN¥2,000.00 in the last 90 days, at merchant category 4511" in page.text
    assert "Bought something in the last 30 days" in page.text
    assert 'href="/ops/segments/new"' in page.text


async def test_adding_a_condition_keeps_what_was_typed_and_removing_one_renumbers(
    browser: Browser, services: FakeServices
) -> None:
    await ops(browser, services)
    added = await browser.submit("/ops/segments/new", {"name": "Big spenders", **first_row(), "action": "add"})
    assert added.status_code == 200
    assert values_of(added.text, "name") == "Big spenders"
    assert values_of(added.text, "c0_value") == "500.00"
    assert values_of(added.text, "c0_days") == "90"
    assert "Condition 2" in added.text
    assert 'name="c1_field"' in added.text
    assert "Remove condition 2" in added.text
    assert not sent(services, "POST", "/v1/ops/segments")  # nothing saved yet

    second = {"c1_field": "last_purchase", "c1_op": "within", "c1_days": "30"}
    removed = await browser.submit("/ops/segments/new", {**first_row(), **second, "action": "remove-0"})
    assert 'name="c1_field"' not in removed.text
    assert values_of(removed.text, "c0_days") == "30"  # the second condition is the first now
    assert '<option value="last_purchase" selected' in removed.text
    assert "Remove condition" not in removed.text  # the last condition stays


async def test_the_builder_previews_as_rules_change_and_offers_each_fields_operators(
    browser: Browser, services: FakeServices
) -> None:
    await ops(browser, services)
    page = await browser.client.get("/ops/segments/new")
    assert 'hx-post="/ops/segments/preview"' in page.text
    assert 'hx-trigger="change delay:400ms"' in page.text
    assert 'id="segment-preview" aria-live="polite"' in page.text
    assert "<script>" not in page.text
    assert "style=" not in page.text
    assert 'name="c0_currency"' in page.text  # a new condition is a spend, with its amount and currency

    page = await browser.submit("/ops/segments/new", {**first_row(field="last_purchase"), "action": "refresh"})
    assert '<option value="within"' in page.text
    assert '<option value="not_within"' in page.text
    assert '<option value="at_least"' not in page.text
    assert 'name="c0_currency"' not in page.text  # a last purchase has no amount


async def test_the_live_preview_posts_the_rules_the_api_reads_and_shows_count_and_sample(
    browser: Browser, services: FakeServices
) -> None:
    await ops(browser, services)
    services.answer("POST", f"{POINTS}/v1/ops/segments/preview", PREVIEW)
    rows = {
        **first_row(channel="card", mcc="4511", value="2,000.50"),
        "c1_field": "last_purchase", "c1_op": "not_within", "c1_days": "60",
        "c2_field": "partners_used", "c2_op": "at_least", "c2_value": "3", "c2_days": "365",
        "c3_field": "member", "c3_op": "one_of", "c3_value": f"{MEMBER_A},\n{MEMBER_B}",
    }  # fmt: skip
    fragment = await browser.client.post(
        "/ops/segments/preview",
        data={"name": "x", **rows},
        headers={"hx-request": "true", "x-csrf-token": browser.csrf},
    )
    assert fragment.status_code == 200
    assert sent(services, "POST", "/v1/ops/segments/preview") == [{"rules": {"all": [
        {"kind": "spend", "window_days": 90, "min_minor": 200050, "currency": "CNY", "channel": "card", "mcc": "4511"},
        {"kind": "inactive", "for_days": 60},
        {"kind": "partners_used", "window_days": 365, "min": 3},
        {"kind": "members", "member_ids": [MEMBER_A, MEMBER_B]},
    ]}}]  # fmt: skip
    assert "<html" not in fragment.text  # a fragment for the preview region
    assert 'data-testid="preview-count">1,234<' in fragment.text
    assert f'href="/ops/members/{MEMBER_A}"' in fragment.text
    assert f'href="/ops/members/{MEMBER_B}"' in fragment.text


async def test_the_preview_shows_the_services_reason_when_the_rules_are_incomplete(
    browser: Browser, services: FakeServices
) -> None:
    await ops(browser, services)
    reason = {"detail": [{"loc": ["body", "rules", "all", 0, "spend", "window_days"], "msg": "Field required"}]}
    services.answer("POST", f"{POINTS}/v1/ops/segments/preview", reason, status=422)
    fragment = await browser.client.post(
        "/ops/segments/preview", data=first_row(days=""), headers={"hx-request": "true", "x-csrf-token": browser.csrf}
    )
    assert fragment.status_code == 200  # htmx swaps it in
    assert "condition 1, window_days: Field required" in fragment.text


async def test_a_refused_segment_shows_the_reason_and_keeps_the_rows(browser: Browser, services: FakeServices) -> None:
    await ops(browser, services)
    reason = {"detail": [{"loc": ["body", "rules", "all", 0, "spend", "window_days"],
                          "msg": "Input should be less than or equal to 730"}]}  # fmt: skip
    services.answer("POST", f"{POINTS}/v1/ops/segments", reason, status=422)
    page = await browser.submit(
        "/ops/segments/new", {"name": "Too long ago", **first_row(days="900"), "action": "save"}
    )
    assert page.status_code == 422
    assert "condition 1, window_days: Input should be less than or equal to 730" in page.text
    assert values_of(page.text, "name") == "Too long ago"
    assert values_of(page.text, "c0_days") == "900"
    assert values_of(page.text, "c0_value") == "500.00"

    finer = await browser.submit("/ops/segments/new", {"name": "n", **first_row(value="5.005"), "action": "save"})
    assert finer.status_code == 422
    assert "Condition 1: CNY amounts have at most 2 decimals." in finer.text
    assert len(sent(services, "POST", "/v1/ops/segments")) == 1  # the console refused it itself


async def test_saving_a_segment_goes_to_its_page_with_its_rules_and_size(
    browser: Browser, services: FakeServices
) -> None:
    await ops(browser, services)
    services.answer("POST", f"{POINTS}/v1/ops/segments", SEGMENT, status=201)
    saved = await browser.submit("/ops/segments/new", {"name": "Frequent flyers", **first_row(), "action": "save"})
    assert saved.status_code == 303
    assert saved.headers["location"] == f"/ops/segments/{SEGMENT_ID}"
    body = sent(services, "POST", "/v1/ops/segments")[0]
    assert body == {"name": "Frequent flyers", "rules": {"all": [
        {"kind": "spend", "window_days": 90, "min_minor": 50000, "currency": "CNY"}]}}  # fmt: skip

    services.answer("GET", f"{POINTS}/v1/ops/segments/{SEGMENT_ID}", SEGMENT)
    services.answer("POST", f"{POINTS}/v1/ops/segments/preview", PREVIEW)
    page = await browser.client.get(saved.headers["location"])
    assert "Segment saved." in page.text
    assert "<h1>Frequent flyers</h1>" in page.text
    assert "Bought something in the last 30 days" in page.text
    assert 'data-testid="preview-count">1,234<' in page.text
    assert sent(services, "POST", "/v1/ops/segments/preview")[-1] == {"segment_id": SEGMENT_ID}
    assert "Not published: partners cannot price offers for this segment yet." in page.text, "points said 404"

    services.answer("POST", f"{POINTS}/v1/ops/segments/{SEGMENT_ID}/publications",
                    {"segment_id": SEGMENT_ID, "members": 1234, "as_of": "2026-12-02T08:00:00Z"}, 201)  # fmt: skip
    published = await browser.submit(f"/ops/segments/{SEGMENT_ID}/publish", {})
    assert published.status_code == 303
    services.answer(
        "GET",
        f"{POINTS}/v1/segments/published",
        {
            "items": [
                {"segment_id": SEGMENT_ID, "name": "Frequent flyers", "members": 1234, "as_of": "2026-12-02T08:00:00Z"}
            ]
        },
    )
    again = await browser.client.get(published.headers["location"])
    assert "Published: 1234 members, for partners" in again.text
    assert "with 1,234 members: partners may price offers for them" in again.text


# --- activities -------------------------------------------------------------------------------------------


async def test_the_activity_list_shows_state_kind_dates_and_budget_used_and_left(
    browser: Browser, services: FakeServices
) -> None:
    await ops(browser, services)
    services.answer("GET", f"{POINTS}/v1/ops/activities", [activity("active")])
    page = await browser.client.get("/ops/activities")
    assert f'href="/ops/activities/{ACTIVITY_ID}">Double points weekend<' in page.text
    assert "Points multiplier" in page.text
    assert 'class="badge badge-active" data-testid="state">Active<' in page.text
    assert "Nov 21, 2026" in page.text
    assert "Nov 23, 2026" in page.text
    cells = re.findall(r'<td class="num">([^<]+)</td>', page.text)
    assert cells == ["100,000", "29,500", "70,500"]


async def test_a_new_activity_starts_with_its_kind_and_shows_only_that_kinds_fields(
    browser: Browser, services: FakeServices
) -> None:
    await ops(browser, services)
    choose = await browser.client.get("/ops/activities/new")
    assert 'method="get" action="/ops/activities/new"' in choose.text
    assert 'name="budget_points"' not in choose.text
    form = await browser.client.get("/ops/activities/new?kind=limited_claim")
    assert 'name="claim_points"' in form.text
    assert 'name="multiplier"' not in form.text
    assert 'name="scope_channel"' not in form.text
    assert f'<option value="{SEGMENT_ID}" >Frequent flyers</option>' in form.text


CREATE_FORMS: list[tuple[str, dict[str, str], dict[str, Any]]] = [
    ("multiplier", {"multiplier": "2", "scope_channel": "partner", "scope_partner": "skyair"},
     {"multiplier": "2", "scope": {"channel": "partner", "partner_id": "skyair"}}),
    ("spend_threshold", {"threshold": "500.00", "currency": "cny", "bonus_points": "300", "scope_channel": "any"},
     {"threshold_minor": 50000, "currency": "CNY", "bonus_points": 300}),
    ("first_purchase", {"partner": "skyair", "bonus_points": "1000"}, {"partner_id": "skyair", "bonus_points": 1000}),
    ("limited_claim", {"claim_points": "100"}, {"claim_points": 100}),
    ("referral", {"referrer_points": "500", "referee_points": "200"}, {"referrer_points": 500, "referee_points": 200}),
]  # fmt: skip


async def test_creating_an_activity_posts_the_body_its_kind_needs(browser: Browser, services: FakeServices) -> None:
    await ops(browser, services)
    services.answer("POST", f"{POINTS}/v1/ops/activities", activity(), status=201)
    for kind, typed, rules in CREATE_FORMS:
        form = {"kind": kind, "name": "Weekend", "budget_points": "100000", "quantity_cap": "1000",
                "per_member_cap": "", "segment_id": SEGMENT_ID, "holdout_percent": "10",
                "scope_mcc": "" if kind in ("multiplier", "spend_threshold") else "4511",
                "claim_points": "" if kind == "limited_claim" else "9", **typed}  # fmt: skip
        answer = await browser.submit("/ops/activities/new", form)
        assert answer.status_code == 303
        assert answer.headers["location"] == f"/ops/activities/{ACTIVITY_ID}"
        assert sent(services, "POST", "/v1/ops/activities")[-1] == {
            "name": "Weekend", "kind": kind, "rules": rules, "budget_points": 100000, "quantity_cap": 1000,
            "segment_id": SEGMENT_ID, "holdout_share": "0.1",
        }, kind  # fmt: skip


async def test_a_refused_activity_shows_the_reason_and_keeps_the_input(
    browser: Browser, services: FakeServices
) -> None:
    await ops(browser, services)
    reason = {"detail": "multiplier must be above 1 and at most 10, e.g. 2 for double points"}
    services.answer("POST", f"{POINTS}/v1/ops/activities", reason, status=422)
    page = await browser.submit(
        "/ops/activities/new", {"kind": "multiplier", "name": "Tenfold", "multiplier": "11", "budget_points": "500"}
    )
    assert page.status_code == 422
    assert "multiplier must be above 1 and at most 10" in page.text
    assert values_of(page.text, "multiplier") == "11"
    assert values_of(page.text, "name") == "Tenfold"
    assert values_of(page.text, "budget_points") == "500"


LIFECYCLE = {
    "draft": ({"Schedule", "Activate now"}, {"Pause", "End now", "Resume now"}),
    "scheduled": ({"Activate now", "End now"}, {"Schedule", "Pause"}),
    "active": ({"Pause", "End now"}, {"Schedule", "Activate now", "Resume now"}),
    "paused": ({"Resume now", "End now"}, {"Schedule", "Pause", "Activate now"}),
    "ended": (set(), {"Schedule", "Activate now", "Resume now", "Pause", "End now", "Save new rules"}),
}


async def test_an_activity_offers_only_the_lifecycle_steps_its_state_allows(
    browser: Browser, services: FakeServices
) -> None:
    await ops(browser, services)
    for state, (offered, withheld) in LIFECYCLE.items():
        services.answer("GET", f"{POINTS}/v1/ops/activities/{ACTIVITY_ID}", activity(state))
        page = await browser.client.get(f"/ops/activities/{ACTIVITY_ID}")
        buttons = set(re.findall(r'<button type="submit"[^>]*>([^<]+)</button>', page.text))
        assert offered <= buttons, (state, buttons)
        assert not withheld & buttons, (state, buttons)
    assert "This activity has ended" in page.text


async def test_an_activity_page_shows_its_rules_targets_and_history(browser: Browser, services: FakeServices) -> None:
    await ops(browser, services)
    services.answer("GET", f"{POINTS}/v1/ops/activities/{ACTIVITY_ID}", activity("active"))
    page = await browser.client.get(f"/ops/activities/{ACTIVITY_ID}")
    assert 'data-testid="rules">2 times the usual points, at partner skyair<' in page.text
    assert f'href="/ops/segments/{SEGMENT_ID}"' in page.text
    assert "10.0%" in page.text  # the holdout
    assert values_of(page.text, "multiplier") == "2"  # the revise form starts from the rules in force
    assert f'href="/ops/activities/{ACTIVITY_ID}/report"' in page.text


async def test_activating_posts_the_end_in_the_consoles_zone_and_returns_to_the_activity(
    browser: Browser, services: FakeServices
) -> None:
    await ops(browser, services)
    services.answer("POST", f"{POINTS}/v1/ops/activities/{ACTIVITY_ID}/activate", activity("active"))
    answer = await browser.submit(f"/ops/activities/{ACTIVITY_ID}/activate", {"activate_ends_at": "2026-11-23T00:00"})
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/ops/activities/{ACTIVITY_ID}"
    assert sent(services, "POST", f"/v1/ops/activities/{ACTIVITY_ID}/activate") == [
        {"ends_at": "2026-11-23T00:00:00+00:00"}
    ]
    services.answer("POST", f"{POINTS}/v1/ops/activities/{ACTIVITY_ID}/pause", activity("paused"))
    assert (await browser.submit(f"/ops/activities/{ACTIVITY_ID}/pause", {})).status_code == 303
    assert sent(services, "POST", f"/v1/ops/activities/{ACTIVITY_ID}/pause") == [None]


async def test_a_lifecycle_refusal_shows_the_services_reason(browser: Browser, services: FakeServices) -> None:
    await ops(browser, services)
    services.answer("GET", f"{POINTS}/v1/ops/activities/{ACTIVITY_ID}", activity("ended"))
    reason = "a ended activity cannot be activated; allowed from: draft, paused, scheduled"
    services.answer("POST", f"{POINTS}/v1/ops/activities/{ACTIVITY_ID}/activate", {"detail": reason}, status=409)
    page = await browser.submit(f"/ops/activities/{ACTIVITY_ID}/activate", {"activate_ends_at": ""})
    assert page.status_code == 409
    assert f'<p class="problem" role="alert">{reason}</p>' in page.text
    assert sent(services, "POST", f"/v1/ops/activities/{ACTIVITY_ID}/activate") == [{}]


async def test_revising_and_raising_the_budget_post_what_the_api_reads(
    browser: Browser, services: FakeServices
) -> None:
    await ops(browser, services)
    services.answer("GET", f"{POINTS}/v1/ops/activities/{ACTIVITY_ID}", activity("active"))
    services.answer("POST", f"{POINTS}/v1/ops/activities/{ACTIVITY_ID}/revisions", activity("active"))
    revised = await browser.submit(
        f"/ops/activities/{ACTIVITY_ID}/revise", {"kind": "multiplier", "multiplier": "3", "scope_channel": "any"}
    )
    assert revised.status_code == 303
    assert sent(services, "POST", f"/v1/ops/activities/{ACTIVITY_ID}/revisions") == [{"rules": {"multiplier": "3"}}]

    services.answer("POST", f"{POINTS}/v1/ops/activities/{ACTIVITY_ID}/budget",
                    {"detail": "add_points: Input should be greater than 0"}, status=422)  # fmt: skip
    refused = await browser.submit(f"/ops/activities/{ACTIVITY_ID}/budget", {"add_points": "0"})
    assert refused.status_code == 422
    assert "add_points: Input should be greater than 0" in refused.text
    assert values_of(refused.text, "add_points") == "0"


async def test_the_report_draws_both_series_with_a_text_fallback_and_the_uplift(
    browser: Browser, services: FakeServices
) -> None:
    await ops(browser, services)
    services.answer("GET", f"{POINTS}/v1/ops/activities/{ACTIVITY_ID}/report", REPORT)
    page = await browser.client.get(f"/ops/activities/{ACTIVITY_ID}/report")
    assert page.status_code == 200
    assert page.text.count('role="img"') == 2  # response rate, spend in CNY
    assert '<rect class="series-0"' in page.text
    assert '<rect class="series-1"' in page.text
    assert '<title id="spend-chart-CNY-title">' in page.text
    assert "Average spend per member: targeted CN¥45.20, holdout CN¥30.00." in page.text  # the <desc>
    assert '<span class="swatch series-0" aria-hidden="true"></span>Targeted' in page.text
    assert '<span class="swatch series-1" aria-hidden="true"></span>Holdout' in page.text
    assert '<td class="num">CN¥45.20</td><td class="num">CN¥30.00</td>' in page.text  # the table fallback
    assert '<td class="num">20.0%</td><td class="num">not offered</td>' in page.text
    assert "CN¥15.20" in page.text
    assert "CN¥13,680.00" in page.text
    assert f'href="/ops/activities/{ACTIVITY_ID}/report.csv"' in page.text
    assert not re.search(r'(x|y|width|height)="-?[0-9]+\.[0-9]{3,}', page.text)  # coordinates to 2 decimals


async def test_the_report_csv_is_served_by_the_console(browser: Browser, services: FakeServices) -> None:
    await ops(browser, services)
    csv = "activity_id,name\r\n" + f"{ACTIVITY_ID},Double points weekend\r\n"
    services.on(
        "GET", f"{POINTS}/v1/ops/activities/{ACTIVITY_ID}/report.csv",
        lambda _r: __import__("httpx").Response(200, text=csv, headers={"content-type": "text/csv"}),
    )  # fmt: skip
    answer = await browser.client.get(f"/ops/activities/{ACTIVITY_ID}/report.csv")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert f'filename="activity-{ACTIVITY_ID}-report.csv"' in answer.headers["content-disposition"]
    assert answer.text == csv


@pytest.mark.parametrize(("role", "partner"), [(Role.MEMBER, ""), (Role.PARTNER, "skyair")])
async def test_members_and_partner_staff_cannot_open_the_growth_pages(
    browser: Browser, services: FakeServices, role: Role, partner: str
) -> None:
    services.answer("GET", f"{POINTS}/v1/members/me/balance", {"available": 0, "pending": 0, "owed": 0})
    services.answer("GET", f"{POINTS}/v1/members/me/lots", {"items": []})
    await browser.sign_in(role, str(uuid.uuid4()) if role is Role.MEMBER else "staff-1", partner)
    before = len(services.calls)
    for path in ("/ops/segments", "/ops/segments/new", f"/ops/segments/{SEGMENT_ID}", "/ops/activities",
                 "/ops/activities/new", f"/ops/activities/{ACTIVITY_ID}", f"/ops/activities/{ACTIVITY_ID}/report",
                 f"/ops/activities/{ACTIVITY_ID}/report.csv"):  # fmt: skip
        assert (await browser.client.get(path)).status_code == 403, path
    for path in ("/ops/segments/new", "/ops/segments/preview", "/ops/activities/new",
                 f"/ops/activities/{ACTIVITY_ID}/activate"):  # fmt: skip
        assert (await browser.submit(path, {"action": "save"})).status_code == 403, path
    assert services.calls[before:] == []  # refused before any service is asked
