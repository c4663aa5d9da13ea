"""The portal's webhooks page: endpoints, the secret shown once, the failing banner, the delivery log and replay."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI

from loyalty_runtime.auth import Role

from .conftest import PARTNERS, Browser, FakeServices, json_of
from .test_portal_pages import STATEMENT

PARTNER = "skyair"
OWN = f"{PARTNERS}/v1/partners/{PARTNER}"
EP = "0b9f3c1e-1111-4c5a-9a7e-3d2b1c0a9f01"
DELIVERY = "5c2e7d10-2222-4f3b-8e1a-7a6b5c4d3e02"
SECRET = "whsec_" + "QUJD" * 8


def endpoint(**changes: object) -> dict[str, object]:
    return {
        "endpoint_id": EP, "partner_id": PARTNER, "url": "https://hooks.skyair.example/loyalty", "description": "ops",
        "event_types": ["statement.finalised", "order.placed"], "enabled": True, "disabled_reason": None,
        "disabled_by": None, "disabled_at": None, "failing": False, "last_success_at": "2026-11-19T08:00:00Z",
        "previous_secret_signs_until": None, "created_at": "2026-11-01T08:00:00Z", "created_by": "staff-1",
        **changes,
    }  # fmt: skip


def delivery(**changes: object) -> dict[str, object]:
    return {
        "delivery_id": DELIVERY, "endpoint_id": EP, "url": "https://hooks.skyair.example/loyalty",
        "message_id": "msg_abc", "event_type": "order.placed", "status": "failed", "created_at": "2026-11-19T08:00:00Z",
        "attempts": 8, "last_status": 500, "last_error": None, "last_attempt_at": "2026-11-20T08:00:00Z",
        "next_attempt_at": None, "delivered_at": None, **changes,
    }  # fmt: skip


@pytest.fixture
async def staff(browser: Browser, services: FakeServices, console_app: FastAPI) -> Browser:
    services.answer("GET", f"{OWN}/statements", STATEMENT)
    services.answer("GET", f"{OWN}/purchases", {"items": [], "next_cursor": None})
    await browser.sign_in(Role.PARTNER, "staff-1", PARTNER)
    services.answer("GET", f"{OWN}/webhook-endpoints", [endpoint()])
    services.answer("GET", f"{OWN}/webhook-deliveries", {"deliveries": [delivery()], "next_cursor": "c-1"})
    services.calls.clear()
    return browser


def form_of(page: httpx.Response, action: str) -> dict[str, str]:
    form = page.text.split(f'action="{action}"')[1].split("</form>")[0]
    return dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', form))


async def test_the_page_lists_endpoints_deliveries_and_a_banner_for_a_failing_endpoint(
    staff: Browser, services: FakeServices
) -> None:
    failing = endpoint(enabled=False, failing=True, disabled_by="webhook-dispatcher",
                       disabled_reason="every attempt failed for 24 h (last: 500)")  # fmt: skip
    services.answer("GET", f"{OWN}/webhook-endpoints", [failing])

    page = await staff.client.get("/portal/webhooks?status=failed")

    assert page.status_code == 200
    assert "We stopped sending to https://hooks.skyair.example/loyalty: every attempt failed for 24 h" in page.text
    assert "statement.finalised, order.placed" in page.text
    assert ">Enable</button>" in page.text
    assert re.search(r'<td class="num">8</td>\s*<td>500', page.text)
    assert "cursor=c-1" in page.text
    listed = next(c for c in services.calls if c.url.path.endswith("/webhook-deliveries"))
    assert listed.url.params["status"] == "failed"
    assert {c.headers["authorization"] for c in services.calls} == {services.calls[0].headers["authorization"]}


async def test_adding_an_endpoint_shows_its_secret_once_and_a_resent_form_adds_nothing(
    staff: Browser, services: FakeServices
) -> None:
    services.answer("POST", f"{OWN}/webhook-endpoints", {**endpoint(), "secret": SECRET}, 201)
    page = await staff.client.get("/portal/webhooks")
    fields = form_of(page, "/portal/webhooks/endpoints")
    assert re.fullmatch(r"[0-9a-f-]{36}", fields["endpoint_id"])

    body = {**fields, "url": "https://hooks.skyair.example/loyalty", "event_types": ["order.placed", "order.settled"]}
    made = await staff.client.post("/portal/webhooks/endpoints", data=body)

    assert made.status_code == 200
    assert f'<p class="secret" id="new-secret">{SECRET}</p>' in made.text
    assert made.headers["cache-control"] == "no-store"
    sent = json_of(services.calls[-1])
    assert sent == {"url": "https://hooks.skyair.example/loyalty", "event_types": ["order.placed", "order.settled"],
                    "description": "", "endpoint_id": fields["endpoint_id"]}  # fmt: skip
    services.answer("POST", f"{OWN}/webhook-endpoints", {**endpoint(), "secret": None}, 200)
    again = await staff.client.post("/portal/webhooks/endpoints", data=body)
    assert again.status_code == 303
    assert SECRET not in (await staff.client.get("/portal/webhooks")).text


async def test_a_refused_url_is_shown_on_the_form_with_what_was_typed(staff: Browser, services: FakeServices) -> None:
    services.on("POST", f"{OWN}/webhook-endpoints", lambda _r: httpx.Response(
        422, json={"detail": "the URL must use https (plain http only to loopback, outside production)"}))  # fmt: skip
    answer = await staff.submit("/portal/webhooks/endpoints",
                                {"url": "http://hooks.skyair.example/x", "event_types": "order.placed"})  # fmt: skip
    assert answer.status_code == 422
    assert "the URL must use https" in answer.text
    assert 'value="http://hooks.skyair.example/x"' in answer.text
    none = await staff.submit("/portal/webhooks/endpoints", {"url": "https://hooks.skyair.example/x"})
    assert none.status_code == 422
    assert "Choose at least one event" in none.text
    assert len([c for c in services.calls if c.method == "POST"]) == 1


async def test_disabling_rotating_and_replaying_call_the_partners_api_for_the_own_partner(
    staff: Browser, services: FakeServices
) -> None:
    services.answer("PATCH", f"{OWN}/webhook-endpoints/{EP}", endpoint(enabled=False))
    services.answer(
        "POST",
        f"{OWN}/webhook-endpoints/{EP}/secret",
        {"endpoint_id": EP, "secret": SECRET, "previous_secret_signs_until": "2026-11-21T08:00:00Z"},
    )
    services.answer("POST", f"{OWN}/webhook-deliveries/{DELIVERY}/replay", delivery(status="pending"), 202)

    disabled = await staff.submit(f"/portal/webhooks/endpoints/{EP}/enabled", {"enabled": "false"})
    assert disabled.status_code == 303
    assert json_of(services.calls[-1]) == {"enabled": False}
    rotated = await staff.submit(f"/portal/webhooks/endpoints/{EP}/secret", {})
    assert SECRET in rotated.text
    assert "two signatures" in rotated.text
    replayed = await staff.submit(f"/portal/webhooks/deliveries/{DELIVERY}/replay", {})
    assert replayed.headers["location"] == f"/portal/webhooks/deliveries/{DELIVERY}"
    assert [c.url.path for c in services.calls if c.method != "GET"] == [
        f"/v1/partners/{PARTNER}/webhook-endpoints/{EP}", f"/v1/partners/{PARTNER}/webhook-endpoints/{EP}/secret",
        f"/v1/partners/{PARTNER}/webhook-deliveries/{DELIVERY}/replay"]  # fmt: skip


async def test_a_replay_to_a_disabled_endpoint_shows_the_reason(staff: Browser, services: FakeServices) -> None:
    services.on("POST", f"{OWN}/webhook-deliveries/{DELIVERY}/replay", lambda _r: httpx.Response(
        409, json={"detail": "the endpoint is disabled: enable it first, then replay"}))  # fmt: skip
    answer = await staff.submit(f"/portal/webhooks/deliveries/{DELIVERY}/replay", {})
    assert answer.status_code == 409
    assert "enable it first" in answer.text


async def test_a_delivery_shows_its_attempts(staff: Browser, services: FakeServices) -> None:
    attempts = [{"attempt": 1, "started_at": "2026-11-19T08:00:00Z", "status_code": 500, "error": None,
                 "duration_ms": 31},
                {"attempt": 2, "started_at": "2026-11-19T08:00:05Z", "status_code": None,
                 "error": "no answer within 10 s", "duration_ms": 10000}]  # fmt: skip
    services.answer(
        "GET",
        f"{OWN}/webhook-deliveries/{DELIVERY}",
        {**delivery(), "body": '{"type": "order.placed"}', "attempt_log": attempts},
    )
    page = await staff.client.get(f"/portal/webhooks/deliveries/{DELIVERY}")
    assert page.status_code == 200
    assert "msg_abc" in page.text
    assert "no answer within 10 s" in page.text
    assert (await staff.client.get("/portal/webhooks/deliveries/not-a-uuid")).status_code in (404, 422)


async def test_members_and_ops_get_403_on_the_webhooks_page(browser: Browser, services: FakeServices) -> None:
    await browser.sign_in(Role.MEMBER, "5b0c1a2e-0000-4000-8000-00000000000a")
    services.calls.clear()
    assert (await browser.client.get("/portal/webhooks")).status_code == 403
    assert services.calls == []
