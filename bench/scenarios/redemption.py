"""Redemption: orders per second, and the time from placing an order to its hold (PointsHeld).

Members place voucher orders through the redemption HTTP API with their own tokens (closed loop,
CLIENTS at a time). The redemption service stores each order and commands a hold through its outbox;
the points service places it and answers PointsHeld on the hold-results topic, which the benchmark
reads itself: an order's latency is from sending its request to the PointsHeld record reaching the
benchmark. Without contention the orders spread over many members and offers; with contention they
come from a few members for one hot offer (one member account and one catalog row taken by all).
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
from bench.report import Report, Result
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
    details: dict[str, Any] = report.details.setdefault(NAME, {"clients": CLIENTS})
    async with Stack(run, NAME, services=("points", "redemption")) as stack:
        conn = await asyncpg.connect(stack.dsn("points"))
        try:
            async with PROGRESS.phase("redemption: seeding", lambda: f"{many + HOT_MEMBERS:,} members, funded"):
                members = await seed.members(conn, many + HOT_MEMBERS)
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
                (f"contention, {HOT_MEMBERS} members, 1 offer", members.ids[many:], [HOT_OFFER]),
            ]
            for label, who, offers in phases:
                cpu: dict[str, float] = {}
                with measuring_cpu(components, cpu):
                    orders = await place(pool, label, who, offers, plan.redemption_s, results)
                rows, numbers = _rows(orders, results, plan.redemption_s)
                numbers["cpu_cores"] = cpu
                report.add(rows)
                details[label] = numbers
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
