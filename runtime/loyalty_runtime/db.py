"""PostgreSQL: connection pools, versioned SQL migrations, database creation."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

log = logging.getLogger(__name__)

_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    text PRIMARY KEY,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(RuntimeError):
    pass


CONNECT_TIMEOUT_SECONDS = 5.0
"""A server that accepts TCP but does not answer (paused, overloaded) fails a new connection this fast."""


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, command_timeout=60, timeout=CONNECT_TIMEOUT_SECONDS
    )
    assert pool is not None
    return pool


async def copy_rows(
    conn: asyncpg.Connection, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """Append `rows` to `table` with binary COPY, inside the caller's transaction; nothing when there are none.

    For the rows a batch adds in bulk: one round trip like INSERT ... SELECT unnest(...), but without
    building one array per column (asyncpg checks every element of an array parameter) and with the
    server's cheapest insert path. Column defaults (sequences) apply to the columns not named.
    """
    if rows:
        await conn.copy_records_to_table(table, records=rows, columns=list(columns))


async def wait_for_database(dsn: str, timeout: float = 30.0) -> None:
    """Return once the server accepts connections; raise with the last error after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = await asyncpg.connect(dsn, timeout=5)
        except (OSError, asyncpg.PostgresError) as error:
            if time.monotonic() > deadline:
                raise ConnectionError(
                    f"PostgreSQL at {redact(dsn)} is not reachable: {error}. Is it running (`make up`)?"
                ) from error
            await asyncio.sleep(0.25)
        else:
            await conn.close()
            return


def migration_files(directory: Path) -> list[Path]:
    files = sorted(directory.glob("[0-9][0-9][0-9][0-9]_*.sql"))
    if not files:
        raise MigrationError(f"no migrations found in {directory}")
    return files


async def migrate(dsn: str, directory: Path) -> list[str]:
    """Apply the migrations in `directory` that are not applied yet, each in its own transaction.

    Safe to run concurrently (an advisory lock serialises runners) and repeatedly. A migration
    that changed after it was applied stops the run: migrations are never edited once landed.
    """
    applied_now: list[str] = []
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock(hashtext('schema_migrations'))")
        await conn.execute(_MIGRATIONS_TABLE)
        done = {
            r["version"]: r["checksum"] for r in await conn.fetch("SELECT version, checksum FROM schema_migrations")
        }
        for path in migration_files(directory):
            sql = path.read_text()
            checksum = hashlib.sha256(sql.encode()).hexdigest()
            if path.stem in done:
                if done[path.stem] != checksum:
                    raise MigrationError(
                        f"{path.name} changed after it was applied; restore it and add a new migration instead"
                    )
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, checksum) VALUES ($1, $2)", path.stem, checksum
                )
            applied_now.append(path.stem)
            log.info("migration applied", extra={"migration": path.name})
    finally:
        await conn.close()
    return applied_now


def with_database(dsn: str, database: str) -> str:
    """The same server, another database."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{database}"))


def redact(dsn: str) -> str:
    parts = urlsplit(dsn)
    if parts.password:
        parts = parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@"))
    return urlunsplit(parts)


async def ensure_database(admin_dsn: str, database: str, *, template: str | None = None) -> bool:
    """Create `database` unless it exists; True when it was created."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database):
            return False
        quoted = '"' + database.replace('"', '""') + '"'
        clause = f' TEMPLATE "{template}"' if template else ""
        try:
            await conn.execute(f"CREATE DATABASE {quoted}{clause}")
        except asyncpg.DuplicateDatabaseError:
            return False
        return True
    finally:
        await conn.close()


async def drop_database(admin_dsn: str, database: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        quoted = '"' + database.replace('"', '""') + '"'
        await conn.execute(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
    finally:
        await conn.close()
