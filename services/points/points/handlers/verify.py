"""Check every ledger invariant on a live database; report the rows that break one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from points.adapters.invariants import CHECKS


@dataclass(frozen=True)
class Violation:
    check: str
    rule: str
    rows: list[dict[str, Any]]


async def verify_ledger(dsn: str) -> list[Violation]:
    """One repeatable-read snapshot, so that concurrent writers cannot make the checks disagree."""
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            violations = []
            for check in CHECKS:
                rows = await conn.fetch(check.sql + " LIMIT 50")
                if rows:
                    violations.append(Violation(check.name, check.rule, [dict(r) for r in rows]))
            return violations
    finally:
        await conn.close()
