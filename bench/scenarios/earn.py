"""Earn ingestion: events from the purchase and card topics to committed ledger entries, beside two limits.

- ingestion: the real points service consumes a pre-produced backlog (so it is never starved); the
  figure is inbox rows committed within a steady window (the consumer group join and a warm-up excluded),
  divided by the window's length;
- COPY limit: the rows the ledger writes for the same events (inbox, earnings, transfers, lots, two
  outbox rows per transfer, and one accounts update per batch), written with COPY into tables of the
  same shape, batches of 500 events, one transaction each, two writers like the service's two consumers;
- Kafka limit: a plain aiokafka consumer reading the same topics from the start, as fast as it can.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from bench import events, profile, seed
from bench.events import Applied
from bench.harness import PROGRESS, Run, Stack, infrastructure_pids, measuring_cpu
from bench.report import Report, Result
from bench.stats import rate
from contracts.topics import CARD_TRANSACTIONS, PARTNER_PURCHASES
from points.handlers.verify import verify_ledger

NAME = "earn"
BATCH = 500
"""Events per transaction, as the points consumers take them (loyalty_runtime.consumer.BATCH_MAX_RECORDS)."""
WRITERS = 2
COPIED = ("inbox", "earnings", "transfers", "lots", "outbox", "accounts")
# Sizes of the real outbox messages (TransferPosted, PointsCredited) so the COPY writes as many bytes.
TRANSFER_POSTED = orjson.dumps({"event_id": str(uuid.uuid4()), "type": "TransferPosted", "pad": "x" * 520})
POINTS_CREDITED = orjson.dumps({"event_id": str(uuid.uuid4()), "type": "PointsCredited", "pad": "x" * 480})


async def run(run: Run, report: Report) -> None:
    plan = run.plan
    details: dict[str, Any] = report.details.setdefault(NAME, {})
    async with Stack(run, NAME, services=("points",)) as stack:
        conn = await asyncpg.connect(stack.dsn("points"))
        try:
            async with PROGRESS.phase("earn: seeding members", lambda: f"{plan.members:,} members and identifiers"):
                members = await seed.members(conn, plan.members)
            async with PROGRESS.phase("earn: building events", lambda: f"{plan.earn_events:,} events"):
                stream = await asyncio.to_thread(events.build, members, plan.earn_events, keep_applied=plan.copy_events)
            topics = {
                PARTNER_PURCHASES.qualified(stack.prefix): stream.partner,
                CARD_TRANSACTIONS.qualified(stack.prefix): stream.card,
            }
            produced = [0]
            started = time.monotonic()
            async with PROGRESS.phase(
                "earn: producing",
                lambda: (
                    f"{produced[0]:,}/{stream.total:,} events ({rate(produced[0], time.monotonic() - started):,.0f}/s)"
                ),
            ):
                await events.produce(run.kafka, topics, lambda n: produced.__setitem__(0, n))
            details.update(events=stream.total, partner_events=len(stream.partner), card_events=len(stream.card))

            kafka_limit = await consumer_limit(run.kafka, list(topics), stream.total, PARTNER_PURCHASES.partitions)
            copy_limit = await write_limit(stack.dsn("points"), conn, stream.applied)
            ingestion = await ingest(run, stack, conn, {t: len(r) for t, r in topics.items()}, details)
            checked = await ledger_checked(stack.dsn("points"))
        finally:
            await conn.close()
    details["events_per_s"] = ingestion
    replicas = f"{plan.earn_replicas} points processes" if plan.earn_replicas > 1 else "1 points process"
    report.add(
        [
            Result("earn: ingestion vs COPY limit", ingestion, "events/s", copy_limit, note=replicas),
            Result("earn: ingestion vs Kafka consumer limit", ingestion, "events/s", kafka_limit),
            Result("earn: limit, plain COPY of the same rows", copy_limit, "events/s", note=f"{WRITERS} writers"),
            Result("earn: limit, plain Kafka consumer", kafka_limit, "events/s"),
            checked,
            *cost_per_event(details, ingestion),
        ]
    )


def cost_per_event(details: dict[str, Any], events_per_s: float) -> list[Result]:
    """The CPU an event cost during the window, in µs: the points process split by stage (bench/profile.py
    STAGES, from its profile), then PostgreSQL and Kafka."""
    cores: dict[str, float] = details.get("cpu_cores_during_window", {})
    if not events_per_s or not cores:
        return []
    per_event = {name: used * 1e6 / events_per_s for name, used in cores.items()}
    shares: dict[str, float] = details.get("profile", {}).get("stages", {})
    rows = [
        Result(f"earn: CPU per event, points: {stage}", per_event.get("points", 0.0) * share, "µs",
               note=f"{share:.0%} of the points process's samples")
        for stage, share in shares.items()
    ]  # fmt: skip
    rows += [
        Result(f"earn: CPU per event, {name}", per_event[name], "µs", note=f"{cores[name]:.2f} cores")
        for name in ("points", "postgres", "kafka")
        if name in per_event
    ]
    return rows


async def ledger_checked(dsn: str) -> Result:
    """`make verify`'s ledger checks on the bench database after the run, as a figure: the invariants broken."""
    async with PROGRESS.phase("earn", "checking every ledger invariant on the bench database"):
        broken = await verify_ledger(dsn)
    note = "make verify's checks hold" if not broken else "BROKEN: " + ", ".join(v.check for v in broken)
    return Result("earn: ledger invariants broken after the run", float(len(broken)), "checks", note=note)


# --- limit 2: Kafka -------------------------------------------------------------------------


async def consumer_limit(kafka: str, topics: list[str], expected: int, partitions_each: int) -> float:
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka, group_id=None, enable_auto_commit=False)
    await consumer.start()
    count = 0
    started = time.monotonic()
    try:
        partitions = [TopicPartition(t, p) for t in topics for p in range(partitions_each)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        started = time.monotonic()
        async with PROGRESS.phase(
            "earn: Kafka consumer limit",
            lambda: f"{count:,}/{expected:,} records ({rate(count, time.monotonic() - started):,.0f}/s)",
        ):
            while count < expected:
                batch = await consumer.getmany(timeout_ms=1000)
                count += sum(len(records) for records in batch.values())
            elapsed = time.monotonic() - started
    finally:
        await consumer.stop()
    return rate(count, elapsed)


# --- limit 1: COPY --------------------------------------------------------------------------


def _rows(batch: list[Applied], posted_at: datetime) -> dict[str, list[tuple[Any, ...]]]:
    """The rows apply_earn_batch writes for these events (refunds: the transfer and its events)."""
    rows: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for a in batch:
        rows["inbox"].append((a.event_id, a.topic))
        if a.earn:
            rows["earnings"].append((
                a.source_key, a.event_id, a.identifier, a.issuer, a.amount_minor, "CNY", a.points, 0, 0,
                a.occurred_at, a.channel, a.partner_id, None, a.mcc,
            ))  # fmt: skip
        if a.points <= 0:
            continue
        transfer = uuid.uuid4()
        debit, credit = (a.issuer, a.holder) if a.earn else (a.holder, a.issuer)
        expires = a.occurred_at + timedelta(days=730) if a.earn else None
        memo = orjson.dumps({"partner_id": a.partner_id, "amount_minor": a.amount_minor, "issuer": a.issuer}).decode()
        rows["transfers"].append((
            transfer, debit, credit, a.points, "partner_purchase" if a.earn else "partner_refund", a.event_id,
            a.occurred_at, posted_at, expires, memo,
        ))  # fmt: skip
        if a.earn:
            rows["lots"].append((transfer, a.holder, a.points, a.points, a.occurred_at, expires, a.issuer))
        rows["outbox"].append(("ledger-transfers", a.partner_id or "ledger", TRANSFER_POSTED, "{}"))
        rows["outbox"].append(("ledger-events", a.holder, POINTS_CREDITED, "{}"))
        rows["deltas"].append((debit, a.points, 0))
        rows["deltas"].append((credit, 0, a.points))
    return rows


COLUMNS = {
    "inbox": ["event_id", "topic"],
    "earnings": ["source_key", "event_id", "identifier", "issuer_account", "amount_minor", "currency", "points",
                 "refunded_minor", "points_reversed", "occurred_at", "channel", "partner_id", "category", "mcc"],
    "transfers": ["transfer_id", "debit_account", "credit_account", "amount", "reason", "cause_event_id",
                  "occurred_at", "posted_at", "expires_at", "memo"],
    "lots": ["lot_id", "account_id", "amount", "remaining", "earned_at", "expires_at", "issuer"],
    "outbox": ["topic", "key", "payload", "headers"],
}  # fmt: skip

APPLY_DELTAS = """
UPDATE bench_copy_accounts a
SET debits_posted = a.debits_posted + d.debits, credits_posted = a.credits_posted + d.credits
FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS d(account_id, debits, credits)
WHERE a.account_id = d.account_id
"""


async def write_limit(dsn: str, conn: asyncpg.Connection, applied: list[Applied]) -> float:
    """Events per second when their rows are written with COPY: the database's own ceiling for this work."""
    for table in COPIED:
        await conn.execute(f"CREATE TABLE bench_copy_{table} (LIKE {table} INCLUDING ALL)")
    await conn.execute("INSERT INTO bench_copy_accounts SELECT * FROM accounts")
    needed = sorted({a.holder for a in applied} | {a.issuer for a in applied})
    await conn.execute(
        "INSERT INTO bench_copy_accounts (account_id, kind) SELECT a, CASE WHEN a LIKE 'unclaimed:%' THEN 'unclaimed'"
        " WHEN a = 'card:issued' THEN 'card_issued' ELSE 'partner_issued' END FROM unnest($1::text[]) a"
        " ON CONFLICT DO NOTHING",
        needed,
    )
    # Batches may commit out of order across the two writers; start every holder in credit so that a refund
    # committed before its purchase cannot trip the overdraft check (the service keeps order per partition).
    await conn.execute(
        "UPDATE bench_copy_accounts SET credits_posted = 1000000000 WHERE kind IN ('member', 'unclaimed')"
    )
    await conn.execute("ANALYZE bench_copy_accounts")
    now = datetime.now(UTC)
    # One topic per transaction, as each of the service's two consumers commits its own topic's batches.
    by_topic: dict[str, list[Applied]] = defaultdict(list)
    for a in applied:
        by_topic[a.topic].append(a)
    per_topic = [[events[i : i + BATCH] for i in range(0, len(events), BATCH)] for events in by_topic.values()]
    ordered = [batch for group in itertools.zip_longest(*per_topic) for batch in group if batch]
    batches = [_rows(batch, now) for batch in ordered]
    queue: asyncio.Queue[dict[str, list[tuple[Any, ...]]]] = asyncio.Queue()
    for batch in batches:
        queue.put_nowait(batch)
    written = [0]

    async def writer() -> None:
        own = await asyncpg.connect(dsn)
        try:
            while not queue.empty():
                rows = queue.get_nowait()
                async with own.transaction():
                    for table, columns in COLUMNS.items():
                        if rows[table]:
                            await own.copy_records_to_table(f"bench_copy_{table}", records=rows[table], columns=columns)
                    deltas: dict[str, list[int]] = defaultdict(lambda: [0, 0])
                    for account, debit, credit in rows["deltas"]:
                        deltas[account][0] += debit
                        deltas[account][1] += credit
                    ids = sorted(deltas)  # sorted, so that the two writers never deadlock
                    await own.execute(APPLY_DELTAS, ids, [deltas[a][0] for a in ids], [deltas[a][1] for a in ids])
                written[0] += len(rows["inbox"])
        finally:
            await own.close()

    started = time.monotonic()
    async with PROGRESS.phase(
        "earn: COPY limit",
        lambda: f"{written[0]:,}/{len(applied):,} events ({rate(written[0], time.monotonic() - started):,.0f}/s)",
    ):
        await asyncio.gather(*(writer() for _ in range(WRITERS)))
        elapsed = time.monotonic() - started
    for table in COPIED:
        await conn.execute(f"DROP TABLE bench_copy_{table}")
    return rate(written[0], elapsed)


# --- the real thing -------------------------------------------------------------------------


async def committed(admin: AIOKafkaAdminClient, group: str, topics: dict[str, int], prefix: str) -> dict[str, int]:
    """Offsets the service's consumers committed (after their transactions), per topic (each topic has its group)."""
    done = dict.fromkeys(topics, 0)
    for topic in topics:
        offsets = await admin.list_consumer_group_offsets(f"{group}.{topic.removeprefix(prefix)}")
        done[topic] = sum(o.offset for tp, o in offsets.items() if tp.topic == topic and o.offset > 0)
    return done


@dataclass
class Backlog:
    """What the points service has applied so far, from its committed offsets."""

    totals: dict[str, int]
    phase: str = "starting the points service"
    applied: dict[str, int] = field(default_factory=dict)
    per_second: float = 0.0

    @property
    def done(self) -> int:
        return sum(self.applied.values())

    @property
    def total(self) -> int:
        return sum(self.totals.values())

    def ran_out(self) -> list[str]:
        """Topics whose backlog is consumed: from then on their consumer idles and the figure would drop."""
        return [t for t, n in self.totals.items() if self.applied.get(t, 0) >= n]

    def status(self) -> str:
        return f"{self.phase}; {self.done:,}/{self.total:,} events applied ({self.per_second:,.0f}/s)"


SESSIONS = """
SELECT state, wait_event_type, wait_event FROM pg_stat_activity
WHERE datname = $1 AND backend_type = 'client backend' AND pid <> pg_backend_pid() AND state <> 'idle'
"""


async def sample_sessions(dsn: str, database: str, into: Counter[str], every: float = 0.1) -> None:
    """What the points service's database sessions are doing, sampled: waiting for the service itself ('idle in
    transaction'), running, or waiting on a lock, the WAL flush of a commit, or I/O."""
    conn = await asyncpg.connect(dsn)
    try:
        while True:
            into["(samples)"] += 1
            for row in await conn.fetch(SESSIONS, database):
                if row["state"] != "active":
                    into[str(row["state"])] += 1
                elif row["wait_event_type"] is None:
                    into["active: running"] += 1
                else:
                    into[f"active: waiting on {row['wait_event_type']}:{row['wait_event']}"] += 1
            await asyncio.sleep(every)
    finally:
        await conn.close()


def sessions_summary(counts: Counter[str]) -> dict[str, float]:
    """Average number of sessions in each state over the samples."""
    samples = counts.pop("(samples)", 0) or 1
    return {state: round(n / samples, 2) for state, n in counts.most_common()}


async def ingest(
    run: Run, stack: Stack, conn: asyncpg.Connection, totals: dict[str, int], details: dict[str, Any]
) -> float:
    """Start the points service on the backlog; measure a steady window; then profile it."""
    plan = run.plan
    points = stack.process("points")
    group = points.env["CONSUMER_GROUP"]
    admin = AIOKafkaAdminClient(bootstrap_servers=run.kafka, client_id="bench-earn")
    await admin.start()
    backlog = Backlog(totals)

    async def poll() -> None:
        last, at = 0, time.monotonic()
        while True:
            try:
                backlog.applied = await committed(admin, group, totals, points.env.get("KAFKA_TOPIC_PREFIX", ""))
            except KafkaError:  # a group the service has not joined yet has no coordinator: ask again
                await asyncio.sleep(0.25)
                continue
            if time.monotonic() - at >= 1:
                backlog.per_second = (backlog.done - last) / (time.monotonic() - at)
                last, at = backlog.done, time.monotonic()
            await asyncio.sleep(0.25)

    poller = asyncio.create_task(poll())
    cpu: dict[str, float] = {}
    ran_out: list[str] = []
    try:
        async with PROGRESS.phase("earn: ingestion", backlog.status):
            await stack.start("points", replicas=plan.earn_replicas)
            backlog.phase = "waiting for the consumer group to join"
            while backlog.done == 0:
                await asyncio.sleep(0.05)
            backlog.phase = f"warming up {plan.earn_warmup_s:.0f} s"
            await asyncio.sleep(plan.earn_warmup_s)
            backlog.phase = f"measuring {plan.earn_window_s:.0f} s"
            begin, begin_done = datetime.now(UTC), backlog.done
            window_end = time.monotonic() + plan.earn_window_s
            components = {**infrastructure_pids(), "points": [p.pid for p in stack.processes.values()]}
            sessions: Counter[str] = Counter()
            sampler = asyncio.create_task(sample_sessions(run.dsn("postgres"), stack.database("points"), sessions))
            try:
                with measuring_cpu(components, cpu):
                    while time.monotonic() < window_end and not ran_out:
                        await asyncio.sleep(0.1)
                        ran_out = backlog.ran_out()
            finally:
                sampler.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sampler
            end, end_done = datetime.now(UTC), backlog.done
            waiting = await conn.fetchval("SELECT count(*) FROM outbox")
            counted = await conn.fetchval(
                "SELECT count(*) FROM inbox WHERE received_at >= $1 AND received_at < $2", begin, end
            )
            seconds = (end - begin).total_seconds()
            if not backlog.ran_out():
                backlog.phase = f"profiling the points service {plan.profile_s:.0f} s"
                output = run.directory / "profile-points-earn.txt"
                details["profile"] = profile.summary(output, await profile.record(points.pid, plan.profile_s, output))
            else:
                details["profile"] = {"skipped": "the backlog ran out before the profile; raise --earn-events"}
            backlog.phase = "done"
    finally:
        poller.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await poller
        await admin.close()
    details.update(
        window_s=round(seconds, 1), inbox_rows_in_window=counted, offsets_committed_in_window=end_done - begin_done,
        outbox_rows_waiting_at_window_end=waiting, cpu_cores_during_window=cpu,
        database_sessions_during_window=sessions_summary(sessions),
        starved=ran_out,
    )  # fmt: skip
    if ran_out:
        PROGRESS.note(f"earn: {', '.join(ran_out)} ran out after {seconds:.0f} s of the window; raise --earn-events")
    return rate(counted, seconds)
