"""Batch import (`make import`) on real PostgreSQL: members, balances as lots, purchases; reruns, dry runs, a crash."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest

from points.adapters.store import PointsStore
from points.domain.imports import Kind, Refusal, legacy_member_id
from points.handlers.imports import ImportBusyError, import_file, import_runs, inspect
from points.handlers.ledger_events import LedgerEventWriter
from points.handlers.verify import verify_ledger
from points.settings import Settings
from tests.support.ledger import OPS
from tests.support.services import http, points_service, running
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration
Database = Callable[[str], Awaitable[str]]
ROOT = Path(__file__).resolve().parents[2]
EVENTS = LedgerEventWriter("")

MEMBERS = """legacy_id,display_name,identifiers,created_at
L-1,Wang Fang,card:tok_legacy0001;partner:skymall:wf-1,2019-03-14T09:30:00+08:00
L-2,Li Wei,partner:skyair:FF2,2020-07-01T00:00:00Z
L-3,Zhang Min,,
"""

BALANCES = """member,points,expires_at,earned_at,lot_id
L-1,1200,2030-06-30,2025-06-30T12:00:00Z,LOT-1
L-1,800,2031-12-31,,LOT-2
partner:skyair:FF2,5000,2030-03-31,,LOT-3
L-3,300,2030-01-31,,LOT-4
L-9,100,2030-01-31,,LOT-5
L-3,50,2020-01-31,,LOT-6
L-3,-4,2030-01-31,,LOT-7
L-3,60,2030-01-31,,LOT-4
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


async def run(dsn: str, path: Path, kind: Kind, **options):
    return await import_file(dsn, inspect(path, kind), actor="ops-test", events=EVENTS, **options)


async def snapshot(dsn: str) -> dict[str, object]:
    conn = await asyncpg.connect(dsn)
    try:
        tables = ("members", "identifiers", "accounts", "transfers", "lots", "outbox", "import_runs",
                  "import_balance_rows", "import_members", "imported_purchases", "audit_log")  # fmt: skip
        counts = {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in tables}
        balances = await conn.fetch("SELECT account_id, debits_posted, credits_posted FROM accounts ORDER BY 1")
        return {**counts, "balances": [tuple(r) for r in balances]}
    finally:
        await conn.close()


async def test_members_and_balances_import_as_lots_and_a_rerun_changes_nothing(
    infra, topic_prefix, database: Database, tmp_path: Path
) -> None:
    dsn = await database("points")
    members = await run(dsn, write(tmp_path, "members.csv", MEMBERS), Kind.MEMBERS)
    assert (members.status, members.report.imported) == ("completed", 3)

    outcome = await run(dsn, write(tmp_path, "balances.csv", BALANCES), Kind.BALANCES)
    report = outcome.report
    assert (report.rows, report.imported, report.points) == (8, 4, 7_300)
    assert report.refused == {Refusal.UNKNOWN_MEMBER: 1, Refusal.EXPIRED: 1, Refusal.NEGATIVE_POINTS: 1,
                              Refusal.DUPLICATE: 1}  # fmt: skip
    assert [(e.line, e.refusal) for e in report.errors] == [
        (6, Refusal.UNKNOWN_MEMBER), (7, Refusal.EXPIRED), (8, Refusal.NEGATIVE_POINTS), (9, Refusal.DUPLICATE),
    ]  # fmt: skip

    conn = await asyncpg.connect(dsn)
    try:
        wang = f"member:{legacy_member_id('L-1')}"
        assert await conn.fetchval("SELECT credits_posted FROM accounts WHERE account_id = $1", wang) == 2_000
        lots = await conn.fetch("SELECT amount, expires_at::date AS day, issuer FROM lots WHERE account_id = $1 "
                                "ORDER BY expires_at", wang)  # fmt: skip
        assert [(r["amount"], str(r["day"]), r["issuer"]) for r in lots] == [
            (1200, "2030-07-01", "migration"), (800, "2032-01-01", "migration"),
        ]  # fmt: skip
        assert await conn.fetchval("SELECT debits_posted FROM accounts WHERE account_id = 'migration'") == 7_300
        linked = await conn.fetchval("SELECT member_id FROM identifiers WHERE identifier = 'card:tok_legacy0001'")
        assert linked == legacy_member_id("L-1")
        since = await conn.fetchval("SELECT created_at FROM members WHERE member_id = $1", legacy_member_id("L-1"))
        assert since.isoformat().startswith("2019-03-14T01:30:00")
        audited = await conn.fetch("SELECT action, actor, role FROM audit_log ORDER BY seq")
        assert [tuple(r) for r in audited] == [("import.started", "ops-test", "system"),
                                               ("import.completed", "ops-test", "system")] * 2  # fmt: skip
    finally:
        await conn.close()
    assert await verify_ledger(dsn) == []

    before = await snapshot(dsn)
    again = await run(dsn, tmp_path / "balances.csv", Kind.BALANCES)
    assert again.status == "already-completed"
    assert again.report.imported == 4
    # An overlapping file: three rows imported already, one of them changed since, and one new.
    changed = BALANCES.replace("L-3,60,2030-01-31,,LOT-4\n", "").replace("FF2,5000,", "FF2,5001,")
    more = await run(dsn, write(tmp_path, "more.csv", changed + "L-2,70,2030-05-01,,LOT-8\n"), Kind.BALANCES)
    assert (more.report.imported, more.report.existing, more.report.points) == (1, 3, 70)
    assert more.report.refused[Refusal.CONFLICT] == 1
    after = await snapshot(dsn)
    assert after["transfers"] == before["transfers"] + 1  # LOT-8 only: the rest was there
    assert await verify_ledger(dsn) == []

    async with running(points_service(infra.kafka, dsn, topic_prefix)) as shell, http(shell) as api:
        listed = (await api.get("/v1/ops/imports", headers=OPS)).json()["items"]
        assert [(r["kind"], r["outcome"], r["rows_imported"]) for r in listed][:2] == [
            ("balances", "imported with refusals", 1), ("balances", "imported with refusals", 4),
        ]  # fmt: skip
        assert (await api.get("/v1/ops/imports")).status_code == 401
        member = legacy_member_id("L-1")  # as the demo step reads it (deploy/local/demo_import.py)
        balance = (await api.get(f"/v1/members/{member}/balance", headers=OPS)).json()
        lots = (await api.get(f"/v1/members/{member}/lots", headers=OPS)).json()["items"]
        assert balance["posted"] == 2_000
        assert [(lot["remaining"], lot["expires_at"][:10]) for lot in lots] == [(1200, "2030-07-01"),
                                                                                 (800, "2032-01-01")]  # fmt: skip


async def test_dry_run_reports_every_row_and_writes_nothing(database: Database, tmp_path: Path) -> None:
    dsn = await database("points")
    await run(dsn, write(tmp_path, "members.csv", MEMBERS), Kind.MEMBERS)
    before = await snapshot(dsn)
    dry = await run(dsn, write(tmp_path, "balances.csv", BALANCES), Kind.BALANCES, dry_run=True)
    assert dry.status == "dry-run"
    assert dry.run_id is None
    assert (dry.report.imported, dry.report.points, dry.report.refused_total) == (4, 7_300, 4)
    members_again = await run(dsn, tmp_path / "members.csv", Kind.MEMBERS, dry_run=True)
    assert (members_again.report.imported, members_again.report.existing) == (0, 3)
    assert await snapshot(dsn) == before


async def _seed_members(dsn: str, tmp_path: Path, count: int) -> None:
    text = "legacy_id,display_name,identifiers,created_at\n" + "".join(f"M-{n},m{n},,\n" for n in range(count))
    await run(dsn, write(tmp_path, "seed.csv", text), Kind.MEMBERS, chunk_size=1_000)


def _balances_file(tmp_path: Path, rows: int, members: int) -> Path:
    lines = [f"M-{n % members},{1 + n % 97},2030-{1 + n % 12:02d}-15,,K-{n}\n" for n in range(rows)]
    return write(tmp_path, "big.csv", "member,points,expires_at,earned_at,lot_id\n" + "".join(lines))


async def _ledger_of(dsn: str) -> list[tuple[object, ...]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT account_id, amount, remaining, expires_at FROM lots ORDER BY lot_id")
        accounts = await conn.fetch("SELECT account_id, debits_posted, credits_posted FROM accounts ORDER BY 1")
        return [tuple(r) for r in rows] + [tuple(r) for r in accounts]
    finally:
        await conn.close()


async def test_an_import_killed_mid_run_resumes_to_the_same_end_as_an_uninterrupted_one(
    database: Database, tmp_path: Path
) -> None:
    killed, whole = await database("points"), await database("points")
    for dsn in (killed, whole):
        await _seed_members(dsn, tmp_path, 300)
    path = _balances_file(tmp_path, 20_000, 300)
    env = {**os.environ, "DATABASE_URL": killed, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "points.batch_import", str(path), "--kind", "balances", "--chunk-size", "500"]
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # noqa: ASYNC220
    try:
        conn = await asyncpg.connect(killed)
        try:

            async def some_chunks_committed() -> bool:
                done = await conn.fetchval("SELECT rows_done FROM import_runs WHERE kind = 'balances'")
                return done is not None and done >= 2_000

            await eventually(some_chunks_committed, what="a few chunks to commit", timeout=60)
            with pytest.raises(ImportBusyError):  # a second process on the same file is refused while one works
                await run(killed, path, Kind.BALANCES)
            async with asyncpg.create_pool(killed, min_size=1, max_size=1) as pool:
                working = await import_runs(PointsStore(pool), 10)
            assert [r["outcome"] for r in working if r["kind"] == "balances"] == ["running"]
            os.kill(process.pid, signal.SIGKILL)
            await asyncio.to_thread(process.wait, 10)
            run_row = await conn.fetchrow(
                "SELECT status, rows_done, rows_total FROM import_runs WHERE kind = 'balances'"
            )
        finally:
            await conn.close()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert run_row["status"] == "running"
    assert 2_000 <= run_row["rows_done"] < run_row["rows_total"] == 20_000
    async with asyncpg.create_pool(killed, min_size=1, max_size=1) as pool:

        async def outcomes() -> list[str] | None:
            listed = await import_runs(PointsStore(pool), 10)
            found = [r["outcome"] for r in listed if r["kind"] == "balances"]
            return found if found != ["running"] else None

        # The killed process's server session lets go of the run's lock once it notices its client is gone
        # (at the end of the statement it was running), a moment after the kill.
        assert await eventually(outcomes, what="the killed run's lock to go") == ["interrupted"]

    resumed = await run(killed, path, Kind.BALANCES, chunk_size=500)
    # The command line reads dates in the programme's zone (settings); the resumed run kept the zone it began with.
    uninterrupted = await run(whole, path, Kind.BALANCES, chunk_size=7_000, zone=Settings().programme_zone)
    assert resumed.status == "resumed-completed"
    assert (resumed.report.imported, resumed.report.points) == (uninterrupted.report.imported,
                                                                 uninterrupted.report.points)  # fmt: skip
    assert resumed.report.imported == 20_000
    assert await _ledger_of(killed) == await _ledger_of(whole)
    assert await verify_ledger(killed) == []
