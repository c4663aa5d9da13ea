"""Data rights in the console: the wallet's download and erasure, the ops member page's buttons, what each sends,
the typed confirmation, the refusal's reason, the tokens the calls carry, and the sessions an erasure ends."""

from __future__ import annotations

import json

import httpx
import pytest

from loyalty_runtime.auth import Role

from .conftest import PARTNERS, POINTS, REDEMPTION, Browser, FakeServices, json_of
from .test_ops_pages import MEMBER as LI_NA
from .test_ops_pages import member_services

MEMBER = "3c2b1a00-1111-4222-8333-444455556666"
PURCHASES = ["0e8a5a1c-0000-4000-8000-000000000001", "0e8a5a1c-0000-4000-8000-000000000002"]


def exports(services: FakeServices, member: str) -> None:
    points = {"service": "points", "schema_version": 1, "member_id": member, "generated_at": "2026-11-14T08:30:00Z",
              "identifiers": ["partner:skymall:cust-7"], "partner_purchase_event_ids": PURCHASES,
              "tables_listed": ["members", "transfers"],
              "tables": {"members": [{"member_id": member, "display_name": "Li Lei"}], "transfers": []}}  # fmt: skip
    partners = {"service": "partners", "schema_version": 1, "member_id": member, "generated_at": "x",
                "customer_refs": [{"partner_id": "skymall", "customer_ref": "cust-7"}],
                "tables_listed": ["intake_requests"],
                "tables": {"intake_requests": [{"customer_ref": "cust-7"}]}}  # fmt: skip
    redemption = {"service": "redemption", "schema_version": 1, "member_id": member, "generated_at": "y",
                  "vouchers": [], "tables_listed": ["orders"], "tables": {"orders": []}}  # fmt: skip
    ref = "me" if member == MEMBER else member
    services.answer("GET", f"{POINTS}/v1/members/{ref}/data-export", points)
    services.answer("GET", f"{PARTNERS}/v1/members/{member}/data-export", partners)
    services.answer("GET", f"{REDEMPTION}/v1/members/{ref}/data-export", redemption)


@pytest.fixture
async def member(browser: Browser, services: FakeServices) -> Browser:
    await browser.sign_in(Role.MEMBER, MEMBER, display="Li Lei")
    services.calls.clear()
    return browser


async def test_the_page_offers_the_download_and_warns_what_stays(member: Browser) -> None:
    page = await member.client.get("/wallet/my-data")
    assert page.status_code == 200
    assert 'href="/wallet/my-data/export.json"' in page.text
    assert "What stays:" in page.text
    assert "the ledger keeps every amount" in page.text
    assert 'for="f-confirm"' in page.text
    assert 'href="/wallet/my-data"' in page.text  # in the nav


async def test_the_download_is_one_json_file_with_a_manifest_of_every_service(
    member: Browser, services: FakeServices
) -> None:
    exports(services, MEMBER)
    answer = await member.client.get("/wallet/my-data/export.json")
    assert answer.status_code == 200
    assert answer.headers["content-disposition"].startswith('attachment; filename="loyalty-data-')
    data = json.loads(answer.content)
    manifest = data["manifest"]
    assert manifest["member_id"] == MEMBER
    assert manifest["schema_version"] == 1
    assert manifest["generated_at"]
    assert [s["service"] for s in manifest["services"]] == ["points", "partners", "redemption", "console"]
    assert data["points"]["tables"]["members"][0]["display_name"] == "Li Lei"
    assert data["partners"]["customer_refs"] == [{"partner_id": "skymall", "customer_ref": "cust-7"}]
    sessions = data["console"]["tables"]["sessions"]
    assert len(sessions) == 1
    assert set(sessions[0]) == {"role", "created_at", "expires_at"}, "never a token, bearer or CSRF value"
    [partners_call] = [c for c in services.calls if c.url.host == "partners.test"]
    assert partners_call.url.params.get_list("purchase_event_id") == PURCHASES
    assert set(services.bearer_subjects()) == {("member", MEMBER)}


async def test_without_the_typed_word_nothing_is_erased(member: Browser, services: FakeServices) -> None:
    answer = await member.submit("/wallet/my-data/erase", {"confirm": "erase"})
    assert answer.status_code == 422
    assert "Type ERASE in capitals to confirm; nothing was erased." in answer.text
    assert services.calls == []


async def test_an_erasure_asks_points_and_signs_the_member_out_everywhere(
    member: Browser, services: FakeServices, console_app
) -> None:
    services.answer("POST", f"{POINTS}/v1/members/me/erasure",
                    {"member_id": MEMBER, "erasure_id": MEMBER, "erased_at": "2026-11-14T08:30:00Z", "identifiers": 1,
                     "repeated": False, "kept": []})  # fmt: skip
    answer = await member.submit("/wallet/my-data/erase", {"confirm": " ERASE "})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/signin"
    [call] = services.calls
    assert json_of(call) == {"confirm": "ERASE"}
    assert services.bearer_subjects() == [("member", MEMBER)]
    assert await console_app.state.console.store().of_subject(MEMBER, Role.MEMBER) == []
    again = await member.client.get("/wallet/my-data")
    assert again.status_code in (302, 303)


async def test_a_refused_erasure_shows_the_reason(member: Browser, services: FakeServices) -> None:
    services.answer("POST", f"{POINTS}/v1/members/me/erasure", {"detail": "the member is being erased"}, status=409)
    answer = await member.submit("/wallet/my-data/erase", {"confirm": "ERASE"})
    assert answer.status_code == 409
    assert "the member is being erased" in answer.text


async def test_ops_export_and_erase_from_the_member_page(browser: Browser, services: FakeServices) -> None:
    member_services(services)
    await browser.sign_in(Role.OPS, "ops-1", display="Olivia Chen")
    page = await browser.client.get(f"/ops/members/{LI_NA}")
    assert f'href="/ops/members/{LI_NA}/data-export.json"' in page.text
    assert f'href="/ops/members/{LI_NA}/erasure"' in page.text

    exports(services, LI_NA)
    services.calls.clear()
    download = await browser.client.get(f"/ops/members/{LI_NA}/data-export.json")
    assert json.loads(download.content)["manifest"]["member_id"] == LI_NA
    assert {s for s in services.bearer_subjects()} == {("ops", "ops-1")}

    confirm = await browser.client.get(f"/ops/members/{LI_NA}/erasure")
    assert "What stays:" in confirm.text
    refused = await browser.submit(f"/ops/members/{LI_NA}/erasure", {"confirm": "no"})
    assert refused.status_code == 422

    services.on("POST", f"{POINTS}/v1/members/{LI_NA}/erasure",
                lambda _r: httpx.Response(200, json={"member_id": LI_NA, "repeated": True}))  # fmt: skip
    services.calls.clear()
    done = await browser.submit(f"/ops/members/{LI_NA}/erasure", {"confirm": "ERASE"})
    assert done.status_code == 303
    assert done.headers["location"] == f"/ops/members/{LI_NA}"
    assert [json_of(c) for c in services.calls] == [{"confirm": "ERASE"}]
