"""`python -m points.batch_import FILE --kind balances|members|purchases [--dry-run]`: an operator's batch job.

Reads the points database from the points service's settings (DATABASE_URL, else `make up`'s database), prints
the report on stdout, and shows progress on stderr: a bar with rows/s and ETA on a terminal, a JSON log line
every few seconds otherwise. Exit 0 when every row was imported or already there, 1 when some were refused,
2 when the import could not run (no such file, unreadable file, the database is missing, another process).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import sys
import time
from pathlib import Path
from typing import TextIO

import asyncpg

from loyalty_runtime.db import redact, wait_for_database
from loyalty_runtime.logs import configure_logging
from points.domain.imports import FileFormatError, Kind
from points.handlers.imports import ImportBusyError, Outcome, import_file, inspect
from points.handlers.ledger_events import LedgerEventWriter
from points.settings import Settings

log = logging.getLogger("points.import")


class ProgressBar:
    """A bar on a terminal, else a structured log line every `every` seconds (and at the end)."""

    def __init__(self, label: str, stream: TextIO = sys.stderr, every: float = 5.0) -> None:
        self.label, self.stream, self.every = label, stream, every
        self.tty = stream.isatty()
        self.started = time.monotonic()
        self.last = 0.0
        self.base: int | None = None

    def __call__(self, done: int, total: int) -> None:
        """Called once before the first chunk (with what a killed run did already), then after each chunk."""
        now = time.monotonic()
        if self.base is None:  # the rate counts only what this process does
            self.base, self.started = done, now
            return
        rate = (done - self.base) / max(now - self.started, 1e-3)
        eta = (total - done) / rate if rate > 0 else 0.0
        if self.tty:
            width = 30
            filled = int(width * done / total) if total else width
            self.stream.write(f"\r\033[K{self.label} [{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,} "
                              f"{rate:,.0f} rows/s ETA {eta:,.0f} s")  # fmt: skip
            if done >= total:
                self.stream.write("\n")
            self.stream.flush()
        elif now - self.last >= self.every or done >= total:
            self.last = now
            log.info("import progress", extra={"rows_done": done, "rows_total": total,
                                                "rows_per_second": round(rate), "eta_seconds": round(eta)})  # fmt: skip


def positive(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) <= 1_000_000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1 to 1,000,000")
    return int(text)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m points.batch_import", description=__doc__.split("\n")[0])
    parser.add_argument("file", type=Path, help="CSV with a header row, or JSON lines")
    parser.add_argument("--kind", required=True, choices=[k.value for k in Kind])
    parser.add_argument("--dry-run", action="store_true", help="validate every row and report; write nothing")
    parser.add_argument("--actor", default=None, help="who runs it, for the audit log (default: the OS user)")
    parser.add_argument("--chunk-size", type=positive, default=None, help="rows per transaction")
    parser.add_argument("--errors", type=positive, default=20, help="how many refused rows to list (default 20)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser.parse_args(argv)


async def run(options: argparse.Namespace, settings: Settings) -> int:
    dsn = settings.dsn("loyalty_points")
    try:
        file = inspect(options.file, Kind(options.kind))
    except (OSError, FileFormatError) as error:
        print(f"cannot import: {error}", file=sys.stderr)
        return 2
    try:
        await wait_for_database(dsn, timeout=5)
        outcome = await import_file(
            dsn, file, actor=options.actor or getpass.getuser(), events=LedgerEventWriter(settings.kafka_topic_prefix),
            dry_run=options.dry_run, chunk_size=options.chunk_size, keep_errors=options.errors,
            zone=settings.programme_zone,
            on_progress=ProgressBar(f"{file.kind.value}{' (dry run)' if options.dry_run else ''}"),
        )  # fmt: skip
    except ConnectionError as error:
        print(f"cannot import: {error}", file=sys.stderr)
        return 2
    except asyncpg.UndefinedTableError:
        print(f"cannot import: {redact(dsn)} has no import tables; run `make up` (it migrates)", file=sys.stderr)
        return 2
    except ImportBusyError as error:
        print(f"cannot import: {error}", file=sys.stderr)
        return 2
    show(outcome, options.json)
    return 1 if outcome.report.refused_total else 0


def show(outcome: Outcome, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"run_id": str(outcome.run_id) if outcome.run_id else None, "status": outcome.status,
                          **outcome.report.as_json()}, indent=2))  # fmt: skip
        return
    heading = {
        "dry-run": "dry run: nothing was written; this is what an import would do",
        "completed": f"import run {outcome.run_id} completed",
        "resumed-completed": f"import run {outcome.run_id} resumed after an interruption and completed",
        "already-completed": f"this file was imported already (run {outcome.run_id}); nothing to do",
    }[outcome.status]
    print(heading)
    for line in outcome.report.lines():
        print(line)


def main(argv: list[str] | None = None) -> int:
    options = parse(argv)
    settings = Settings()
    configure_logging("points-import", settings.log_level)
    return asyncio.run(run(options, settings))


if __name__ == "__main__":
    raise SystemExit(main())
