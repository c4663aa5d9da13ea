"""Adjustments on the real ledger: the threshold, four eyes, the requester refused, approvers racing, debits beyond
the balance; every step in the audit log, and the generic entries of refused ops requests."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import httpx
import pytest

from contracts.topics import ALL_TOPICS
from loyalty_runtime import db
from loyalty_runtime.auth import Role
from loyalty_runtime.kafka import ensure_topics
from points.handlers.verify import verify_ledger
from tests.support.kafka import delete_topics
from tests.support.ledger import AUTHORITY, balance, new_member
from tests.support.services import http, points_service, running

pytestmark = pytest.mark.integration

THRESHOLD = 1_000  # the service's default


def ops(subject: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {AUTHORITY.issue(subject, Role.OPS)}"}


ALICE, BOB, CAROL = ops("ops-alice"), ops("ops-bob"), ops("ops-carol")


@dataclass(frozen=True)
class Service:
    api: httpx.AsyncClient
    dsn: str


@pytest.fixture(scope="module")
async def points(infra, _templates) -> AsyncIterator[Service]:
    name = f"t_points_{uuid.uuid4().hex[:10]}"
    await db.ensure_database(infra.admin_dsn, name, template=_templates["points"])
    dsn = db.with_database(infra.admin_dsn, name)
    prefix = f"test-{infra.run_id}-{uuid.uuid4().hex[:6]}."
    await ensure_topics(infra.kafka, ALL_TOPICS, prefix, partitions=2)
    try:
        async with running(points_service(infra.kafka, dsn, prefix)) as shell, http(shell) as api:
            yield Service(api, dsn)
        assert await verify_ledger(dsn) == []
    finally:
        await delete_topics(infra.kafka, prefix)
        await db.drop_database(infra.admin_dsn, name)


async def rows(dsn: str, sql: str, *args) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


def body(member: uuid.UUID, points: int, direction: str = "credit", **extra) -> dict:
    return {"adjustment_id": str(uuid.uuid4()), "member_id": str(member), "direction": direction, "points": points,
            "reason": "goodwill", "note": "delayed flight, promised on the phone", **extra}  # fmt: skip


async def adjust(api, member: uuid.UUID, points: int, direction: str = "credit", who=ALICE) -> dict:
    answer = await api.post("/v1/ops/adjustments", json=body(member, points, direction), headers=who)
    assert answer.status_code == 201, answer.text
    return answer.json()


async def actions(api, subject: str) -> list[str]:
    answer = await api.get("/v1/ops/audit", params={"subject": subject}, headers=CAROL)
    assert answer.status_code == 200, answer.text
    return [e["action"] for e in answer.json()["items"]]


async def test_at_or_below_the_threshold_it_posts_at_once_as_a_lot_from_the_adjustments_account(points):
    api = points.api
    member = await new_member(api)
    first = await api.post("/v1/ops/adjustments", json=(sent := body(member, THRESHOLD)), headers=ALICE)
    assert first.status_code == 201, first.text
    assert first.json()["status"] == "posted"
    assert first.json()["needs_approval"] is False
    again = await api.post("/v1/ops/adjustments", json=sent, headers=ALICE)
    assert (again.status_code, again.json()) == (200, first.json())
    other = await api.post("/v1/ops/adjustments", json={**sent, "points": 5}, headers=ALICE)
    assert other.status_code == 409
    assert "other details" in other.json()["detail"]

    assert (await balance(api, member))["posted"] == THRESHOLD
    lots_sql = "SELECT amount, issuer, expires_at - earned_at AS valid FROM lots WHERE account_id = $1"
    lots = await rows(points.dsn, lots_sql, f"member:{member}")
    assert [(r["amount"], r["issuer"], r["valid"].days) for r in lots] == [(THRESHOLD, "adjustments", 730)]
    adjustment = first.json()["adjustment_id"]
    # The retry and the refused reuse of the id changed nothing: generic entries of their requests.
    retried = ["POST /v1/ops/adjustments", "POST /v1/ops/adjustments", "adjustment.requested"]
    assert await actions(api, f"adjustment:{adjustment}") == retried
    posted = (await api.get("/v1/ops/audit", params={"subject": f"member:{member}", "action": "adjustment."},
                            headers=CAROL)).json()["items"]  # fmt: skip
    assert [(e["actor"], e["before"]["posted"], e["after"]["posted"]) for e in posted] == [("ops-alice", 0, THRESHOLD)]
    assert posted[0]["request_id"] is not None
    # The ledger events left through the outbox, in the transaction of the transfer.
    events = await rows(points.dsn, "SELECT count(*) AS n FROM transfers WHERE reason = 'adjustment_credit' "
                        "AND cause_event_id = $1", uuid.UUID(adjustment))  # fmt: skip
    assert events[0]["n"] == 1


async def test_above_the_threshold_a_second_ops_user_approves_and_the_requester_cannot(points):
    api = points.api
    member = await new_member(api)
    pending = await adjust(api, member, THRESHOLD + 1)
    assert pending["status"] == "pending"
    assert pending["needs_approval"] is True
    assert (await balance(api, member))["posted"] == 0
    path = f"/v1/ops/adjustments/{pending['adjustment_id']}"

    for verb in ("approve", "reject"):
        own = await api.post(f"{path}/{verb}", json={}, headers=ALICE)
        assert own.status_code == 403, own.text
        assert "second ops user" in own.json()["detail"]
    listed = (await api.get("/v1/ops/adjustments", params={"status": "pending"}, headers=BOB)).json()
    assert pending["adjustment_id"] in [a["adjustment_id"] for a in listed["items"]]
    assert listed["threshold"] == THRESHOLD

    approved = await api.post(f"{path}/approve", json={"note": "checked the flight"}, headers=BOB)
    assert approved.status_code == 200, approved.text
    assert (approved.json()["status"], approved.json()["decided_by"]) == ("posted", "ops-bob")
    assert (await balance(api, member))["posted"] == THRESHOLD + 1
    retry = await api.post(f"{path}/approve", json={}, headers=BOB)
    assert (retry.status_code, retry.json()["transfer_id"]) == (200, approved.json()["transfer_id"])
    late = await api.post(f"{path}/reject", json={}, headers=CAROL)
    assert late.status_code == 409
    assert "posted already" in late.json()["detail"]

    trail = await actions(api, f"adjustment:{pending['adjustment_id']}")
    # Newest first: Carol's late refusal, Bob's retry (a request that changed nothing: a generic entry), his
    # approval, and Alice's refused attempts, as generic entries of her requests.
    approve, reject = (f"POST /v1/ops/adjustments/{{adjustment_id}}/{verb}" for verb in ("approve", "reject"))
    assert trail == [reject, approve, "adjustment.approved", reject, approve, "adjustment.requested"]
    search = {"actor": "ops-alice", "subject": f"adjustment:{pending['adjustment_id']}", "action": "POST "}
    found = (await api.get("/v1/ops/audit", params=search, headers=CAROL)).json()["items"]
    assert [e["details"]["status"] for e in found] == [403, 403]
    assert found[-1]["before"]["status"] == "pending"  # the GET twin's answer before the attempt


async def test_of_concurrent_approvers_exactly_one_posts(points):
    api = points.api
    member = await new_member(api)
    pending = await adjust(api, member, 5_000)
    path = f"/v1/ops/adjustments/{pending['adjustment_id']}/approve"
    approvers = [ops(f"ops-approver-{i}") for i in range(6)]
    answers = await asyncio.gather(*(api.post(path, json={}, headers=h) for h in approvers))
    assert sorted(a.status_code for a in answers) == [200, 409, 409, 409, 409, 409]
    assert (await balance(api, member))["posted"] == 5_000
    moved = await rows(points.dsn, "SELECT count(*) AS n FROM transfers WHERE cause_event_id = $1",
                       uuid.UUID(pending["adjustment_id"]))  # fmt: skip
    assert moved[0]["n"] == 1


async def test_a_debit_beyond_the_available_points_is_refused_at_request_and_at_approval(points):
    api = points.api
    member = await new_member(api)
    await adjust(api, member, 800)
    refused = await api.post("/v1/ops/adjustments", json=body(member, 801, "debit"), headers=ALICE)
    assert (refused.status_code, refused.json()["available"]) == (409, 800), refused.text

    big = await api.post("/v1/ops/adjustments", json=body(member, 800, "debit"), headers=ALICE)
    assert big.json()["status"] == "posted"  # at the threshold: at once
    assert (await balance(api, member))["posted"] == 0

    await adjust(api, member, 1_000)
    await adjust(api, member, 1_000)
    pending = await adjust(api, member, 1_500, "debit")
    assert pending["status"] == "pending"
    await adjust(api, member, 900, "debit")  # meanwhile, 1,100 left
    late = await api.post(f"/v1/ops/adjustments/{pending['adjustment_id']}/approve", json={}, headers=BOB)
    assert (late.status_code, late.json()["available"]) == (409, 1_100), late.text
    still = await api.get(f"/v1/ops/adjustments/{pending['adjustment_id']}", headers=BOB)
    assert still.json()["status"] == "pending"
    rejected = await api.post(f"/v1/ops/adjustments/{pending['adjustment_id']}/reject", json={"note": "too late"},
                              headers=BOB)  # fmt: skip
    assert rejected.json()["status"] == "rejected"
    assert (await balance(api, member))["posted"] == 1_100
    account = await rows(points.dsn, "SELECT credits_posted - debits_posted AS b FROM accounts WHERE account_id = $1",
                         "adjustments")  # fmt: skip
    assert account[0]["b"] <= -1_100  # this module's other members' credits come from it too


async def test_the_audit_log_refuses_update_delete_and_truncate(points):
    conn = await asyncpg.connect(points.dsn)
    try:
        for statement in ("UPDATE audit_log SET actor = 'nobody'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await conn.execute(statement)
        assert await conn.fetchval("SELECT count(*) FROM audit_log") > 0
    finally:
        await conn.close()


async def test_an_ops_request_that_moves_points_leaves_its_transfers_in_its_transaction_beside_the_request(points):
    api = points.api
    body = {"name": "Spring give-away", "kind": "limited_claim", "rules": {"claim_points": 1}, "budget_points": 700,
            "quantity_cap": 1}  # fmt: skip
    made = await api.post("/v1/ops/activities", json=body, headers={**ALICE, "X-Request-Id": "fund-spring"})
    assert made.status_code == 201, made.text
    entries = await rows(points.dsn, "SELECT action, subject, actor, after FROM audit_log WHERE request_id = $1 "
                         "ORDER BY seq", "fund-spring")  # fmt: skip
    budget = f"activity:{made.json()['activity_id']}:budget"
    assert [(e["action"], e["subject"], e["actor"]) for e in entries] == [
        ("ledger.posted", budget, "ops-alice"),
        ("POST /v1/ops/activities", f"activity:{made.json()['activity_id']}", "ops-alice"),
    ]
    assert '"points": 700' in entries[0]["after"]
