"""Expiry runs, scheduled or asked for by ops, each recorded with what it expired and who asked."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from points.adapters.expiry_runs import ExpiryRunRecord, recent_runs, record_run
from points.adapters.store import PointsStore
from points.handlers.expiry import ExpiryOutcome, run_expiry
from points.handlers.ledger_events import LedgerEventWriter

SCHEDULER = "scheduler"


def requested_by_ops(subject: str) -> str:
    return f"ops:{subject}"


async def expire_and_record(
    store: PointsStore, events: LedgerEventWriter, requested_by: str, clock: Callable[[], datetime]
) -> ExpiryOutcome:
    """Expire every lot due now, then record the run (a run that fails part-way keeps what it expired, unrecorded).

    Every run ops ask for is recorded; the scheduler's only when it expired something, so the minute-by-minute
    runs that find nothing do not bury the ones that matter.
    """
    started_at = clock()
    outcome = await run_expiry(store, events, started_at)
    if outcome.lots or requested_by != SCHEDULER:
        await record_run(store.pool, ExpiryRunRecord(started_at, clock(), outcome.lots, outcome.points, requested_by))
    return outcome


async def expiry_runs(store: PointsStore, limit: int) -> list[dict[str, Any]]:
    """The latest runs, newest first."""
    return [dict(r) for r in await recent_runs(store.pool, limit)]
