"""Attribution in the console: the ops report and leaderboard, staff share links, the per-channel activity report,
members' share buttons and channel preference, and the public /s/{code} that records an open."""

from __future__ import annotations

import re
from typing import Any

import httpx

from loyalty_runtime.auth import Role, TokenAuthority

from .conftest import PARTNERS, POINTS, REDEMPTION, SECRET, Browser, FakeServices, json_of

MEMBER = "5b0c7a52-3f0e-4d8a-9a57-6f1d2e3c4b5a"
ACTIVITY = "8d1e6f0a-93c4-4d0b-b7f1-6a2c9e5d4b33"
CODE = "AbCdEfGhIjKlMnOpQrStUv"
OPEN_ID = "0f0e0d0c-0b0a-4908-8706-050403020100"
BALANCE = {"member_id": MEMBER, "posted": 14345, "pending": 2000, "available": 12345, "owed": 0, "expiring_soon": 0,
           "expiring_within_days": 30, "next_expiry_at": None, "next_expiry_points": 0}  # fmt: skip
LINK_ID = re.compile(r'name="link_id" value="([^"]+)"')


def row(key: str | None, reach: int, responders: int, rate: str, **extra: Any) -> dict[str, Any]:
    return {
        "key": key,
        "reach": reach,
        "opens": extra.get("opens", 0),
        "responders": responders,
        "response_rate": rate,
        "points_granted": extra.get("points", 0),
        "spend": extra.get("spend", []),
    }


BY_CHANNEL = {
    "group": "channel", "from": "2026-11-01", "to": "2026-11-30", "generated_at": "2026-11-30T10:00:00Z",
    "rows": [
        row("wechat", 40, 10, "0.2500", opens=30, points=1000,
            spend=[{"currency": "CNY", "spend_minor": 500000, "incremental_spend_minor": 120000}]),
        row("app", 100, 5, "0.0500"),
        row(None, 3, 1, "0.3333"),
    ],
    "leaderboard": [],
}  # fmt: skip
BY_STAFF = {**BY_CHANNEL, "group": "staff", "rows": [row("ops-2", 12, 6, "0.5000")],
            "leaderboard": [row("ops-2", 12, 6, "0.5000", points=600), row("ops-7", 3, 1, "0.3333")]}  # fmt: skip
LINK = {
    "code": CODE, "url": f"http://points-setting/s/{CODE}", "link_id": "11111111-2222-4333-8444-555555555555",
    "target": {"kind": "activity", "activity_id": ACTIVITY, "activity_name": "Double points weekend",
               "partner_id": None, "offer_id": None},
    "window_days": 7, "channel": "wechat", "campaign_ref": None, "member_id": None, "staff_id": "ops-2",
    "branch_id": "sh-pudong", "created_at": "2026-11-20T08:00:00Z", "opens": 4, "openers": 3, "carried": 1,
}  # fmt: skip


def calls(services: FakeServices, method: str, path: str) -> list[httpx.Request]:
    return [c for c in services.calls if c.method == method and c.url.path == path]


def bearer_of(call: httpx.Request) -> str | None:
    return call.headers.get("authorization")


def subject_of(call: httpx.Request) -> tuple[str, str]:
    claims = TokenAuthority(SECRET).verify(call.headers["authorization"].removeprefix("Bearer "))
    return claims.role.value, claims.subject


# --- ops ----------------------------------------------------------------------------------------------------------


def by_group(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=BY_STAFF if request.url.params.get("group") == "staff" else BY_CHANNEL)


async def test_the_attribution_page_shows_the_rows_the_chart_and_the_staff_leaderboard(
    browser: Browser, services: FakeServices
) -> None:
    services.on("GET", f"{POINTS}/v1/ops/attribution", by_group)
    await browser.sign_in(Role.OPS, "ops-1")
    page = await browser.client.get("/ops/attribution?from=2026-11-01&to=2026-11-30&group=channel")
    assert page.status_code == 200, page.text
    asked = calls(services, "GET", "/v1/ops/attribution")
    assert sorted(c.url.params["group"] for c in asked) == ["channel", "channel", "staff"]
    assert {(c.url.params["from"], c.url.params["to"]) for c in asked} == {("2026-11-01", "2026-11-30")}
    assert services.bearer_subjects()[-3:] == [("ops", "ops-1")] * 3
    rows = page.text.split('data-testid="attribution-rows"')[1].split("</table>")[0]
    for shown in ("WeChat", "The bank&#39;s app", "No channel", "25.0%", "CN¥5,000.00", "CN¥1,200.00", "1,000"):
        assert shown in rows, shown
    assert 'data-testid="response-by-channel"' in page.text
    board = page.text.split('data-testid="leaderboard"')[1].split("</table>")[0]
    assert board.index("ops-2") < board.index("ops-7")
    assert "50.0%" in board
    assert 'href="/ops/attribution.csv?group=channel&amp;from=2026-11-01&amp;to=2026-11-30"' in page.text


async def test_the_csv_is_served_by_the_console_and_a_refused_period_shows_why(
    browser: Browser, services: FakeServices
) -> None:
    services.answer("GET", f"{POINTS}/v1/ops/attribution", {"detail": "to (2026-10-01) is before from (2026-11-01)"},
                    status=422)  # fmt: skip
    services.on(
        "GET",
        f"{POINTS}/v1/ops/attribution.csv",
        lambda _r: httpx.Response(200, text="group,from,to\r\n", headers={"content-type": "text/csv"}),
    )
    await browser.sign_in(Role.OPS, "ops-1")
    page = await browser.client.get("/ops/attribution?from=2026-11-01&to=2026-10-01&group=staff")
    assert page.status_code == 422
    assert '<p class="problem" role="alert">to (2026-10-01) is before from (2026-11-01)</p>' in page.text
    csv = await browser.client.get("/ops/attribution.csv?from=2026-11-01&group=branch&to=nonsense")
    assert csv.status_code == 200
    assert csv.text == "group,from,to\r\n"
    assert 'filename="attribution-branch.csv"' in csv.headers["content-disposition"]
    [asked] = calls(services, "GET", "/v1/ops/attribution.csv")
    assert dict(asked.url.params) == {"group": "branch", "from": "2026-11-01"}, "a date that is no date is not sent"


async def test_staff_make_a_share_link_from_the_activity_page_once(browser: Browser, services: FakeServices) -> None:
    from .test_ops_growth_pages import SKYAIR, activity

    services.answer("GET", f"{PARTNERS}/v1/partners", [SKYAIR])
    services.answer("GET", f"{POINTS}/v1/ops/activities/{ACTIVITY}", activity("active"))
    services.answer("POST", f"{POINTS}/v1/share-links", LINK, status=201)
    await browser.sign_in(Role.OPS, "ops-2")
    page = await browser.client.get(f"/ops/activities/{ACTIVITY}")
    found = LINK_ID.search(page.text)
    assert found, "the share form carries a link id chosen now"
    made = await browser.submit(f"/ops/activities/{ACTIVITY}/share-link",
                                {"link_id": found.group(1), "channel": "wechat", "branch_id": " sh-pudong ",
                                 "window_days": "7"})  # fmt: skip
    assert made.status_code == 200
    assert 'value="http://127.0.0.1:8104/s/AbCdEfGhIjKlMnOpQrStUv"' in made.text, "the console's own address"
    assert "sh-pudong" in made.text
    [sent] = calls(services, "POST", "/v1/share-links")
    assert json_of(sent) == {"link_id": found.group(1), "target": {"kind": "activity", "activity_id": ACTIVITY},
                             "channel": "wechat", "branch_id": "sh-pudong", "window_days": 7}  # fmt: skip
    assert services.bearer_subjects()[-1] == ("ops", "ops-2")

    services.answer("POST", f"{POINTS}/v1/share-links", {"detail": "window_days: Input should be less than or "
                                                                   "equal to 30"}, status=422)  # fmt: skip
    refused = await browser.submit(f"/ops/activities/{ACTIVITY}/share-link", {"link_id": "x", "window_days": "45"})
    assert refused.status_code == 422
    assert "window_days: Input should be less than or equal to 30" in refused.text
    assert json_of(calls(services, "POST", "/v1/share-links")[-1])["window_days"] == 45


async def test_the_activity_report_shows_each_channel_beside_the_holdout(
    browser: Browser, services: FakeServices
) -> None:
    from .test_ops_growth_pages import REPORT

    channels = [
        {"channel": "app", "members": 600, "delivered": 580, "opened": 300, "clicked": 90, "responders": 120,
         "response_rate": "0.2000"},
        {"channel": "wechat", "members": 300, "delivered": 290, "opened": 200, "clicked": 60, "responders": 60,
         "response_rate": "0.2000"},
        {"channel": None, "members": 100, "delivered": 0, "opened": 0, "clicked": 0, "responders": 8,
         "response_rate": "0.0800"},
    ]  # fmt: skip
    services.answer("GET", f"{POINTS}/v1/ops/activities/{ACTIVITY}/report", {**REPORT, "channels": channels})
    await browser.sign_in(Role.OPS, "ops-1")
    page = await browser.client.get(f"/ops/activities/{ACTIVITY}/report")
    assert page.status_code == 200, page.text
    table = page.text.split('data-testid="channels"')[1].split("</table>")[0]
    assert [re.sub(r"\s+", " ", cell) for cell in re.findall(r'<th scope="row">([^<]+)</th>', table)] == [
        "The bank's app", "WeChat", "Holdout"
    ]  # fmt: skip
    for shown in ("580", "300", "90", "20.0%", "8.0%"):
        assert shown in table
    services.answer("GET", f"{POINTS}/v1/ops/activities/{ACTIVITY}/report", REPORT)
    assert 'data-testid="channels"' not in (await browser.client.get(f"/ops/activities/{ACTIVITY}/report")).text


# --- wallet -------------------------------------------------------------------------------------------------------


async def member(browser: Browser, services: FakeServices) -> Browser:
    services.answer("GET", f"{POINTS}/v1/members/me/balance", BALANCE)
    services.answer("GET", f"{POINTS}/v1/members/me/lots", {"items": [], "next_cursor": None})
    services.answer("GET", f"{POINTS}/v1/members/me/history", {"items": [], "next_cursor": None})
    await browser.sign_in(Role.MEMBER, MEMBER)
    return browser


async def test_a_member_shares_an_activity_and_sees_its_link(browser: Browser, services: FakeServices) -> None:
    services.answer("GET", f"{POINTS}/v1/members/me/activities", {"items": [
        {"activity_id": ACTIVITY, "name": "Give-away", "points": 100, "ends_at": "2026-11-30T00:00:00Z",
         "claimed": False},
    ]})  # fmt: skip
    own = {**LINK, "member_id": MEMBER, "staff_id": None, "branch_id": None, "opens": 0, "openers": 0}
    services.answer("POST", f"{POINTS}/v1/share-links", own, status=201)
    services.answer("GET", f"{POINTS}/v1/share-links", {"items": [own]})
    await member(browser, services)
    page = await browser.client.get("/wallet/activities")
    found = LINK_ID.search(page.text)
    assert found
    assert 'action="/wallet/share-links"' in page.text
    body = {"kind": "activity", "activity_id": ACTIVITY, "link_id": found.group(1), "channel": "wechat"}
    for _ in range(2):  # a double submit sends the same link id: the points service makes one link
        shared = await browser.submit("/wallet/share-links", body)
        assert shared.status_code == 200
    assert {json_of(c)["link_id"] for c in calls(services, "POST", "/v1/share-links")} == {found.group(1)}
    assert json_of(calls(services, "POST", "/v1/share-links")[0]) == {
        "link_id": found.group(1), "target": {"kind": "activity", "activity_id": ACTIVITY}, "channel": "wechat"
    }  # fmt: skip
    assert 'id="share-link" type="text" value="http://127.0.0.1:8104/s/AbCdEfGhIjKlMnOpQrStUv"' in shared.text
    assert "Double points weekend" in shared.text
    assert {s for s in services.bearer_subjects() if s[0] == "member"} == {("member", MEMBER)}


async def test_a_member_shares_a_reward_from_its_page(browser: Browser, services: FakeServices) -> None:
    offer = {"partner_id": "skyair", "offer_id": "lounge-pass", "title": "Lounge pass", "description": "",
             "price_points": 4000, "stock": 50, "available": 7, "valid_from": "2026-01-01T00:00:00Z",
             "valid_until": "2026-12-31T00:00:00Z", "status": "on_sale"}  # fmt: skip
    services.answer("GET", f"{REDEMPTION}/v1/catalog/skyair/lounge-pass", offer)
    await member(browser, services)
    page = await browser.client.get("/wallet/catalog/skyair/lounge-pass")
    assert page.status_code == 200, page.text
    assert '<input type="hidden" name="kind" value="offer">' in page.text
    assert '<input type="hidden" name="offer_id" value="lounge-pass">' in page.text
    services.answer("POST", f"{POINTS}/v1/share-links", {"detail": "an offer target names partner_id and offer_id "
                                                                   "only"}, status=422)  # fmt: skip
    services.answer("GET", f"{POINTS}/v1/share-links", {"items": []})
    refused = await browser.submit("/wallet/share-links", {"kind": "offer", "partner_id": "skyair", "offer_id": "",
                                                            "link_id": "not-a-uuid"})  # fmt: skip
    assert refused.status_code == 422
    assert "an offer target names partner_id and offer_id only" in refused.text


async def test_a_member_chooses_its_channel(browser: Browser, services: FakeServices) -> None:
    services.answer("GET", f"{POINTS}/v1/members/me/preferences", {"member_id": MEMBER, "channel": None})
    services.answer("PUT", f"{POINTS}/v1/members/me/preferences", {"member_id": MEMBER, "channel": "sms"})
    await member(browser, services)
    page = await browser.client.get("/wallet/preferences")
    assert "the programme chooses the channel you answer best" in page.text
    assert '<label for="f-channel">Channel</label>' in page.text
    saved = await browser.submit("/wallet/preferences", {"channel": "sms"})
    assert saved.status_code == 303
    cleared = await browser.submit("/wallet/preferences", {"channel": ""})
    assert cleared.status_code == 303
    assert [json_of(c) for c in calls(services, "PUT", "/v1/members/me/preferences")] == [
        {"channel": "sms"}, {"channel": None}
    ]  # fmt: skip
    wrong = await browser.submit("/wallet/preferences", {"channel": "pigeon"})
    assert wrong.status_code == 422
    assert "Choose one of the channels listed." in wrong.text
    assert len(calls(services, "PUT", "/v1/members/me/preferences")) == 2
    services.answer("GET", f"{POINTS}/v1/members/me/preferences", {"member_id": MEMBER, "channel": "wechat"})
    now = (await browser.client.get("/wallet/preferences")).text.split('data-testid="current-channel">')[1]
    assert now.split("</p>")[0].strip() == "Now: WeChat."


# --- the public link ------------------------------------------------------------------------------------------------


def opened(target: dict[str, Any], open_id: str | None = OPEN_ID) -> Any:
    return lambda _r: httpx.Response(202, json={"open_id": open_id, "target": target})


async def test_an_anonymous_open_is_recorded_then_sign_in_claims_it_and_goes_to_the_activity(
    browser: Browser, services: FakeServices
) -> None:
    services.on("POST", f"{POINTS}/v1/share-links/{CODE}/opens", opened(LINK["target"]))
    answer = await browser.client.get(f"/s/{CODE}")
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/signin?next=%2Fs%2F{CODE}%3Fo%3D{OPEN_ID}"
    assert answer.headers["referrer-policy"] == "no-referrer"
    [anonymous] = calls(services, "POST", f"/v1/share-links/{CODE}/opens")
    assert bearer_of(anonymous) is None
    assert anonymous.content == b""

    await member(browser, services)
    back = await browser.client.get(f"/s/{CODE}?o={OPEN_ID}")
    assert back.status_code == 303
    assert back.headers["location"] == "/wallet/activities"
    signed = calls(services, "POST", f"/v1/share-links/{CODE}/opens")[-1]
    assert json_of(signed) == {"open_id": OPEN_ID}
    assert subject_of(signed) == ("member", MEMBER)


async def test_an_offer_link_goes_to_the_reward_and_an_unknown_link_says_so(
    browser: Browser, services: FakeServices
) -> None:
    offer = {"kind": "offer", "activity_id": None, "activity_name": None, "partner_id": "skyair",
             "offer_id": "lounge-pass"}  # fmt: skip
    services.on("POST", f"{POINTS}/v1/share-links/{CODE}/opens", opened(offer, None))
    await member(browser, services)
    answer = await browser.client.get(f"/s/{CODE}?o=not-an-id")
    assert answer.headers["location"] == "/wallet/catalog/skyair/lounge-pass"
    assert calls(services, "POST", f"/v1/share-links/{CODE}/opens")[-1].content == b"", "a broken open id is dropped"
    missing = await browser.client.get("/s/ZZZZZZZZZZZZZZZZZZZZZZ")
    assert missing.status_code == 404
    assert "This share link leads nowhere" in missing.text
    shapeless = await browser.client.get("/s/short")
    assert shapeless.status_code == 404
    assert not calls(services, "POST", "/v1/share-links/short/opens"), "a code of no shape is never asked for"
