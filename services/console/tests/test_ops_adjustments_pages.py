"""Ops adjustments and the audit log in the console: what the pages show, what the forms send, four eyes on the
page, refusals with the service's reason, the tokens the calls carry, and the merged search of three services."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from loyalty_runtime.auth import Role

from .conftest import PARTNERS, POINTS, REDEMPTION, Browser, FakeServices, json_of
from .test_ops_pages import MEMBER as LI_NA
from .test_ops_pages import member_services

MEMBER = "5b0c7a52-3f0e-4d8a-9a51-6f1d2e3c4b5a"
MINE = "11111111-2222-4333-8444-555555555555"
THEIRS = "66666666-7777-4888-9999-000000000000"
ADJUSTMENT_ID_FIELD = re.compile(r'name="adjustment_id" value="([^"]+)"')
URL = f"{POINTS}/v1/ops/adjustments"


def adjustment(adjustment_id: str, requested_by: str, **changes: Any) -> dict[str, Any]:
    return {
        "adjustment_id": adjustment_id, "member_id": MEMBER, "direction": "credit", "points": 5000,
        "reason": "service_recovery", "note": "lost purchase", "status": "pending", "needs_approval": True,
        "threshold": 1000, "requested_by": requested_by, "requested_at": "2026-02-10T08:00:00Z", "decided_by": None,
        "decided_at": None, "decision_note": None, "posted_at": None, "transfer_id": None, **changes,
    }  # fmt: skip


def listing(services: FakeServices, pending: list[dict[str, Any]], recent: list[dict[str, Any]]) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        items = pending if request.url.params.get("status") == "pending" else recent + pending
        return httpx.Response(200, json={"items": items, "next_before": None, "threshold": 1000})

    services.on("GET", URL, answer)


def sent(services: FakeServices, method: str, url: str) -> list[httpx.Request]:
    return [c for c in services.calls if c.method == method and str(c.url).split("?")[0] == url]


@pytest.fixture
async def ops(browser: Browser, services: FakeServices) -> Browser:
    posted = adjustment("aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee", "ops-2", status="posted", decided_by="ops-3")
    listing(
        services, [adjustment(MINE, "ops-1"), adjustment(THEIRS, "ops-2", direction="debit", points=1500)], [posted]
    )
    await browser.sign_in(Role.OPS, "ops-1", display="Olivia Chen")
    services.calls.clear()
    return browser


async def test_the_page_hides_approve_and_reject_from_the_requester_and_offers_them_for_others(ops: Browser) -> None:
    page = await ops.client.get("/ops/adjustments")
    assert page.status_code == 200
    assert "Up to 1,000 points it posts at once" in page.text
    assert f'action="/ops/adjustments/{THEIRS}/approve"' in page.text
    assert f'action="/ops/adjustments/{THEIRS}/reject"' in page.text
    assert f'action="/ops/adjustments/{MINE}/approve"' not in page.text
    assert "Your request: another ops user decides." in page.text
    assert "−1,500" in page.text
    recent = page.text.split('id="recent-title"')[1]
    assert "Posted" in recent
    assert "ops-3" in recent
    assert 'href="/ops/adjustments"' in page.text  # in the nav
    assert 'href="/ops/audit"' in page.text


async def test_a_request_sends_the_form_id_and_a_refusal_shows_the_available_points(
    ops: Browser, services: FakeServices
) -> None:
    page = await ops.client.get(f"/ops/adjustments?member={MEMBER}")
    assert f'value="{MEMBER}"' in page.text
    adjustment_id = ADJUSTMENT_ID_FIELD.search(page.text)[1]  # type: ignore[index]
    form = {"member_id": MEMBER, "points": "2,000", "direction": "debit", "reason": "fraud_reversal", "note": " ",
            "adjustment_id": adjustment_id}  # fmt: skip
    missing = await ops.submit("/ops/adjustments", form)
    assert missing.status_code == 422
    assert "the note is required" in missing.text
    assert sent(services, "POST", URL) == []

    refusal = {"detail": f"member {MEMBER} has 800 points available; a debit of 2000 cannot post", "available": 800}
    services.answer("POST", URL, refusal, 409)
    refused = await ops.submit("/ops/adjustments", {**form, "note": "chargeback on order 77"})
    assert refused.status_code == 409
    assert "has 800 points available" in refused.text
    assert f'name="adjustment_id" value="{adjustment_id}"' in refused.text, "the same id: a retry requests it once"
    assert json_of(sent(services, "POST", URL)[-1]) == {
        "adjustment_id": adjustment_id, "member_id": MEMBER, "direction": "debit", "points": 2000,
        "reason": "fraud_reversal", "note": "chargeback on order 77",
    }  # fmt: skip

    services.answer("POST", URL, adjustment(adjustment_id, "ops-1", direction="debit", points=2000), 201)
    done = await ops.submit("/ops/adjustments", {**form, "note": "chargeback on order 77"})
    assert (done.status_code, done.headers["location"]) == (303, "/ops/adjustments")
    after = await ops.client.get("/ops/adjustments")
    assert "A second ops user must approve it before it posts." in after.text
    assert {who for who in services.bearer_subjects()} == {("ops", "ops-1")}


async def test_approve_calls_the_service_and_a_refusal_shows_its_reason(ops: Browser, services: FakeServices) -> None:
    services.answer("POST", f"{URL}/{THEIRS}/approve", adjustment(THEIRS, "ops-2", status="posted"))
    done = await ops.submit(f"/ops/adjustments/{THEIRS}/approve", {})
    assert (done.status_code, done.headers["location"]) == (303, "/ops/adjustments")
    assert len(sent(services, "POST", f"{URL}/{THEIRS}/approve")) == 1

    reason = f"ops-1 requested adjustment {MINE}: a second ops user must approve or reject it"
    services.answer("POST", f"{URL}/{MINE}/reject", {"detail": reason}, 403)
    refused = await ops.submit(f"/ops/adjustments/{MINE}/reject", {})
    assert refused.status_code == 403
    assert "a second ops user must approve or reject it" in refused.text


async def test_a_members_page_links_to_adjusting_that_member(ops: Browser, services: FakeServices) -> None:
    member_services(services)
    page = await ops.client.get(f"/ops/members/{LI_NA}")
    assert f'href="/ops/adjustments?member={LI_NA}"' in page.text


def audit_entry(seq: int, at: str, action: str, **changes: Any) -> dict[str, Any]:
    return {"seq": seq, "service": "x", "at": at, "actor": "ops-2", "role": "ops", "action": action,
            "subject": f"partner:p{seq}", "before": None, "after": None, "note": None, "request_id": "r",
            "details": {}, **changes}  # fmt: skip


async def test_the_audit_log_merges_the_three_services_newest_first_with_a_diff_and_one_cursor_each(
    ops: Browser, services: FakeServices
) -> None:
    services.answer("GET", f"{POINTS}/v1/ops/audit", {"items": [
        audit_entry(9, "2026-02-10T10:00:00Z", "adjustment.approved", before={"status": "pending", "points": 5000},
                    after={"status": "approved", "points": 5000}),
        audit_entry(8, "2026-02-10T07:00:00Z", "adjustment.requested"),
    ], "next_before": 8})  # fmt: skip
    services.answer("GET", f"{PARTNERS}/v1/ops/audit", {"items": [
        audit_entry(3, "2026-02-10T09:00:00Z", "POST /v1/ops/partners/{partner_id}/keys",
                    details={"status": 403, "refusal": "not allowed"}),
    ], "next_before": None})  # fmt: skip
    services.answer("GET", f"{REDEMPTION}/v1/ops/audit", {"detail": "the database is unreachable"}, 503)
    page = await ops.client.get("/ops/audit", params={"actor": "ops-2", "action": "adjustment.", "from": "2026-02-10",
                                                      "to": "2026-02-10"})  # fmt: skip
    assert page.status_code == 200
    text = page.text
    assert text.index("adjustment.approved") < text.index("/v1/ops/partners/{partner_id}/keys")
    assert text.index("/v1/ops/partners/{partner_id}/keys") < text.index("adjustment.requested")
    assert "<del>pending</del> → <ins>approved</ins>" in text
    assert "<code>points</code>" not in text, "an unchanged field is not shown"
    assert "not allowed" in text
    assert "Redemption unavailable" in text
    asked = sent(services, "GET", f"{POINTS}/v1/ops/audit")[-1].url.params
    assert (asked["actor"], asked["action"]) == ("ops-2", "adjustment.")
    assert (asked["from"], asked["to"]) == ("2026-02-10T00:00:00Z", "2026-02-11T00:00:00Z")
    assert "before=points%3A8" in text  # partners had nothing older: only points goes on

    await ops.client.get("/ops/audit", params={"before": "points:8"})
    assert sent(services, "GET", f"{POINTS}/v1/ops/audit")[-1].url.params["before"] == "8"
    assert len(sent(services, "GET", f"{PARTNERS}/v1/ops/audit")) == 1, "a service with nothing older is not asked"
