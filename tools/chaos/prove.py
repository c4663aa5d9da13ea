"""After the faults: wait until the platform is quiet (everything applied, every group caught up), then prove."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from points.handlers.verify import verify_ledger
from tools.chaos.api import Platform
from tools.chaos.brokers import consumer_lag
from tools.chaos.check import Proof, giveaway_problems, still_pending, stock_problems, tally
from tools.chaos.evidence import Evidence, gather
from tools.chaos.load import Ledger
from tools.reconcile import ledger_figures, reconcile

log = logging.getLogger("chaos.prove")


@dataclass
class Quiet:
    evidence: Evidence
    lag: list[str]
    waiting: list[str]
    seconds: float


async def wait_quiet(dsns: dict[str, str], bootstrap: str, ledger: Ledger, activity_id: str, timeout: float) -> Quiet:
    """Poll until every accepted request is applied, every order ended, outboxes drained and no group lags."""
    started = time.monotonic()
    next_note = started + 10
    while True:
        evidence = await gather(dsns, activity_id)
        waiting = still_pending(ledger, evidence)
        lag = await lagging(bootstrap)
        elapsed = time.monotonic() - started
        if (not waiting and not lag) or elapsed > timeout:
            return Quiet(evidence, lag, waiting, round(elapsed, 1))
        if time.monotonic() > next_note:
            log.info("waiting for quiet", extra={"waiting": len(waiting), "examples": waiting[:3], "lag": lag[:3]})
            next_note = time.monotonic() + 10
        await asyncio.sleep(1.0)


async def lagging(bootstrap: str) -> list[str]:
    try:
        return [str(lag) for lag in await consumer_lag(bootstrap)]
    except Exception as error:  # Kafka answers again in a moment; until then nothing is proven caught up
        return [f"could not read consumer offsets: {type(error).__name__}: {error}"]


async def prove(
    quiet: Quiet, ledger: Ledger, dsns: dict[str, str], platform: Platform, claim_cap: int, since: datetime
) -> Proof:
    evidence = quiet.evidence
    proof = Proof(
        tallies=tally(ledger, evidence),
        stock=stock_problems(evidence),
        giveaway=giveaway_problems(evidence, claim_cap),
        invariants=await invariants(dsns["points"]),
        lag=quiet.lag,
        dead_letters=evidence.dead_letters,
        outboxes=evidence.outboxes,
        server_errors=ledger.server_errors,
        unexpected=ledger.unexpected,
        still_waiting=quiet.waiting,
        order_states=dict(Counter(o.state for o in evidence.orders.values())),
    )
    if "partners" in dsns:
        proof.settlement = await settlement_problems(platform, dsns["points"], since)
        proof.reconcile, proof.reconcile_note = await reconciled(dsns["points"], dsns["partners"])
    return proof


async def invariants(points_dsn: str) -> list[str]:
    return [f"{v.check}: {v.rule} ({len(v.rows)} rows, e.g. {v.rows[0]})" for v in await verify_ledger(points_dsn)]


async def settlement_problems(platform: Platform, points_dsn: str, since: datetime) -> list[str]:
    """The partners service's provisional statements for the run equal the ledger's own figures."""
    start, end = since - timedelta(minutes=1), datetime.now(since.tzinfo) + timedelta(minutes=1)
    answer = await platform.statements(start, end)
    if answer.status != 200:
        return [f"GET /v1/ops/statements answered {answer.status}: {answer.detail()}"]
    conn = await asyncpg.connect(points_dsn)
    try:
        ledger = await ledger_figures(conn, start, end)
    finally:
        await conn.close()
    stated = {s["partner_id"]: s for s in answer.body["statements"]}
    figures = {
        f"{partner_id} points {measure}": (stated.get(partner_id, {}).get(f"points_{measure}", 0), ledger.get(key, 0))
        for partner_id in sorted({p for p, _ in ledger if p is not None} | set(stated))
        for measure in ("issued", "redeemed")
        for key in [(partner_id, measure)]
    }
    figures["programme points gifted"] = (answer.body["programme"]["gifted_points"], ledger.get((None, "gifted"), 0))
    problems = [f"{what}: the statement says {says}, the ledger {holds}" for what, (says, holds) in figures.items()
                if says != holds]  # fmt: skip
    return problems


async def reconciled(points_dsn: str, partners_dsn: str) -> tuple[list[str], str]:
    report = await reconcile(points_dsn, partners_dsn)
    if not report.periods:
        return [], "no finalised month yet: tools.reconcile has nothing to compare"
    return [str(m) for m in report.mismatches], f"{report.statements} finalised statements reconciled"
