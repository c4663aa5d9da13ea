"""A purchase and its refund handled at the same moment by two transactions (two points processes)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from contracts.topics import PARTNER_PURCHASES
from points.handlers.verify import verify_ledger
from tests.support.earn_batches import bought, ledger, refunded
from tests.support.ledger import publish, purchase, refund
from tests.support.services import points_service, running
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration
Database = Callable[[str], Awaitable[str]]
PAIRS = 30


async def test_a_purchase_and_its_refund_applied_at_once_never_leave_the_refund_parked(database: Database):
    dsn = await database("points")
    async with ledger(dsn) as books:
        member = await books.member("race-1")
        for i in range(PAIRS):
            # Two connections at once, as two processes in one consumer group during a rebalance.
            await asyncio.gather(
                books.apply(bought("race-1", f"order-{i}", 10_000, 100)), books.apply(refunded(f"order-{i}", 10_000))
            )

        parked = await books.row("SELECT count(*) AS n FROM parked_reversals")
        earnings = await books.row(
            "SELECT count(*) AS n, sum(points_reversed) AS reversed, sum(refunded_minor) AS refunded FROM earnings"
        )
        assert parked["n"] == 0, "no refund waits for a purchase the ledger has"
        assert (earnings["n"], earnings["reversed"], earnings["refunded"]) == (PAIRS, PAIRS * 100, PAIRS * 10_000)
        assert await books.posted(f"member:{member}") == 0
    assert await verify_ledger(dsn) == []


async def group_size(kafka: str, group: str) -> int:
    """Members of a consumer group once it is stable (0 while it rebalances)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([group])
        [(_error, _group, state, _protocol_type, _protocol, members, *_rest)] = response.groups
        return len(members) if state == "Stable" else 0
    finally:
        await admin.close()


async def test_two_points_services_in_one_group_reverse_every_refunded_purchase(infra, topic_prefix, database):
    dsn = await database("points")
    group = f"points-{uuid.uuid4().hex[:8]}"
    topic = PARTNER_PURCHASES.qualified(topic_prefix)
    async with running(points_service(infra.kafka, dsn, topic_prefix, group=group)):
        alone = await eventually(lambda: group_size(infra.kafka, group), what="the first process's consumers")
        async with running(points_service(infra.kafka, dsn, topic_prefix, group=group)):
            await eventually(
                lambda: _at_least(group_size(infra.kafka, group), 2 * alone), timeout=60, what="both processes"
            )
            events = []
            for i in range(PAIRS):
                # The refund travels under another customer reference, so on another partition (and process).
                events += [purchase(f"c-{i}", f"o-{i}", 10_000, points=100), refund(f"x-{i}", f"o-{i}", 10_000)]
            await publish(infra.kafka, topic, events)
            await eventually(lambda: _applied(dsn, len(events)), timeout=90, what="every purchase and refund")

    conn = await asyncpg.connect(dsn)
    try:
        parked = await conn.fetchval("SELECT count(*) FROM parked_reversals")
        reversed_points = await conn.fetchval("SELECT sum(points_reversed) FROM earnings")
    finally:
        await conn.close()
    assert (parked, reversed_points) == (0, PAIRS * 100)
    assert await verify_ledger(dsn) == []


async def _at_least(size: Awaitable[int], wanted: int) -> int | None:
    found = await size
    return found if found >= wanted else None


async def _applied(dsn: str, count: int) -> bool:
    conn = await asyncpg.connect(dsn)
    try:
        return bool(await conn.fetchval("SELECT count(*) FROM inbox") >= count)
    finally:
        await conn.close()
