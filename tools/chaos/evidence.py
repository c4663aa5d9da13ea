"""What the platform's databases hold at the end of a run, read once each, for the checker to judge."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import asyncpg

EARNINGS = """
SELECT e.source_key, e.event_id, e.points, e.refunded_minor,
       count(t.transfer_id) AS transfers, coalesce(sum(t.amount), 0)::bigint AS moved
  FROM earnings e
  LEFT JOIN transfers t ON t.cause_event_id = e.event_id AND t.reason IN ('partner_purchase', 'card_purchase')
 GROUP BY e.source_key, e.event_id, e.points, e.refunded_minor
"""
GIFTS = "SELECT gift_id, sender, recipient, amount FROM gifts"
GIFT_TRANSFERS = "SELECT cause_event_id, sum(amount)::bigint AS moved FROM transfers WHERE reason = 'gift' GROUP BY 1"
GRANTS = """
SELECT member_id, claim_id, count(*) AS grants, sum(points)::bigint AS points
  FROM activity_grants WHERE activity_id = $1 AND claim_id IS NOT NULL GROUP BY 1, 2
"""
ACTIVITY = "SELECT grants_count, points_granted, quantity_cap FROM activities WHERE activity_id = $1"
HOLDS = "SELECT hold_id, status, amount FROM holds"
ORDERS = """
SELECT member_id, idempotency_key, order_id, state, partner_id, offer_id, quantity, unit_points, hold_id FROM orders
"""
CATALOG = "SELECT partner_id, offer_id, stock, units_reserved, units_sold FROM catalog"
DEAD_LETTERS = "SELECT topic, error_class, reason, count(*) AS n FROM dead_letters GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
OUTBOX = "SELECT CASE WHEN to_regclass('outbox') IS NULL THEN 0 ELSE (SELECT count(*) FROM outbox) END"


@dataclass(frozen=True)
class Earning:
    event_id: str
    points: int
    refunded_minor: int
    transfers: int
    moved: int


@dataclass(frozen=True)
class Gift:
    sender: str
    recipient: str
    amount: int


@dataclass(frozen=True)
class Grant:
    grants: int
    points: int


@dataclass(frozen=True)
class Order:
    order_id: str
    state: str
    partner_id: str
    offer_id: str
    quantity: int
    points: int
    hold_status: str | None
    hold_amount: int | None


@dataclass(frozen=True)
class Stock:
    stock: int
    reserved: int
    sold: int


@dataclass
class Evidence:
    earnings: dict[str, Earning] = field(default_factory=dict)
    """By source key: partner:<partner>:<purchase id>, card:<transaction id>."""
    gifts: dict[str, Gift] = field(default_factory=dict)
    gift_moved: dict[str, int] = field(default_factory=dict)
    grants: dict[tuple[str, str], Grant] = field(default_factory=dict)
    """By (member id, claim id)."""
    activity: dict[str, Any] = field(default_factory=dict)
    holds: dict[str, tuple[str, int]] = field(default_factory=dict)
    """By hold id: (status, amount)."""
    orders: dict[tuple[str, str], Order] = field(default_factory=dict)
    """By (member id, idempotency key)."""
    stock: dict[tuple[str, str], Stock] = field(default_factory=dict)
    dead_letters: list[str] = field(default_factory=list)
    outboxes: dict[str, int] = field(default_factory=dict)


async def gather(dsns: dict[str, str], activity_id: str) -> Evidence:
    """Each database in one repeatable-read snapshot."""
    found = Evidence()
    await _read(dsns["points"], lambda conn: _points(conn, found, activity_id))
    if "redemption" in dsns:
        await _read(dsns["redemption"], lambda conn: _redemption(conn, found))
    for service, dsn in dsns.items():
        await _read(dsn, lambda conn, s=service: _housekeeping(conn, found, s))
    return found


async def _read(dsn: str, step: Any) -> None:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            await step(conn)
    finally:
        await conn.close()


async def _points(conn: asyncpg.Connection, found: Evidence, activity_id: str) -> None:
    found.earnings = {
        r["source_key"]: Earning(str(r["event_id"]), r["points"], r["refunded_minor"], r["transfers"], r["moved"])
        for r in await conn.fetch(EARNINGS)
    }
    found.gifts = {
        str(r["gift_id"]): Gift(str(r["sender"]), str(r["recipient"]), r["amount"]) for r in await conn.fetch(GIFTS)
    }
    found.gift_moved = {str(r["cause_event_id"]): r["moved"] for r in await conn.fetch(GIFT_TRANSFERS)}
    activity = uuid.UUID(activity_id)
    found.grants = {
        (str(r["member_id"]), str(r["claim_id"])): Grant(r["grants"], r["points"])
        for r in await conn.fetch(GRANTS, activity)
    }
    row = await conn.fetchrow(ACTIVITY, activity)
    found.activity = dict(row) if row else {}
    found.holds = {str(r["hold_id"]): (r["status"], r["amount"]) for r in await conn.fetch(HOLDS)}


async def _redemption(conn: asyncpg.Connection, found: Evidence) -> None:
    for r in await conn.fetch(ORDERS):
        status, amount = found.holds.get(str(r["hold_id"]), (None, None))
        found.orders[(str(r["member_id"]), r["idempotency_key"])] = Order(
            str(r["order_id"]), r["state"], r["partner_id"], r["offer_id"], r["quantity"],
            r["quantity"] * r["unit_points"], status, amount,
        )  # fmt: skip
    found.stock = {
        (r["partner_id"], r["offer_id"]): Stock(r["stock"], r["units_reserved"], r["units_sold"])
        for r in await conn.fetch(CATALOG)
    }


async def _housekeeping(conn: asyncpg.Connection, found: Evidence, service: str) -> None:
    if await conn.fetchval("SELECT to_regclass('dead_letters') IS NOT NULL"):
        found.dead_letters += [
            f"{service}: {r['n']} on {r['topic']} ({r['error_class']}: {r['reason'][:200]})"
            for r in await conn.fetch(DEAD_LETTERS)
        ]
    found.outboxes[service] = int(await conn.fetchval(OUTBOX))
