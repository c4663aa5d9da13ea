"""Expiry: a run of 100,000 expiring lots, and whether earn batches for the same members wait for it meanwhile.

`LOTS` lots that expired yesterday are written straight into the bench points database, ten to a linked
member (as growth's expiry sizes do). A trickle of partner purchases for those same members goes the real
way (Kafka, the points service's earn consumer) at `TRICKLE_RATE`: first for `ALONE_S` seconds with nothing
else running, then while POST /v1/ops/expiry-runs is timed until it answers. A purchase's latency is the
first poll of the inbox (every POLL_S) that shows it committed, minus when it was sent; the longest one
during the run against the longest one alone tells whether expiry blocked earn. The ledger invariants
(`python -m points verify`) are checked afterwards.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaProducer

from bench import seed
from bench.clients import ops_headers
from bench.harness import PROGRESS, Run, Stack
from bench.httpclient import Pool
from bench.report import Report, Result
from bench.stats import rate, summary
from contracts.events.partners import PartnerPurchaseRecorded, PurchasePayload
from contracts.money import Money
from contracts.topics import PARTNER_PURCHASES
from points.adapters.invariants import CHECKS

NAME = "expiry"
PER_MEMBER = 10
POINTS_EACH = 50
PARTNER = "benchmall"
TRICKLE_RATE = 100.0
ALONE_S = 5.0
POLL_S = 0.005
JOIN_TIMEOUT_S = 60.0

# `$1` new members, each linked to the customer `$2 || n` of the bench partner `$3`.
MEMBERS = """
WITH m AS (
    INSERT INTO members (member_id, display_name) SELECT gen_random_uuid(), '' FROM generate_series(1, $1::int)
    RETURNING member_id
), numbered AS (
    SELECT member_id, $2 || row_number() OVER () AS customer_ref FROM m
), a AS (
    INSERT INTO accounts (account_id, kind, member_id) SELECT 'member:' || member_id, 'member', member_id FROM numbered
), i AS (
    INSERT INTO identifiers (identifier, member_id, linked_at)
    SELECT 'partner:' || $3 || ':' || customer_ref, member_id, now() FROM numbered
)
SELECT member_id, customer_ref FROM numbered
"""

# `$2` lots of `$3` points that expired a day ago on each member account of `$1`, each with its transfer.
EXPIRING = """
WITH t AS (
    INSERT INTO transfers (transfer_id, debit_account, credit_account, amount, reason, cause_event_id, occurred_at,
                           expires_at, memo)
    SELECT gen_random_uuid(), $4, a, $3, 'partner_purchase', gen_random_uuid(),
           now() - interval '731 days', now() - interval '1 day', '{"seeded_by": "bench"}'
    FROM unnest($1::text[]) AS a CROSS JOIN generate_series(1, $2::int)
    RETURNING transfer_id, credit_account, amount, occurred_at, expires_at
), l AS (
    INSERT INTO lots (lot_id, account_id, amount, remaining, earned_at, expires_at, issuer)
    SELECT transfer_id, credit_account, amount, amount, occurred_at, expires_at, $4 FROM t
)
UPDATE accounts SET credits_posted = credits_posted + $2::bigint * $3::bigint WHERE account_id = ANY($1::text[])
"""


@dataclass
class Trickle:
    """Purchases sent one by one on a schedule, and when each was seen committed."""

    sent: dict[uuid.UUID, float] = field(default_factory=dict)
    seen_ms: dict[uuid.UUID, float] = field(default_factory=dict)

    def latencies(self, ids: set[uuid.UUID]) -> list[float]:
        return [self.seen_ms[i] for i in ids if i in self.seen_ms]


async def run(run: Run, report: Report) -> None:
    details: dict[str, Any] = report.details.setdefault(NAME, {})
    env = {"points": {"EXPIRY_INTERVAL_SECONDS": "86400"}}  # the benchmark runs expiry on demand
    async with Stack(run, NAME, services=("points",), env=env) as stack:
        conn = await asyncpg.connect(stack.dsn("points"))
        producer = AIOKafkaProducer(bootstrap_servers=run.kafka, acks="all", enable_idempotence=True)
        pool: Pool | None = None
        try:
            await stack.start()
            pool = Pool(stack.url("points"), 1)
            await producer.start()
            topic = PARTNER_PURCHASES.qualified(stack.prefix)
            sender: Sender | None = None
            for lots in run.plan.expiry_sizes:  # 1,000, 10,000 and 100,000 (not the last with --quick)
                async with PROGRESS.phase("expiry", f"writing {lots:,} expired lots, ten to a member"):
                    members = await write_expiring(conn, lots)
                if sender is None:  # earn alone, once: what the latencies during the runs compare with
                    sender = Sender(producer, topic, members)
                    await sender.joined(conn)
                    _, alone = await sender.during(conn, asyncio.sleep(ALONE_S), "earn alone")
                    report.add([latency_result("expiry: earn latency with no run, max", sender.trickle, alone)])
                sender.customers = sorted(members)
                (seconds, answer), during = await sender.during(conn, expiry(pool, lots), "earn during expiry")
                broken = await violations(conn)
                report.add(run_results(lots, seconds, answer, broken, sender.trickle, during))
                details[f"run {lots}"] = {"seconds": seconds, **answer, "violations": broken}
        finally:
            if pool is not None:
                pool.close()
            await producer.stop()
            await conn.close()


async def write_expiring(conn: asyncpg.Connection, lots: int) -> dict[str, uuid.UUID]:
    """`lots` lots that expired yesterday, ten to a new linked member; returns the members by customer ref."""
    async with conn.transaction():
        rows = await conn.fetch(MEMBERS, lots // PER_MEMBER, f"e{lots}-", PARTNER)
        accounts = [f"member:{r['member_id']}" for r in rows]
        await conn.execute(seed.ENSURE_ISSUER, seed.ISSUER)
        for first in range(0, len(accounts), 2_000):
            await conn.execute(EXPIRING, accounts[first : first + 2_000], PER_MEMBER, POINTS_EACH, seed.ISSUER)
        await conn.execute(seed.DEBIT, seed.ISSUER, len(accounts) * PER_MEMBER * POINTS_EACH)
    await conn.execute("ANALYZE members; ANALYZE identifiers; ANALYZE lots; ANALYZE accounts; ANALYZE transfers")
    return {r["customer_ref"]: r["member_id"] for r in rows}


class Sender:
    """The trickle of purchases for the expiring members, and the poller that sees them committed."""

    def __init__(self, producer: AIOKafkaProducer, topic: str, members: dict[str, uuid.UUID]) -> None:
        self.producer, self.topic = producer, topic
        self.customers = sorted(members)
        self.trickle = Trickle()
        self.rng = random.Random(14)

    async def send_one(self) -> uuid.UUID:
        ref = self.rng.choice(self.customers)
        event_id = uuid.uuid4()
        event = PartnerPurchaseRecorded(
            event_id=event_id, occurred_at=datetime.now(UTC), source="partners", correlation_id=event_id,
            payload=PurchasePayload(partner_id=PARTNER, customer_ref=ref, purchase_id=f"x-{event_id}",
                                    amount=Money(amount_minor=12_300, currency="CNY"), points=123),
        )  # fmt: skip
        key = f"{PARTNER}:{ref}".encode()
        self.trickle.sent[event_id] = time.perf_counter()
        await self.producer.send(self.topic, event.model_dump_json().encode(), key=key)
        return event_id

    async def joined(self, conn: asyncpg.Connection) -> None:
        """Wait until the earn consumer commits a first purchase (its consumer group has joined)."""
        async with PROGRESS.phase("expiry", "waiting for the earn consumer"):
            first = await self.send_one()
            deadline = time.monotonic() + JOIN_TIMEOUT_S
            while not await conn.fetchval("SELECT 1 FROM inbox WHERE event_id = $1", first):
                if time.monotonic() > deadline:
                    raise RuntimeError("the points service committed no purchase within a minute")
                await asyncio.sleep(0.05)

    async def during(self, conn: asyncpg.Connection, work: Any, label: str) -> tuple[Any, set[uuid.UUID]]:
        """Trickle purchases while `work` runs, then wait for all of them; returns its result and their ids."""
        ids: set[uuid.UUID] = set()
        task = asyncio.ensure_future(work)
        poller = asyncio.ensure_future(self.poll(conn))
        async with PROGRESS.phase(f"expiry: {label}", lambda: f"{len(ids):,} purchases sent"):
            started = time.perf_counter()
            while not task.done():
                ids.add(await self.send_one())
                await asyncio.sleep(max(0.0, started + len(ids) / TRICKLE_RATE - time.perf_counter()))
            deadline = time.monotonic() + 30
            while any(i not in self.trickle.seen_ms for i in ids) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        poller.cancel()
        return task.result(), ids

    async def poll(self, conn: asyncpg.Connection) -> None:
        while True:
            started = time.perf_counter()
            waiting = [i for i in self.trickle.sent if i not in self.trickle.seen_ms]
            if waiting:
                for row in await conn.fetch("SELECT event_id FROM inbox WHERE event_id = ANY($1::uuid[])", waiting):
                    self.trickle.seen_ms[row["event_id"]] = (started - self.trickle.sent[row["event_id"]]) * 1000
            await asyncio.sleep(POLL_S)


async def expiry(pool: Pool, lots: int) -> tuple[float, dict[str, Any]]:
    started = time.monotonic()
    async with PROGRESS.phase(f"expiry: run of {lots:,} lots", "waiting for the answer"):
        answer = await pool.request("POST", "/v1/ops/expiry-runs", b"", ops_headers())
    seconds = time.monotonic() - started
    if answer.status != 200:
        raise RuntimeError(f"the expiry run answered {answer.status}: {answer.body[:200]!r}")
    found: dict[str, Any] = orjson.loads(answer.body)
    return seconds, found


async def violations(conn: asyncpg.Connection) -> dict[str, int]:
    """The ledger invariants that rows break, with how many rows."""
    broken: dict[str, int] = {}
    async with PROGRESS.phase("expiry", "checking the ledger invariants"):
        for check in CHECKS:
            rows = await conn.fetch(check.sql)
            if rows:
                broken[check.name] = len(rows)
    return broken


def run_results(
    lots: int, seconds: float, answer: dict[str, Any], broken: dict[str, int], trickle: Trickle, during: set[uuid.UUID]
) -> list[Result]:
    expired = answer.get("lots_expired", 0)
    note = f"{rate(expired, seconds):,.0f} lots/s"
    if expired != lots:
        note += f"; expired {expired:,} of {lots:,}"
    note += "; ledger invariants hold" if not broken else f"; BROKEN INVARIANTS: {broken}"
    return [
        Result(f"expiry: run, {lots:,} expiring lots", seconds, "s", note=note),
        latency_result(f"expiry: earn latency during the {lots:,}-lot run, max", trickle, during),
    ]


def latency_result(name: str, trickle: Trickle, ids: set[uuid.UUID]) -> Result:
    """The longest latency of the purchases `ids`, with their p50 and p99 (and any never seen) in the note."""
    seen = trickle.latencies(ids)
    stats = summary(seen) if seen else {"p50": 0.0, "p99": 0.0}
    note = f"{len(ids):,} purchases at {TRICKLE_RATE:,.0f}/s for those members, p50 {stats['p50']:.1f} ms, "
    note += f"p99 {stats['p99']:.1f} ms" + (f", {len(ids) - len(seen)} never seen" if len(seen) < len(ids) else "")
    return Result(name, max(seen, default=0.0), "ms", note=note)
