"""Apply earn batches straight through the points handler, on a real database, without Kafka.

For tests that need two batches at the same moment or exact figures: the facts are what the
consumers hand `apply_earn_batch`, members and identifiers are written with SQL.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from points.adapters.store import PointsStore
from points.domain.earning import Earn, Reverse
from points.domain.ledger import partner_issued_account
from points.handlers.earn import BatchOutcome, Fact, apply_earn_batch
from points.handlers.ledger_events import LedgerEventWriter

LOT_VALIDITY = timedelta(days=730)
TOPIC = "test.loyalty.partner-purchases.v1"


def now() -> datetime:
    return datetime.now(UTC)


def bought(customer: str, order: str, amount_minor: int, points: int, *, partner: str = "skymall") -> Earn:
    """A partner purchase as the consumer hands it to the ledger."""
    return Earn(
        uuid.uuid4(), f"partner:{partner}:{order}", f"partner:{partner}:{customer}", partner_issued_account(partner),
        amount_minor, "CNY", points, now(), "partner_purchase", {"purchase_id": order}, "partner", partner,
    )  # fmt: skip


def refunded(order: str, amount_minor: int, *, partner: str = "skymall") -> Reverse:
    return Reverse(uuid.uuid4(), f"partner:{partner}:{order}", amount_minor, "CNY", now(), "partner_refund")


@dataclass
class Ledger:
    store: PointsStore
    conn: asyncpg.Connection
    events: LedgerEventWriter

    async def apply(self, *facts: Fact) -> BatchOutcome:
        return await apply_earn_batch(self.store, TOPIC, facts, {}, self.events, LOT_VALIDITY)

    async def member(self, customer: str, *, partner: str = "skymall") -> uuid.UUID:
        """A member, its account, and the partner customer reference linked to it."""
        member_id = uuid.uuid4()
        await self.conn.execute("INSERT INTO members (member_id) VALUES ($1)", member_id)
        await self.conn.execute(
            "INSERT INTO accounts (account_id, kind, member_id) VALUES ($1, 'member', $2)", f"member:{member_id}",
            member_id,
        )  # fmt: skip
        await self.conn.execute(
            "INSERT INTO identifiers (identifier, member_id, linked_at) VALUES ($1, $2, now())",
            f"partner:{partner}:{customer}",
            member_id,
        )
        return member_id

    async def posted(self, account_id: str) -> int:
        found = await self.conn.fetchval(
            "SELECT credits_posted - debits_posted FROM accounts WHERE account_id = $1", account_id
        )
        return int(found or 0)

    async def row(self, sql: str, *args: Any) -> asyncpg.Record:
        found = await self.conn.fetchrow(sql, *args)
        assert found is not None, sql
        return found


@asynccontextmanager
async def points_store(dsn: str, connections: int) -> AsyncIterator[PointsStore]:
    """A PointsStore on a pool of its own, of `connections` connections (the concurrency a test needs)."""
    pool = await asyncpg.create_pool(dsn, min_size=connections, max_size=connections)
    assert pool is not None
    try:
        yield PointsStore(pool)
    finally:
        await pool.close()


@asynccontextmanager
async def ledger(dsn: str) -> AsyncIterator[Ledger]:
    pool = await asyncpg.create_pool(dsn, min_size=2, max_size=6)
    assert pool is not None
    try:
        async with pool.acquire() as conn:
            yield Ledger(PointsStore(pool), conn, LedgerEventWriter("test."))
    finally:
        await pool.close()
