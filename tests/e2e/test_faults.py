"""The broker, PostgreSQL and the partners service each killed with SIGKILL during a burst, and restarted.

The test runs a platform of its own (deploy/local/fleet.py: Kafka, PostgreSQL, partners and points as
processes on free ports), so that killing them touches nothing else. Partners' systems send signed
purchases and retry each one with the same idempotency key until it is answered `202`, as a partner's
system would; a fault may only ever answer `503` or drop the connection, and the broker's is not felt
at all (intake records each purchase with its event in partners' outbox). Afterwards every purchase
answered `202` is credited exactly once and every ledger invariant holds.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg
import httpx
import pytest

from deploy.local.fleet import Fleet
from points.handlers.verify import verify_ledger
from tests.support.ledger import OPS, link, new_member
from tests.support.partner_client import SignedPartnerClient, ops_token, purchase_item, register_partner
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

PURCHASES = 360
SENDERS = 6
MEMBERS = 24


@pytest.fixture(scope="module")
async def fleet(tmp_path_factory) -> AsyncIterator[Fleet]:
    own = Fleet(tmp_path_factory.mktemp("fleet"), services=("partners", "points"))
    try:
        await own.start()
        yield own
    finally:
        await own.stop()


@dataclass
class Burst:
    """Purchases spread over members, the answers `202` gave, and the failures met on the way."""

    partner: SignedPartnerClient
    items: list[dict[str, object]]
    accepted: dict[str, int] = field(default_factory=dict)
    """purchase_id -> points answered."""
    refusals: dict[str, int] = field(default_factory=dict)

    async def send_all(self, deadline: float) -> None:
        queue: asyncio.Queue[dict[str, object]] = asyncio.Queue()
        for item in self.items:
            queue.put_nowait(item)
        await asyncio.gather(*(self._sender(queue, deadline) for _ in range(SENDERS)))

    async def _sender(self, queue: asyncio.Queue[dict[str, object]], deadline: float) -> None:
        while not queue.empty():
            item = queue.get_nowait()
            while True:
                assert time.monotonic() < deadline, f"{item['purchase_id']} was never accepted: {self.refusals}"
                try:
                    answer = await self.partner.purchase(item)
                except httpx.TransportError as error:  # the service is down or restarting
                    self._count(type(error).__name__)
                else:
                    if answer.status_code == 202:
                        self.accepted[str(item["purchase_id"])] = answer.json()["points"]
                        break
                    assert answer.status_code == 503, f"a fault may answer 503, not {answer.status_code}: {answer.text}"
                    assert answer.headers.get("Retry-After"), answer.headers
                    self._count("503")
                await asyncio.sleep(0.2)

    def _count(self, what: str) -> None:
        self.refusals[what] = self.refusals.get(what, 0) + 1


async def burst_for(fleet: Fleet, partner_id: str) -> Burst:
    async with httpx.AsyncClient(base_url=fleet.url("partners"), timeout=10) as ops_api:
        credentials = await register_partner(ops_api, ops_token(), partner_id)
    async with httpx.AsyncClient(base_url=fleet.url("points"), timeout=10) as points_api:
        for n in range(MEMBERS):
            await link(points_api, await new_member(points_api, f"m{n}"), partner_id=partner_id, customer_ref=f"c{n}")
    client = httpx.AsyncClient(base_url=fleet.url("partners"), timeout=10)
    items = [
        purchase_item(f"{partner_id}-{i}", amount_minor=100 * (1 + i % 50), customer_ref=f"c{i % MEMBERS}")
        for i in range(PURCHASES)
    ]
    return Burst(SignedPartnerClient(client, credentials), items)


async def credited(fleet: Fleet, partner_id: str) -> dict[str, int]:
    """purchase_id -> points of each earning the ledger holds for this partner."""
    conn = await asyncpg.connect(fleet.dsn("points"))
    try:
        rows = await conn.fetch(
            "SELECT source_key, points FROM earnings WHERE source_key LIKE $1", f"partner:{partner_id}:%"
        )
    finally:
        await conn.close()
    return {row["source_key"].split(":", 2)[2]: row["points"] for row in rows}


async def ledger_lines(fleet: Fleet, partner_id: str) -> int:
    """Points credited to members by this partner's purchases, from the transfers themselves."""
    conn = await asyncpg.connect(fleet.dsn("points"))
    try:
        total = await conn.fetchval(
            "SELECT coalesce(sum(amount), 0) FROM transfers WHERE debit_account = $1 AND reason = 'partner_purchase'",
            f"partner:{partner_id}:issued",
        )
    finally:
        await conn.close()
    return int(total)


async def run_burst_with_fault(
    fleet: Fleet, partner_id: str, fault: Callable[[], Awaitable[None]], recover: Callable[[], Awaitable[None]],
    *, felt: bool = True,
) -> Burst:  # fmt: skip
    """`felt`: whether senders must meet the fault (a 503 or a dropped connection) or must not notice it."""
    burst = await burst_for(fleet, partner_id)
    sending = asyncio.create_task(burst.send_all(deadline=time.monotonic() + 240))

    async def a_third_accepted() -> bool:
        return len(burst.accepted) >= PURCHASES // 3

    await eventually(a_third_accepted, timeout=120, what="a third of the burst")
    await fault()
    await asyncio.sleep(1.0)  # the platform stays broken for a moment while the senders keep trying
    await recover()
    await sending
    await burst.partner.client.aclose()
    assert len(burst.accepted) == PURCHASES
    if felt:
        assert burst.refusals, "the fault came too late to be felt by any sender"
    else:
        assert not burst.refusals, burst.refusals

    async def all_credited() -> bool:
        return len(await credited(fleet, partner_id)) >= PURCHASES

    await eventually(all_credited, timeout=120, what="every accepted purchase in the ledger")
    assert await credited(fleet, partner_id) == burst.accepted  # each once, with the points answered
    assert await ledger_lines(fleet, partner_id) == sum(burst.accepted.values())
    assert await verify_ledger(fleet.dsn("points")) == []
    return burst


async def test_the_broker_killed_mid_burst_loses_and_doubles_nothing(fleet: Fleet):
    [node] = fleet.kafka.nodes

    async def kill() -> None:
        assert fleet.kafka.signal(node, signal.SIGKILL)

    async def restart() -> None:
        await asyncio.to_thread(fleet.kafka.start_node, node)

    # Intake records each purchase with its event in partners' outbox: partners keep answering 202 while the
    # broker is gone, and the relay sends the backlog once it is back.
    await run_burst_with_fault(fleet, f"kafka-{uuid.uuid4().hex[:6]}", kill, restart, felt=False)


async def test_postgresql_killed_mid_burst_loses_and_doubles_nothing(fleet: Fleet):
    async def kill() -> None:
        assert fleet.postgres.signal(signal.SIGKILL)

    async def restart() -> None:
        await asyncio.to_thread(fleet.postgres.start)

    await run_burst_with_fault(fleet, f"pg-{uuid.uuid4().hex[:6]}", kill, restart)


async def test_the_partners_service_killed_mid_burst_loses_and_doubles_nothing(fleet: Fleet):
    async def kill() -> None:
        assert fleet.signal_service("partners", signal.SIGKILL)

    async def restart() -> None:
        await fleet.start_service("partners")

    await run_burst_with_fault(fleet, f"ptn-{uuid.uuid4().hex[:6]}", kill, restart)
    async with httpx.AsyncClient(base_url=fleet.url("points"), timeout=10) as points_api:
        assert (await points_api.get("/v1/ops/dead-letters", headers=OPS)).json()["items"] == []
