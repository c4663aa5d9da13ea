"""The liability reads and issue prices in PostgreSQL (asyncpg): a month's flows by posting time, the ledger's
lot-holding total, the statements kept for closed months, the live lots by expiry month, and issue prices."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime

import asyncpg

from loyalty_runtime import audit, inbox
from points.domain.liability import (
    HOLDER_KINDS,
    UNKNOWN_ISSUER,
    Flow,
    ForecastRow,
    IssuePrice,
    Line,
    Month,
    Movements,
    Statement,
)

GIFT_LOT = """(c.reason = 'gift' OR (c.reason = 'red_packet_grab' AND EXISTS (
    SELECT 1 FROM red_packets rp WHERE rp.account_id = c.debit_account AND rp.creator_member IS NOT NULL)))"""
"""Whether the lot that transfer `c` created reached its member from another member (a gift, a member's packet)."""

# Credits to lot-holding accounts are the lots their transfers created (lot_id = transfer_id); debits from them are
# their lot debits. Both are classified by the account on the transfer's other side (domain/liability.py).
FLOWS = f"""
WITH period AS (
    SELECT transfer_id, debit_account, credit_account, amount, reason
      FROM transfers WHERE posted_at >= $1 AND posted_at < $2
)
SELECT COALESCE(l.issuer, '{UNKNOWN_ISSUER}') AS issuer, {GIFT_LOT} AS gift, d.kind AS counterparty_kind,
       sum(c.amount) AS points
  FROM period c
  JOIN lots l ON l.lot_id = c.transfer_id
  JOIN accounts d ON d.account_id = c.debit_account
 GROUP BY 1, 2, 3
UNION ALL
SELECT COALESCE(l.issuer, '{UNKNOWN_ISSUER}'), {GIFT_LOT}, k.kind, -sum(ld.amount)
  FROM period p
  JOIN lot_debits ld ON ld.transfer_id = p.transfer_id
  JOIN lots l ON l.lot_id = ld.lot_id
  JOIN transfers c ON c.transfer_id = l.lot_id
  JOIN accounts k ON k.account_id = p.credit_account
 GROUP BY 1, 2, 3
"""

# The same period from the transfers alone: what lot-holding accounts gained, minus what they lost.
LEDGER_FLOW = """
SELECT COALESCE(sum(t.amount * ((c.kind = ANY($3::text[]))::int - (d.kind = ANY($3::text[]))::int)), 0)::bigint
  FROM transfers t
  JOIN accounts d ON d.account_id = t.debit_account
  JOIN accounts c ON c.account_id = t.credit_account
 WHERE t.posted_at >= $1 AND t.posted_at < $2
"""

FIRST_POSTING = "SELECT min(posted_at) FROM transfers"

LATEST_KEPT_BEFORE = """
SELECT month FROM liability_months WHERE time_zone = $1 AND month < $2 ORDER BY month DESC LIMIT 1
"""

KEPT_MONTH = """
SELECT starts_at, ends_at, ledger_closing FROM liability_months WHERE time_zone = $1 AND month = $2
"""

KEPT_LINES = """
SELECT issuer, received_as_gift, opening, issued, redeemed, expired, moved, other, redeemed_out, expired_out
  FROM liability_month_lines WHERE time_zone = $1 AND month = $2
 ORDER BY issuer, received_as_gift
"""

KEEP_MONTH = """
INSERT INTO liability_months (time_zone, month, starts_at, ends_at, ledger_closing)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (time_zone, month) DO NOTHING
RETURNING month
"""

KEEP_LINES = """
INSERT INTO liability_month_lines (time_zone, month, issuer, received_as_gift, opening, issued, redeemed, expired,
                                   moved, other, closing, redeemed_out, expired_out)
SELECT $1, $2, * FROM unnest($3::text[], $4::bool[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[],
                             $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[], $13::bigint[])
"""

# Live lots by forecast month: width_bucket counts the bounds at or before expires_at (domain bucket_of).
FORECAST = f"""
SELECT COALESCE(issuer, '{UNKNOWN_ISSUER}') AS issuer, width_bucket(expires_at, $1::timestamptz[]) AS bucket,
       sum(remaining)::bigint AS points
  FROM lots WHERE remaining > 0
 GROUP BY 1, 2
"""

PRICES = """
SELECT issuer, valid_from, currency, price_minor_per_point, source, set_by FROM issue_prices ORDER BY issuer, valid_from
"""

PRICE = "SELECT issuer, valid_from, currency, price_minor_per_point, source, set_by FROM issue_prices " \
        "WHERE issuer = $1 AND valid_from = $2"  # fmt: skip

ADD_PRICES = """
INSERT INTO issue_prices (issuer, valid_from, currency, price_minor_per_point, source, set_by)
SELECT * FROM unnest($1::text[], $2::date[], $3::text[], $4::numeric[], $5::text[], $6::text[])
ON CONFLICT (issuer, valid_from) DO NOTHING
RETURNING issuer
"""


def _price(row: asyncpg.Record) -> IssuePrice:
    return IssuePrice(row["issuer"], row["valid_from"], row["currency"], row["price_minor_per_point"], row["source"],
                      row["set_by"])  # fmt: skip


class LiabilityReader:
    """Reads inside one repeatable-read snapshot, so that a statement's lines and its ledger total agree."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def flows(self, start: datetime, end: datetime) -> list[Flow]:
        rows = await self.conn.fetch(FLOWS, start, end)
        return [Flow(r["issuer"], r["gift"], r["counterparty_kind"], r["points"]) for r in rows]

    async def ledger_flow(self, start: datetime, end: datetime) -> int:
        total: int = await self.conn.fetchval(LEDGER_FLOW, start, end, list(HOLDER_KINDS))
        return total

    async def first_posting(self) -> datetime | None:
        first: datetime | None = await self.conn.fetchval(FIRST_POSTING)
        return first

    async def latest_kept_before(self, zone: str, month: Month) -> Month | None:
        label = await self.conn.fetchval(LATEST_KEPT_BEFORE, zone, month.label)
        return Month.parse(label) if label else None

    async def kept(self, zone: str, month: Month) -> Statement | None:
        head = await self.conn.fetchrow(KEPT_MONTH, zone, month.label)
        if head is None:
            return None
        rows = await self.conn.fetch(KEPT_LINES, zone, month.label)
        lines = tuple(
            Line(r["issuer"], r["received_as_gift"], r["opening"],
                 Movements(r["issued"], r["redeemed"], r["expired"], r["moved"], r["other"], r["redeemed_out"],
                           r["expired_out"]))
            for r in rows
        )  # fmt: skip
        return Statement(month, head["starts_at"], head["ends_at"], lines, head["ledger_closing"], True)

    async def forecast(self, bounds: Sequence[datetime]) -> list[ForecastRow]:
        rows = await self.conn.fetch(FORECAST, list(bounds))
        return [ForecastRow(r["issuer"], r["bucket"], r["points"]) for r in rows]

    async def prices(self) -> list[IssuePrice]:
        return [_price(r) for r in await self.conn.fetch(PRICES)]


class LiabilityStore:
    """Borrows the service's pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[LiabilityReader]:
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            yield LiabilityReader(conn)

    async def keep(self, zone: str, statements: Sequence[Statement]) -> None:
        """Keep closed months' statements; one already kept (by a concurrent reader) stays as it is."""
        async with self._pool.acquire() as conn, conn.transaction():
            for s in statements:
                if await conn.fetchval(KEEP_MONTH, zone, s.month.label, s.starts_at, s.ends_at, s.ledger_closing):
                    await conn.execute(KEEP_LINES, zone, s.month.label, *_line_columns(s.lines))

    async def prices(self) -> list[IssuePrice]:
        return [_price(r) for r in await self._pool.fetch(PRICES)]

    async def add_ops_price(self, price: IssuePrice, entry: audit.AuditEntry) -> IssuePrice | None:
        """Add the version and its audit entry in one transaction; the version already there (unchanged) if any."""
        async with self._pool.acquire() as conn, conn.transaction():
            if await conn.fetchval(ADD_PRICES, *_price_columns([price])) is None:
                existing = await conn.fetchrow(PRICE, price.issuer, price.valid_from)
                return _price(existing) if existing else None
            await audit.record(conn, entry)
        return price

    async def add_contract_prices(self, topic: str, priced: Sequence[tuple[uuid.UUID, IssuePrice]]) -> int:
        """Record each event once (the inbox) and each version once (its key); the number of versions added."""
        async with self._pool.acquire() as conn, conn.transaction():
            fresh = await inbox.claim(conn, topic, [event_id for event_id, _ in priced])
            new = [price for _, price in inbox.first_copies(priced, fresh, lambda p: p[0])]
            if not new:
                return 0
            return len(await conn.fetch(ADD_PRICES, *_price_columns(new)))


def _price_columns(prices: Sequence[IssuePrice]) -> list[list[object]]:
    columns = ("issuer", "valid_from", "currency", "price_minor_per_point", "source", "set_by")
    return [[getattr(p, c) for p in prices] for c in columns]


def _line_columns(lines: Sequence[Line]) -> list[list[object]]:
    m = [line.movements for line in lines]
    return [[x.issuer for x in lines], [x.gift for x in lines], [x.opening for x in lines],
            [x.issued for x in m], [x.redeemed for x in m], [x.expired for x in m], [x.moved for x in m],
            [x.other for x in m], [x.closing for x in lines], [x.redeemed_out for x in m],
            [x.expired_out for x in m]]  # fmt: skip
