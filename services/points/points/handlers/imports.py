"""Batch import (points/domain/imports.py): read the file, validate every row, write it chunk by chunk.

Each chunk is one transaction that also advances the run's `rows_done`, so a process killed at any moment
leaves whole chunks behind, and a rerun of the same file resumes after the last one, with the same end result.
A dry run reads the database (who exists, what was imported) and writes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import itertools
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import orjson

from loyalty_runtime import audit
from points.adapters import imports_store as store
from points.adapters.store import PointsStore, Transaction
from points.domain.imports import (
    BalanceRow,
    FileFormatError,
    Format,
    Kind,
    MemberRow,
    PurchaseRow,
    Refusal,
    Report,
    Row,
    RowError,
    Validator,
    detect_format,
    is_identifier,
    legacy_member_id,
    records,
)
from points.domain.ledger import member_account
from points.handlers.ledger_events import LedgerEventWriter
from points.handlers.members import Actor, _link

UTC_ZONE = ZoneInfo("UTC")

CHUNK_ROWS = {Kind.BALANCES: 50_000, Kind.PURCHASES: 50_000, Kind.MEMBERS: 500}
"""Rows per transaction: set-based kinds in big chunks; members one by one (each links as ops would)."""

Progress = Callable[[int, int], None]
"""Called after each chunk with (rows done, rows in the file)."""


class ImportBusyError(RuntimeError):
    def __init__(self, run_id: uuid.UUID) -> None:
        super().__init__(f"import run {run_id} of this file is being worked on by another process; wait for it")


@dataclass(frozen=True)
class ImportFile:
    path: Path
    kind: Kind
    fmt: Format
    sha256: str
    rows: int

    def lines(self) -> Iterator[str]:
        with open(self.path, encoding="utf-8-sig", newline="") as handle:
            yield from handle


@dataclass
class Outcome:
    report: Report
    run_id: uuid.UUID | None
    status: str
    """`dry-run`, `completed` (by this process), `resumed-completed`, or `already-completed` (nothing done)."""


def inspect(path: Path, kind: Kind) -> ImportFile:
    """The file's format, content hash and number of rows (one pass, nothing validated yet)."""
    digest = hashlib.sha256()
    with open(path, "rb") as raw:
        head = raw.read(4096)
        digest.update(head)
        for block in iter(lambda: raw.read(1 << 20), b""):
            digest.update(block)
    fmt = detect_format(path.name, head.decode("utf-8-sig", errors="replace"))
    found = ImportFile(path, kind, fmt, digest.hexdigest(), 0)
    try:
        count = sum(1 for _ in records(found.lines(), fmt))
    except UnicodeDecodeError as error:
        raise FileFormatError(f"{path} is not UTF-8 text: {error}") from None
    return ImportFile(path, kind, fmt, found.sha256, count)


def chunks(file: ImportFile, now: datetime, size: int, zone: tzinfo) -> Iterator[list[Row | RowError]]:
    """Every row validated in file order (keys remembered across chunks), `size` at a time."""
    validator = Validator(file.kind, now, zone)
    checked = (validator.check(line, raw) for line, raw in records(file.lines(), file.fmt))
    while batch := list(itertools.islice(checked, size)):
        yield batch


async def prefetched(batches: Iterator[list[Row | RowError]]) -> AsyncIterator[list[Row | RowError]]:
    """Each next chunk read and validated in a thread while the database writes the one before."""
    ahead = asyncio.ensure_future(asyncio.to_thread(next, batches, None))
    try:
        while (batch := await ahead) is not None:
            ahead = asyncio.ensure_future(asyncio.to_thread(next, batches, None))
            yield batch
    finally:
        if not ahead.done():
            with contextlib.suppress(Exception):
                await ahead  # the thread reads on anyway: let it end before the file is closed


async def import_file(
    dsn: str,
    file: ImportFile,
    *,
    actor: str,
    events: LedgerEventWriter,
    dry_run: bool = False,
    chunk_size: int | None = None,
    on_progress: Progress | None = None,
    keep_errors: int = 20,
    zone: ZoneInfo = UTC_ZONE,
) -> Outcome:
    """Import (or with `dry_run` only check) every row of `file`; resumes a run this file left unfinished.

    `zone`: the programme's time zone, where the day of a date without a time (an expiry) ends; a resumed run
    keeps the zone it started with."""
    size = chunk_size or CHUNK_ROWS[file.kind]
    report = Report(file.kind, keep_errors=keep_errors)
    conn = await asyncpg.connect(dsn)
    try:
        if dry_run:
            await _dry_run(conn, file, report, size, zone, on_progress)
            return Outcome(report, None, "dry-run")
        return await _run(conn, file, report, actor, events, size, zone, on_progress)
    finally:
        await conn.close()


async def _run(
    conn: asyncpg.Connection,
    file: ImportFile,
    report: Report,
    actor: str,
    events: LedgerEventWriter,
    size: int,
    zone: ZoneInfo,
    on_progress: Progress | None,
) -> Outcome:
    state = await _start(conn, file, actor, zone)
    _count_earlier(report, state)
    if state.status == "completed":
        return Outcome(report, state.run_id, "already-completed")
    if not await store.try_lock_run(conn, state.run_id):
        raise ImportBusyError(state.run_id)
    if on_progress:
        on_progress(report.rows, file.rows)
    try:
        done = 0
        async for batch in prefetched(chunks(file, datetime.now(UTC), size, ZoneInfo(state.time_zone))):
            start, done = done, done + len(batch)
            if done <= report.rows:  # committed before: by the process that was killed, or an earlier chunk
                continue
            await _apply_chunk(conn, file.kind, state.run_id, batch[max(0, report.rows - start) :], report, events,
                               actor)  # fmt: skip
            if on_progress:
                on_progress(report.rows, file.rows)
        await _finish(conn, state.run_id, file, actor, report)
    finally:
        await store.unlock_run(conn, state.run_id)
    return Outcome(report, state.run_id, "resumed-completed" if state.resumed else "completed")


async def _start(conn: asyncpg.Connection, file: ImportFile, actor: str, zone: ZoneInfo) -> store.RunState:
    async with conn.transaction():
        state = await store.start_or_resume(conn, file.sha256, file.kind, str(file.path), actor, file.rows, zone.key)
        if not state.resumed:
            await audit.record(conn, audit.AuditEntry(
                actor=actor, role="system", action="import.started", subject=f"import:{state.run_id}",
                after={"kind": file.kind.value, "file": str(file.path), "sha256": file.sha256, "rows": file.rows,
                       "time_zone": zone.key},
            ))  # fmt: skip
    return state


def _count_earlier(report: Report, state: store.RunState) -> None:
    """What committed chunks of this run did already: the report covers the whole file."""
    report.rows, report.imported, report.existing = state.rows_done, state.rows_imported, state.rows_existing
    report.points = state.points
    report.refused = {Refusal(k): v for k, v in state.refusals.items()}
    report.errors = [RowError(e["line"], Refusal(e["refusal"]), e["detail"]) for e in state.first_errors]


async def _apply_chunk(
    conn: asyncpg.Connection,
    kind: Kind,
    run_id: uuid.UUID,
    batch: Sequence[Row | RowError],
    report: Report,
    events: LedgerEventWriter,
    actor: str,
) -> None:
    """One transaction: the chunk's rows, and the run's counters (and its report) moved past them."""
    errors = [e for e in batch if isinstance(e, RowError)]
    rows = [r for r in batch if not isinstance(r, RowError)]
    async with conn.transaction():
        claimed = await store.claim_chunk(conn, run_id)
        if claimed is None or claimed.rows_done != report.rows:
            raise ImportBusyError(run_id)
        if kind is Kind.BALANCES:
            imported, existing, points = await _balances(conn, run_id, rows, errors)  # type: ignore[arg-type]
        elif kind is Kind.MEMBERS:
            imported, existing, points = await _members(conn, run_id, rows, errors, events, actor)  # type: ignore[arg-type]
        else:
            imported, existing, points = await _purchases(conn, run_id, rows)  # type: ignore[arg-type]
        after = dataclasses.replace(report, refused=dict(report.refused), errors=list(report.errors))
        _tally(after, len(batch), imported, existing, points, errors)
        summary = after.as_json()
        await store.advance_run(conn, run_id, store.Advance(
            len(batch), imported, existing, len(batch) - imported - existing, points, summary["refused"],
            summary["errors"],
        ))  # fmt: skip
    vars(report).update(vars(after))  # only once the chunk committed


def _tally(report: Report, rows: int, imported: int, existing: int, points: int, errors: list[RowError]) -> None:
    report.rows += rows
    report.imported += imported
    report.existing += existing
    report.points += points
    for error in sorted(errors, key=lambda e: e.line):
        report.refuse(error)


# --- balances ------------------------------------------------------------------------------


async def _resolve_balances(
    conn: asyncpg.Connection, rows: Sequence[BalanceRow], errors: list[RowError]
) -> list[tuple[BalanceRow, uuid.UUID]]:
    """Each row's member (by legacy id, or the member its identifier is linked to); unknown ones refused."""
    linked = await store.linked_members(conn, [r.member for r in rows if is_identifier(r.member)])
    wanted = {r.line: linked.get(r.member) if is_identifier(r.member) else legacy_member_id(r.member) for r in rows}
    found = await store.existing_members(conn, [m for m in wanted.values() if m is not None])
    resolved = []
    for row in rows:
        member = wanted[row.line]
        if member is None or member not in found:
            what = "no member is linked to" if is_identifier(row.member) else "no member was imported with legacy id"
            errors.append(RowError(row.line, Refusal.UNKNOWN_MEMBER, f"{what} {row.member[:60]!r}"))
        else:
            resolved.append((row, member))
    return resolved


async def _balances(
    conn: asyncpg.Connection, run_id: uuid.UUID, rows: Sequence[BalanceRow], errors: list[RowError]
) -> tuple[int, int, int]:
    now = datetime.now(UTC)
    resolved = await _resolve_balances(conn, rows, errors)
    if not resolved:
        return 0, 0, 0
    written = await store.write_balances(conn, run_id, [(r, m, r.earned_at or now) for r, m in resolved], now)
    errors += [RowError(line, Refusal.CONFLICT, detail) for line, detail in written.conflicts]
    return written.imported, written.existing, written.points


# --- members -------------------------------------------------------------------------------


class _Taken(Exception):
    def __init__(self, identifier: str) -> None:
        super().__init__(f"{identifier} is linked to another member")


async def _members(
    conn: asyncpg.Connection,
    run_id: uuid.UUID,
    rows: Sequence[MemberRow],
    errors: list[RowError],
    events: LedgerEventWriter,
    actor: str,
) -> tuple[int, int, int]:
    """Each member as ops register and link one (handlers/members.py), each row in its own savepoint."""
    tx, imported, existing = Transaction(conn), 0, 0
    for row in rows:
        if await store.imported_member(conn, row.legacy_id) is not None:
            existing += 1
            continue
        try:
            async with conn.transaction():
                await _member(tx, events, row, run_id, actor)
            imported += 1
        except _Taken as taken:
            errors.append(RowError(row.line, Refusal.IDENTIFIER_TAKEN, f"{taken}; nothing of this row was imported"))
    await tx.apply_shared_deltas()
    return imported, existing, 0


async def _member(tx: Transaction, events: LedgerEventWriter, row: MemberRow, run_id: uuid.UUID, actor: str) -> None:
    now = datetime.now(UTC)
    await tx.create_member(row.member_id, row.display_name, member_account(row.member_id))
    for identifier in row.identifiers:
        current = await tx.lock_identifier(identifier)
        if current is None:
            await _link(tx, events, row.member_id, identifier, Actor(actor, is_ops=True), None, now)
        elif current != row.member_id:
            raise _Taken(identifier)
    await store.record_member(tx.conn, row, run_id)


# --- purchases -----------------------------------------------------------------------------


async def _purchases(conn: asyncpg.Connection, run_id: uuid.UUID, rows: Sequence[PurchaseRow]) -> tuple[int, int, int]:
    if not rows:
        return 0, 0, 0
    inserted = await store.write_purchases(conn, run_id, rows)
    return len(inserted), len(rows) - len(inserted), 0


async def _finish(conn: asyncpg.Connection, run_id: uuid.UUID, file: ImportFile, actor: str, report: Report) -> None:
    async with conn.transaction():
        totals = await store.finish_run(conn, run_id)
        if totals is None:
            return
        await audit.record(conn, audit.AuditEntry(
            actor=actor, role="system", action="import.completed", subject=f"import:{run_id}",
            after={"kind": file.kind.value, "rows": totals["rows_total"], "imported": totals["rows_imported"],
                   "existing": totals["rows_existing"], "refused": totals["rows_refused"], "points": totals["points"]},
            details={"file": str(file.path), "sha256": file.sha256, "refusals": report.as_json()["refused"]},
        ))  # fmt: skip


# --- dry run -------------------------------------------------------------------------------


async def _dry_run(
    conn: asyncpg.Connection, file: ImportFile, report: Report, size: int, zone: tzinfo, on_progress: Progress | None
) -> None:
    """Every check the run makes, against the database as it is; in a read-only transaction."""
    if on_progress:
        on_progress(0, file.rows)
    async with conn.transaction(readonly=True):
        async for batch in prefetched(chunks(file, datetime.now(UTC), size, zone)):
            errors = [e for e in batch if isinstance(e, RowError)]
            rows = [r for r in batch if not isinstance(r, RowError)]
            if file.kind is Kind.BALANCES:
                imported, existing, points = await _dry_balances(conn, rows, errors)  # type: ignore[arg-type]
            elif file.kind is Kind.MEMBERS:
                imported, existing, points = await _dry_members(conn, rows, errors)  # type: ignore[arg-type]
            else:
                imported, existing, points = await _dry_purchases(conn, rows)  # type: ignore[arg-type]
            _tally(report, len(batch), imported, existing, points, errors)
            if on_progress:
                on_progress(report.rows, file.rows)


async def _dry_balances(
    conn: asyncpg.Connection, rows: Sequence[BalanceRow], errors: list[RowError]
) -> tuple[int, int, int]:
    resolved = await _resolve_balances(conn, rows, errors)
    before = await store.imported_balances(conn, [r.key for r, _ in resolved])
    imported = existing = points = 0
    for row, member in resolved:
        earlier = before.get(row.key)
        if earlier is None:
            imported, points = imported + 1, points + row.points
        elif (earlier["points"], earlier["expires_at"], earlier["member_id"]) == (row.points, row.expires_at, member):
            existing += 1
        else:
            errors.append(RowError(row.line, Refusal.CONFLICT, f"imported before with {earlier['points']:,} points"))
    return imported, existing, points


async def _dry_members(
    conn: asyncpg.Connection, rows: Sequence[MemberRow], errors: list[RowError]
) -> tuple[int, int, int]:
    linked = await store.linked_members(conn, [i for r in rows for i in r.identifiers])
    imported = existing = 0
    for row in rows:
        if await store.imported_member(conn, row.legacy_id) is not None:
            existing += 1
            continue
        taken = [i for i in row.identifiers if linked.get(i, row.member_id) != row.member_id]
        if taken:
            errors.append(RowError(row.line, Refusal.IDENTIFIER_TAKEN, f"{taken[0]} is linked to another member"))
        else:
            imported += 1
    return imported, existing, 0


async def _dry_purchases(conn: asyncpg.Connection, rows: Sequence[PurchaseRow]) -> tuple[int, int, int]:
    before = await store.existing_purchases(conn, rows)
    fresh = sum(1 for r in rows if (r.partner_id, r.purchase_id) not in before)
    return fresh, len(rows) - fresh, 0


# --- ops' read ------------------------------------------------------------------------------


async def import_runs(points: PointsStore, limit: int) -> list[dict[str, object]]:
    """Runs newest first, each with its outcome: running (a process works on it), interrupted, or imported."""
    found = []
    for row in await store.list_runs(points.pool, limit):
        run = dict(row)
        working = run.pop("working")
        run["refusals"] = orjson.loads(run["refusals"]) if isinstance(run["refusals"], str) else run["refusals"]
        if run["status"] == "running":
            run["outcome"] = "running" if working else "interrupted"
        else:
            run["outcome"] = "imported with refusals" if run["rows_refused"] else "imported"
        found.append(run)
    return found
