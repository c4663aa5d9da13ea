"""Migrations apply in order, once, concurrently safe, and refuse an edited past."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from loyalty_runtime.db import MigrationError, migrate

pytestmark = pytest.mark.integration


def write(directory: Path, name: str, sql: str) -> None:
    (directory / name).write_text(sql)


async def test_migrations_apply_in_order_once_even_when_run_concurrently(database, tmp_path: Path):
    dsn = await database("points")
    write(tmp_path, "0001_things.sql", "CREATE TABLE things (id int PRIMARY KEY);")
    write(tmp_path, "0002_more.sql", "INSERT INTO things VALUES (1), (2);")

    results = await asyncio.gather(*(migrate(dsn, tmp_path) for _ in range(3)))

    assert sorted(results, key=len) == [[], [], ["0001_things", "0002_more"]]
    assert await migrate(dsn, tmp_path) == []
    conn = await asyncpg.connect(dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM things") == 2
    finally:
        await conn.close()


async def test_an_edited_migration_stops_the_run(database, tmp_path: Path):
    dsn = await database("points")
    write(tmp_path, "0001_things.sql", "CREATE TABLE things (id int PRIMARY KEY);")
    await migrate(dsn, tmp_path)
    write(tmp_path, "0001_things.sql", "CREATE TABLE things (id bigint PRIMARY KEY);")
    write(tmp_path, "0002_more.sql", "INSERT INTO things VALUES (1);")

    with pytest.raises(MigrationError, match=r"0001_things\.sql changed after it was applied"):
        await migrate(dsn, tmp_path)
