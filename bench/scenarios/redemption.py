"""Redemption: orders per second, and the time from placing an order to its hold (PointsHeld).

Members place voucher orders through the redemption HTTP API with their own tokens (closed loop,
CLIENTS at a time). The redemption service stores each order and commands a hold through its outbox;
the points service places it and answers PointsHeld on the hold-results topic, which the benchmark
reads itself: an order's latency is from sending its request to the PointsHeld record reaching the
benchmark. Without contention the orders spread over many members and offers; with contention they
come from a few members for one hot offer (one member account and one catalog row taken by all).
Then an open loop: orders sent on a fixed schedule at OPEN_RATE per second (order k at t0 + k/rate,
whether or not earlier ones were answered), each for a member no other order used, over the many
members' offers; its latency runs from each order's scheduled time, as bench/scenarios/latency.py
measures purchases.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench import seed
from bench.clients import member_headers
from bench.harness import PROGRESS, Run, Stack, infrastructure_pids, measuring_cpu
from bench.httpclient import HttpError, Pool
from bench.openloop import send_on_schedule
from bench.report import Report, Result
from bench.scenarios.latency import CONNECTIONS, DRAIN_TIMEOUT_S, Phase
from bench.stats import rate, summary
from contracts.events.offers import OfferPayload, OfferPublished
from contracts.topics import HOLD_RESULTS, OFFERS

NAME = "redemption"
CLIENTS = 32
PRICE = 100
FUNDS = 10_000_000
HOT_MEMBERS = 10
OFFERS_SPREAD = [(f"benchshop-{p}", f"voucher-{o}") for p in range(1, 6) for o in range(1, 5)]
HOT_OFFER = ("benchhot", "voucher-hot")
RESULT_TIMEOUT_S = 30.0
OPEN_RATE = 500.0
"""Orders per second of the open loop: issue 14's target is p99 order to hold <= 50 ms at this rate."""


@dataclass
class Orders:
    label: str
    sent_at: dict[uuid.UUID, float] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    request_ms: list[float] = field(default_factory=list)


class HoldResults:
    """Reads the hold-results topic from its start and notes when each order's answer arrived."""

    def __init__(self, kafka: str, topic: str) -> None:
        self.consumer = AIOKafkaConsumer(bootstrap_servers=kafka, group_id=None, enable_auto_commit=False)
        self.topic = topic
        self.held: dict[uuid.UUID, float] = {}
        self.rejected: dict[uuid.UUID, str] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.consumer.start()
        partitions = [TopicPartition(self.topic, p) for p in range(HOLD_RESULTS.partitions)]
        self.consumer.assign(partitions)
        await self.consumer.seek_to_beginning(*partitions)
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=100)
            arrived = time.perf_counter()
            for records in batch.values():
                for record in records:
                    event = orjson.loads(record.value or b"{}")
                    order = uuid.UUID(event["payload"]["order_id"])
                    if event["type"] == "PointsHeld":
                        self.held.setdefault(order, arrived)
                    elif event["type"] == "HoldRejected":
                        self.rejected[order] = event["payload"].get("reason", "")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.consumer.stop()


async def run(run: Run, report: Report) -> None:
    plan = run.plan
    many = 10_000 if not plan.quick else 2_000
    open_loop = Phase(OPEN_RATE, plan.latency_warmup_s, plan.redemption_s)
    fresh = int(OPEN_RATE * (open_loop.warmup_s + open_loop.window_s)) + 1
    details: dict[str, Any] = report.details.setdefault(NAME, {"clients": CLIENTS})
    async with Stack(run, NAME, services=("points", "redemption")) as stack:
        conn = await asyncpg.connect(stack.dsn("points"))
        try:
            total = many + HOT_MEMBERS + fresh
            async with PROGRESS.phase("redemption: seeding", lambda: f"{total:,} members, funded"):
                members = await seed.members(conn, total)
                await seed.fund(conn, members.ids, FUNDS)
                await stack.start()
                await publish_offers(run.kafka, OFFERS.qualified(stack.prefix))
                await wait_for_catalog(stack.dsn("redemption"), len(OFFERS_SPREAD) + 1)
        finally:
            await conn.close()
        results = HoldResults(run.kafka, HOLD_RESULTS.qualified(stack.prefix))
        await results.start()
        pool = Pool(stack.url("redemption"), CLIENTS)
        try:
            components = {**infrastructure_pids(), **{s: [p.pid] for s, p in stack.processes.items()}}
            phases = [
                ("many members", members.ids[:many], OFFERS_SPREAD),
                (f"contention, {HOT_MEMBERS} members, 1 offer", members.ids[many : many + HOT_MEMBERS], [HOT_OFFER]),
            ]
            for label, who, offers in phases:
                cpu: dict[str, float] = {}
                with measuring_cpu(components, cpu):
                    orders = await place(pool, label, who, offers, plan.redemption_s, results)
                rows, numbers = _rows(orders, results, plan.redemption_s)
                numbers["cpu_cores"] = cpu
                report.add(rows)
                details[label] = numbers
            pool.close()
            pool = Pool(stack.url("redemption"), CONNECTIONS)
            with measuring_cpu(components, open_loop.cpu):
                answered = await drive(pool, members.ids[many + HOT_MEMBERS :], open_loop, results)
            report.add(_open_rows(open_loop, answered))
            details[_open_label(open_loop)] = _open_numbers(open_loop, answered)
        finally:
            pool.close()
            await results.stop()


async def publish_offers(kafka: str, topic: str) -> None:
    now = datetime.now(UTC)
    producer = AIOKafkaProducer(bootstrap_servers=kafka, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for partner, offer in [*OFFERS_SPREAD, HOT_OFFER]:
            event_id = uuid.uuid4()
            event = OfferPublished(
                event_id=event_id, occurred_at=now, source="partners", correlation_id=event_id,
                payload=OfferPayload(
                    partner_id=partner, offer_id=offer, revision=1, kind="voucher", title=f"{offer} at {partner}",
                    category="vouchers", price_points=PRICE, stock=10**9, valid_from=now - timedelta(days=1),
                    valid_until=now + timedelta(days=30),
                ),
            )  # fmt: skip
            await producer.send_and_wait(topic, event.model_dump_json().encode(), key=partner.encode())
    finally:
        await producer.stop()


async def wait_for_catalog(dsn: str, offers: int, timeout: float = 60.0) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + timeout
        while await conn.fetchval("SELECT count(*) FROM catalog") < offers:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the redemption catalog did not list the {offers} offers within {timeout:.0f} s")
            await asyncio.sleep(0.1)
    finally:
        await conn.close()


async def place(
    pool: Pool,
    label: str,
    members: list[uuid.UUID],
    offers: list[tuple[str, str]],
    seconds: float,
    results: HoldResults,
) -> Orders:
    orders = Orders(label)
    tokens = {m: member_headers(m) for m in members}
    rng = random.Random(label)
    deadline = time.monotonic() + seconds

    async def client() -> None:
        async with pool.connection() as conn:
            while time.monotonic() < deadline:
                member = rng.choice(members)
                partner, offer = rng.choice(offers)
                body = orjson.dumps(
                    {"partner_id": partner, "offer_id": offer, "quantity": 1, "idempotency_key": uuid.uuid4().hex}
                )
                sent = time.perf_counter()
                try:
                    answer = await conn.request("POST", "/v1/orders", body, tokens[member])
                except (HttpError, OSError) as error:
                    orders.errors[type(error).__name__] += 1
                    continue
                if answer.status == 202:
                    orders.sent_at[uuid.UUID(orjson.loads(answer.body)["order_id"])] = sent
                    orders.request_ms.append((time.perf_counter() - sent) * 1000)
                else:
                    orders.errors[str(answer.status)] += 1

    def answered() -> int:
        return sum(1 for o in orders.sent_at if o in results.held or o in results.rejected)

    started = time.monotonic()
    async with PROGRESS.phase(
        f"redemption, {label}",
        lambda: (
            f"{len(orders.sent_at):,} orders placed ({rate(len(orders.sent_at), time.monotonic() - started):,.0f}/s)"
            f", {answered():,} answered"
        ),
    ):
        await asyncio.gather(*(client() for _ in range(CLIENTS)))
        until = time.monotonic() + RESULT_TIMEOUT_S
        while answered() < len(orders.sent_at) and time.monotonic() < until:
            await asyncio.sleep(0.1)
    return orders


def _rows(orders: Orders, results: HoldResults, seconds: float) -> tuple[list[Result], dict[str, Any]]:
    latencies = [(results.held[o] - sent) * 1000 for o, sent in orders.sent_at.items() if o in results.held]
    missing = [o for o in orders.sent_at if o not in results.held and o not in results.rejected]
    latencies += [RESULT_TIMEOUT_S * 1000] * len(missing)
    rejected = sum(1 for o in orders.sent_at if o in results.rejected)
    first = min(orders.sent_at.values(), default=0.0)
    last_held = max((results.held[o] for o in orders.sent_at if o in results.held), default=first)
    holds = sum(1 for o in orders.sent_at if o in results.held)
    stats = summary(latencies)
    note = f"{rejected} rejected" if rejected else ""
    if missing:
        note += f"{'; ' if note else ''}{len(missing)} without an answer in {RESULT_TIMEOUT_S:.0f} s"
    if orders.errors:
        note += f"{'; ' if note else ''}HTTP errors {dict(orders.errors)}"
    label = f"redemption, {orders.label}"
    rows = [
        Result(f"{label}: orders", rate(len(orders.sent_at), seconds), "orders/s",
               note=f"{CLIENTS} clients; request p99 {summary(orders.request_ms)['p99']:.0f} ms"),
        Result(f"{label}: holds", rate(holds, last_held - first), "holds/s", note=note),
        Result(f"{label}: order to hold p50", stats["p50"], "ms"),
        Result(f"{label}: order to hold p99", stats["p99"], "ms"),
    ]  # fmt: skip
    numbers = {
        "orders": len(orders.sent_at), "held": holds, "rejected": rejected, "unanswered": len(missing),
        "http_errors": dict(orders.errors), "order_to_hold_ms": stats, "request_ms": summary(orders.request_ms),
    }  # fmt: skip
    return rows, numbers


async def drive(pool: Pool, members: list[uuid.UUID], phase: Phase, results: HoldResults) -> int:
    """Send orders on schedule for warm-up plus window, each for its own member; wait for their answers.

    `phase.visible_ms` gets each measured order's scheduled time to its PointsHeld; an order refused, rejected,
    or without a request answer or a hold result within DRAIN_TIMEOUT_S counts as the timeout. Returns how many
    measured orders the ledger answered (held or rejected).
    """
    total = min(int(phase.rate * (phase.warmup_s + phase.window_s)), len(members))
    tokens = [member_headers(m) for m in members[:total]]
    due_of: dict[uuid.UUID, float] = {}
    measured: set[int] = set()
    """Orders due after the warm-up; those that got no order id are not in `due_of`."""
    in_flight: dict[asyncio.Task[None], float] = {}
    started = phase.started = time.perf_counter()
    measured_from = started + phase.warmup_s

    async def send(k: int, due: float) -> None:
        phase.sent += 1
        if due >= measured_from:
            measured.add(k)
        partner, offer = OFFERS_SPREAD[k % len(OFFERS_SPREAD)]
        body = orjson.dumps({"partner_id": partner, "offer_id": offer, "quantity": 1, "idempotency_key": f"open-{k}"})
        answer = await phase.post(pool, "/v1/orders", body, tokens[k])
        if answer is None:
            return
        phase.accepted += 1
        if due >= measured_from:
            phase.request_ms.append((phase.last_answer - due) * 1000)
            due_of[uuid.UUID(orjson.loads(answer.body)["order_id"])] = due

    def status() -> str:
        stage = "warming up" if time.perf_counter() < measured_from else "measuring"
        done = sum(1 for o in due_of if o in results.held or o in results.rejected)
        return f"{stage}; orders sent {phase.sent:,}/{total:,}, in flight {len(in_flight)}, {done:,} answered"

    async with PROGRESS.phase(_open_label(phase), status):
        await send_on_schedule(started, total, 1 / phase.rate, send, in_flight, DRAIN_TIMEOUT_S)
        phase.unanswered = sum(1 for t in in_flight if not t.done())
        until = time.monotonic() + DRAIN_TIMEOUT_S
        while any(o not in results.held and o not in results.rejected for o in due_of) and time.monotonic() < until:
            await asyncio.sleep(0.1)
    for task in list(in_flight):
        task.cancel()
    for order, due in due_of.items():
        held = results.held.get(order)
        phase.visible_ms.append((held - due) * 1000 if held is not None else DRAIN_TIMEOUT_S * 1000)
    phase.visible_ms += [DRAIN_TIMEOUT_S * 1000] * (len(measured) - len(due_of))
    phase.lost = sum(1 for o in due_of if o not in results.held and o not in results.rejected)
    return len(due_of) - phase.lost


def _open_label(phase: Phase) -> str:
    return f"redemption, open loop @ {phase.rate:,.0f}/s"


def _open_rows(phase: Phase, answered: int) -> list[Result]:
    label = _open_label(phase)
    stats = summary(phase.visible_ms)
    note = (
        f"{answered:,} of {len(phase.visible_ms):,} measured orders answered; {phase.achieved():,.0f} orders/s "
        f"accepted{phase.shortfalls('without a hold result')}"
    )
    return [
        Result(f"{label}: order to hold p50", stats["p50"], "ms", note=note),
        Result(f"{label}: order to hold p99", stats["p99"], "ms",
               note=f"request alone: p99 {summary(phase.request_ms)['p99']:.1f} ms"),
    ]  # fmt: skip


def _open_numbers(phase: Phase, answered: int) -> dict[str, Any]:
    return {
        "rate": phase.rate, "sent": phase.sent, "accepted": phase.accepted, "measured": len(phase.visible_ms),
        "answered": answered, "unanswered_requests": phase.unanswered, "without_result": phase.lost,
        "http_errors": dict(phase.errors), "cpu_cores": phase.cpu,
        "order_to_hold_ms": summary(phase.visible_ms), "request_ms": summary(phase.request_ms),
    }  # fmt: skip
