"""Attribution and targeted messages on the real broker and database: an attributed purchase from the partners API
to the report, one message per targeted member whoever runs the job, signed callbacks in any order, share links'
opens and the responses within their window."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

import points.app
import points.settings
from contracts.signing import signed_headers
from contracts.topics import MEMBER_MESSAGES
from loyalty_runtime.auth import Role
from loyalty_runtime.service import ServiceShell
from points.adapters.messages_store import MessagesStore
from points.domain.reports import response_rate
from points.handlers.messages import Messaging, send_due_messages
from points.handlers.verify import verify_ledger
from points.settings import LOCAL_MESSAGING_SECRET
from tests.support.kafka import read_all
from tests.support.ledger import AUTHORITY, OPS, link, member_headers, new_member
from tests.support.partner_client import SignedPartnerClient, ops_token, purchase_item, register_partner
from tests.support.services import http, partners_service, running
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

STAFF = {"Authorization": f"Bearer {AUTHORITY.issue('ops-2', Role.OPS)}"}
OPENS_PER_MINUTE = 5


@dataclass
class Points:
    shell: ServiceShell
    api: httpx.AsyncClient
    dsn: str
    prefix: str

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.dsn)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()


@pytest.fixture
async def points_api(infra, topic_prefix, database):
    dsn = await database("points")
    settings = points.settings.Settings(
        environment="test", database_url=dsn, kafka_bootstrap_servers=infra.kafka, kafka_topic_prefix=topic_prefix,
        consumer_group=f"points-{uuid.uuid4().hex[:8]}", message_interval_seconds=0.2, message_chunk_size=4,
        share_link_opens_per_minute=OPENS_PER_MINUTE,
    )  # fmt: skip
    async with running(points.app.build(settings)) as shell, http(shell) as api:
        yield Points(shell, api, dsn, topic_prefix)


async def ok(answer: httpx.Response, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    return answer.json()


async def activity(p: Points, kind: str, rules: dict[str, Any], **extra: Any) -> str:
    capped = {"quantity_cap": 1_000} if kind == "limited_claim" else {}
    body = {
        "name": f"{kind} for attribution",
        "kind": kind,
        "rules": rules,
        "budget_points": 100_000,
        **capped,
        **extra,
    }
    made = await ok(await p.api.post("/v1/ops/activities", json=body, headers=OPS), 201)
    ends = (datetime.now(UTC) + timedelta(days=7)).isoformat()
    await ok(
        await p.api.post(f"/v1/ops/activities/{made['activity_id']}/activate", json={"ends_at": ends}, headers=OPS)
    )
    return str(made["activity_id"])


async def segment_of(p: Points, members: list[uuid.UUID]) -> str:
    rules = {"all": [{"kind": "members", "member_ids": [str(m) for m in members]}]}
    made = await ok(await p.api.post("/v1/ops/segments", json={"name": "invitees", "rules": rules}, headers=OPS), 201)
    return str(made["segment_id"])


async def targets(p: Points, activity_id: str) -> tuple[set[uuid.UUID], set[uuid.UUID]]:
    rows = await p.fetch(
        "SELECT member_id, holdout FROM activity_targets WHERE activity_id = $1", uuid.UUID(activity_id)
    )
    return {r["member_id"] for r in rows if not r["holdout"]}, {r["member_id"] for r in rows if r["holdout"]}


async def messages_sent(p: Points, activity_id: str, targeted: int) -> list[Any]:
    """Every MemberMessaged on the topic, once the job finished the activity and the outbox is empty."""

    async def done() -> bool:
        [row] = await p.fetch(
            "SELECT (SELECT finished_at FROM activity_messaging WHERE activity_id = $1) IS NOT NULL AS finished,"
            " (SELECT count(*) FROM outbox) AS waiting", uuid.UUID(activity_id),
        )  # fmt: skip
        return bool(row["finished"]) and row["waiting"] == 0

    await eventually(done, what="the activity's messages sent and relayed")
    records = await read_all(p.shell.settings.kafka_bootstrap_servers, MEMBER_MESSAGES.qualified(p.prefix), targeted)
    return [MEMBER_MESSAGES.decode(r.value) for r in records]


def signed(body: dict[str, Any], secret: str = LOCAL_MESSAGING_SECRET) -> dict[str, Any]:
    raw = json.dumps(body).encode()
    headers = signed_headers("messaging", secret, "POST", "/v1/messages/callbacks", raw, int(time.time()))
    return {"content": raw, "headers": {**headers, "content-type": "application/json"}}


async def test_an_attributed_purchase_through_the_partners_api_reaches_the_report(points_api, infra, database):
    p = points_api
    member = await new_member(p.api)
    await link(p.api, member, partner_id="skymall", customer_ref="cust-1")
    await activity(p, "multiplier", {"multiplier": "2", "scope": {"partner_id": "skymall"}})
    partners_dsn = await database("partners")
    async with running(partners_service(infra.kafka, partners_dsn, p.prefix)) as shell, http(shell) as partners:
        credentials = await register_partner(partners, ops_token(shell.settings.jwt_secret), "skymall")
        shop = SignedPartnerClient(partners, credentials)
        now = datetime.now(UTC).isoformat()
        attribution = {"channel": "branch", "branch_id": "sh-pudong", "staff_id": "ops-2", "campaign_ref": "winter"}
        sent = await ok(
            await shop.purchase(purchase_item("a-1", 10_000, occurred_at=now, attribution=attribution)), 202
        )
        plain = await ok(await shop.purchase(purchase_item("a-2", 5_000, occurred_at=now)), 202)
    for event in (sent, plain):
        await eventually(lambda e=event: _applied(p, e["event_id"]), what="the purchases applied")

    [memo] = await p.fetch("SELECT memo FROM transfers WHERE reason = 'partner_purchase' AND memo ? 'attribution'")
    assert json.loads(memo["memo"])["attribution"] == attribution
    branch = await ok(await p.api.get("/v1/ops/attribution", params={"group": "branch"}, headers=OPS))
    assert branch["rows"] == [{
        "key": "sh-pudong", "reach": 1, "opens": 0, "responders": 1, "response_rate": "1.0000",
        "points_granted": 100, "spend": [{"currency": "CNY", "spend_minor": 10_000, "incremental_spend_minor": None}],
    }], "the attributed purchase, its bonus (100 more points), not the plain one"  # fmt: skip
    staff = await ok(await p.api.get("/v1/ops/attribution", params={"group": "staff"}, headers=OPS))
    assert [(r["key"], r["responders"]) for r in staff["leaderboard"]] == [("ops-2", 1)]
    csv = await p.api.get("/v1/ops/attribution.csv", params={"group": "channel"}, headers=OPS)
    assert csv.status_code == 200
    assert csv.headers["content-type"].startswith("text/csv")
    header, row = csv.text.splitlines()
    assert header.startswith("group,from,to,key,reach,opens,responders,response_rate,points_granted,currency")
    assert row.endswith(",branch,1,0,1,1.0000,100,CNY,10000,")
    refused = await p.api.get("/v1/ops/attribution", params={"from": "2026-02-01", "to": "2026-01-01"}, headers=OPS)
    assert refused.status_code == 422
    assert "is before from" in refused.json()["detail"]
    assert (await p.api.get("/v1/ops/attribution", headers=member_headers(member))).status_code == 403
    assert await verify_ledger(p.dsn) == []


async def _applied(p: Points, event_id: str) -> bool:
    return (await p.api.get(f"/v1/events/{event_id}", headers=OPS)).status_code == 200


async def test_targeted_members_are_messaged_once_never_the_holdout_and_callbacks_feed_the_report(points_api):
    p = points_api
    members = [await new_member(p.api, f"m{i}") for i in range(30)]
    preferred = set(members[::2])
    for member in preferred:
        answer = await p.api.put(
            "/v1/members/me/preferences", json={"channel": "wechat"}, headers=member_headers(member)
        )
        assert (await ok(answer))["channel"] == "wechat"
    refused = await p.api.put("/v1/members/me/preferences", json={"channel": "fax"}, headers=member_headers(members[0]))
    assert refused.status_code == 422
    segment = await segment_of(p, members)
    giveaway = await activity(p, "limited_claim", {"claim_points": 100}, segment_id=segment, holdout_share="0.3")
    targeted, held_out = await targets(p, giveaway)
    assert held_out, "a share of the segment is held out"

    # The service's own job runs every 0.2 s; two more runs at once, by chunks of 3, race it.
    store = MessagesStore(p.shell.pool)
    messaging = Messaging(MEMBER_MESSAGES.qualified(p.prefix), "app", "http://console.test", chunk_size=3)
    now = datetime.now(UTC)
    await asyncio.gather(send_due_messages(store, messaging, now), send_due_messages(store, messaging, now))
    events = await messages_sent(p, giveaway, len(targeted))
    assert len(events) == len(targeted), "exactly one message per targeted member"
    assert {e.payload.member_id for e in events} == targeted
    assert not {e.payload.member_id for e in events} & held_out
    assert len({e.payload.message_id for e in events}) == len(events)
    assert {e.payload.member_id: e.payload.channel for e in events} == {
        m: "wechat" if m in preferred else "app" for m in targeted
    }, "the member's preference, else the programme's default (no history yet)"  # fmt: skip
    other = events[0].payload
    assert other.title == "limited_claim for attribution"
    assert other.body.startswith("Claim 100 points while they last until ")
    assert other.deep_link.endswith("/wallet/activities")
    assert "balance" not in other.model_dump_json()

    assert await send_due_messages(store, messaging, datetime.now(UTC)) == 0, "a later run sends nothing again"
    [row] = await p.fetch("SELECT count(*) AS n FROM member_messages WHERE activity_id = $1", uuid.UUID(giveaway))
    assert row["n"] == len(targeted)
    listed = await ok(await p.api.get(f"/v1/ops/activities/{giveaway}/messages", headers=OPS))
    assert len(listed["items"]) == len(targeted)
    assert {i["chosen_by"] for i in listed["items"]} == {"preference", "default"}

    # The messaging systems report back, signed, out of order, with an id nobody sent.
    first, second, third = sorted((e.payload for e in events), key=lambda e: str(e.message_id))[:3]
    t0 = datetime.now(UTC).replace(microsecond=0)
    body = {"callbacks": [
        {"message_id": str(first.message_id), "event": "clicked", "at": (t0 + timedelta(minutes=3)).isoformat()},
        {"message_id": str(second.message_id), "event": "opened", "at": t0.isoformat()},
        {"message_id": str(third.message_id), "event": "failed", "at": t0.isoformat()},
        {"message_id": str(uuid.uuid4()), "event": "delivered", "at": t0.isoformat()},
    ]}  # fmt: skip
    answer = await ok(await p.api.post("/v1/messages/callbacks", **signed(body)))
    assert [r["status"] for r in answer["results"]] == ["recorded", "recorded", "recorded", "unknown"]
    late = {"callbacks": [{"message_id": str(first.message_id), "event": "delivered", "at": t0.isoformat()}]}
    request = signed(late)
    await ok(await p.api.post("/v1/messages/callbacks", **request))
    replayed = await p.api.post("/v1/messages/callbacks", **request)
    assert replayed.status_code == 409
    forged = await p.api.post("/v1/messages/callbacks", **signed(late, secret="x" * 40))
    assert forged.status_code == 401
    unsigned = await p.api.post("/v1/messages/callbacks", json=late)
    assert unsigned.status_code == 401

    rows = {r["message_id"]: r for r in await p.fetch("SELECT * FROM member_messages")}
    clicked = rows[first.message_id]
    assert (clicked["delivered_at"], clicked["opened_at"], clicked["clicked_at"]) == (
        t0, t0 + timedelta(minutes=3), t0 + timedelta(minutes=3)
    ), "the click came first and implied the rest; the late delivery kept its earlier time"  # fmt: skip
    assert clicked["state"] == "clicked"
    assert (rows[second.message_id]["state"], rows[third.message_id]["state"]) == ("opened", "failed")

    claimed = await p.api.post(
        f"/v1/members/me/activities/{giveaway}/claims", json={}, headers=member_headers(first.member_id)
    )
    await ok(claimed, 201)
    report = await ok(await p.api.get(f"/v1/ops/activities/{giveaway}/report", headers=OPS))
    expected = []
    for channel in ("app", "wechat"):
        sent = {e.payload.message_id for e in events if e.payload.channel == channel}
        reached = [m for m in (first, second) if m.message_id in sent]
        responders = int(first.message_id in sent)
        expected.append({
            "channel": channel, "members": len(sent), "delivered": len(reached), "opened": len(reached),
            "clicked": int(first.message_id in sent), "responders": responders,
            "response_rate": str(response_rate(responders, len(sent))),
        })  # fmt: skip
    holdout = {"channel": None, "members": len(held_out), "delivered": 0, "opened": 0, "clicked": 0, "responders": 0,
               "response_rate": "0.0000"}  # fmt: skip
    assert report["channels"] == [*expected, holdout], "the holdout beside the channels, never messaged"
    by_channel = await ok(await p.api.get("/v1/ops/attribution", params={"group": "channel"}, headers=OPS))
    assert {r["key"]: (r["reach"], r["opens"], r["responders"], r["points_granted"]) for r in by_channel["rows"]} == {
        e["channel"]: (e["members"], e["opened"], e["responders"], 100 * e["responders"]) for e in expected
    }, "the messages' touches: reach, opens and the claim that followed one"  # fmt: skip
    assert await verify_ledger(p.dsn) == []


async def test_a_share_link_counts_opens_and_the_responses_within_its_window(points_api):
    p = points_api
    ada, bo, cy = [await new_member(p.api, name) for name in ("Ada", "Bo", "Cy")]
    giveaway = await activity(p, "limited_claim", {"claim_points": 100})
    body = {"target": {"kind": "activity", "activity_id": giveaway}, "channel": "wechat", "window_days": 7,
            "branch_id": "sh-pudong", "campaign_ref": "winter"}  # fmt: skip
    link_made = await ok(await p.api.post("/v1/share-links", json=body, headers=STAFF), 201)
    code = link_made["code"]
    assert len(code) >= 16
    assert link_made["url"].endswith(f"/s/{code}")
    assert (link_made["staff_id"], link_made["branch_id"]) == ("ops-2", "sh-pudong")
    again = await p.api.post("/v1/share-links", json={**body, "link_id": link_made["link_id"]}, headers=STAFF)
    assert (again.status_code, again.json()["code"]) == (200, code), "the same link id and request: the same link"
    public = await ok(await p.api.get(f"/v1/share-links/{code}"))
    assert public == {"code": code, "window_days": 7, "target": {
        "kind": "activity", "activity_id": giveaway, "activity_name": "limited_claim for attribution",
        "partner_id": None, "offer_id": None}}, "the target only: nothing of who shared it"  # fmt: skip
    member_branch = await p.api.post("/v1/share-links", json=body, headers=member_headers(ada))
    assert member_branch.status_code == 422
    assert "branch_id is for the links of staff" in member_branch.json()["detail"]

    opens = f"/v1/share-links/{code}/opens"
    ada_open = await ok(await p.api.post(opens, headers=member_headers(ada)), 202)
    assert (await ok(await p.api.post(opens, headers=member_headers(ada)), 202))["open_id"] == ada_open["open_id"]
    await ok(await p.api.post(opens, headers=member_headers(bo)), 202)
    anonymous = await ok(await p.api.post(opens), 202)
    claimed = await ok(await p.api.post(opens, json={"open_id": anonymous["open_id"]}, headers=member_headers(cy)), 202)
    assert claimed["open_id"] == anonymous["open_id"], "Cy signed in right after opening: the open is hers"
    flood = [await p.api.post(opens) for _ in range(12)]
    assert {a.status_code for a in flood} == {202}, "a flood is answered alike, and stored only up to the limit"
    minutes = await p.fetch("SELECT opens FROM share_link_open_minutes WHERE code = $1", code)
    [kept] = await p.fetch("SELECT count(*) AS n FROM share_link_opens WHERE code = $1", code)
    assert all(m["opens"] <= OPENS_PER_MINUTE for m in minutes)
    assert kept["n"] == sum(m["opens"] for m in minutes) < 3 + 12
    # Bo opened it eight days ago: his claim now is outside the link's seven days.
    await p.fetch("UPDATE share_link_opens SET opened_at = opened_at - interval '8 days' WHERE member_id = $1", bo)

    claim = f"/v1/members/me/activities/{giveaway}/claims"
    for member in (ada, bo):
        await ok(await p.api.post(claim, json={}, headers=member_headers(member)), 201)
    unknown = {"attribution": {"share_code": "x" * 22}}
    assert (await p.api.post(claim, json=unknown, headers=member_headers(cy))).status_code == 422
    carried = {"attribution": {"share_code": code}}
    await ok(await p.api.post(claim, json=carried, headers=member_headers(cy)), 201)

    since = (datetime.now(UTC) - timedelta(days=10)).date().isoformat()
    for group, key in (("staff", "ops-2"), ("branch", "sh-pudong"), ("channel", "wechat")):
        report = await ok(await p.api.get("/v1/ops/attribution", params={"group": group, "from": since}, headers=OPS))
        [row] = [r for r in report["rows"] if r["key"] == key]
        assert (row["reach"], row["opens"], row["responders"], row["points_granted"]) == (3, kept["n"], 2, 200), (
            f"{group}: Ada and Cy responded within the window, Bo did not"
        )  # fmt: skip
        assert row["response_rate"] == "0.6667"
    mine = await ok(await p.api.get("/v1/share-links", headers=STAFF))
    assert [(i["code"], i["opens"], i["openers"], i["carried"]) for i in mine["items"]] == [(code, kept["n"], 3, 1)]
    assert (await ok(await p.api.get("/v1/share-links", headers=member_headers(ada))))["items"] == []
    assert (await p.api.post("/v1/share-links/unknown-code-0000000/opens")).status_code == 404
    assert await verify_ledger(p.dsn) == []
