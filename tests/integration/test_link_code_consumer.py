"""Issued link codes reaching points on loyalty.link-codes.v1: twice, beside a broken record, and read again."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from contracts.events.links import LinkCodeIssued, LinkCodePayload
from contracts.link_codes import code_hash, new_code
from contracts.topics import LINK_CODES
from loyalty_runtime.consumer import group_of
from tests.support.kafka import caught_up, headers_of, read_all
from tests.support.ledger import member_headers, new_member, publish
from tests.support.services import http, points_service, running
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


def issued(code: str, **identifier: str) -> LinkCodeIssued:
    event_id = uuid.uuid4()
    payload = LinkCodePayload(code_sha256=code_hash(code), expires_at=datetime.now(UTC) + timedelta(minutes=15),
                              **identifier)  # fmt: skip
    return LinkCodeIssued(event_id=event_id, occurred_at=datetime.now(UTC), source="partners",
                          correlation_id=event_id, payload=payload)  # fmt: skip


async def count(dsn: str, table: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
    finally:
        await conn.close()


async def test_a_code_issued_twice_is_stored_once_and_a_broken_record_beside_it_is_dead_lettered_once(
    infra, topic_prefix, database
):
    dsn = await database("points")
    topic = LINK_CODES.qualified(topic_prefix)
    card_code, shop_code = new_code(), new_code()
    card = issued(card_code, card_token="tok_lc000000001")
    shop = issued(shop_code, partner_id="skymall", customer_ref="lc-1")
    # Published before points starts, so that they arrive in one batch: a copy (a retried publish) and a
    # record that is not a link code at all, between good ones.
    await publish(infra.kafka, topic, [card, card], key=b"tok_lc000000001")
    await publish(infra.kafka, topic, [b'{"type": "LinkCodeIssued", "payload": {}}'], key=b"skymall:lc-1")
    await publish(infra.kafka, topic, [shop], key=b"skymall:lc-1")
    group = f"points-lc-{uuid.uuid4().hex[:6]}"
    async with running(points_service(infra.kafka, dsn, topic_prefix, group=group)) as shell, http(shell) as api:
        await eventually(
            lambda: caught_up(infra.kafka, group_of(group, LINK_CODES), topic), timeout=30, what="the codes to be read"
        )
        assert await count(dsn, "link_codes") == 2
        member = await new_member(api)
        body = {"kind": "card", "card_token": "tok_lc000000001", "link_code": card_code}
        linked = await api.post("/v1/members/me/identifiers", json=body, headers=member_headers(member))
        assert linked.status_code == 201, linked.text

    # Read again from the start by another group (after a crash or a reset): nothing new, no second dead letter.
    again = f"points-lc-{uuid.uuid4().hex[:6]}"
    async with running(points_service(infra.kafka, dsn, topic_prefix, group=again)):
        await eventually(
            lambda: caught_up(infra.kafka, group_of(again, LINK_CODES), topic), timeout=30, what="the second group"
        )
    assert await count(dsn, "link_codes") == 2
    assert await count(dsn, "dead_letters") == 1
    [dead] = await read_all(infra.kafka, topic_prefix + LINK_CODES.dead_letter, expected=1)
    assert headers_of(dead)["dlq-error-class"] == "ValidationError"
    assert headers_of(dead)["dlq-service"] == "points"
