"""End-to-end latency: a signed partner purchase request until the member's balance shows its points.

An open-loop generator sends requests on a fixed schedule (request k at t0 + k/rate, whether or not
earlier ones were answered), each for a different linked member. A poller reads the accounts of
every member still waiting, in one SQL statement every POLL_S seconds, from the bench points
database (the row the balance endpoint reads); a request's latency is the start of the first poll
that sees its points, minus its scheduled send time. Measured at 100 and 1,000 single purchases per
second, at 1,000 purchases/s sent as batches of BATCH (how partners' systems post a steady stream),
and at 80% of the earn ingestion maximum measured in the same run, also in batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson

from bench import seed
from bench.clients import Partner, purchase, register_partner
from bench.harness import PROGRESS, RESULTS, Run, Stack, measuring_cpu
from bench.httpclient import Answer, HttpError, Pool
from bench.openloop import send_on_schedule
from bench.report import Report, Result
from bench.stats import rate, summary

NAME = "latency"
POLL_S = 0.002
STEADY_RATE = 1_000.0
LIGHT_RATE = 100.0
"""DESIGN.md's average load of a 30-million-member coalition: the pipeline's latency when nothing queues."""
SHARE_OF_MAX = 0.8
BATCH = 10
AMOUNT_MINOR = 12_300
POINTS = AMOUNT_MINOR // 100
DRAIN_TIMEOUT_S = 30.0
CONNECTIONS = 256
IDLE_S = 5.0


@dataclass
class Phase:
    """Requests of one rate: when each was due, and when its points became visible."""

    rate: float
    warmup_s: float
    window_s: float
    batch: int = 1
    """Purchases per request: 1 posts to /purchases, more to /purchases/batch."""
    sent: int = 0
    accepted: int = 0
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    request_ms: list[float] = field(default_factory=list)
    visible_ms: list[float] = field(default_factory=list)
    lost: int = 0
    unanswered: int = 0
    started: float = 0.0
    last_answer: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)

    def achieved(self) -> float:
        """Accepted requests over the time from the first send to the last answer: below the target rate when
        the service could not keep up."""
        return rate(self.accepted, max(self.last_answer - self.started, self.warmup_s + self.window_s))

    async def post(self, pool: Pool, path: str, body: bytes, headers: dict[str, str]) -> Answer | None:
        """Send one request of the phase; its answer if accepted (202), else None with the error counted."""
        try:
            answer = await pool.request("POST", path, body, headers)
        except (HttpError, OSError) as error:
            self.errors[type(error).__name__] += 1
            return None
        if answer.status != 202:
            self.errors[str(answer.status)] += 1
            return None
        self.last_answer = time.perf_counter()
        return answer

    def shortfalls(self, lost: str) -> str:
        """What the note of a phase adds when requests went unanswered, got no result (`lost`), or failed."""
        note = ""
        if self.unanswered:
            note += f"; {self.unanswered} not answered within {DRAIN_TIMEOUT_S:.0f} s after the last was due"
        if self.lost:
            note += f"; {self.lost} {lost} within {DRAIN_TIMEOUT_S:.0f} s"
        if self.errors:
            note += f"; errors {dict(self.errors)}"
        return note


@dataclass
class Waiting:
    due: float
    expected: int
    measured: bool


class Ledger:
    """What each member's credits must reach, and who is still waiting for their points."""

    def __init__(self) -> None:
        self.expected: dict[str, int] = defaultdict(int)
        self.waiting: dict[str, deque[Waiting]] = {}

    def expect(self, account: str, due: float, measured: bool) -> None:
        self.expected[account] += POINTS
        self.waiting.setdefault(account, deque()).append(Waiting(due, self.expected[account], measured))

    async def poll(self, conn: asyncpg.Connection, phase: Phase, stop: asyncio.Event) -> None:
        while not stop.is_set() or self.waiting:
            if not self.waiting:
                await asyncio.sleep(POLL_S)
                continue
            asked = time.perf_counter()
            rows = await conn.fetch(
                "SELECT account_id, credits_posted FROM accounts WHERE account_id = ANY($1::text[])", list(self.waiting)
            )
            for row in rows:
                queue = self.waiting[row["account_id"]]
                while queue and queue[0].expected <= row["credits_posted"]:
                    done = queue.popleft()
                    if done.measured:
                        phase.visible_ms.append((asked - done.due) * 1000)
                if not queue:
                    del self.waiting[row["account_id"]]
            await asyncio.sleep(max(0.0, POLL_S - (time.perf_counter() - asked)))

    def give_up(self, phase: Phase) -> None:
        for queue in self.waiting.values():
            for waiting in queue:
                if waiting.measured:
                    phase.lost += 1
                    phase.visible_ms.append(DRAIN_TIMEOUT_S * 1000)
        self.waiting.clear()


async def run(run: Run, report: Report) -> None:
    plan = run.plan
    earn_max = report.details.get("earn", {}).get("events_per_s") or _earlier_earn_max()
    # (purchases per second, is it the share of the earn maximum, purchases per request)
    rates: list[tuple[float, bool, int]] = [(LIGHT_RATE, False, 1), (STEADY_RATE, False, 1)]
    rates.append((STEADY_RATE, False, BATCH))
    if earn_max:
        rates.append((round(SHARE_OF_MAX * earn_max), True, BATCH))
    details: dict[str, Any] = report.details.setdefault(NAME, {"poll_interval_ms": POLL_S * 1000})
    if not earn_max:
        report.notes.append("latency at 80% of the earn maximum skipped: no earn figure in this run or the last")
    # Every request for a member no earlier request of the run used, so that a late purchase of an earlier
    # phase can never make a later one look visible early.
    needed = int(sum(r for r, _, _ in rates) * (plan.latency_warmup_s + plan.latency_window_s) * 1.05)
    count = max(plan.members, needed)
    async with Stack(run, NAME, services=("partners", "points")) as stack:
        conn = await asyncpg.connect(stack.dsn("points"))
        try:
            async with PROGRESS.phase("latency: seeding members", lambda: f"{count:,} members"):
                members = await seed.members(conn, count)
                await stack.start()
            components = stack.components()
            idle: dict[str, float] = {}
            async with PROGRESS.phase("latency: CPU of the idle services", f"{IDLE_S:.0f} s without load"):
                with measuring_cpu(components, idle):
                    await asyncio.sleep(IDLE_S)
            details["idle_cpu_cores"] = idle
            pool = Pool(stack.url("partners"), CONNECTIONS)
            try:
                partner = await register_partner(pool, members.partner_id)
                ledger = Ledger()
                next_member = 0
                for target, of_max, batch in rates:
                    phase = Phase(target, plan.latency_warmup_s, plan.latency_window_s, batch)
                    components = stack.components()
                    with measuring_cpu(components, phase.cpu):
                        await drive(pool, partner, members, phase, ledger, conn, next_member)
                    next_member += phase.sent * phase.batch
                    await settle(conn)
                    handover = await handover_ms(stack.dsn("partners"), conn, f"lat-{phase.rate:.0f}-{phase.batch}-")
                    report.add(_rows(phase, of_max, summary(handover) if handover else None))
                    details[_label(phase, of_max)] = {
                        "sent": phase.sent, "accepted": phase.accepted, "errors": dict(phase.errors),
                        "not_visible_within_timeout": phase.lost, "not_answered_within_timeout": phase.unanswered,
                        "cpu_cores": phase.cpu,
                        "request_ms": summary(phase.request_ms), "visible_ms": summary(phase.visible_ms),
                        "partners_commit_to_points_batch_ms": summary(handover) if handover else None,
                    }  # fmt: skip
            finally:
                pool.close()
        finally:
            await conn.close()


def _label(phase: Phase, of_max: bool) -> str:
    label = f"latency @ {phase.rate:,.0f}/s"
    if of_max:
        label = f"latency @ {SHARE_OF_MAX:.0%} of earn max ({phase.rate:,.0f}/s)"
    return label if phase.batch == 1 else f"{label} in batches of {phase.batch}"


def _rows(phase: Phase, of_max: bool, handover: dict[str, float] | None) -> list[Result]:
    label = _label(phase, of_max)
    stats = summary(phase.visible_ms)
    note = f"{phase.achieved():,.0f} purchases/s accepted" + phase.shortfalls("not visible")
    return [
        Result(f"{label}: p50", stats["p50"], "ms", note=note),
        Result(f"{label}: p95", stats["p95"], "ms"),
        Result(
            f"{label}: p99",
            stats["p99"],
            "ms",
            note=f"request alone: p99 {summary(phase.request_ms)['p99']:.1f} ms"
            + (
                f"; partners commit to points batch: p50 {handover['p50']:.1f}, p99 {handover['p99']:.1f} ms"
                if handover
                else ""
            ),
        ),
    ]


async def drive(
    pool: Pool, partner: Partner, members: seed.Members, phase: Phase, ledger: Ledger, conn: asyncpg.Connection,
    first_member: int,
) -> None:  # fmt: skip
    """Send on schedule for warm-up plus window, then wait until every accepted purchase is visible."""
    stop = asyncio.Event()
    poller = asyncio.create_task(ledger.poll(conn, phase, stop))
    total = int(phase.rate * (phase.warmup_s + phase.window_s)) // phase.batch
    in_flight: dict[asyncio.Task[None], float] = {}
    started = phase.started = time.perf_counter()
    measured_from = started + phase.warmup_s

    path = partner.purchases_path if phase.batch == 1 else partner.purchases_path + "/batch"

    async def send(k: int, due: float) -> None:
        phase.sent += 1
        firsts = [first_member + k * phase.batch + i for i in range(phase.batch)]
        indexes = [n % len(members.ids) for n in firsts]
        items = [
            purchase(f"lat-{phase.rate:.0f}-{phase.batch}-{n}", members.customer_ref(index), AMOUNT_MINOR)
            for n, index in zip(firsts, indexes, strict=True)
        ]
        body = orjson.dumps(items[0] if phase.batch == 1 else {"purchases": items})
        if await phase.post(pool, path, body, partner.signed(path, body)) is None:
            return
        phase.accepted += phase.batch
        if due >= measured_from:
            phase.request_ms.append((time.perf_counter() - due) * 1000)
        for index in indexes:
            ledger.expect(members.account(index), due, due >= measured_from)

    def status() -> str:
        elapsed = time.perf_counter() - started
        stage = "warming up" if elapsed < phase.warmup_s else "measuring"
        p99 = summary(phase.visible_ms)["p99"] if phase.visible_ms else float("nan")
        return (
            f"{stage} at {phase.rate:,.0f}/s; requests sent {phase.sent:,}/{total:,}, in flight {len(in_flight)}, "
            f"waiting {sum(len(q) for q in ledger.waiting.values())}, p99 so far {p99:.1f} ms"
        )

    try:
        async with PROGRESS.phase(_label(phase, False), status):
            await send_on_schedule(started, total, phase.batch / phase.rate, send, in_flight, DRAIN_TIMEOUT_S)
            # Requests still unanswered count with the time they waited so far: a lower bound, never dropped.
            now = time.perf_counter()
            for due in in_flight.values():
                if due >= measured_from:
                    phase.unanswered += 1
                    phase.visible_ms.append((now - due) * 1000)
            stop.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(poller), DRAIN_TIMEOUT_S)
    finally:
        stop.set()
        poller.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await poller
        for task in list(in_flight):
            task.cancel()
    ledger.give_up(phase)


async def handover_ms(partners_dsn: str, points: asyncpg.Connection, key_prefix: str) -> list[float]:
    """Per purchase of the phase: from the transaction that recorded it in partners (its outbox row) to the
    start of the points transaction that applied it (the relay, Kafka and the consumer's wait in between).

    Both are `now()` of a transaction on the same server, so no clock skew; the points batch's own work and
    the poller's interval come after it (visible_ms minus this)."""
    partners = await asyncpg.connect(partners_dsn)
    try:
        accepted = await partners.fetch(
            "SELECT event_id, accepted_at FROM intake_requests WHERE idempotency_key LIKE $1", key_prefix + "%"
        )
    finally:
        await partners.close()
    received = await points.fetch(
        "SELECT event_id, received_at FROM inbox WHERE event_id = ANY($1::uuid[])", [r["event_id"] for r in accepted]
    )
    at = {r["event_id"]: r["accepted_at"] for r in accepted}
    return [(r["received_at"] - at[r["event_id"]]).total_seconds() * 1000 for r in received]


async def settle(conn: asyncpg.Connection, timeout: float = 120.0) -> None:
    """Wait until the ledger stops taking purchases: an overloaded phase leaves requests queued in the service."""
    deadline = time.monotonic() + timeout
    last = -1
    async with PROGRESS.phase("latency: letting the services drain", lambda: f"inbox at {last:,} events"):
        while time.monotonic() < deadline:
            now = await conn.fetchval("SELECT count(*) FROM inbox")
            if now == last:
                return
            last = now
            await asyncio.sleep(2)


def _earlier_earn_max() -> float | None:
    """The earn figure of the last run, for `--only latency`."""
    with contextlib.suppress(OSError, ValueError, KeyError):
        earlier = json.loads((RESULTS / "latest.json").read_text())
        return float(earlier["details"]["earn"]["events_per_s"])
    return None
