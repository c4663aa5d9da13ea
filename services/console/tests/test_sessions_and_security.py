"""Sign-in, sessions, CSRF, headers and the person's own token: what a careless or hostile caller meets."""

from __future__ import annotations

import uuid

import httpx

from console.web import SESSION_COOKIE
from loyalty_runtime.auth import Role

from .conftest import POINTS, Browser, FakeServices

BALANCE = {"member_id": "", "posted": 120, "pending": 20, "available": 100, "owed": 0, "expiring_soon": 0,
           "expiring_within_days": 30, "next_expiry_at": None, "next_expiry_points": 0}  # fmt: skip


def member_services(services: FakeServices, member: str) -> None:
    services.answer("GET", f"{POINTS}/v1/members/me/balance", {**BALANCE, "member_id": member})
    services.answer("GET", f"{POINTS}/v1/members/me/lots", {"items": [], "next_cursor": None})
    services.answer("GET", f"{POINTS}/v1/members/me/history", {"items": [], "next_cursor": None})


async def test_a_page_without_a_session_sends_the_person_to_sign_in_and_back(browser: Browser) -> None:
    answer = await browser.client.get("/wallet?tab=1")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/signin?next=%2Fwallet%3Ftab%3D1"


async def test_the_session_cookie_is_http_only_and_same_site_and_the_bearer_is_the_members_own(
    browser: Browser, services: FakeServices
) -> None:
    member = str(uuid.uuid4())
    member_services(services, member)
    answer = await browser.sign_in(Role.MEMBER, member)
    cookie = next(h for h in answer.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE))
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    page = await browser.client.get("/wallet")
    assert page.status_code == 200
    assert 'data-testid="available">100<' in page.text
    assert set(services.bearer_subjects()[-2:]) == {("member", member)}


async def test_every_page_carries_a_strict_content_security_policy(browser: Browser) -> None:
    page = await browser.client.get("/signin")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert page.headers["x-frame-options"] == "DENY"
    assert "<script>" not in page.text  # no inline code for the policy to allow


async def test_a_form_without_its_csrf_token_is_refused(browser: Browser, services: FakeServices) -> None:
    member = str(uuid.uuid4())
    member_services(services, member)
    await browser.sign_in(Role.MEMBER, member)
    refused = await browser.client.post("/signout", data={})
    assert refused.status_code == 403
    forged = await browser.client.post("/signout", data={"csrf_token": "x" * 43})
    assert forged.status_code == 403
    assert (await browser.client.get("/wallet")).status_code == 200  # still signed in


async def test_sign_in_without_the_sign_in_forms_token_is_refused(browser: Browser) -> None:
    refused = await browser.client.post("/signin/local", data={"role": "ops", "subject": "ops-1"})
    assert refused.status_code == 403
    assert SESSION_COOKIE not in refused.cookies


async def test_signing_out_ends_the_session_for_good(browser: Browser, services: FakeServices) -> None:
    member = str(uuid.uuid4())
    member_services(services, member)
    await browser.sign_in(Role.MEMBER, member)
    stolen = browser.client.cookies[SESSION_COOKIE]
    assert (await browser.submit("/signout", {})).status_code == 303
    browser.client.cookies.set(SESSION_COOKIE, stolen)
    assert (await browser.client.get("/wallet")).status_code == 303


async def test_a_member_cannot_open_the_ops_console_or_the_portal(browser: Browser, services: FakeServices) -> None:
    member = str(uuid.uuid4())
    member_services(services, member)
    await browser.sign_in(Role.MEMBER, member)
    for page in ("/ops", "/portal"):
        answer = await browser.client.get(page)
        assert answer.status_code == 403
        assert 'href="/wallet"' in answer.text


async def test_sign_in_never_redirects_to_another_site(browser: Browser) -> None:
    page = await browser.client.get("/signin")
    token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        browser.client.cookies.delete(SESSION_COOKIE)
        answer = await browser.client.post(
            "/signin/local", data={"csrf_token": token, "role": "ops", "subject": "ops-1", "next": target}
        )
        assert answer.headers["location"] == "/ops"


async def test_a_partner_staff_sign_in_needs_its_partner(browser: Browser) -> None:
    page = await browser.client.get("/signin")
    token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    answer = await browser.client.post("/signin/local", data={"csrf_token": token, "role": "partner", "subject": "s"})
    assert answer.headers["location"] == "/signin"
    assert SESSION_COOKIE not in answer.cookies


async def test_a_service_that_is_down_gives_a_page_that_says_so_with_retry_after(
    browser: Browser, services: FakeServices
) -> None:
    member = str(uuid.uuid4())
    member_services(services, member)
    await browser.sign_in(Role.MEMBER, member)

    def down(_request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    services.on("GET", f"{POINTS}/v1/members/me/balance", down)
    answer = await browser.client.get("/wallet")
    assert answer.status_code == 503
    assert answer.headers["retry-after"]
    assert "points is not reachable" in answer.text


async def test_an_expired_token_sends_the_person_to_sign_in_again(browser: Browser, services: FakeServices) -> None:
    member = str(uuid.uuid4())
    member_services(services, member)
    await browser.sign_in(Role.MEMBER, member)
    services.answer("GET", f"{POINTS}/v1/members/me/balance", {"detail": "invalid bearer token: expired"}, 401)
    answer = await browser.client.get("/wallet")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/signin?next=%2Fwallet&expired=1")


async def test_the_language_comes_from_the_browser_and_the_persons_choice_wins(browser: Browser) -> None:
    chinese = await browser.client.get("/signin", headers={"accept-language": "zh-CN,zh;q=0.9,en;q=0.5"})
    assert '<html lang="zh-CN">' in chinese.text
    assert "登录" in chinese.text
    token = chinese.text.split('name="csrf_token" value="')[1].split('"')[0]
    chosen = await browser.client.post("/locale", data={"csrf_token": token, "locale": "en", "back": "/signin"})
    assert chosen.status_code == 303
    english = await browser.client.get("/signin", headers={"accept-language": "zh-CN"})
    assert '<html lang="en">' in english.text
    assert "Sign in" in english.text


async def test_the_consoles_own_database_gone_gives_a_503_page_with_retry_after(
    console_app, browser: Browser, services: FakeServices
) -> None:
    member = str(uuid.uuid4())
    member_services(services, member)
    await browser.sign_in(Role.MEMBER, member)
    await console_app.state.console.sessions._pool.close()  # the sessions' database is gone
    answer = await browser.client.get("/wallet")
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "5"
    assert "cannot reach its database" in answer.text
