"""The record of expiry runs: one row per run, scheduled or asked for by ops."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

INSERT_RUN = """
INSERT INTO expiry_runs (started_at, finished_at, lots_expired, points_expired, requested_by)
VALUES ($1, $2, $3, $4, $5) RETURNING run_id
"""

RECENT_RUNS = """
SELECT run_id, started_at, finished_at, lots_expired, points_expired, requested_by
FROM expiry_runs ORDER BY started_at DESC, run_id DESC LIMIT $1
"""


@dataclass(frozen=True)
class ExpiryRunRecord:
    started_at: datetime
    finished_at: datetime
    lots_expired: int
    points_expired: int
    requested_by: str
    """`scheduler`, or `ops:<subject>` for a run ops asked for."""


async def record_run(pool: asyncpg.Pool, run: ExpiryRunRecord) -> int:
    """Store the run; returns its id."""
    run_id: int = await pool.fetchval(
        INSERT_RUN, run.started_at, run.finished_at, run.lots_expired, run.points_expired, run.requested_by
    )
    return run_id


async def recent_runs(pool: asyncpg.Pool, limit: int) -> list[asyncpg.Record]:
    """Newest first."""
    rows: list[asyncpg.Record] = await pool.fetch(RECENT_RUNS, limit)
    return rows
