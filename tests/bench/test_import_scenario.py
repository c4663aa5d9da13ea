"""The bench's import scenario at a small size: generated balance rows imported, the invariants it touches hold."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from bench.scenarios.imports import generate_and_import

pytestmark = pytest.mark.integration


async def test_generated_balance_rows_import_with_every_row_a_lot(database, tmp_path: Path) -> None:
    dsn = await database("points")
    seconds, members = await generate_and_import(dsn, tmp_path, 4_000, "")
    assert (members, seconds > 0) == (1_000, True)
    conn = await asyncpg.connect(dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM lots WHERE issuer = 'migration'") == 4_000
        total = sum(1 + n % 5_000 for n in range(4_000))
        assert await conn.fetchval("SELECT debits_posted FROM accounts WHERE account_id = 'migration'") == total
    finally:
        await conn.close()
