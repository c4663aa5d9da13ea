"""The points service killed with SIGKILL mid-burst and restarted: nothing lost, nothing counted twice."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import asyncpg
import httpx
import pytest

from points.handlers.verify import verify_ledger
from tests.support.burst import balances, build_burst, holder_balances, link_members, publish_burst
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
EVENTS = 30_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_points(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "points", "serve"], env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
        )


async def inbox_count(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM inbox"))
    finally:
        await conn.close()


async def test_points_killed_mid_burst_loses_nothing_and_counts_nothing_twice(infra, topic_prefix, database, tmp_path):
    burst = build_burst(EVENTS, customers=800, cards=200, members=60, seed=9)
    dsn = await database("points")
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "KAFKA_BOOTSTRAP_SERVERS": infra.kafka,
        "KAFKA_TOPIC_PREFIX": topic_prefix,
        "HTTP_PORT": str(port),
        "CONSUMER_GROUP": f"points-crash-{topic_prefix}",
    }
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "points.log"
    process = start_points(env, log)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as api:

            async def ready() -> bool:
                try:
                    return (await api.get("/ready")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(ready, timeout=60, what="points to be ready")
            members = await link_members(api, burst)
            await publish_burst(infra.kafka, topic_prefix, burst)

            async def well_under_way() -> bool:
                return await inbox_count(dsn) >= burst.unique_events // 3

            await eventually(well_under_way, timeout=120, what="a third of the burst to be applied")
            process.send_signal(signal.SIGKILL)
            assert await asyncio.to_thread(process.wait, 10) == -signal.SIGKILL
            applied_at_kill = await inbox_count(dsn)
            assert applied_at_kill < burst.unique_events, "the kill came too late to prove anything"

            process = start_points(env, log)
            await eventually(ready, timeout=60, what="points to be ready again")

            async def all_applied() -> bool:
                return await inbox_count(dsn) >= burst.unique_events

            await eventually(all_applied, timeout=300, what="the rest of the burst after the restart")
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            await asyncio.to_thread(process.wait, 30)

    assert await inbox_count(dsn) == burst.unique_events
    found = holder_balances(await balances(dsn), members, burst.links)
    for identifier in set(found) | set(burst.expected):
        assert found.get(identifier, 0) == burst.expected.get(identifier, 0), identifier
    assert await verify_ledger(dsn) == []
