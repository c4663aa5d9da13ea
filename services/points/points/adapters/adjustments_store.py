"""PostgreSQL persistence of adjustments (points/domain/adjustments.py), inside the ledger's transactions."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from points.domain.adjustments import Adjustment, Direction, Reason, Status

COLUMNS = """adjustment_id, member_id, direction, points, reason, note, requested_by, requested_at, threshold, status,
decided_by, decided_at, decision_note, posted_at, transfer_id"""

LOCK_ID = "SELECT pg_advisory_xact_lock(hashtextextended('adjustment:' || $1::uuid::text, 0))"
"""Requests with one adjustment id queue here, even before it exists; the later ones read the first."""

FIND = f"SELECT {COLUMNS}, request_sha256 FROM adjustments WHERE adjustment_id = $1"

LOCK = f"SELECT {COLUMNS}, request_sha256 FROM adjustments WHERE adjustment_id = $1 FOR UPDATE"

INSERT = f"""
INSERT INTO adjustments ({COLUMNS}, request_sha256)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
"""

SAVE = """
UPDATE adjustments SET status = $2, decided_by = $3, decided_at = $4, decision_note = $5, posted_at = $6,
    transfer_id = $7
WHERE adjustment_id = $1
"""

PAGE = f"""
SELECT {COLUMNS} FROM adjustments
WHERE ($1::text IS NULL OR status = $1) AND ($2::uuid IS NULL OR member_id = $2)
  AND (requested_at, adjustment_id) < ($3, $4)
ORDER BY requested_at DESC, adjustment_id DESC LIMIT $5
"""


def _adjustment(row: asyncpg.Record) -> Adjustment:
    return Adjustment(
        row["adjustment_id"], row["member_id"], Direction(row["direction"]), row["points"], Reason(row["reason"]),
        row["note"], row["requested_by"], row["requested_at"], row["threshold"], Status(row["status"]),
        row["decided_by"], row["decided_at"], row["decision_note"], row["posted_at"], row["transfer_id"],
    )  # fmt: skip


class AdjustmentRows:
    """The adjustments' statements on one connection (the caller's transaction)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def lock_id(self, adjustment_id: uuid.UUID) -> None:
        await self.conn.execute(LOCK_ID, adjustment_id)

    async def find(self, adjustment_id: uuid.UUID) -> tuple[Adjustment, str] | None:
        """The adjustment and the fingerprint of the request that made it."""
        row = await self.conn.fetchrow(FIND, adjustment_id)
        return None if row is None else (_adjustment(row), row["request_sha256"])

    async def lock(self, adjustment_id: uuid.UUID) -> Adjustment | None:
        row = await self.conn.fetchrow(LOCK, adjustment_id)
        return None if row is None else _adjustment(row)

    async def insert(self, a: Adjustment, fingerprint: str) -> None:
        await self.conn.execute(
            INSERT, a.adjustment_id, a.member_id, a.direction.value, a.points, a.reason.value, a.note, a.requested_by,
            a.requested_at, a.threshold, a.status.value, a.decided_by, a.decided_at, a.decision_note, a.posted_at,
            a.transfer_id, fingerprint,
        )  # fmt: skip

    async def save(self, a: Adjustment) -> None:
        await self.conn.execute(
            SAVE, a.adjustment_id, a.status.value, a.decided_by, a.decided_at, a.decision_note, a.posted_at,
            a.transfer_id,
        )  # fmt: skip


async def page(
    pool: asyncpg.Pool,
    status: Status | None,
    member_id: uuid.UUID | None,
    before: tuple[datetime, uuid.UUID],
    limit: int,
) -> list[Adjustment]:
    """Adjustments newest first, older than `before` (requested_at, adjustment_id)."""
    rows = await pool.fetch(PAGE, status.value if status else None, member_id, before[0], before[1], limit)
    return [_adjustment(r) for r in rows]


async def get(pool: asyncpg.Pool, adjustment_id: uuid.UUID) -> Adjustment | None:
    row = await pool.fetchrow(FIND, adjustment_id)
    return None if row is None else _adjustment(row)
