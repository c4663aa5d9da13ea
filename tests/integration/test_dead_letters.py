"""Operators see dead letters and replay them after a fix; transient failures are retried, never dead-lettered."""

from __future__ import annotations

import uuid

import pytest

from contracts.topics import PARTNER_PURCHASES, PURCHASE_OUTCOMES
from points import consumers as points_consumers
from points.handlers.verify import verify_ledger
from tests.support.kafka import read_all
from tests.support.ledger import OPS, balance, link, member_headers, new_member, publish, purchase
from tests.support.services import http, points_service, running
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
async def points(infra, topic_prefix, database):
    dsn = await database("points")
    async with running(points_service(infra.kafka, dsn, topic_prefix)) as shell, http(shell) as api:
        member = await new_member(api)
        await link(api, member, partner_id="skymall", customer_ref="dl-1")
        yield api, dsn, topic_prefix, member


def with_a_bug(monkeypatch, refuse_purchase: str) -> None:
    """The earn handler as a release with a bug: it fails for good on one purchase."""
    real = points_consumers.apply_earn_batch

    async def buggy(store, topic, facts, *args, **kwargs):
        if any(getattr(f, "source_key", "").endswith(refuse_purchase) for f in facts):
            raise ValueError(f"release 1.2.3 cannot apply {refuse_purchase}")
        return await real(store, topic, facts, *args, **kwargs)

    monkeypatch.setattr(points_consumers, "apply_earn_batch", buggy)


async def posted(api, member: uuid.UUID, points: int) -> bool:
    return (await balance(api, member))["posted"] == points


async def test_ops_list_show_and_replay_a_dead_letter_after_a_fix_and_the_inbox_applies_it_once(
    points, infra, monkeypatch
):
    api, dsn, prefix, member = points
    topic = PARTNER_PURCHASES.qualified(prefix)
    with_a_bug(monkeypatch, "order-buggy")
    events = [purchase("dl-1", "order-1", 1_000, 10), purchase("dl-1", "order-buggy", 5_000, 50),
              purchase("dl-1", "order-2", 2_000, 20)]  # fmt: skip
    await publish(infra.kafka, topic, events)
    await eventually(lambda: posted(api, member, 30), what="the purchases around the bug")

    async def listed() -> dict | None:
        # The good records' transaction commits before the guilty one's dead letter is recorded in its own.
        found = (await api.get("/v1/ops/dead-letters", params={"topic": topic}, headers=OPS)).json()
        return found if found["items"] else None

    page = await eventually(listed, what="the dead letter")
    [letter] = page["items"]
    assert (letter["event_id"], letter["event_type"]) == (str(events[1].event_id), "PartnerPurchaseRecorded")
    assert (letter["error_class"], letter["replays"]) == ("ValueError", 0)
    assert "release 1.2.3 cannot apply order-buggy" in letter["reason"]
    [told] = await read_all(infra.kafka, PURCHASE_OUTCOMES.qualified(prefix), 1)  # its partner hears (webhooks)
    told_payload = PURCHASE_OUTCOMES.decode(told.value).payload
    assert (told.key, told_payload.purchase_id, told_payload.refused_event_id) == (b"skymall", "order-buggy",
                                                                                   events[1].event_id)  # fmt: skip
    assert page["next_before"] is None
    assert (await api.get("/v1/ops/dead-letters", params={"reason": "1.2.3"}, headers=OPS)).json()["items"]
    assert not (await api.get("/v1/ops/dead-letters", params={"reason": "nothing"}, headers=OPS)).json()["items"]
    shown = (await api.get(f"/v1/ops/dead-letters/{letter['number']}", headers=OPS)).json()
    assert (shown["value"], shown["value_encoding"]) == (events[1].model_dump_json(), "utf-8")
    summary = (await api.get("/v1/ops/dead-letters/summary", headers=OPS)).json()
    assert [(t["topic"], t["total"], t["waiting"]) for t in summary["topics"]] == [(topic, 1, 1)]

    # The fix is deployed; ops replay the record: it goes back to its topic with its key and event id.
    monkeypatch.undo()
    replayed = await api.post(f"/v1/ops/dead-letters/{letter['number']}/replay", headers=OPS)
    assert replayed.status_code == 202, replayed.text
    assert replayed.json() == {"replayed": [letter["id"]]}
    await eventually(lambda: posted(api, member, 80), what="the replayed purchase")

    # Replaying again (or everything of the topic) never applies it twice.
    again = await api.post("/v1/ops/dead-letters/replay", json={"topic": topic, "include_replayed": True}, headers=OPS)
    assert again.json() == {"replayed": [letter["id"]]}
    copies = await read_all(infra.kafka, topic, expected=len(events) + 2)
    assert sum(1 for r in copies if r.value == events[1].model_dump_json().encode()) == 3
    assert all(r.key == b"skymall:dl-1" for r in copies)
    waiting = await api.post("/v1/ops/dead-letters/replay", json={"topic": topic}, headers=OPS)
    assert waiting.json() == {"replayed": []}  # nothing waits any more
    assert (await balance(api, member))["posted"] == 80
    shown = (await api.get(f"/v1/ops/dead-letters/{letter['number']}", headers=OPS)).json()
    assert shown["replays"] == 2
    assert await verify_ledger(dsn) == []


async def test_dead_letters_are_for_ops_only(points):
    api, _dsn, _prefix, member = points
    assert (await api.get("/v1/ops/dead-letters")).status_code == 401
    assert (await api.get("/v1/ops/dead-letters", headers=member_headers(member))).status_code == 403
    assert (await api.post("/v1/ops/dead-letters/1/replay", headers=member_headers(member))).status_code == 403
    assert (await api.get("/v1/ops/dead-letters/999", headers=OPS)).status_code == 404
    assert (await api.post("/v1/ops/dead-letters/999/replay", headers=OPS)).status_code == 404
    assert (await api.get("/v1/ops/dead-letters", params={"limit": 0}, headers=OPS)).status_code == 422
    refused = await api.post("/v1/ops/dead-letters/replay", json={"topic": ""}, headers=OPS)
    assert refused.status_code == 422


async def test_a_transient_failure_is_retried_until_it_passes_and_nothing_is_dead_lettered(points, infra, monkeypatch):
    api, _dsn, prefix, member = points
    real = points_consumers.apply_earn_batch
    outages = {"left": 4}

    async def flaky(*args, **kwargs):
        if outages["left"]:
            outages["left"] -= 1
            raise ConnectionResetError("connection reset by peer (the database restarts)")
        return await real(*args, **kwargs)

    monkeypatch.setattr(points_consumers, "apply_earn_batch", flaky)
    await publish(infra.kafka, PARTNER_PURCHASES.qualified(prefix), [purchase("dl-1", "order-t", 4_000, 40)])
    await eventually(lambda: posted(api, member, 40), what="the purchase after the outage")
    assert outages["left"] == 0
    assert (await api.get("/v1/ops/dead-letters", headers=OPS)).json()["items"] == []
