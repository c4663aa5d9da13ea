"""Red packets on the real ledger: a thousand grabbers at once, lots that keep their expiry through a packet
and back, an activity's budget as the bound, audiences, and replays that move nothing twice."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from contracts.topics import ALL_TOPICS, PARTNER_PURCHASES, RED_PACKETS
from loyalty_runtime import db
from loyalty_runtime.kafka import ensure_topics
from points.adapters.store import PointsStore
from points.domain.packets import Audience, AudienceKind, PacketExhaustedError, PacketGoneError, PacketRuleError
from points.handlers import packets as handle
from points.handlers.ledger_events import LedgerEventWriter
from points.handlers.verify import verify_ledger
from tests.support.kafka import delete_topics
from tests.support.ledger import OPS, balance, link, member_headers, new_member, publish, purchase
from tests.support.services import http, points_service, running
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

DAY = timedelta(days=1)


@dataclass(frozen=True)
class Service:
    api: httpx.AsyncClient
    dsn: str
    deps: handle.Packets
    prefix: str


@pytest.fixture(scope="module")
async def points(infra, _templates) -> AsyncIterator[Service]:
    """One service for the module (a start is 10 s of consumer-group joins): each test asserts on its own
    packets and members only, and the ledger's checks hold for everything all of them did."""
    name = f"t_points_{uuid.uuid4().hex[:10]}"
    await db.ensure_database(infra.admin_dsn, name, template=_templates["points"])
    dsn = db.with_database(infra.admin_dsn, name)
    prefix = f"test-{infra.run_id}-{uuid.uuid4().hex[:6]}."
    await ensure_topics(infra.kafka, ALL_TOPICS, prefix, partitions=2)
    try:
        async with running(points_service(infra.kafka, dsn, prefix)) as shell, http(shell) as api:
            yield Service(api, dsn, handlers(shell, prefix), prefix)
    finally:
        await delete_topics(infra.kafka, prefix)
        await db.drop_database(infra.admin_dsn, name)


def handlers(shell, prefix: str) -> handle.Packets:
    """The handlers' dependencies as app.py builds them, on the service's own pool, to drive them with our clock."""
    return handle.Packets(
        PointsStore(shell.pool), LedgerEventWriter(prefix), handle.PacketEvents(prefix), random.Random(7),
        timedelta(days=730), 10_000,
    )  # fmt: skip


async def rows(dsn: str, sql: str, *args) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def activity_with_budget(api, budget: int) -> str:
    body = {"name": "Lunar new year", "kind": "limited_claim", "rules": {"claim_points": 1}, "budget_points": budget,
            "quantity_cap": 1}  # fmt: skip
    answer = await api.post("/v1/ops/activities", json=body, headers=OPS)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["activity_id"])


def packet_body(points: int, shares: int, audience: dict, **extra) -> dict:
    return {"packet_id": str(uuid.uuid4()), "points": points, "shares": shares, "audience": audience,
            "duration_minutes": 60, "message": "恭喜发财", **extra}  # fmt: skip


async def earned(api, infra, prefix: str, member: uuid.UUID, lots: list[tuple[int, datetime]]) -> list[dict]:
    """Points for the member from SkyMall purchases made at the given moments (each a lot expiring 730 days on)."""
    ref = f"c-{member.hex[:8]}"
    await link(api, member, partner_id="skymall", customer_ref=ref)
    events = [purchase(ref, f"o-{member.hex[:8]}-{i}", 100 * p, points=p, at=at) for i, (p, at) in enumerate(lots)]
    await publish(infra.kafka, PARTNER_PURCHASES.qualified(prefix), events)
    total = sum(p for p, _ in lots)
    await eventually(lambda: _has(api, member, total), what="the purchases' points")
    answer = await api.get(f"/v1/members/{member}/lots", headers=OPS)
    found: list[dict] = answer.json()["items"]
    return found


async def claimed(api, member: uuid.UUID, points: int) -> None:
    """Points for the member by the shortest real path: its claim of a give-away."""
    body = {"name": "Welcome", "kind": "limited_claim", "rules": {"claim_points": points}, "budget_points": points,
            "quantity_cap": 1}  # fmt: skip
    welcome = (await api.post("/v1/ops/activities", json=body, headers=OPS)).json()["activity_id"]
    until = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    await api.post(f"/v1/ops/activities/{welcome}/activate", json={"ends_at": until}, headers=OPS)
    answer = await api.post(f"/v1/members/me/activities/{welcome}/claims", json={}, headers=member_headers(member))
    assert answer.status_code == 201, answer.text


async def _has(api, member: uuid.UUID, points: int) -> bool:
    return (await balance(api, member))["posted"] >= points


async def lots_of(api, member: uuid.UUID) -> list[tuple[int, str]]:
    answer = await api.get(f"/v1/members/{member}/lots", headers=OPS)
    return [(lot["remaining"], lot["expires_at"]) for lot in answer.json()["items"]]


async def test_a_thousand_concurrent_grabbers_of_a_hundred_shares_get_exactly_a_hundred(points):
    api, dsn, deps = points.api, points.dsn, points.deps
    activity = await activity_with_budget(api, 20_000)
    created = await api.post("/v1/red-packets", json=packet_body(10_000, 100, {"kind": "link"}, activity_id=activity),
                             headers=OPS)  # fmt: skip
    assert created.status_code == 201, created.text
    packet_id = uuid.UUID(created.json()["packet_id"])
    grabbers = [
        r["member_id"]
        for r in await rows(dsn, """
            WITH m AS (INSERT INTO members (member_id, display_name)
                       SELECT gen_random_uuid(), 'grabber ' || g FROM generate_series(1, 1000) g RETURNING member_id)
            INSERT INTO accounts (account_id, kind, member_id)
            SELECT 'member:' || member_id, 'member', member_id FROM m RETURNING member_id""")
    ]  # fmt: skip
    now = datetime.now(UTC)

    async def grab(member: uuid.UUID) -> int | Exception:
        try:
            return (await handle.grab(deps, packet_id, member, now, via_link=True)).points
        except PacketExhaustedError as refused:
            return refused

    started = time.monotonic()
    outcomes = await asyncio.gather(*(grab(m) for m in grabbers))
    elapsed = time.monotonic() - started

    granted = [o for o in outcomes if isinstance(o, int)]
    refused = [o for o in outcomes if isinstance(o, Exception)]
    assert (len(granted), len(refused)) == (100, 900), elapsed
    assert sum(granted) == 10_000
    assert min(granted) >= 1
    assert {str(r) for r in refused} == {"all 100 shares of this red packet were grabbed"}
    winners = await rows(dsn, "SELECT count(DISTINCT member_id) AS n, sum(points) AS p FROM red_packet_shares "
                              "WHERE packet_id = $1 AND member_id IS NOT NULL", packet_id)  # fmt: skip
    assert (winners[0]["n"], winners[0]["p"]) == (100, 10_000)
    link = f"/v1/red-packets/by-link/{created.json()['link_token']}/grabs"
    winner, share = next((m, o) for m, o in zip(grabbers, outcomes, strict=True) if isinstance(o, int))
    loser = next(m for m, o in zip(grabbers, outcomes, strict=True) if not isinstance(o, int))
    again = await api.post(link, headers=member_headers(winner))
    assert (again.status_code, again.json()["points"]) == (200, share)
    late = await api.post(link, headers=member_headers(loser))
    assert (late.status_code, late.json()) == (409, {"detail": "all 100 shares of this red packet were grabbed"})
    shown = (await api.get(f"/v1/red-packets/{packet_id}", headers=OPS)).json()
    assert (shown["state"], shown["grabbed"], shown["grabbed_points"], len(shown["grabs"])) == (
        "exhausted", 100, 10_000, 100,
    )  # fmt: skip
    assert sum(g["luckiest"] for g in shown["grabs"]) == 1
    assert await verify_ledger(dsn) == []


async def test_a_members_packet_keeps_the_lots_expiry_for_grabbers_and_returns_the_rest_at_the_deadline(points, infra):
    api, dsn, deps, topic_prefix = points.api, points.dsn, points.deps, points.prefix
    ada, bob, cai = [await new_member(api, name) for name in ("Ada", "Bob", "Cai")]
    now = datetime.now(UTC)
    own = await earned(api, infra, topic_prefix, ada, [(60, now - 300 * DAY), (500, now - 10 * DAY)])
    soon, later = sorted(lot["expires_at"] for lot in own)
    body = packet_body(100, 2, {"kind": "friends", "member_ids": [str(bob), str(cai)]}, duration_minutes=1)
    created = await api.post("/v1/red-packets", json=body, headers=member_headers(ada))
    assert created.status_code == 201, created.text
    packet = created.json()
    assert (packet["state"], packet["link_token"], packet["audience_size"]) == ("open", None, 2)
    assert (await balance(api, ada))["posted"] == 460

    got = await api.post(f"/v1/red-packets/{packet['packet_id']}/grabs", headers=member_headers(bob))
    assert got.status_code == 201, got.text
    share = got.json()["points"]
    # Bob's share comes from Ada's soonest lot first (60 points expiring soon), then the next.
    expected = [(min(share, 60), soon)] + ([(share - 60, later)] if share > 60 else [])
    assert sorted(await lots_of(api, bob)) == sorted(expected)

    deadline = datetime.fromisoformat(packet["expires_at"])
    with pytest.raises(PacketGoneError, match="closed at"):
        await handle.grab(deps, uuid.UUID(packet["packet_id"]), cai, deadline, via_link=False)
    assert await handle.return_due(deps, deadline - timedelta(seconds=1)) == 0
    assert await handle.return_due(deps, deadline + timedelta(seconds=1)) == 1
    assert await handle.return_due(deps, deadline + timedelta(seconds=2)) == 0, "a packet returns once"

    rest = 100 - share
    assert (await balance(api, ada))["posted"] == 460 + rest
    back = [(n, at) for n, at in await lots_of(api, ada) if at in (soon, later)]
    assert sum(n for n, _ in back) == 460 + rest, "what came back kept the expiry of the lots it came from"
    late = await api.post(f"/v1/red-packets/{packet['packet_id']}/grabs", headers=member_headers(cai))
    assert late.status_code == 410, late.text
    shown = (await api.get(f"/v1/red-packets/{packet['packet_id']}", headers=member_headers(ada))).json()
    assert (shown["state"], shown["returned_points"], shown["grabbed"]) == ("expired", rest, 1)
    assert shown["grabs"][0]["display_name"] == "Bob"
    mine = (await api.get("/v1/members/me/red-packets", headers=member_headers(bob))).json()
    assert [(p["packet_id"], p["your_points"]) for p in mine["grabbed"]] == [(packet["packet_id"], share)]
    history = (await api.get("/v1/members/me/history", headers=member_headers(ada))).json()["items"]
    assert {"red_packet_funding", "red_packet_return"} <= {h["reason"] for h in history}
    told = await eventually(
        lambda: story(infra.kafka, RED_PACKETS.qualified(topic_prefix), packet["packet_id"], 3), what="the events"
    )
    assert told == [("RedPacketCreated", packet["packet_id"]), ("RedPacketGrabbed", packet["packet_id"]),
                    ("RedPacketReturned", packet["packet_id"])]  # fmt: skip
    assert await verify_ledger(dsn) == []


async def story(kafka: str, topic: str, key: str, count: int) -> list[tuple[str, str]] | None:
    """The events of one packet on the topic (type, key), once there are `count` of them."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka, auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=1_000)
        found = [(orjson.loads(r.value)["type"], r.key.decode()) for records in batches.values() for r in records
                 if r.key == key.encode()]  # fmt: skip
    finally:
        await consumer.stop()
    return found if len(found) >= count else None


async def test_an_ops_packet_is_bounded_by_its_activitys_budget_and_returns_to_it(points):
    api, dsn = points.api, points.dsn
    activity = await activity_with_budget(api, 1_000)
    too_big = await api.post("/v1/red-packets", json=packet_body(1_500, 5, {"kind": "link"}, activity_id=activity),
                             headers=OPS)  # fmt: skip
    assert (too_big.status_code, too_big.json()["detail"]) == (
        422, "the activity's budget has 1000 points left, fewer than 1500"
    )  # fmt: skip
    first = await api.post("/v1/red-packets", json=packet_body(600, 5, {"kind": "link"}, activity_id=activity),
                           headers=OPS)  # fmt: skip
    assert first.status_code == 201, first.text
    second = await api.post("/v1/red-packets", json=packet_body(600, 5, {"kind": "link"}, activity_id=activity),
                            headers=OPS)  # fmt: skip
    assert (second.status_code, second.json()["detail"]) == (
        422, "the activity's budget has 400 points left, fewer than 600"
    )  # fmt: skip

    token, packet_id = first.json()["link_token"], first.json()["packet_id"]
    assert len(token) == 32
    taker = await new_member(api, "Dee")
    issued_before = (await api.get("/v1/ops/summary", headers=OPS)).json()["points"]["issued_today"]
    got = await api.post(f"/v1/red-packets/by-link/{token}/grabs", headers=member_headers(taker))
    assert got.status_code == 201, got.text
    grabbed = got.json()["points"]
    [lot] = await rows(dsn, "SELECT expires_at, issuer FROM lots WHERE account_id = $1", f"member:{taker}")
    assert lot["issuer"] == f"activity:{activity}:budget"
    assert lot["expires_at"] > datetime.now(UTC) + timedelta(days=700)
    summary = (await api.get("/v1/ops/summary", headers=OPS)).json()["points"]
    assert summary["issued_today"] - issued_before == grabbed, "a budget's packet's share is issued to its grabber"

    closed = (await api.post(f"/v1/red-packets/{packet_id}/close", headers=OPS)).json()
    assert (closed["state"], closed["returned_points"]) == ("closed", 600 - grabbed)
    again = await api.post(f"/v1/red-packets/{packet_id}/close", headers=OPS)
    assert (again.status_code, again.json()["returned_points"]) == (200, 600 - grabbed)
    report = (await api.get(f"/v1/ops/activities/{activity}/report", headers=OPS)).json()
    assert (report["packet_points"], report["packet_points_returned"], report["budget_left"]) == (
        600, 600 - grabbed, 1_000 - grabbed,
    )  # fmt: skip
    listed = (await api.get("/v1/ops/red-packets", params={"activity_id": activity}, headers=OPS)).json()
    assert [(p["packet_id"], p["state"], p["grabbed"], p["shares"]) for p in listed] == [(packet_id, "closed", 1, 5)]

    # A segment's members now are the audience; a member outside it is told so.
    inside, outside = await new_member(api, "In"), await new_member(api, "Out")
    segment = await api.post(
        "/v1/ops/segments",
        headers=OPS,
        json={"name": "two friends", "rules": {"all": [{"kind": "members", "member_ids": [str(inside), str(taker)]}]}},
    )
    assert segment.status_code == 201, segment.text
    audience = {"kind": "segment", "segment_id": segment.json()["segment_id"]}
    targeted = await api.post("/v1/red-packets", json=packet_body(300, 2, audience, activity_id=activity), headers=OPS)
    assert (targeted.status_code, targeted.json()["audience_size"]) == (201, 2), targeted.text
    refused = await api.post(f"/v1/red-packets/{targeted.json()['packet_id']}/grabs", headers=member_headers(outside))
    assert (refused.status_code, refused.json()["detail"]) == (
        403, "this red packet is for the members of a segment, and you are not among them"
    )  # fmt: skip
    ok = await api.post(f"/v1/red-packets/{targeted.json()['packet_id']}/grabs", headers=member_headers(inside))
    assert ok.status_code == 201, ok.text
    assert await verify_ledger(dsn) == []


async def test_audiences_refuse_strangers_and_replays_move_nothing_twice(points):
    api, dsn = points.api, points.dsn
    ada, bob, cai = [await new_member(api, name) for name in ("Ada", "Bob", "Cai")]
    activity = await activity_with_budget(api, 1_000)
    await claimed(api, ada, 500)

    body = packet_body(50, 1, {"kind": "friends", "member_ids": [str(bob)]})
    first = await api.post("/v1/red-packets", json=body, headers=member_headers(ada))
    replay = await api.post("/v1/red-packets", json=body, headers=member_headers(ada))
    assert (first.status_code, replay.status_code, replay.json()["packet_id"]) == (201, 200, body["packet_id"])
    other = await api.post("/v1/red-packets", json={**body, "points": 60}, headers=member_headers(ada))
    assert other.status_code == 409
    assert "already created with other details" in other.json()["detail"]
    stolen = await api.post("/v1/red-packets", json=body, headers=member_headers(cai))
    assert stolen.status_code == 409, "another member's request with the same id is another packet"
    assert (await balance(api, ada))["posted"] == 450

    packet = f"/v1/red-packets/{body['packet_id']}"
    for who, status, reason in (
        (cai, 403, "not among them"), (ada, 403, "your own red packet"),
    ):  # fmt: skip
        answer = await api.post(f"{packet}/grabs", headers=member_headers(who))
        assert (answer.status_code, reason in answer.json()["detail"]) == (status, True), answer.text
    assert (await api.get(packet, headers=member_headers(cai))).status_code == 403
    assert (await api.post(f"{packet}/grabs", headers=OPS)).status_code == 403
    assert (await api.post(f"/v1/red-packets/{uuid.uuid4()}/grabs", headers=member_headers(bob))).status_code == 404
    assert (await api.post(f"/v1/red-packets/by-link/{'x' * 32}/grabs", headers=member_headers(bob))).status_code == 404

    grabs = await asyncio.gather(*(api.post(f"{packet}/grabs", headers=member_headers(bob)) for _ in range(5)))
    assert sorted(g.status_code for g in grabs) == [200, 200, 200, 200, 201]
    assert {g.json()["points"] for g in grabs} == {50}
    moved = await rows(dsn, "SELECT reason, count(*) AS n, sum(amount) AS points FROM transfers "
                            "WHERE memo->>'packet_id' = $1 GROUP BY 1", body["packet_id"])  # fmt: skip
    assert {(r["reason"], r["points"]) for r in moved} == {("red_packet_funding", 50), ("red_packet_grab", 50)}
    assert (await balance(api, bob))["posted"] == 50

    assert (await api.post(f"{packet}/close", headers=member_headers(bob))).status_code == 403
    assert (await api.post(f"{packet}/close", headers=OPS)).status_code == 403, "ops close the packets of activities"
    closed = await api.post(f"{packet}/close", headers=member_headers(ada))
    assert (closed.status_code, closed.json()["state"], closed.json()["returned_points"]) == (200, "exhausted", 0)

    # A link packet opens with its link only; an ops packet is not a member's to fund.
    link_packet = await api.post(
        "/v1/red-packets", json=packet_body(30, 3, {"kind": "link"}), headers=member_headers(ada)
    )
    assert link_packet.status_code == 201, link_packet.text
    by_id = await api.post(f"/v1/red-packets/{link_packet.json()['packet_id']}/grabs", headers=member_headers(bob))
    assert (by_id.status_code, "opens with its link only" in by_id.json()["detail"]) == (403, True)
    seen = await api.get(f"/v1/red-packets/by-link/{link_packet.json()['link_token']}", headers=member_headers(cai))
    assert (seen.status_code, seen.json()["sender"], seen.json()["message"]) == (200, "Ada", "恭喜发财")
    # Two packets of one member at once: its account is locked before either packet's row names it.
    both = await asyncio.gather(*(api.post("/v1/red-packets", json=packet_body(10, 2, {"kind": "link"}),
                                           headers=member_headers(ada)) for _ in range(2)))  # fmt: skip
    assert [b.status_code for b in both] == [201, 201], [b.text for b in both]
    for refused, reason in (
        (packet_body(30, 3, {"kind": "link"}, activity_id=activity), "members from their own points"),
        (packet_body(5_000, 3, {"kind": "link"}), "only 400 points available"),
        (packet_body(30, 3, {"kind": "segment", "segment_id": str(uuid.uuid4())}), "only ops"),
        (packet_body(30, 2, {"kind": "friends", "member_ids": [str(bob), str(uuid.uuid4())]}), "are not members"),
        ({**packet_body(30, 2, {"kind": "link"}), "duration_minutes": 60 * 24 * 8}, "1 minute to 7 days"),
    ):
        answer = await api.post("/v1/red-packets", json=refused, headers=member_headers(ada))
        assert (answer.status_code, reason in answer.json()["detail"]) == (422, True), answer.text
    assert (await balance(api, ada))["posted"] == 400

    # Gifts and red packets share one daily limit: Ada gave 50 + 30 + 10 + 10 today.
    strict = dataclasses.replace(points.deps, daily_limit=150)
    ask = handle.PacketRequest(uuid.uuid4(), 51, 1, Audience(AudienceKind.LINK), "", None, timedelta(minutes=5),
                               None, {"points": 51})  # fmt: skip
    with pytest.raises(PacketRuleError, match="give at most 150 points a day; 50 left today"):
        await handle.create(strict, handle.Caller(ada), ask, datetime.now(UTC))
    assert await verify_ledger(dsn) == []


async def test_two_return_jobs_at_once_settle_each_packet_once(points):
    api, dsn, deps = points.api, points.dsn, points.deps
    sender, friend = [await new_member(api, name) for name in ("Eve", "Fay")]
    await claimed(api, sender, 400)
    made = [
        await api.post("/v1/red-packets", headers=member_headers(sender),
                       json=packet_body(100, 1, {"kind": "friends", "member_ids": [str(friend)]}, duration_minutes=1))
        for _ in range(4)
    ]  # fmt: skip
    assert {m.status_code for m in made} == {201}
    after = max(datetime.fromisoformat(m.json()["expires_at"]) for m in made) + timedelta(seconds=1)

    settled = await asyncio.gather(handle.return_due(deps, after), handle.return_due(deps, after))

    assert sum(settled) == 4, settled
    assert (await balance(api, sender))["posted"] == 400
    ends = await rows(dsn, "SELECT state, returned_points FROM red_packets WHERE creator_member = $1", sender)
    assert [(r["state"], r["returned_points"]) for r in ends] == [("expired", 100)] * 4
    assert await verify_ledger(dsn) == []


async def test_a_friends_packet_without_a_list_goes_to_the_members_friend_circle(points):
    api, dsn = points.api, points.dsn
    ada, bob, cai, dee = [await new_member(api, name) for name in ("Ada", "Bob", "Cai", "Dee")]
    await claimed(api, ada, 500)
    gift = {"gift_id": str(uuid.uuid4()), "to_member_id": str(bob), "amount": 10}
    assert (await api.post("/v1/members/me/gifts", json=gift, headers=member_headers(ada))).status_code == 201
    invited = await api.put("/v1/members/me/referrer", json={"referrer_member_id": str(cai)},
                            headers=member_headers(ada))  # fmt: skip
    assert invited.status_code == 201, invited.text

    too_many = await api.post("/v1/red-packets", json=packet_body(30, 3, {"kind": "friends"}),
                              headers=member_headers(ada))  # fmt: skip
    assert too_many.status_code == 422
    assert "friend circle (members you gave gifts to" in too_many.json()["detail"]
    assert "has 2 members, fewer than the 3 shares" in too_many.json()["detail"]
    made = await api.post("/v1/red-packets", json=packet_body(30, 2, {"kind": "friends"}), headers=member_headers(ada))
    assert made.status_code == 201, made.text
    packet = f"/v1/red-packets/{made.json()['packet_id']}/grabs"
    stranger = await api.post(packet, headers=member_headers(dee))
    assert stranger.status_code == 403, "outside Ada's circle"
    got = [await api.post(packet, headers=member_headers(friend)) for friend in (bob, cai)]
    assert [g.status_code for g in got] == [201, 201]
    assert sum(g.json()["points"] for g in got) == 30
    assert await verify_ledger(dsn) == []
