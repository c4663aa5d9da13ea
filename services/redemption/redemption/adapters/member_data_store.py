"""A member's data in the redemption database, for its export (redemption/handlers/member_data.py).

| table                       | rows of the member | erased                                                        |
|-----------------------------|--------------------|---------------------------------------------------------------|
| orders (vouchers within)    | member_id          | - (ids, offers, points, states, voucher codes: no personal value) |
| member_tiers                | member_id          | - (a tier code)                                               |
| segment_publication_members | member_id          | - (segment membership, ids only)                              |
| audit_log                   | subject `member:<id>` | - (append-only; names ids, never values)                   |

The service holds no name, identifier or contact of a member: its erasure (MemberErased) leaves every row as it
is and records in the audit log that the erasure reached it. `tests/integration/test_data_rights_coverage.py`
fails when a table with a member column is not in this list.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson

from loyalty_runtime import audit, inbox

EXPORTED: dict[str, str] = {
    "orders": "SELECT COALESCE(jsonb_agg(to_jsonb(t) ORDER BY created_at, order_id), '[]'::jsonb) FROM orders t "
    "WHERE member_id = $1",
    "member_tiers": "SELECT COALESCE(jsonb_agg(to_jsonb(t)), '[]'::jsonb) FROM member_tiers t WHERE member_id = $1",
    "segment_publication_members": "SELECT COALESCE(jsonb_agg(to_jsonb(t) ORDER BY publication_id), '[]'::jsonb) "
    "FROM segment_publication_members t WHERE member_id = $1",
    "audit_log": "SELECT COALESCE(jsonb_agg(to_jsonb(t) ORDER BY seq), '[]'::jsonb) FROM audit_log t "
    "WHERE subject = 'member:' || $1::uuid::text",
}


class MemberDataTransaction:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def export(self, member_id: uuid.UUID) -> dict[str, Any]:
        tables: dict[str, Any] = {}
        for table, sql in EXPORTED.items():
            value = await self.conn.fetchval(sql, member_id)
            tables[table] = orjson.loads(value) if isinstance(value, str) else value
        return tables

    async def claim_inbox(self, topic: str, event_ids: list[uuid.UUID]) -> set[uuid.UUID]:
        return await inbox.claim(self.conn, topic, event_ids)

    async def audit(self, entry: audit.AuditEntry) -> None:
        await audit.record(self.conn, entry)


class MemberDataStore:
    def __init__(self, pool: Callable[[], asyncpg.Pool]) -> None:
        self._pool = pool

    @asynccontextmanager
    async def transaction(self, *, snapshot: bool = False) -> AsyncIterator[MemberDataTransaction]:
        isolation = "repeatable_read" if snapshot else "read_committed"
        async with self._pool().acquire() as conn, conn.transaction(isolation=isolation):
            yield MemberDataTransaction(conn)
