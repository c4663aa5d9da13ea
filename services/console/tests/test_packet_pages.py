"""Red packets in the wallet and the ops console: what the pages show, what their forms send, refusals, tokens."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from loyalty_runtime.auth import Role

from .conftest import POINTS, Browser, FakeServices, json_of

MEMBER = "5b0c7a52-3f0e-4d8a-9a51-6f1d2e3c4b5a"
FRIEND = "9e8d7c6b-5a49-4382-8170-6f5e4d3c2b1a"
PACKET = "7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d"
ACTIVITY = "3c2b1a09-8f7e-4d6c-9b5a-493827160504"
SEGMENT = "5f0c3a52-4e4b-4a8e-9a57-2b1f7c0d9e11"
TOKEN = "Zm9vYmFyYmF6cXV4cXV1eGZvb2JhcmJh"
BALANCE = {"member_id": MEMBER, "posted": 1200, "pending": 0, "available": 1200, "owed": 0, "expiring_soon": 0,
           "expiring_within_days": 30, "next_expiry_at": None, "next_expiry_points": 0}  # fmt: skip
PACKET_ID_FIELD = re.compile(r'name="packet_id" value="([^"]+)"')


def packet(**changes: Any) -> dict[str, Any]:
    return {
        "packet_id": PACKET, "sender": "Ada", "sent_by_you": False, "activity_id": None, "points": 100, "shares": 3,
        "grabbed": 2, "grabbed_points": 70, "returned_points": 0, "state": "open", "audience": "friends",
        "segment_id": None, "audience_size": None, "message": "Happy new year", "created_at": "2026-02-10T08:00:00Z",
        "expires_at": "2026-02-11T08:00:00Z", "settled_at": None, "your_points": None,
        "grabs": [
            {"display_name": "Bob", "points": 45, "grabbed_at": "2026-02-10T08:01:00Z", "luckiest": False,
             "yours": False, "member_id": None},
            {"display_name": "Cai", "points": 25, "grabbed_at": "2026-02-10T08:02:00Z", "luckiest": False,
             "yours": False, "member_id": None},
        ],
        **changes,
    }  # fmt: skip


def sent(services: FakeServices, method: str, url: str) -> list[httpx.Request]:
    return [c for c in services.calls if c.method == method and str(c.url).split("?")[0] == url]


def tokens_of(services: FakeServices, path: str) -> set[tuple[str, str]]:
    """(role, subject) of the tokens the calls to these paths carried."""
    return {who for call, who in zip(services.calls, services.bearer_subjects(), strict=True) if path in call.url.path}


@pytest.fixture
async def member(browser: Browser, services: FakeServices) -> Browser:
    services.answer("GET", f"{POINTS}/v1/members/me/balance", BALANCE)
    services.answer("GET", f"{POINTS}/v1/members/me/red-packets", {
        "created": [packet(sent_by_you=True, state="exhausted", grabbed=3, grabbed_points=100)],
        "grabbed": [packet(sender="Bob", your_points=37, message="Lucky you")],
    })  # fmt: skip
    await browser.sign_in(Role.MEMBER, MEMBER)
    return browser


async def test_the_red_packets_page_lists_sent_and_grabbed_and_offers_the_form(member: Browser) -> None:
    page = await member.client.get("/wallet/red-packets")
    assert page.status_code == 200
    for shown in ("Send a red packet", "You have 1,200 points to spend.", "All grabbed", "3 of 3", "Bob", "+37",
                  "Lucky you", f'href="/wallet/red-packets/{PACKET}"', 'href="/wallet/red-packets"'):  # fmt: skip
        assert shown in page.text, shown
    assert PACKET_ID_FIELD.search(page.text)


async def test_a_friends_packet_sends_the_form_id_and_its_friends_and_a_refusal_keeps_the_input(
    member: Browser, services: FakeServices
) -> None:
    page = await member.client.get("/wallet/red-packets")
    packet_id = PACKET_ID_FIELD.search(page.text)[1]  # type: ignore[index]
    url = f"{POINTS}/v1/red-packets"
    services.answer("POST", url, {"detail": "only 1200 points available to put in a red packet"}, 422)
    form = {"points": "5000", "shares": "2", "audience": "friends", "friends": f"{FRIEND}\n{MEMBER[:8]}x",
            "duration": "60", "message": "恭喜发财", "packet_id": packet_id}  # fmt: skip
    wrong = await member.submit("/wallet/red-packets", form)
    assert wrong.status_code == 422
    assert "Enter 1 to 200 member ids" in wrong.text
    assert sent(services, "POST", url) == [], "a malformed friend is not sent"

    refused = await member.submit("/wallet/red-packets", {**form, "friends": f"{FRIEND}, {FRIEND}"})
    assert refused.status_code == 422
    assert "only 1200 points available to put in a red packet" in refused.text
    assert 'value="5000"' in refused.text
    assert f'name="packet_id" value="{packet_id}"' in refused.text, "the same id: a retry creates it once"
    assert json_of(sent(services, "POST", url)[-1]) == {
        "packet_id": packet_id, "points": 5000, "shares": 2, "duration_minutes": 60, "message": "恭喜发财",
        "audience": {"kind": "friends", "member_ids": [FRIEND]},
    }  # fmt: skip

    services.answer("POST", url, packet(packet_id=packet_id, sent_by_you=True, link_token=None), 201)
    done = await member.submit("/wallet/red-packets", {**form, "points": "100", "friends": FRIEND})
    assert done.status_code == 303
    assert done.headers["location"] == f"/wallet/red-packets/{packet_id}"
    assert tokens_of(services, "/red-packets") == {("member", MEMBER)}


async def test_a_link_packet_shows_its_link_once(member: Browser, services: FakeServices) -> None:
    services.answer("POST", f"{POINTS}/v1/red-packets",
                    packet(audience="link", sent_by_you=True, grabbed=0, grabs=[], link_token=TOKEN), 201)  # fmt: skip
    made = await member.submit("/wallet/red-packets", {"points": "100", "shares": "3", "audience": "link",
                                                       "duration": "1440", "packet_id": PACKET})  # fmt: skip
    assert made.status_code == 201
    assert f'value="http://127.0.0.1:8104/wallet/red-packets/link/{TOKEN}"' in made.text
    assert 'data-copy="packet-link"' in made.text
    assert "It is shown only now" in made.text
    assert json_of(services.calls[-1])["audience"] == {"kind": "link"}


async def test_a_packet_page_shows_the_grabs_and_grabbing_says_what_you_got_or_why_not(
    member: Browser, services: FakeServices
) -> None:
    url = f"{POINTS}/v1/red-packets/{PACKET}"
    services.answer("GET", url, packet())
    page = await member.client.get(f"/wallet/red-packets/{PACKET}")
    for shown in ("Red packet from Ada", "Happy new year", "2 of 3", "Bob", "45", "Cai", "Grab a share"):
        assert shown in page.text, shown
    assert "Close it" not in page.text

    services.answer("POST", f"{url}/grabs", {"detail": "all 3 shares of this red packet were grabbed"}, 409)
    refused = await member.submit(f"/wallet/red-packets/{PACKET}/grab", {})
    assert refused.status_code == 409
    assert "all 3 shares of this red packet were grabbed" in refused.text

    services.answer("POST", f"{url}/grabs", {"packet_id": PACKET, "member_id": MEMBER, "points": 30,
                                             "grabbed_at": "2026-02-10T09:00:00Z"}, 201)  # fmt: skip
    got = await member.submit(f"/wallet/red-packets/{PACKET}/grab", {})
    assert (got.status_code, got.headers["location"]) == (303, f"/wallet/red-packets/{PACKET}")
    mine = packet(your_points=30, grabbed=3, state="exhausted",
                  grabs=[*packet()["grabs"], {"display_name": "Me", "points": 30, "grabbed_at": "2026-02-10T09:00:00Z",
                                              "luckiest": False, "yours": True, "member_id": None}])  # fmt: skip
    mine["grabs"][0]["luckiest"] = True
    services.answer("GET", url, mine)
    after = await member.client.get(f"/wallet/red-packets/{PACKET}")
    assert "You grabbed 30 points!" in after.text
    assert "Your share: 30 points" in after.text
    assert "Best luck" in after.text
    assert "(you)" in after.text
    assert "Grab a share" not in after.text


async def test_the_sender_closes_its_packet_and_a_stranger_is_told_why_not(
    member: Browser, services: FakeServices
) -> None:
    url = f"{POINTS}/v1/red-packets/{PACKET}"
    services.answer("GET", url, packet(sent_by_you=True))
    page = await member.client.get(f"/wallet/red-packets/{PACKET}")
    assert "Close it: the rest comes back to me" in page.text
    assert "Grab a share" not in page.text
    services.answer("POST", f"{url}/close", packet(sent_by_you=True, state="closed", returned_points=30))
    closed = await member.submit(f"/wallet/red-packets/{PACKET}/close", {})
    assert closed.status_code == 303
    assert "Closed. 30 points came back to you." in (await member.client.get(closed.headers["location"])).text

    hidden = "this red packet is for the friends its sender chose, and you are not among them"
    services.answer("GET", url, {"detail": hidden}, 403)
    services.answer("POST", f"{url}/grabs", {"detail": hidden}, 403)
    refused = await member.submit(f"/wallet/red-packets/{PACKET}/grab", {})
    assert refused.status_code == 403
    assert hidden in refused.text


async def test_the_link_landing_opens_the_packet_after_sign_in(browser: Browser, services: FakeServices) -> None:
    landing = f"/wallet/red-packets/link/{TOKEN}"
    signed_out = await browser.client.get(landing)
    assert signed_out.status_code == 303
    assert signed_out.headers["location"] == f"/signin?next=%2Fwallet%2Fred-packets%2Flink%2F{TOKEN}"

    services.answer("GET", f"{POINTS}/v1/red-packets/by-link/{TOKEN}", packet(audience="link", grabs=[]))
    await browser.sign_in(Role.MEMBER, FRIEND)
    page = await browser.client.get(landing)
    assert "A red packet from Ada" in page.text
    assert f'action="/wallet/red-packets/link/{TOKEN}"' in page.text

    grabs = f"{POINTS}/v1/red-packets/by-link/{TOKEN}/grabs"
    services.answer("POST", grabs, {"detail": "this red packet closed at 2026-02-11T08:00:00+00:00"}, 410)
    gone = await browser.submit(landing, {})
    assert (gone.status_code, "this red packet closed at" in gone.text) == (410, True)
    services.answer("POST", grabs, {"packet_id": PACKET, "member_id": FRIEND, "points": 12,
                                    "grabbed_at": "2026-02-10T09:00:00Z"}, 201)  # fmt: skip
    got = await browser.submit(landing, {})
    assert (got.status_code, got.headers["location"]) == (303, f"/wallet/red-packets/{PACKET}")
    assert tokens_of(services, "/red-packets") == {("member", FRIEND)}


@pytest.fixture
async def ops(browser: Browser, services: FakeServices) -> Browser:
    services.answer("GET", f"{POINTS}/v1/ops/red-packets", [
        packet(activity_id=ACTIVITY, sender="Spring give-away", audience="link", state="open"),
        packet(sender="Ada", state="expired", returned_points=30),
    ])  # fmt: skip
    services.answer("GET", f"{POINTS}/v1/ops/activities", [
        {"activity_id": ACTIVITY, "name": "Spring give-away", "status": "active"},
        {"activity_id": "00000000-0000-4000-8000-000000000009", "name": "Old one", "status": "ended"},
    ])  # fmt: skip
    services.answer("GET", f"{POINTS}/v1/ops/segments", {"items": [{"segment_id": SEGMENT, "name": "Flyers"}]})
    await browser.sign_in(Role.OPS, "ops-1")
    return browser


async def test_ops_list_every_packet_and_fund_one_from_an_activitys_budget(
    ops: Browser, services: FakeServices
) -> None:
    page = await ops.client.get("/ops/red-packets")
    assert page.status_code == 200
    for shown in ("Spring give-away", "Expired: the rest went back", "2 of 3", "Flyers",
                  f'action="/ops/red-packets/{PACKET}/close"'):  # fmt: skip
        assert shown in page.text, shown
    assert "Old one" not in page.text, "an ended activity's budget funds no packets"
    packet_id = PACKET_ID_FIELD.search(page.text)[1]  # type: ignore[index]

    url = f"{POINTS}/v1/red-packets"
    services.answer("POST", url, {"detail": "the activity's budget has 400 points left, fewer than 600"}, 422)
    form = {"activity_id": ACTIVITY, "points": "600", "shares": "5", "audience": "segment", "segment_id": SEGMENT,
            "duration": "1440", "message": "", "packet_id": packet_id}  # fmt: skip
    refused = await ops.submit("/ops/red-packets", form)
    assert refused.status_code == 422
    assert "the activity&#39;s budget has 400 points left, fewer than 600" in refused.text
    assert json_of(sent(services, "POST", url)[-1]) == {
        "packet_id": packet_id, "activity_id": ACTIVITY, "points": 600, "shares": 5, "duration_minutes": 1440,
        "message": "", "audience": {"kind": "segment", "segment_id": SEGMENT},
    }  # fmt: skip

    services.answer("POST", url, packet(activity_id=ACTIVITY, audience="segment", link_token=None), 201)
    done = await ops.submit("/ops/red-packets", {**form, "points": "300"})
    assert (done.status_code, done.headers["location"]) == (303, "/ops/red-packets")

    services.answer("POST", f"{url}/{PACKET}/close", packet(state="closed", returned_points=55))
    closed = await ops.submit(f"/ops/red-packets/{PACKET}/close", {})
    assert closed.status_code == 303
    assert "Closed. 55 points went back to the budget." in (await ops.client.get("/ops/red-packets")).text
    assert tokens_of(services, "/red-packets") == {("ops", "ops-1")}


async def test_members_and_ops_keep_to_their_own_packet_pages(browser: Browser, services: FakeServices) -> None:
    await browser.sign_in(Role.OPS, "ops-1")
    assert (await browser.client.get("/wallet/red-packets")).status_code == 403
    services.answer("GET", f"{POINTS}/v1/members/me/balance", BALANCE)
    await browser.sign_in(Role.MEMBER, MEMBER)
    assert (await browser.client.get("/ops/red-packets")).status_code == 403


async def test_the_friend_circle_is_the_forms_first_choice_and_sends_no_list(
    member: Browser, services: FakeServices
) -> None:
    page = await member.client.get("/wallet/red-packets")
    assert 'value="circle" checked' in page.text
    circle = "the friend circle (members you gave gifts to or got gifts from, ...) has 1 members, fewer than the 2"
    services.answer("POST", f"{POINTS}/v1/red-packets", {"detail": circle}, 422)
    form = {"points": "100", "shares": "2", "audience": "circle", "duration": "60", "packet_id": PACKET}
    refused = await member.submit("/wallet/red-packets", form)
    assert refused.status_code == 422
    assert "has 1 members, fewer than the 2" in refused.text
    [asked] = sent(services, "POST", f"{POINTS}/v1/red-packets")
    assert json_of(asked)["audience"] == {"kind": "friends"}, "no list: the service's friend circle"
