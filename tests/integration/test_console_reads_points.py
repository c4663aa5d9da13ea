"""What the web console reads from the points service, and who may read it.

One programme is set up once for the module (members, activities, purchases, an expiry run, a redemption
captured through the hold commands, gifts); each test reads it and changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest

from contracts.topics import ALL_TOPICS, HOLD_COMMANDS, PARTNER_PURCHASES
from loyalty_runtime import db
from loyalty_runtime.auth import Role
from loyalty_runtime.kafka import ensure_topics
from points.handlers.verify import verify_ledger
from tests.support.holds import capture, hold
from tests.support.kafka import delete_topics
from tests.support.ledger import AUTHORITY, OPS, balance, link, member_headers, new_member, now, publish, purchase
from tests.support.services import http, points_service, running
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

PARTNER_STAFF = {"Authorization": f"Bearer {AUTHORITY.issue('staff-1', Role.PARTNER, partner_id='skymall')}"}
LOT_VALIDITY = timedelta(days=730)  # the service's default
ADA_CARD = "tok_ada12345678"


@dataclass(frozen=True)
class Programme:
    api: httpx.AsyncClient
    dsn: str
    ada: uuid.UUID
    bob: uuid.UUID
    grace: uuid.UUID
    dora: uuid.UUID
    """Registered after the activities started: none of them targets her."""
    activities: dict[str, str]
    grace_next_expiry: datetime


async def _activity(api: httpx.AsyncClient, name: str, kind: str, rules: dict, *, ends_in: timedelta | None,
                    **extra: object) -> str:  # fmt: skip
    made = await api.post(
        "/v1/ops/activities",
        json={"name": name, "kind": kind, "rules": rules, "budget_points": 1000, **extra},
        headers=OPS,
    )
    assert made.status_code == 201, made.text
    activity_id: str = made.json()["activity_id"]
    if ends_in is not None:
        started = await api.post(
            f"/v1/ops/activities/{activity_id}/activate", json={"ends_at": (now() + ends_in).isoformat()}, headers=OPS
        )
        assert started.status_code == 200, started.text
    return activity_id


async def _claim(api: httpx.AsyncClient, member: uuid.UUID, activity_id: str) -> None:
    answer = await api.post(
        f"/v1/members/{member}/activities/{activity_id}/claims", json={}, headers=member_headers(member)
    )
    assert answer.status_code == 201, answer.text


async def _posted(api: httpx.AsyncClient, member: uuid.UUID, points: int, pending: int = 0) -> None:
    async def there() -> bool:
        state = await balance(api, member)
        return (state["posted"], state["pending"]) == (points, pending)

    await eventually(there, what=f"{member} holding {points} points ({pending} held)")


async def _set_up(api: httpx.AsyncClient, dsn: str, kafka: str, prefix: str) -> Programme:
    ada, bob, grace = [await new_member(api, n) for n in ("Ada Lovelace", "Bob", "Grace Hopper")]
    await link(api, ada, partner_id="skymall", customer_ref="ada-1")
    await link(api, ada, card_token=ADA_CARD)
    await link(api, grace, partner_id="skymall", customer_ref="grace-1")
    claim = {"claim_points": 25}
    activities = {
        "open": await _activity(api, "Spring give-away", "limited_claim", claim, ends_in=timedelta(hours=2),
                                quantity_cap=10),
        "claimed": await _activity(api, "Welcome bonus", "limited_claim", {"claim_points": 30},
                                   ends_in=timedelta(hours=3), quantity_cap=10),
        "sold_out": await _activity(api, "First one wins", "limited_claim", {"claim_points": 40},
                                    ends_in=timedelta(hours=4), quantity_cap=1),
        "draft": await _activity(api, "Not yet", "limited_claim", claim, ends_in=None, quantity_cap=10),
        "multiplier": await _activity(api, "Double elsewhere", "multiplier",
                                      {"multiplier": "2", "scope": {"partner_id": "elsewhere"}},
                                      ends_in=timedelta(hours=2)),
    }  # fmt: skip
    dora = await new_member(api, "Dora")
    await _claim(api, ada, activities["claimed"])
    await _claim(api, bob, activities["sold_out"])

    # Grace's next expiry: two lots expire on one UTC date (01:00 and 22:00), a third five days later.
    day = (now() + timedelta(days=10)).replace(hour=0, minute=0, second=0, microsecond=0)
    grace_lots = [(day + timedelta(hours=1), 30), (day + timedelta(hours=22), 20), (day + timedelta(days=5), 70)]
    events = [
        purchase("ada-1", "ada-fresh", 20_000, points=200),
        purchase("ada-1", "ada-old", 4_000, points=40, at=now() - LOT_VALIDITY - timedelta(days=1)),
        *(purchase("grace-1", f"grace-{n}", p * 100, points=p, at=at - LOT_VALIDITY) for n, (at, p) in
          enumerate(grace_lots)),
        purchase("nobody-1", "unclaimed", 1_500, points=15),
    ]  # fmt: skip
    await publish(kafka, PARTNER_PURCHASES.qualified(prefix), events)
    await _posted(api, ada, 30 + 200 + 40)
    await _posted(api, grace, 120)

    expired = await api.post("/v1/ops/expiry-runs", headers=OPS)
    assert expired.json() == {"lots_expired": 1, "points_expired": 40}, expired.text

    redemption = hold(ada, 50)
    await publish(kafka, HOLD_COMMANDS.qualified(prefix), [redemption])
    await _posted(api, ada, 230, pending=50)
    await publish(kafka, HOLD_COMMANDS.qualified(prefix), [capture(redemption)])
    await _posted(api, ada, 180)

    for sender, recipient, points, message in ((ada, bob, 10, "thanks"), (bob, ada, 5, "")):
        gift = {"gift_id": str(uuid.uuid4()), "to_member_id": str(recipient), "amount": points, "message": message}
        given = await api.post(f"/v1/members/{sender}/gifts", json=gift, headers=member_headers(sender))
        assert given.status_code == 201, given.text
    return Programme(api, dsn, ada, bob, grace, dora, activities, grace_lots[0][0])


@pytest.fixture(scope="module")
async def programme(infra, _templates) -> AsyncIterator[Programme]:
    name = f"t_points_{uuid.uuid4().hex[:10]}"
    await db.ensure_database(infra.admin_dsn, name, template=_templates["points"])
    dsn = db.with_database(infra.admin_dsn, name)
    prefix = f"test-{infra.run_id}-{uuid.uuid4().hex[:6]}."
    await ensure_topics(infra.kafka, ALL_TOPICS, prefix, partitions=2)
    try:
        async with running(points_service(infra.kafka, dsn, prefix)) as shell, http(shell) as api:
            yield await _set_up(api, dsn, infra.kafka, prefix)
    finally:
        await delete_topics(infra.kafka, prefix)
        await db.drop_database(infra.admin_dsn, name)


async def _ok(api: httpx.AsyncClient, path: str, headers: dict[str, str], **params: object) -> dict:
    answer = await api.get(path, params=params, headers=headers)
    assert answer.status_code == 200, answer.text
    body: dict = answer.json()
    return body


def _when(raw: str) -> datetime:
    return datetime.fromisoformat(raw)


async def test_only_the_member_itself_or_ops_read_a_member_and_only_ops_the_ops_reads(programme):
    api, ada, bob = programme.api, programme.ada, programme.bob
    own = [f"/v1/members/{ada}", f"/v1/members/{ada}/balance", f"/v1/members/{ada}/activities",
           f"/v1/members/{ada}/gifts"]  # fmt: skip
    ops_only = ["/v1/ops/members", "/v1/ops/summary", "/v1/ops/expiry-runs"]
    expected = {
        "nobody": ({}, {p: 401 for p in own + ops_only}),
        "partner staff": (PARTNER_STAFF, {p: 403 for p in own + ops_only}),
        "another member": (member_headers(bob), {p: 403 for p in own}),
        "the member": (member_headers(ada), {**{p: 200 for p in own}, **{p: 403 for p in ops_only}}),
        "ops": (OPS, {p: 200 for p in own + ops_only}),
    }
    for who, (headers, statuses) in expected.items():
        answered = {p: (await api.get(p, headers=headers)).status_code for p in statuses}
        assert answered == statuses, who
    assert (await api.post("/v1/ops/expiry-runs", headers=PARTNER_STAFF)).status_code == 403


async def test_a_member_reads_itself_with_its_identifiers(programme):
    api, ada = programme.api, programme.ada
    me = await _ok(api, "/v1/members/me", member_headers(ada))
    assert (me["member_id"], me["display_name"]) == (str(ada), "Ada Lovelace")
    assert [i["identifier"] for i in me["identifiers"]] == ["partner:skymall:ada-1", f"card:{ADA_CARD}"]
    assert me == await _ok(api, f"/v1/members/{ada}", OPS)
    assert (await api.get(f"/v1/members/{uuid.uuid4()}", headers=OPS)).status_code == 404


async def test_the_next_expiry_is_the_earliest_lot_and_sums_its_utc_date(programme):
    api = programme.api
    grace = await _ok(api, f"/v1/members/{programme.grace}/balance", OPS)
    assert _when(grace["next_expiry_at"]) == programme.grace_next_expiry
    assert grace["next_expiry_points"] == 30 + 20, "the two lots of that UTC date, not the one five days later"
    dora = await _ok(api, f"/v1/members/{programme.dora}/balance", OPS)
    assert (dora["next_expiry_at"], dora["next_expiry_points"]) == (None, 0)


async def test_the_summary_counts_issued_redeemed_expired_and_outstanding_points(programme):
    summary = await _ok(programme.api, "/v1/ops/summary", OPS)
    assert summary["members"] == {"total": 4, "new_today": 4, "new_this_month": 4}
    # Purchases 200 + 40 (since expired) + Grace's 120 + 15 unclaimed, claims 30 + 40; not the gifts, nor the
    # funding of activity budgets.
    issued = 200 + 40 + 120 + 15 + 30 + 40
    assert summary["points"] == {
        "issued_today": issued, "issued_this_month": issued,
        "redeemed_today": 50, "redeemed_this_month": 50,
        "expired_today": 40, "expired_this_month": 40,
        "outstanding": issued - 50 - 40,
    }  # fmt: skip
    conn = await asyncpg.connect(programme.dsn)
    try:
        held = await conn.fetchval(
            "SELECT sum(credits_posted - debits_posted) FROM accounts WHERE kind IN ('member', 'unclaimed')"
        )
    finally:
        await conn.close()
    assert held == summary["points"]["outstanding"]
    assert abs(_when(summary["as_of"]) - datetime.now(UTC)) < timedelta(minutes=1)
    assert await verify_ledger(programme.dsn) == []


async def test_ops_find_members_by_id_identifier_card_token_or_name(programme):
    api, ada = programme.api, programme.ada

    async def found(**params: object) -> list[str]:
        return [m["member_id"] for m in (await _ok(api, "/v1/ops/members", OPS, **params))["items"]]

    for q in (str(ada), f"card:{ADA_CARD}", ADA_CARD, "partner:skymall:ada-1", "lOVE"):
        assert await found(q=q) == [str(ada)], q
    newest_first = [str(m) for m in (programme.dora, programme.grace, programme.bob, ada)]
    assert await found(q="o") == newest_first
    assert await found() == newest_first
    assert await found(limit=2) == newest_first[:2]
    assert await found(q="%") == [], "wildcards are taken literally"
    hit = (await _ok(api, "/v1/ops/members", OPS, q=ADA_CARD))["items"][0]
    assert (hit["display_name"], hit["available"]) == ("Ada Lovelace", 180 - 10 + 5)
    assert hit["identifiers"] == ["partner:skymall:ada-1", f"card:{ADA_CARD}"]
    assert (await api.get("/v1/ops/members", params={"q": "x" * 201}, headers=OPS)).status_code == 422
    assert (await api.get("/v1/ops/members", params={"limit": 51}, headers=OPS)).status_code == 422


async def test_members_see_the_give_aways_they_can_claim_and_those_they_claimed(programme):
    api, ids = programme.api, programme.activities

    async def listed(member: uuid.UUID) -> list[tuple[str, int, bool]]:
        items = (await _ok(api, f"/v1/members/{member}/activities", member_headers(member)))["items"]
        return [(i["activity_id"], i["points"], i["claimed"]) for i in items]

    # Not the draft, nor the multiplier; the sold-out one only for Bob, who claimed it.
    assert await listed(programme.ada) == [(ids["open"], 25, False), (ids["claimed"], 30, True)]
    assert await listed(programme.bob) == [
        (ids["open"], 25, False), (ids["claimed"], 30, False), (ids["sold_out"], 40, True),
    ]  # fmt: skip
    assert await listed(programme.dora) == [], "registered after the targets were frozen"
    item = (await _ok(api, "/v1/members/me/activities", member_headers(programme.ada)))["items"][0]
    assert item["name"] == "Spring give-away"
    assert timedelta(hours=1) < _when(item["ends_at"]) - datetime.now(UTC) <= timedelta(hours=2)


async def test_expiry_runs_are_recorded_with_who_asked_newest_first(programme):
    runs = (await _ok(programme.api, "/v1/ops/expiry-runs", OPS))["items"]
    asked = [r for r in runs if r["requested_by"] == "ops:ops-test"]
    assert [(r["lots_expired"], r["points_expired"]) for r in asked] == [(1, 40)]
    assert all(r["requested_by"] != "scheduler" for r in runs), "scheduled runs that expired nothing leave no row"
    assert sum(r["points_expired"] for r in runs) == 40
    starts = [_when(r["started_at"]) for r in runs]
    assert starts == sorted(starts, reverse=True)


async def test_a_member_reads_the_gifts_it_gave_and_received_newest_first(programme):
    api, ada, bob = programme.api, programme.ada, programme.bob
    items = (await _ok(api, f"/v1/members/{ada}/gifts", member_headers(ada)))["items"]
    assert [(g["direction"], g["counterparty_member_id"], g["points"], g["message"]) for g in items] == [
        ("received", str(bob), 5, None), ("sent", str(bob), 10, "thanks"),
    ]  # fmt: skip
    assert len((await _ok(api, f"/v1/members/{ada}/gifts", OPS, limit=1))["items"]) == 1
    assert (await api.get(f"/v1/members/{ada}/gifts", params={"limit": 0}, headers=OPS)).status_code == 422
