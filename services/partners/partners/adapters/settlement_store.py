"""Settlement in PostgreSQL (asyncpg): the ledger transfers it consumed, its watermark, finalised statements."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from loyalty_runtime import inbox
from partners.domain.settlement import (
    DailyPoints,
    Entry,
    LedgerTransfer,
    Measure,
    PartitionPosition,
    Period,
    Statement,
    StatementLine,
)

# A transfer is counted once whatever event carried it: the entries follow only the rows inserted now.
INSERT_TRANSFERS = """
INSERT INTO ledger_transfers (transfer_id, event_id, debit_account, credit_account, amount, reason,
                              issuer_account, posted_at)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::bigint[], $6::text[],
                     $7::text[], $8::timestamptz[])
ON CONFLICT (transfer_id) DO NOTHING
RETURNING transfer_id
"""

INSERT_ENTRIES = """
INSERT INTO settlement_entries (transfer_id, partner_id, measure, points, posted_at)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bigint[], $5::timestamptz[])
"""

# Rows locked in partition order, so that two consumers of one group never deadlock during a rebalance.
ADVANCE_PARTITIONS = """
INSERT INTO ledger_partitions AS p (topic, partition, next_offset, newest_posted_at)
SELECT $1, part, next_offset, newest
  FROM unnest($2::int[], $3::bigint[], $4::timestamptz[]) AS u(part, next_offset, newest)
 ORDER BY part
ON CONFLICT (topic, partition) DO UPDATE
   SET next_offset = greatest(p.next_offset, EXCLUDED.next_offset),
       newest_posted_at = greatest(p.newest_posted_at, EXCLUDED.newest_posted_at),
       updated_at = now()
"""

SELECT_PARTITIONS = """
SELECT partition, next_offset, newest_posted_at FROM ledger_partitions WHERE topic = $1 ORDER BY partition
"""

FINALISED_OVERLAPPING = """
SELECT period FROM settlement_runs WHERE period_start <= $2 AND period_end > $1 ORDER BY period
"""

DAILY_POINTS = """
SELECT partner_id, measure, (posted_at AT TIME ZONE 'UTC')::date AS day, sum(points)::bigint AS points
  FROM settlement_entries
 WHERE posted_at >= $1 AND posted_at < $2 AND ($3::text IS NULL OR partner_id = $3)
 GROUP BY 1, 2, 3
"""

SELECT_PARTNER_IDS = "SELECT partner_id FROM partners ORDER BY partner_id"

INSERT_RUN = """
INSERT INTO settlement_runs (period, period_start, period_end, gifted_points, forced, watermark, finalised_by)
VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)
ON CONFLICT (period) DO NOTHING
RETURNING period
"""

INSERT_STATEMENTS = """
INSERT INTO settlement_statements (period, partner_id, points_issued, points_redeemed, breakage_points,
                                   points_exchanged)
SELECT $1, * FROM unnest($2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[])
"""

INSERT_LINES = """
INSERT INTO settlement_lines (period, partner_id, contract_valid_from, currency, issue_price_minor_per_point,
                              redemption_price_minor_per_point, breakage_rebate_share, points_issued,
                              issue_amount_minor, points_redeemed, redemption_amount_minor, breakage_points,
                              breakage_rebate_minor, net_minor, points_exchanged, exchange_amount_minor)
SELECT $1, * FROM unnest($2::text[], $3::date[], $4::text[], $5::numeric[], $6::numeric[], $7::numeric[],
                         $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[], $13::bigint[],
                         $14::bigint[], $15::bigint[], $16::bigint[])
"""

SELECT_RUN = """
SELECT period, period_start, period_end, gifted_points, forced, finalised_by, finalised_at
  FROM settlement_runs WHERE period = $1
"""

SELECT_STATEMENTS = """
SELECT s.partner_id, l.contract_valid_from, l.currency, l.issue_price_minor_per_point,
       l.redemption_price_minor_per_point, l.breakage_rebate_share, l.points_issued, l.issue_amount_minor,
       l.points_redeemed, l.redemption_amount_minor, l.breakage_points, l.breakage_rebate_minor,
       l.points_exchanged, l.exchange_amount_minor
  FROM settlement_statements s
  LEFT JOIN settlement_lines l USING (period, partner_id)
 WHERE s.period = $1 AND ($2::text IS NULL OR s.partner_id = $2)
 ORDER BY s.partner_id, l.contract_valid_from
"""


@dataclass(frozen=True)
class FinalisedRun:
    period: Period
    gifted_points: int
    forced: bool
    finalised_by: str
    finalised_at: datetime
    statements: tuple[Statement, ...]


class SettlementTransaction:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def claim_inbox(self, topic: str, event_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """Record the ids in the inbox; returns those seen for the first time."""
        return await inbox.claim(self.conn, topic, event_ids)

    async def save_transfers(self, transfers: Sequence[tuple[LedgerTransfer, Sequence[Entry]]]) -> int:
        """Store each transfer not stored yet, with its entries; returns how many were new."""
        unique = {t.transfer_id: (t, found) for t, found in reversed(transfers)}
        if not unique:
            return 0
        ts = [t for t, _ in unique.values()]
        rows = await self.conn.fetch(
            INSERT_TRANSFERS,
            [t.transfer_id for t in ts],
            [t.event_id for t in ts],
            [t.debit_account for t in ts],
            [t.credit_account for t in ts],
            [t.amount for t in ts],
            [t.reason for t in ts],
            [t.issuer_account for t in ts],
            [t.posted_at for t in ts],
        )
        new = {r["transfer_id"] for r in rows}
        entries = [e for t, found in unique.values() if t.transfer_id in new for e in found]
        if entries:
            await self.conn.execute(
                INSERT_ENTRIES,
                [e.transfer_id for e in entries],
                [e.partner_id for e in entries],
                [e.measure.value for e in entries],
                [e.points for e in entries],
                [e.posted_at for e in entries],
            )
        return len(new)

    async def advance(self, topic: str, positions: Iterable[PartitionPosition]) -> None:
        ordered = sorted(positions, key=lambda p: p.partition)
        if ordered:
            await self.conn.execute(
                ADVANCE_PARTITIONS,
                topic,
                [p.partition for p in ordered],
                [p.next_offset for p in ordered],
                [p.newest_posted_at for p in ordered],
            )

    async def finalised_periods_between(self, first: datetime, last: datetime) -> list[str]:
        """Finalised months that contain a moment between `first` and `last` (both inclusive)."""
        return [r["period"] for r in await self.conn.fetch(FINALISED_OVERLAPPING, first, last)]

    async def daily_points(self, period: Period, partner_id: str | None = None) -> list[DailyPoints]:
        return await _daily_points(self.conn, period, partner_id)

    async def partner_ids(self) -> list[str]:
        return [r["partner_id"] for r in await self.conn.fetch(SELECT_PARTNER_IDS)]

    async def insert_run(
        self,
        period: Period,
        gifted_points: int,
        forced: bool,
        watermark: dict[str, object],
        finalised_by: str,
        statements: Sequence[Statement],
    ) -> bool:
        """Store the month's statements; False (and nothing written) when the month was finalised already."""
        assert period.month is not None, "only a calendar month is finalised"
        created = await self.conn.fetchval(
            INSERT_RUN,
            period.month,
            period.start,
            period.end,
            gifted_points,
            forced,
            json.dumps(watermark),
            finalised_by,
        )
        if created is None:
            return False
        await self.conn.execute(
            INSERT_STATEMENTS,
            period.month,
            [s.partner_id for s in statements],
            [s.points_issued for s in statements],
            [s.points_redeemed for s in statements],
            [s.breakage_points for s in statements],
            [s.points_exchanged for s in statements],
        )
        lines = [(s.partner_id, line) for s in statements for line in s.lines]
        await self.conn.execute(
            INSERT_LINES,
            period.month,
            [p for p, _ in lines],
            [line.contract_valid_from for _, line in lines],
            [line.currency for _, line in lines],
            [line.issue_price_minor_per_point for _, line in lines],
            [line.redemption_price_minor_per_point for _, line in lines],
            [line.breakage_rebate_share for _, line in lines],
            [line.points_issued for _, line in lines],
            [line.issue_amount_minor for _, line in lines],
            [line.points_redeemed for _, line in lines],
            [line.redemption_amount_minor for _, line in lines],
            [line.breakage_points for _, line in lines],
            [line.breakage_rebate_minor for _, line in lines],
            [line.net_minor for _, line in lines],
            [line.points_exchanged for _, line in lines],
            [line.exchange_amount_minor for _, line in lines],
        )
        return True


class SettlementStore:
    """Borrows the service's pool (it exists only while the service runs), never owns it."""

    def __init__(self, pool: Callable[[], asyncpg.Pool]) -> None:
        self._pool = pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SettlementTransaction]:
        async with self._pool().acquire() as conn, conn.transaction():
            yield SettlementTransaction(conn)

    async def positions(self, topic: str) -> dict[int, PartitionPosition]:
        rows = await self._pool().fetch(SELECT_PARTITIONS, topic)
        return {
            r["partition"]: PartitionPosition(r["partition"], r["next_offset"], r["newest_posted_at"]) for r in rows
        }

    async def daily_points(self, period: Period, partner_id: str | None = None) -> list[DailyPoints]:
        async with self._pool().acquire() as conn:
            return await _daily_points(conn, period, partner_id)

    async def partner_ids(self) -> list[str]:
        return [r["partner_id"] for r in await self._pool().fetch(SELECT_PARTNER_IDS)]

    async def finalised(self, period: Period, partner_id: str | None = None) -> FinalisedRun | None:
        """The month's stored statements (of one partner, or of all), or None when it is not finalised."""
        if period.month is None:
            return None
        async with self._pool().acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            run = await conn.fetchrow(SELECT_RUN, period.month)
            if run is None:
                return None
            rows = await conn.fetch(SELECT_STATEMENTS, period.month, partner_id)
        lines: dict[str, list[StatementLine]] = {}
        for row in rows:
            found = lines.setdefault(row["partner_id"], [])
            if row["contract_valid_from"] is not None:
                found.append(_line(row))
        return FinalisedRun(
            period=period,
            gifted_points=run["gifted_points"],
            forced=run["forced"],
            finalised_by=run["finalised_by"],
            finalised_at=run["finalised_at"],
            statements=tuple(Statement(p, period, tuple(ls)) for p, ls in lines.items()),
        )


async def _daily_points(conn: asyncpg.Connection, period: Period, partner_id: str | None) -> list[DailyPoints]:
    rows = await conn.fetch(DAILY_POINTS, period.start, period.end, partner_id)
    return [DailyPoints(r["partner_id"], Measure(r["measure"]), r["day"], r["points"]) for r in rows]


def _line(row: asyncpg.Record) -> StatementLine:
    return StatementLine(
        contract_valid_from=row["contract_valid_from"],
        currency=row["currency"],
        issue_price_minor_per_point=row["issue_price_minor_per_point"],
        redemption_price_minor_per_point=row["redemption_price_minor_per_point"],
        breakage_rebate_share=row["breakage_rebate_share"],
        points_issued=row["points_issued"],
        issue_amount_minor=row["issue_amount_minor"],
        points_redeemed=row["points_redeemed"],
        redemption_amount_minor=row["redemption_amount_minor"],
        breakage_points=row["breakage_points"],
        breakage_rebate_minor=row["breakage_rebate_minor"],
        points_exchanged=row["points_exchanged"],
        exchange_amount_minor=row["exchange_amount_minor"],
    )
