"""An identifier is linked only with proof from its owner (a one-time link code) or by ops (DESIGN.md, Security).

Real Kafka and PostgreSQL: partners issue codes with signed requests, their hashes reach the points
service through loyalty.link-codes.v1; ops and the card system issue theirs on the points service.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from contracts.events.links import LinkCodeIssued
from contracts.link_codes import code_hash, new_code
from contracts.topics import CARD_TRANSACTIONS, LINK_CODES, PARTNER_PURCHASES
from points.handlers.verify import verify_ledger
from tests.support.kafka import read_all
from tests.support.ledger import OPS, balance, card_purchase, member_headers, new_member, publish, purchase, refund
from tests.support.partner_client import (
    PartnerCredentials,
    SignedPartnerClient,
    ops_token,
    register_partner,
)
from tests.support.services import http, partners_service, points_service, running
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration
Database = Callable[[str], Awaitable[str]]
SKEW = timedelta(minutes=20)
"""Longer than a code lives: a partner whose clock is this far behind issues codes that are already expired."""


@pytest.fixture
async def points(infra, topic_prefix, database: Database):
    dsn = await database("points")
    async with running(points_service(infra.kafka, dsn, topic_prefix)) as shell, http(shell) as api:
        yield api, dsn


@pytest.fixture
async def both(infra, topic_prefix, database: Database):
    """The points service, and the partners service with SkyMall registered."""
    partners_dsn, points_dsn = await database("partners"), await database("points")
    async with (
        running(partners_service(infra.kafka, partners_dsn, topic_prefix)) as partners,
        running(points_service(infra.kafka, points_dsn, topic_prefix)) as points,
        http(partners) as partners_api,
        http(points) as api,
    ):
        mall = SignedPartnerClient(partners_api, await register_partner(partners_api, ops_token(), "skymall"))
        yield api, mall, points_dsn


async def earn(api: httpx.AsyncClient, kafka: str, prefix: str, *, points: int, **identifier: str) -> None:
    """Points for an identifier, through the ledger's own topics; waits until they are applied."""
    if "card_token" in identifier:
        # 1 point per CNY: no category rate for money transfers (4829)
        event = card_purchase(identifier["card_token"], f"ctx-{uuid.uuid4().hex[:8]}", points * 100, mcc="4829")
        topic = CARD_TRANSACTIONS
    else:
        event = purchase(identifier["customer_ref"], f"o-{uuid.uuid4().hex[:8]}", points * 100, points=points)
        topic = PARTNER_PURCHASES
    await publish(kafka, topic.qualified(prefix), [event])
    await eventually(lambda: _applied(api, event.event_id), what=f"{points} points for {identifier} to be applied")


async def _applied(api: httpx.AsyncClient, event_id: uuid.UUID) -> bool:
    return (await api.get(f"/v1/events/{event_id}", headers=OPS)).status_code == 200


def card(token: str, **more: object) -> dict[str, object]:
    return {"kind": "card", "card_token": token, **more}


def partner_ref(customer_ref: str, **more: object) -> dict[str, object]:
    return {"kind": "partner", "partner_id": "skymall", "customer_ref": customer_ref, **more}


async def link_as_member(api: httpx.AsyncClient, member: uuid.UUID, body: dict[str, object]) -> httpx.Response:
    return await api.post("/v1/members/me/identifiers", json=body, headers=member_headers(member))


async def link_once_known(api: httpx.AsyncClient, member: uuid.UUID, body: dict[str, object]) -> httpx.Response:
    """Link with a partner's code, retrying while its issue is still on its way to the points service."""

    async def known() -> httpx.Response | None:
        answer = await link_as_member(api, member, body)
        if answer.status_code == 409 and answer.json()["reason"] == "link_code_not_known_yet":
            assert answer.headers["Retry-After"] == "2"
            return None
        return answer

    return await eventually(known, what="the partner's link code to reach the points service")


async def ops_code(api: httpx.AsyncClient, body: dict[str, object]) -> str:
    answer = await api.post("/v1/ops/link-codes", json=body, headers=OPS)
    assert answer.status_code == 201, answer.text
    code: str = answer.json()["link_code"]
    return code


async def history(api: httpx.AsyncClient, member: uuid.UUID) -> list[dict]:
    answer = await api.get(f"/v1/members/{member}/history", headers=member_headers(member))
    assert answer.status_code == 200, answer.text
    items: list[dict] = answer.json()["items"]
    return items


def identifier_entries(items: list[dict]) -> list[tuple]:
    """Oldest first: what happened, to which identifier, by whom, on what authority."""
    return [
        (h["reason"], h["identifier"], h["actor"], h["memo"]["via"], h["memo"].get("code_issued_by"))
        for h in reversed(items)
        if h["kind"] == "identifier"
    ]


def refusal(answer: httpx.Response) -> tuple[int, str]:
    return answer.status_code, answer.json()["reason"]


async def test_a_member_without_a_link_code_is_refused_and_the_points_stay_unclaimed(points, infra, topic_prefix):
    api, dsn = points
    await earn(api, infra.kafka, topic_prefix, points=100, customer_ref="ada-1")
    await earn(api, infra.kafka, topic_prefix, points=40, card_token="tok_ada00000001")
    mallory = await new_member(api, "Mallory")

    for body in (partner_ref("ada-1"), card("tok_ada00000001")):
        answer = await link_as_member(api, mallory, body)
        assert refusal(answer) == (403, "link_code_required")
        assert "for a link code, then send it as `link_code`" in answer.json()["detail"]
    assert (await balance(api, mallory))["posted"] == 0
    assert (await api.get(f"/v1/members/{mallory}/identifiers", headers=OPS)).json() == []

    ada = await new_member(api, "Ada")
    linked = await link_as_member(
        api, ada, card("tok_ada00000001", link_code=await ops_code(api, card("tok_ada00000001")))
    )
    assert (linked.status_code, linked.json()["claimed_points"]) == (201, 40), "the points waited for their owner"
    assert await verify_ledger(dsn) == []


async def test_a_partner_issued_code_links_the_member_once_with_the_unclaimed_points(both, infra, topic_prefix):
    api, mall, dsn = both
    await earn(api, infra.kafka, topic_prefix, points=100, customer_ref="ada-1")
    ada, mallory = await new_member(api, "Ada"), await new_member(api, "Mallory")

    issued = await mall.link_code("ada-1")
    assert issued.status_code == 201, issued.text
    code = issued.json()["link_code"]
    assert issued.json()["customer_ref"] == "ada-1"
    assert datetime.fromisoformat(issued.json()["expires_at"]) > datetime.now(UTC) + timedelta(minutes=14)

    linked = await link_once_known(api, ada, partner_ref("ada-1", link_code=code.lower()))
    assert (linked.status_code, linked.json()["claimed_points"]) == (201, 100)
    assert (await balance(api, ada))["posted"] == 100
    assert identifier_entries(await history(api, ada)) == [
        ("identifier_linked", "partner:skymall:ada-1", str(ada), "link_code", "partner:skymall")
    ]

    again = await link_as_member(api, mallory, partner_ref("ada-1", link_code=code))
    assert refusal(again) == (409, "link_code_used")
    assert "ask the skymall app" in again.json()["detail"]
    assert (await balance(api, mallory))["posted"] == 0
    retried = await link_as_member(api, ada, partner_ref("ada-1", link_code=code))
    assert (retried.status_code, retried.json()["claimed_points"]) == (200, 0), "a retry of the owner changes nothing"

    [record] = await read_all(infra.kafka, LINK_CODES.qualified(topic_prefix), expected=1)
    event = LINK_CODES.decode(record.value)
    assert isinstance(event, LinkCodeIssued)
    assert event.payload.code_sha256 == code_hash(code)
    assert code.replace("-", "").encode() not in record.value.replace(b"-", b""), "only the hash leaves"
    assert record.key == b"skymall:ada-1"
    assert await verify_ledger(dsn) == []


async def test_an_expired_code_and_a_code_for_another_identifier_are_refused(infra, topic_prefix, database: Database):
    partners_dsn, points_dsn = await database("partners"), await database("points")
    behind = lambda: datetime.now(UTC) - SKEW  # noqa: E731
    async with (
        running(partners_service(infra.kafka, partners_dsn, topic_prefix, clock=behind)) as partners,
        running(points_service(infra.kafka, points_dsn, topic_prefix)) as points,
        http(partners) as partners_api,
        http(points) as api,
    ):
        credentials = await register_partner(partners_api, ops_token(), "skymall")
        late = SignedPartnerClient(partners_api, credentials, clock=lambda: time.time() - SKEW.total_seconds())
        await earn(api, infra.kafka, topic_prefix, points=100, customer_ref="ada-1")
        ada = await new_member(api, "Ada")

        issued = await late.link_code("ada-1")
        assert issued.status_code == 201, issued.text
        expired = await link_once_known(api, ada, partner_ref("ada-1", link_code=issued.json()["link_code"]))
        assert refusal(expired) == (410, "link_code_expired")
        assert "ask the skymall app" in expired.json()["detail"]

        bobs_card = await ops_code(api, card("tok_bob00000002"))
        mismatched = await link_as_member(api, ada, partner_ref("ada-1", link_code=bobs_card))
        assert refusal(mismatched) == (422, "link_code_for_another_identifier")
        assert (await balance(api, ada))["posted"] == 0

        linked = await link_as_member(
            api, ada, partner_ref("ada-1", link_code=await ops_code(api, partner_ref("ada-1")))
        )
        assert (linked.status_code, linked.json()["claimed_points"]) == (201, 100)


async def test_wrong_codes_for_an_identifier_kill_its_open_codes(points, infra, topic_prefix):
    api, _dsn = points
    await earn(api, infra.kafka, topic_prefix, points=50, card_token="tok_ada00000001")
    ada, mallory = await new_member(api, "Ada"), await new_member(api, "Mallory")
    code = await ops_code(api, card("tok_ada00000001"))

    malformed = await link_as_member(api, mallory, card("tok_ada00000001", link_code="1234"))
    assert refusal(malformed) == (422, "link_code_malformed"), "a typo is not a guess"
    for _ in range(5):
        guess = await link_as_member(api, mallory, card("tok_ada00000001", link_code=new_code()))
        assert refusal(guess) == (409, "link_code_not_known_yet")

    dead = await link_as_member(api, ada, card("tok_ada00000001", link_code=code))
    assert refusal(dead) == (410, "link_code_too_many_wrong_attempts")
    assert "ask the bank's card app for a new link code" in dead.json()["detail"]
    assert (await balance(api, ada))["posted"] == (await balance(api, mallory))["posted"] == 0

    fresh = await link_as_member(
        api, ada, card("tok_ada00000001", link_code=await ops_code(api, card("tok_ada00000001")))
    )
    assert (fresh.status_code, fresh.json()["claimed_points"]) == (201, 50), "a new code works"


async def test_two_concurrent_links_with_one_code_link_exactly_once(points, infra, topic_prefix):
    api, dsn = points
    for round_ in range(3):
        token = f"tok_race{round_:08d}"
        await earn(api, infra.kafka, topic_prefix, points=30, card_token=token)
        code = await ops_code(api, card(token))
        racers = [await new_member(api, f"racer {round_}.{i}") for i in range(2)]

        answers = await asyncio.gather(*(link_as_member(api, m, card(token, link_code=code)) for m in racers))

        assert sorted(a.status_code for a in answers) == [201, 409]
        assert [a.json()["reason"] for a in answers if a.status_code == 409] == ["link_code_used"]
        balances = [(await balance(api, m))["posted"] for m in racers]
        assert sorted(balances) == [0, 30], "the points moved once, to the one who linked"
    assert await verify_ledger(dsn) == []


async def test_a_partner_cannot_issue_codes_for_another_partner(infra, topic_prefix, database: Database):
    async with (
        running(partners_service(infra.kafka, await database("partners"), topic_prefix)) as shell,
        http(shell) as partners_api,
    ):
        mall = await register_partner(partners_api, ops_token(), "skymall")
        air = await register_partner(partners_api, ops_token(), "skyair")
        as_air_with_malls_key = SignedPartnerClient(partners_api, PartnerCredentials(air.partner_id, *_key(mall)))

        answer = await as_air_with_malls_key.link_code("F-1")

        assert answer.status_code == 403, answer.text
        assert "skyair" in answer.json()["detail"]
        own = await SignedPartnerClient(partners_api, air).link_code("F-1")
        assert own.status_code == 201, "with its own key it may"


def _key(credentials: PartnerCredentials) -> tuple[str, str]:
    return credentials.key_id, credentials.secret


async def test_ops_link_without_a_code_and_ops_unlink_free_the_identifier(points, infra, topic_prefix):
    api, dsn = points
    ada, bob = await new_member(api, "Ada"), await new_member(api, "Bob")
    ref = "ada/1?x#y"  # reserved characters travel percent-encoded in the unlink path
    await earn(api, infra.kafka, topic_prefix, points=70, customer_ref=ref)

    by_ops = await api.post(f"/v1/members/{ada}/identifiers", json=partner_ref(ref), headers=OPS)
    assert (by_ops.status_code, by_ops.json()["claimed_points"]) == (201, 70)
    unlink_path = f"/v1/members/{ada}/identifiers/partner/skymall/ada%2F1%3Fx%23y"
    as_member = await api.delete(unlink_path, headers=member_headers(ada))
    assert as_member.status_code == 403, "members cannot unlink"
    assert "only ops unlink" in as_member.json()["detail"]

    unlinked = await api.delete(unlink_path, headers=OPS)
    assert unlinked.status_code == 200, unlinked.text
    assert unlinked.json()["identifier"] == f"partner:skymall:{ref}"
    assert (await api.delete(unlink_path, headers=OPS)).status_code == 404, "not linked to Ada any more"
    assert (await api.get(f"/v1/members/{ada}/identifiers", headers=OPS)).json() == []

    await earn(api, infra.kafka, topic_prefix, points=30, customer_ref=ref)
    assert (await balance(api, ada))["posted"] == 70, "what it brought stays; later points wait unclaimed"
    taken = await link_as_member(api, bob, partner_ref(ref, link_code=await ops_code(api, partner_ref(ref))))
    assert (taken.status_code, taken.json()["claimed_points"]) == (201, 30)

    assert identifier_entries(await history(api, ada)) == [
        ("identifier_linked", f"partner:skymall:{ref}", "ops-test", "ops", None),
        ("identifier_unlinked", f"partner:skymall:{ref}", "ops-test", "ops", None),
    ]
    assert identifier_entries(await history(api, bob)) == [
        ("identifier_linked", f"partner:skymall:{ref}", str(bob), "link_code", "ops:ops-test"),
    ]
    [claim] = [h for h in await history(api, bob) if h["kind"] == "transfer"]
    assert (claim["reason"], claim["amount"]) == ("claim", 30)

    card_path = f"/v1/members/{bob}/identifiers/card/tok_bob00000002"
    await api.post(f"/v1/members/{bob}/identifiers", json=card("tok_bob00000002"), headers=OPS)
    assert (await api.delete(card_path, headers=OPS)).json()["identifier"] == "card:tok_bob00000002"
    assert await verify_ledger(dsn) == []


async def test_a_refund_after_an_unlink_takes_back_from_the_member_whose_points_they_were(points, infra, topic_prefix):
    api, dsn = points
    ada, bob = await new_member(api, "Ada"), await new_member(api, "Bob")
    topic = PARTNER_PURCHASES.qualified(topic_prefix)
    waited = purchase("shared-1", "o-waited", 4_000, points=40)  # before anyone linked it: claimed by Ada
    await publish(infra.kafka, topic, [waited])
    await eventually(lambda: _applied(api, waited.event_id), what="the unclaimed purchase")
    await api.post(f"/v1/members/{ada}/identifiers", json=partner_ref("shared-1"), headers=OPS)
    hers = purchase("shared-1", "o-hers", 6_000, points=60)
    await publish(infra.kafka, topic, [hers])
    await eventually(lambda: _applied(api, hers.event_id), what="Ada's purchase")
    await api.delete(f"/v1/members/{ada}/identifiers/partner/skymall/shared-1", headers=OPS)
    await api.post(f"/v1/members/{bob}/identifiers", json=partner_ref("shared-1"), headers=OPS)
    his = purchase("shared-1", "o-his", 2_000, points=20)
    await publish(infra.kafka, topic, [his])
    await eventually(lambda: _applied(api, his.event_id), what="Bob's purchase")
    assert ((await balance(api, ada))["posted"], (await balance(api, bob))["posted"]) == (100, 20)

    # The shop refunds everything: each refund takes back from the member who got those points.
    refunds = [
        refund("shared-1", "o-waited", 4_000),
        refund("shared-1", "o-hers", 3_000),
        refund("shared-1", "o-his", 2_000),
    ]
    await publish(infra.kafka, topic, refunds)
    for r in refunds:
        await eventually(lambda r=r: _applied(api, r.event_id), what="a refund")
    assert ((await balance(api, ada))["posted"], (await balance(api, bob))["posted"]) == (100 - 40 - 30, 0)
    assert await verify_ledger(dsn) == []
