"""Daily earnings in the wallet, and share cards for anyone with the link: what the pages show, what the forms send,
that the public pages need no session and carry no token, and that the card's image escapes what a member typed."""

from __future__ import annotations

import re
import uuid
from xml.etree import ElementTree

import httpx
import pytest

from console.pages.share import SVG_POLICY
from loyalty_runtime.auth import Role, TokenAuthority

from .conftest import POINTS, SECRET, Browser, FakeServices, json_of
from .test_wallet_pages import BALANCE

MEMBER = "5b0c7a52-3f0e-4d8a-9a51-6f1d2e3c4b5a"
TOKEN = "Qm9vLUJvby1zaGFyZS1jYXJkLXRva2Vu"  # 32 characters, the shape of secrets.token_urlsafe(24)
CARD_ID = "7d3c2b1a-0f9e-4d8c-8b7a-6f5e4d3c2b1a"
CARD_KEY = re.compile(r'name="card_id" value="([^"]+)"')
EARNINGS_URL = f"{POINTS}/v1/members/me/daily-earnings"
CARDS_URL = f"{POINTS}/v1/members/me/share-cards"


def day(date: str, earned: int = 0, taken_back: int = 0, **by_source: int) -> dict:
    sources = {s: 0 for s in ("partner", "card", "activity", "gift", "tier", "other")} | by_source
    return {"date": date, "earned": earned, "taken_back": taken_back, "net": earned - taken_back,
            "by_source": sources, "by_partner": {"skymall": by_source.get("partner", 0)}}  # fmt: skip


DAYS = [
    day("2026-11-20", 1_480, 200, partner=1_080, card=200),
    day("2026-11-19", 650, 0, card=150, activity=500),
    *(day(f"2026-11-{d}") for d in (18, 17, 16, 15, 14)),
]
EARNINGS = {"member_id": MEMBER, "time_zone": "Asia/Shanghai", "as_of": "2026-11-20T06:00:00Z", "days": DAYS,
            "totals": {"month_to_date": 4_321, "lifetime": 98_765}}  # fmt: skip
CARD = {"card_id": CARD_ID, "date": "2026-11-20", "display_name": "Ada", "points": 1_280,
        "sources": {"partner": 1_080, "card": 200}, "created_at": "2026-11-20T06:00:00Z"}  # fmt: skip


@pytest.fixture
async def member(browser: Browser, services: FakeServices) -> Browser:
    services.answer("GET", f"{POINTS}/v1/members/me/balance", BALANCE)
    services.answer("GET", f"{POINTS}/v1/members/me/lots", {"items": [], "next_cursor": None})
    services.answer("GET", f"{POINTS}/v1/members/me/history", {"items": [], "next_cursor": None})
    services.answer("GET", EARNINGS_URL, EARNINGS)
    services.answer("GET", CARDS_URL, {"items": [CARD]})
    await browser.sign_in(Role.MEMBER, MEMBER)
    return browser


def sent(services: FakeServices, method: str, url: str) -> list[httpx.Request]:
    return [c for c in services.calls if c.method == method and str(c.url).split("?")[0] == url]


async def test_the_page_shows_yesterday_and_today_by_source_the_last_days_and_the_totals(
    member: Browser, services: FakeServices
) -> None:
    page = await member.client.get("/wallet/earnings")
    assert page.status_code == 200
    assert sent(services, "GET", EARNINGS_URL)[-1].url.params["days"] == "7"
    for shown in ("1,280", "1,480 earned, 200 taken back", "650", "4,321", "98,765", "This month", "Since you joined"):
        assert shown in page.text, shown
    assert 'data-testid="sources-chart"' in page.text
    chart = page.text.split('data-testid="sources-chart"')[1].split("</svg>")[0]
    for source in ("Partners", "Card", "Activities"):
        assert f">{source}</text>" in chart, "sources that moved either day"
    assert ">Gifts</text>" not in chart, "a source that moved neither day takes no room"
    assert "Nov 14, 2026" in page.text, "the last seven days"
    assert 'href="/wallet/earnings" aria-current="page"' in page.text
    assert f"/wallet/earnings/share-cards/{CARD_ID}/revoke" in page.text
    assert TOKEN not in page.text
    mine = sent(services, "GET", EARNINGS_URL) + sent(services, "GET", CARDS_URL)
    tokens = {TokenAuthority(SECRET).verify(c.headers["authorization"].removeprefix("Bearer ")) for c in mine}
    assert {(t.role, t.subject) for t in tokens} == {(Role.MEMBER, MEMBER)}, "the member's own token"


async def test_making_a_card_sends_the_choices_and_shows_the_link_once(member: Browser, services: FakeServices):
    services.answer("POST", CARDS_URL, {**CARD, "url_token": TOKEN}, 201)
    page = await member.client.get("/wallet/earnings")
    key = CARD_KEY.search(page.text)
    assert key
    assert 'value="2026-11-20" checked' in page.text, "today is chosen when it earned points"
    made = await member.submit("/wallet/earnings/share-cards", {
        "card_id": key[1], "day": "2026-11-19", "display_name": "  Ada  ", "show_sources": "1",
    })  # fmt: skip
    assert made.status_code == 200
    assert json_of(sent(services, "POST", CARDS_URL)[-1]) == {
        "card_id": key[1], "date": "2026-11-19", "display_name": "Ada", "show_sources": True,
    }  # fmt: skip
    assert f'value="http://127.0.0.1:8104/share/{TOKEN}" readonly' in made.text
    assert 'data-copy="share-link"' in made.text
    assert CARD_KEY.search(made.text)[1] != key[1], "the next card gets its own id"
    again = await member.client.get("/wallet/earnings")
    assert TOKEN not in again.text, "the link is shown once"


async def test_a_blank_name_shows_none_and_a_double_submit_says_the_link_was_shown(
    member: Browser, services: FakeServices
):
    services.answer("POST", CARDS_URL, {**CARD, "url_token": None}, 200)
    made = await member.submit("/wallet/earnings/share-cards", {"card_id": CARD_ID, "day": "2026-11-20"})
    assert json_of(sent(services, "POST", CARDS_URL)[-1]) == {
        "card_id": CARD_ID, "date": "2026-11-20", "display_name": None, "show_sources": False,
    }  # fmt: skip
    assert "This card was made already and its link was shown then." in made.text


async def test_a_refused_card_shows_the_reason_on_the_form(member: Browser, services: FakeServices):
    refusal = "2026-11-19 has 0 points net: a card shows a day that earned points"
    services.answer("POST", CARDS_URL, {"detail": refusal, "reason": "nothing_to_share"}, 422)
    answer = await member.submit("/wallet/earnings/share-cards", {"card_id": CARD_ID, "day": "2026-11-19",
                                                                  "display_name": "Ada"})  # fmt: skip
    assert answer.status_code == 422
    assert f'role="alert">{refusal}<' in answer.text
    assert 'value="Ada"' in answer.text
    assert CARD_KEY.search(answer.text)[1] == CARD_ID, "the same card may be tried again"

    full = "you have 20 live share cards: revoke one before making another"
    services.answer("POST", CARDS_URL, {"detail": full, "reason": "too_many_cards"}, 409)
    answer = await member.submit("/wallet/earnings/share-cards", {"card_id": CARD_ID, "day": "2026-11-19"})
    assert answer.status_code == 409
    assert full in answer.text
    assert CARD_KEY.search(answer.text)[1] != CARD_ID

    calls = len(sent(services, "POST", CARDS_URL))
    nothing = await member.submit("/wallet/earnings/share-cards", {"card_id": CARD_ID})
    assert nothing.status_code == 422
    assert "Choose the day to share." in nothing.text
    assert len(sent(services, "POST", CARDS_URL)) == calls


async def test_revoking_a_card_deletes_it_and_says_its_link_shows_nothing(member: Browser, services: FakeServices):
    services.answer("DELETE", f"{CARDS_URL}/{CARD_ID}", None, 204)
    answer = await member.submit(f"/wallet/earnings/share-cards/{CARD_ID}/revoke", {})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/wallet/earnings"
    assert len(sent(services, "DELETE", f"{CARDS_URL}/{CARD_ID}")) == 1
    page = await member.client.get("/wallet/earnings")
    assert "The card is revoked: its link shows nothing any more." in page.text

    forged = await member.client.post(f"/wallet/earnings/share-cards/{CARD_ID}/revoke", data={"csrf_token": "x"})
    assert forged.status_code == 403
    assert len(sent(services, "DELETE", f"{CARDS_URL}/{CARD_ID}")) == 1


SHARED = {"programme": "Alliance Points", "date": "2026-11-20", "points": 1_280, "display_name": "Ada",
          "sources": {"partner": 1_080, "card": 200}}  # fmt: skip


async def test_the_public_card_needs_no_session_and_asks_without_a_token(browser: Browser, services: FakeServices):
    services.answer("GET", f"{POINTS}/v1/share-cards/{TOKEN}", SHARED)
    page = await browser.client.get(f"/share/{TOKEN}")
    assert page.status_code == 200
    assert "Ada earned 1,280 points on Nov 20, 2026" in page.text
    assert '<span>Partners</span> <span class="num">1,080</span>' in page.text
    assert f'<meta property="og:image" content="http://127.0.0.1:8104/share/{TOKEN}.svg">' in page.text
    assert "Sign out" not in page.text
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-robots-tag"].startswith("noindex")
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "script-src 'self'" in page.headers["content-security-policy"]
    [call] = sent(services, "GET", f"{POINTS}/v1/share-cards/{TOKEN}")
    assert "authorization" not in call.headers


async def test_a_revoked_unknown_or_malformed_link_answers_the_same_404(browser: Browser, services: FakeServices):
    services.answer("GET", f"{POINTS}/v1/share-cards/{TOKEN}", {"detail": "no share card at this link"}, 404)
    for path in (f"/share/{TOKEN}", f"/share/{TOKEN}.svg"):
        gone = await browser.client.get(path)
        assert gone.status_code == 404
        assert "This link shows no card" in gone.text
        assert gone.headers["cache-control"] == "no-store"
        assert gone.headers["x-robots-tag"].startswith("noindex")
    calls = len(services.calls)
    for malformed in ("short", "..%2F..%2Fv1%2Fops%2Fsummary", "A" * 33):
        assert (await browser.client.get(f"/share/{malformed}")).status_code == 404
    assert len(services.calls) == calls, "a token of the wrong shape is never asked for"


async def test_the_image_escapes_a_hostile_display_name(browser: Browser, services: FakeServices):
    hostile = '</text><script>alert("x")</script><text x="0">&amp;'
    services.answer("GET", f"{POINTS}/v1/share-cards/{TOKEN}", {**SHARED, "display_name": hostile})
    image = await browser.client.get(f"/share/{TOKEN}.svg")
    assert image.status_code == 200
    assert image.headers["content-type"].startswith("image/svg+xml")
    assert image.headers["content-security-policy"] == SVG_POLICY
    assert image.headers["cache-control"] == "no-store"
    assert "<script" not in image.text
    assert "&lt;script&gt;" in image.text
    for outside in ("href", "@import", "url("):
        assert outside not in image.text, "no fonts or images from elsewhere"
    tree = ElementTree.fromstring(image.text)  # noqa: S314 (our own answer): well-formed, the name stayed text
    texts = ["".join(t.itertext()) for t in tree.iter("{http://www.w3.org/2000/svg}text")]
    assert hostile in texts
    assert "1,280" in texts
    page = await browser.client.get(f"/share/{TOKEN}")
    assert "<script>alert" not in page.text


async def test_an_anonymous_call_carries_no_authorization_header():
    from console.clients.base import ServiceClient
    from console.clients.services import PointsApi

    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=SHARED)

    client = ServiceClient("points", POINTS, 5, httpx.MockTransport(answer))
    try:
        assert (await PointsApi(client, None).shared_card(TOKEN))["points"] == 1_280
    finally:
        await client.close()
    assert "authorization" not in seen[0].headers
    assert uuid.UUID(CARD_ID)
