"""Batch import: a file of a million legacy balance rows (`make import KIND=balances`) into a bench points database.

Members are written straight into the database first (their ids derived from their legacy ids, as a members
import makes them), four lots to a member; the file is generated as CSV, then imported by the same code as
`make import` (read, validate, COPY to staging, set-based INSERT ... SELECT in chunks of 50,000 rows). The
figure is rows per second over the whole import, parsing included; the ledger's invariants that the import
touches are then checked on the result.
"""

from __future__ import annotations

import csv
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from bench.harness import PROGRESS, Run, Stack
from bench.report import Report, Result
from points.adapters.invariants import CHECKS
from points.domain.imports import Kind, legacy_member_id
from points.handlers.imports import import_file, inspect
from points.handlers.ledger_events import LedgerEventWriter

NAME = "import"
LOTS_PER_MEMBER = 4
CHECKED = ("transfers_balance", "account_totals_match_transfers", "live_lots_sum_to_posted_balance",
           "credits_create_lots", "imported_balances_match_their_rows")  # fmt: skip


async def run(run: Run, report: Report) -> None:
    rows = run.plan.import_rows
    details: dict[str, Any] = report.details.setdefault(NAME, {})
    async with Stack(run, NAME, services=(), databases=("points",)) as stack:
        seconds, members = await generate_and_import(stack.dsn("points"), run.directory, rows, stack.prefix)
    report.add([Result(f"import: {rows:,} balance rows", rows / seconds, "rows/s",
                       note=f"{seconds:.1f} s elapsed, chunks of 50,000")])  # fmt: skip
    details.update(rows=rows, members=members, seconds=round(seconds, 1), invariants_checked=list(CHECKED))


async def generate_and_import(dsn: str, directory: Path, rows: int, topic_prefix: str) -> tuple[float, int]:
    """Seed members, write `rows` balance rows, import them; (seconds the import took, members). Raises when a
    row was not imported or an invariant the import touches is broken afterwards."""
    conn = await asyncpg.connect(dsn)
    try:
        members = max(1, rows // LOTS_PER_MEMBER)
        async with PROGRESS.phase("import: seeding", f"{members:,} members (COPY)"):
            await seed_members(conn, members)
        path = directory / f"balances-{rows}.csv"
        async with PROGRESS.phase("import: writing the file", f"{rows:,} balance rows to {path.name}"):
            write_file(path, rows, members)
        state = {"done": 0}

        def progress(done: int, total: int) -> None:
            state["done"] = done

        started = time.monotonic()
        async with PROGRESS.phase("import: balances", lambda: f"{state['done']:,}/{rows:,} rows"):
            outcome = await import_file(dsn, inspect(path, Kind.BALANCES), actor="bench",
                                        events=LedgerEventWriter(topic_prefix), on_progress=progress)  # fmt: skip
        seconds = time.monotonic() - started
        path.unlink(missing_ok=True)
        if outcome.report.imported != rows:
            raise RuntimeError(f"imported {outcome.report.imported:,} of {rows:,} rows: {outcome.report.lines()}")
        async with PROGRESS.phase("import: checking the ledger", ", ".join(CHECKED)):
            broken = await check(conn)
        if broken:
            raise RuntimeError(f"invariants broken after the import: {broken}")
        return seconds, members
    finally:
        await conn.close()


async def seed_members(conn: asyncpg.Connection, count: int) -> None:
    ids = [legacy_member_id(f"B{n}") for n in range(count)]
    now = datetime.now(UTC)
    await conn.copy_records_to_table("members", records=[(m, "", now) for m in ids],
                                     columns=("member_id", "display_name", "created_at"))  # fmt: skip
    await conn.copy_records_to_table("accounts", records=[(f"member:{m}", "member", m) for m in ids],
                                     columns=("account_id", "kind", "member_id"))  # fmt: skip
    await conn.execute("ANALYZE members; ANALYZE accounts")


def write_file(path: Path, rows: int, members: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    today = datetime.now(UTC).date()
    with open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["member", "points", "expires_at", "earned_at", "lot_id"])
        for n in range(rows):
            expires = today + timedelta(days=30 + n % 700)
            writer.writerow([f"B{n % members}", 1 + n % 5_000, expires.isoformat(), "2025-01-01T00:00:00Z", f"BL{n}"])


async def check(conn: asyncpg.Connection) -> list[str]:
    broken = []
    for c in CHECKS:
        if c.name in CHECKED and await conn.fetch(c.sql + " LIMIT 5"):
            broken.append(c.name)
    return broken
