"""PostgreSQL side of the batch import (points/domain/imports.py): runs, and each kind's chunk written set-based.

A balances chunk is COPYed into a temporary staging table; rows imported before (by key) leave it; what stays is
written with one INSERT ... SELECT per table, in the columns adapters/store.py writes: transfers, their lots,
the import's rows, the members' credits (accounts locked in id order), and the migration account's debits as
the transaction's last statement (a hot account, DESIGN.md).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from points.domain.imports import BalanceRow, Kind, MemberRow, PurchaseRow
from points.domain.ledger import MIGRATION, transfer_id

MIGRATION_LEG = "migration"
"""The leg of an imported balance's transfer: its id is transfer_id(row cause, MIGRATION_LEG)."""

LOT_ISSUER = MIGRATION

FIND_RUN = """
SELECT run_id, status, rows_total, rows_done, rows_imported, rows_existing, rows_refused, points, refusals,
       first_errors, time_zone
FROM import_runs WHERE file_sha256 = $1 AND kind = $2
"""

START_RUN = """
INSERT INTO import_runs (run_id, file_sha256, kind, file_name, actor, rows_total, time_zone, status)
VALUES ($1, $2, $3, $4, $5, $6, $7, 'running')
ON CONFLICT (file_sha256, kind) DO NOTHING RETURNING run_id
"""

RESUME_RUN = "UPDATE import_runs SET resumed = resumed + 1 WHERE run_id = $1"

LOCK_RUN = "SELECT pg_try_advisory_lock(hashtextextended('import:' || $1::uuid::text, 0))"
"""Held by the session that works on a run: a second process on the same file is refused; a killed one lets go."""

UNLOCK_RUN = "SELECT pg_advisory_unlock(hashtextextended('import:' || $1::uuid::text, 0))"

CLAIM_CHUNK = """
SELECT rows_done, refusals, first_errors FROM import_runs WHERE run_id = $1 AND status = 'running' FOR UPDATE
"""

ADVANCE_RUN = """
UPDATE import_runs SET rows_done = rows_done + $2, rows_imported = rows_imported + $3,
       rows_existing = rows_existing + $4, rows_refused = rows_refused + $5, points = points + $6,
       refusals = $7::jsonb, first_errors = $8::jsonb
WHERE run_id = $1
"""

FINISH_RUN = """
UPDATE import_runs SET status = 'completed', finished_at = now() WHERE run_id = $1 AND status = 'running'
RETURNING rows_total, rows_imported, rows_existing, rows_refused, points
"""

LIST_RUNS = """
SELECT run_id, file_name, file_sha256, kind, actor, rows_total, rows_done, rows_imported, rows_existing,
       rows_refused, points, refusals, status, started_at, finished_at, resumed,
       status = 'running' AND EXISTS (
           SELECT 1 FROM pg_locks l
           WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted
             AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended('import:' || run_id::text, 0)
       ) AS working
FROM import_runs ORDER BY started_at DESC, run_id LIMIT $1
"""
"""`working`: a process holds the run's lock (LOCK_RUN) now; a running run that nobody works on was interrupted."""

MEMBERS_EXIST = "SELECT member_id FROM members WHERE member_id = ANY($1::uuid[])"

LINKED_TO = "SELECT identifier, member_id FROM identifiers WHERE identifier = ANY($1::text[]) AND member_id IS NOT NULL"

IMPORTED_BALANCES = """
SELECT row_key, member_id, points, expires_at FROM import_balance_rows WHERE row_key = ANY($1::text[])
"""

STAGE = """
CREATE TEMPORARY TABLE IF NOT EXISTS import_stage (
    line_no bigint, row_key text, member_id uuid, transfer_id uuid, cause_id uuid, points bigint,
    earned_at timestamptz, expires_at timestamptz
) ON COMMIT DELETE ROWS
"""

STAGE_COLUMNS = ("line_no", "row_key", "member_id", "transfer_id", "cause_id", "points", "earned_at", "expires_at")

CONFLICTS = """
SELECT s.line_no, r.points, r.expires_at
FROM import_stage s JOIN import_balance_rows r USING (row_key)
WHERE r.points <> s.points OR r.expires_at <> s.expires_at OR r.member_id <> s.member_id
"""

DROP_IMPORTED = "DELETE FROM import_stage s USING import_balance_rows r WHERE r.row_key = s.row_key"
"""Rows imported before (a rerun, an overlapping file) leave the stage: what stays is new."""

ENSURE_MEMBER_ACCOUNTS = """
INSERT INTO accounts (account_id, kind, member_id)
SELECT DISTINCT 'member:' || member_id, 'member', member_id FROM import_stage ORDER BY 1
ON CONFLICT (account_id) DO NOTHING
"""

INSERT_TRANSFERS = """
INSERT INTO transfers
    (transfer_id, debit_account, credit_account, amount, reason, cause_event_id, occurred_at, expires_at, memo,
     posted_at)
SELECT transfer_id, $1::text, 'member:' || member_id, points, 'migration', cause_id, earned_at, expires_at,
       jsonb_build_object('import_run', $2::text, 'legacy_key', row_key), $3::timestamptz
FROM import_stage ORDER BY transfer_id
"""
"""No ON CONFLICT: a row imported at this moment by another run (an overlapping file) fails this chunk, which
rolls back whole; the rerun then finds the row imported."""

INSERT_LOTS = """
INSERT INTO lots (lot_id, account_id, amount, remaining, earned_at, expires_at, issuer)
SELECT transfer_id, 'member:' || member_id, points, points, earned_at, expires_at, $1::text FROM import_stage
"""

INSERT_ROWS = """
INSERT INTO import_balance_rows (row_key, run_id, line_no, member_id, transfer_id, points, earned_at, expires_at)
SELECT row_key, $1::uuid, line_no, member_id, transfer_id, points, earned_at, expires_at FROM import_stage
"""

LOCK_MEMBERS = """
SELECT a.account_id FROM accounts a
JOIN (SELECT DISTINCT 'member:' || member_id AS account_id FROM import_stage) c USING (account_id)
ORDER BY a.account_id FOR UPDATE OF a
"""
"""The members' accounts locked in id order first, so that a concurrent earn batch never deadlocks with us."""

CREDIT_MEMBERS = """
UPDATE accounts a SET credits_posted = a.credits_posted + c.total
FROM (SELECT 'member:' || member_id AS account_id, sum(points) AS total FROM import_stage GROUP BY 1) c
WHERE a.account_id = c.account_id
"""

STAGED_TOTAL = "SELECT count(*), COALESCE(sum(points), 0)::bigint FROM import_stage"

DEBIT_MIGRATION = "UPDATE accounts SET debits_posted = debits_posted + $2 WHERE account_id = $1"

IMPORTED_MEMBER = "SELECT member_id FROM import_members WHERE legacy_id = $1"

RECORD_MEMBER = """
INSERT INTO import_members (legacy_id, member_id, run_id, line_no) VALUES ($1, $2, $3, $4)
ON CONFLICT (legacy_id) DO NOTHING
"""

MEMBER_SINCE = "UPDATE members SET created_at = $2 WHERE member_id = $1"

INSERT_PURCHASES = """
INSERT INTO imported_purchases
    (partner_id, purchase_id, customer_ref, identifier, member_id, amount_minor, currency, occurred_at, run_id,
     line_no)
SELECT p, pid, ref, 'partner:' || p || ':' || ref, i.member_id, amount, cur, at, $8, line
FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::timestamptz[], $7::bigint[])
    AS u(p, pid, ref, amount, cur, at, line)
LEFT JOIN identifiers i ON i.identifier = 'partner:' || p || ':' || ref
ON CONFLICT (partner_id, purchase_id) DO NOTHING
RETURNING line_no
"""

EXISTING_PURCHASES = """
SELECT partner_id, purchase_id FROM imported_purchases p
JOIN unnest($1::text[], $2::text[]) AS u(partner, purchase) ON p.partner_id = u.partner AND p.purchase_id = u.purchase
"""


@dataclass(frozen=True)
class RunState:
    run_id: uuid.UUID
    status: str
    rows_total: int
    rows_done: int
    rows_imported: int
    rows_existing: int
    rows_refused: int
    points: int
    refusals: dict[str, int]
    first_errors: list[dict[str, Any]]
    time_zone: str
    resumed: bool


@dataclass(frozen=True)
class ChunkWritten:
    imported: int
    existing: int
    points: int
    conflicts: list[tuple[int, str]]
    """Lines whose key was imported before with other values, and what it was imported with."""


def balance_transfer_id(row: BalanceRow) -> uuid.UUID:
    return transfer_id(row.cause, MIGRATION_LEG)


async def start_or_resume(
    conn: asyncpg.Connection, sha256: str, kind: Kind, file_name: str, actor: str, rows_total: int, time_zone: str
) -> RunState:
    """The run of this file and kind: a new one, or the one a crashed (or finished) process left."""
    run_id = uuid.uuid4()
    created = await conn.fetchval(START_RUN, run_id, sha256, kind.value, file_name[-500:], actor, rows_total,
                                  time_zone)  # fmt: skip
    row = await conn.fetchrow(FIND_RUN, sha256, kind.value)
    assert row is not None
    if created is None and row["status"] == "running":
        await conn.execute(RESUME_RUN, row["run_id"])
    return RunState(
        row["run_id"], row["status"], row["rows_total"], row["rows_done"], row["rows_imported"],
        row["rows_existing"], row["rows_refused"], row["points"], orjson.loads(row["refusals"]),
        orjson.loads(row["first_errors"]), row["time_zone"], resumed=created is None,
    )  # fmt: skip


async def try_lock_run(conn: asyncpg.Connection, run_id: uuid.UUID) -> bool:
    return bool(await conn.fetchval(LOCK_RUN, run_id))


async def unlock_run(conn: asyncpg.Connection, run_id: uuid.UUID) -> None:
    await conn.fetchval(UNLOCK_RUN, run_id)


@dataclass(frozen=True)
class Claimed:
    rows_done: int
    refusals: dict[str, int]
    first_errors: list[dict[str, Any]]


async def claim_chunk(conn: asyncpg.Connection, run_id: uuid.UUID) -> Claimed | None:
    """Lock the run's row for this chunk's transaction; where it stands, or None when it is not running."""
    row = await conn.fetchrow(CLAIM_CHUNK, run_id)
    if row is None:
        return None
    return Claimed(row["rows_done"], orjson.loads(row["refusals"]), orjson.loads(row["first_errors"]))


@dataclass(frozen=True)
class Advance:
    rows: int
    imported: int
    existing: int
    refused: int
    points: int
    refusals: dict[str, int]
    """The run's refusals by reason so far, this chunk's included."""
    first_errors: list[dict[str, Any]]


async def advance_run(conn: asyncpg.Connection, run_id: uuid.UUID, step: Advance) -> None:
    await conn.execute(
        ADVANCE_RUN, run_id, step.rows, step.imported, step.existing, step.refused, step.points,
        orjson.dumps(step.refusals).decode(), orjson.dumps(step.first_errors).decode(),
    )  # fmt: skip


async def finish_run(conn: asyncpg.Connection, run_id: uuid.UUID) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(FINISH_RUN, run_id)
    return row


async def list_runs(pool: asyncpg.Pool, limit: int) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await pool.fetch(LIST_RUNS, limit)
    return rows


async def existing_members(conn: asyncpg.Connection, member_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    return {r["member_id"] for r in await conn.fetch(MEMBERS_EXIST, list(set(member_ids)))}


async def linked_members(conn: asyncpg.Connection, identifiers: Sequence[str]) -> dict[str, uuid.UUID]:
    return {r["identifier"]: r["member_id"] for r in await conn.fetch(LINKED_TO, list(set(identifiers)))}


async def imported_balances(conn: asyncpg.Connection, keys: Sequence[str]) -> dict[str, asyncpg.Record]:
    """Rows imported before (by key), for a dry run to tell `existing` and `conflict` apart."""
    return {r["row_key"]: r for r in await conn.fetch(IMPORTED_BALANCES, list(keys))}


async def write_balances(
    conn: asyncpg.Connection,
    run_id: uuid.UUID,
    rows: Sequence[tuple[BalanceRow, uuid.UUID, datetime]],
    posted_at: datetime,
) -> ChunkWritten:
    """Write (row, member id, earned_at) as transfers and lots in the current transaction; rows seen before stay."""
    await conn.execute(STAGE)
    records = [
        (r.line, r.key, member, balance_transfer_id(r), r.cause, r.points, earned, r.expires_at)
        for r, member, earned in rows
    ]
    await conn.copy_records_to_table("import_stage", records=records, columns=STAGE_COLUMNS)
    await conn.execute("ANALYZE import_stage")  # a temporary table has no statistics: without, joins loop
    conflicts = [
        (r["line_no"], f"imported before with {r['points']:,} points expiring {r['expires_at']:%Y-%m-%d}")
        for r in await conn.fetch(CONFLICTS)
    ]
    seen = int((await conn.execute(DROP_IMPORTED)).split()[-1])
    staged = await conn.fetchrow(STAGED_TOTAL)
    assert staged is not None
    imported, points = staged[0], staged[1]
    if imported:
        await conn.execute(ENSURE_MEMBER_ACCOUNTS)
        await conn.execute(INSERT_TRANSFERS, MIGRATION, str(run_id), posted_at)
        await conn.execute(INSERT_LOTS, LOT_ISSUER)
        await conn.execute(INSERT_ROWS, run_id)
        await conn.execute(LOCK_MEMBERS)
        await conn.execute(CREDIT_MEMBERS)
        await conn.execute(DEBIT_MIGRATION, MIGRATION, points)  # the hot account last, as adapters/store.py does
    return ChunkWritten(imported, seen - len(conflicts), points, conflicts)


async def imported_member(conn: asyncpg.Connection, legacy_id: str) -> uuid.UUID | None:
    found: uuid.UUID | None = await conn.fetchval(IMPORTED_MEMBER, legacy_id)
    return found


async def record_member(conn: asyncpg.Connection, row: MemberRow, run_id: uuid.UUID) -> None:
    await conn.execute(RECORD_MEMBER, row.legacy_id, row.member_id, run_id, row.line)
    if row.created_at is not None:
        await conn.execute(MEMBER_SINCE, row.member_id, row.created_at)


async def write_purchases(conn: asyncpg.Connection, run_id: uuid.UUID, rows: Sequence[PurchaseRow]) -> set[int]:
    """Insert the purchases not imported before; the lines inserted."""
    found = await conn.fetch(
        INSERT_PURCHASES,
        [r.partner_id for r in rows], [r.purchase_id for r in rows], [r.customer_ref for r in rows],
        [r.amount_minor for r in rows], [r.currency for r in rows], [r.occurred_at for r in rows],
        [r.line for r in rows], run_id,
    )  # fmt: skip
    return {r["line_no"] for r in found}


async def existing_purchases(conn: asyncpg.Connection, rows: Sequence[PurchaseRow]) -> set[tuple[str, str]]:
    found = await conn.fetch(EXISTING_PURCHASES, [r.partner_id for r in rows], [r.purchase_id for r in rows])
    return {(r["partner_id"], r["purchase_id"]) for r in found}
