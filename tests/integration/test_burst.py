"""A 100,000-event burst through real Kafka leaves exactly the expected balances."""

from __future__ import annotations

import asyncpg
import pytest

from points.handlers.verify import verify_ledger
from tests.support.burst import balances, build_burst, holder_balances, link_members, publish_burst
from tests.support.services import http, points_service, running
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

BURST = 100_000


async def count(dsn: str, sql: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(sql))
    finally:
        await conn.close()


async def test_a_100k_event_burst_leaves_exactly_the_expected_balances(infra, topic_prefix, database):
    burst = build_burst(BURST)
    dsn = await database("points")
    async with running(points_service(infra.kafka, dsn, topic_prefix)) as points, http(points) as api:
        members = await link_members(api, burst)
        await publish_burst(infra.kafka, topic_prefix, burst)

        async def all_applied() -> bool:
            return await count(dsn, "SELECT count(*) FROM inbox") >= burst.unique_events

        await eventually(all_applied, timeout=600, what=f"{burst.unique_events:,} events to be applied")

    assert await count(dsn, "SELECT count(*) FROM inbox") == burst.unique_events
    found = holder_balances(await balances(dsn), members, burst.links)
    identifiers = set(found) | set(burst.expected)
    mismatches = {
        i: (found.get(i, 0), burst.expected.get(i, 0))
        for i in identifiers
        if found.get(i, 0) != burst.expected.get(i, 0)
    }
    assert mismatches == {}, f"{len(mismatches)} identifiers off, e.g. {list(mismatches.items())[:5]}"
    assert sum(found.values()) == sum(burst.expected.values())
    assert await verify_ledger(dsn) == []
