"""PostgreSQL persistence of redemption orders, stock counters and the outbox."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from loyalty_runtime import inbox
from loyalty_runtime.outbox import OutboxMessage, enqueue, outbox_columns
from redemption.domain.orders import Order, OrderState
from redemption.domain.stock import Counters, OfferKey, StockBook

_COLUMNS = """order_id, member_id, partner_id, offer_id, kind, quantity, unit_points, hold_expires_at,
       fulfilment_deadline, state, stock_reserved, attempts, next_attempt_at, voucher_code, partner_reference,
       cancel_reason, in_doubt"""

OFFER_FOR_ORDER = """
SELECT kind, price_points, withdrawn, valid_from, valid_until, fulfilment_url,
       greatest(stock - units_reserved - units_sold, 0) AS available, tier_prices, tiers_only, segment_prices,
       (SELECT tier FROM member_tiers WHERE member_id = $3) AS member_tier,
       ARRAY(SELECT c.segment_id FROM segment_publication_members m
             JOIN segment_current c ON c.publication_id = m.publication_id
             WHERE m.member_id = $3 ORDER BY c.segment_id) AS member_segments,
       EXISTS (SELECT 1 FROM orders WHERE member_id = $3 AND idempotency_key = $4) AS ordered_before
FROM catalog WHERE partner_id = $1 AND offer_id = $2
"""
"""The offer and whether the member already used the idempotency key: one round trip for a new order."""

INSERT_ORDER = """
INSERT INTO orders (order_id, member_id, idempotency_key, partner_id, offer_id, kind, quantity, unit_points, state,
                    hold_id, hold_expires_at, fulfilment_deadline, tier, base_unit_points)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
ON CONFLICT (member_id, idempotency_key) DO NOTHING
RETURNING order_id
"""

PLACE_ORDER = """
WITH placed AS (
    INSERT INTO orders (order_id, member_id, idempotency_key, partner_id, offer_id, kind, quantity, unit_points,
                        state, hold_id, hold_expires_at, fulfilment_deadline, tier, base_unit_points)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
    ON CONFLICT (member_id, idempotency_key) DO NOTHING
    RETURNING order_id
), queued AS (
    INSERT INTO outbox (topic, key, payload, headers)
    SELECT m.topic, m.key, m.payload, m.headers
    FROM unnest($15::text[], $16::text[], $17::bytea[], $18::jsonb[])
        WITH ORDINALITY AS m(topic, key, payload, headers, n)
    WHERE EXISTS (SELECT FROM placed)
    ORDER BY m.n
)
SELECT order_id, pg_notify('outbox', '') FROM placed
"""
"""A new order and its messages in one statement, so in one round trip and one commit (no BEGIN, no COMMIT):
the order route's cost is mostly its round trips. The outbox rows are the ones loyalty_runtime.outbox.enqueue
writes, and the notification wakes the relay as its does (partners' intake_accept does the same)."""

ORDER_BY_KEY = f"SELECT {_COLUMNS}, idempotency_key FROM orders WHERE member_id = $1 AND idempotency_key = $2"

LOCK_ORDERS = f"SELECT {_COLUMNS} FROM orders WHERE order_id = ANY($1::uuid[]) ORDER BY order_id FOR UPDATE"

SAVE_ORDERS = """
UPDATE orders o SET state = u.state, stock_reserved = u.stock_reserved, attempts = u.attempts,
    next_attempt_at = u.next_attempt_at, voucher_code = u.voucher_code, partner_reference = u.partner_reference,
    cancel_reason = u.cancel_reason, in_doubt = u.in_doubt, updated_at = now()
FROM unnest($1::uuid[], $2::text[], $3::bool[], $4::int[], $5::timestamptz[], $6::text[], $7::text[], $8::text[],
            $9::bool[])
    AS u(order_id, state, stock_reserved, attempts, next_attempt_at, voucher_code, partner_reference, cancel_reason,
         in_doubt)
WHERE o.order_id = u.order_id
"""

LOCK_STOCK = """
SELECT c.partner_id, c.offer_id, c.stock, c.units_reserved, c.units_sold
FROM catalog c JOIN unnest($1::text[], $2::text[]) AS k(partner_id, offer_id)
    ON c.partner_id = k.partner_id AND c.offer_id = k.offer_id
ORDER BY c.partner_id, c.offer_id
FOR NO KEY UPDATE OF c
"""
"""In key order, so that concurrent transactions never deadlock on offers."""

MOVE_STOCK = """
UPDATE catalog c SET units_reserved = c.units_reserved + u.reserved, units_sold = c.units_sold + u.sold
FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[]) AS u(partner_id, offer_id, reserved, sold)
WHERE c.partner_id = u.partner_id AND c.offer_id = u.offer_id
"""

CLAIM_FULFILMENTS = f"""
WITH due AS (
    SELECT order_id, in_doubt AS was_in_doubt FROM orders WHERE state = 'fulfilling' AND next_attempt_at <= $1
    ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED
)
UPDATE orders o SET next_attempt_at = $3, attempts = o.attempts + 1, in_doubt = true, updated_at = now()
FROM due WHERE o.order_id = due.order_id
RETURNING {", ".join("o." + c.strip() for c in _COLUMNS.split(",") if c.strip() != "in_doubt")},
          due.was_in_doubt AS in_doubt,
          (SELECT fulfilment_url FROM catalog c WHERE c.partner_id = o.partner_id AND c.offer_id = o.offer_id)
              AS fulfilment_url
"""

# Pages newest first through (created_at, order_id); a null partner or state list filters nothing.
MEMBER_ORDERS = f"""
SELECT {_COLUMNS}, created_at FROM orders
WHERE member_id = $1 AND ($5::text IS NULL OR partner_id = $5) AND ($6::text[] IS NULL OR state = ANY($6::text[]))
  AND (created_at, order_id) < ($2, $3)
ORDER BY created_at DESC, order_id DESC LIMIT $4
"""

PARTNER_ORDERS = f"""
SELECT {_COLUMNS}, created_at FROM orders
WHERE partner_id = $1 AND (created_at, order_id) < ($2, $3)
ORDER BY created_at DESC, order_id DESC LIMIT $4
"""

PARTNER_ORDERS_IN_STATES = f"""
SELECT {_COLUMNS}, created_at FROM orders
WHERE partner_id = $1 AND state = ANY($5::text[]) AND (created_at, order_id) < ($2, $3)
ORDER BY created_at DESC, order_id DESC LIMIT $4
"""

ORDER_VIEW = f"SELECT {_COLUMNS}, created_at, updated_at FROM orders WHERE order_id = $1"


@dataclass(frozen=True)
class OrderScope:
    """Which orders a list holds: a member's or a partner's (or a member's with one partner), in some states."""

    member_id: uuid.UUID | None = None
    partner_id: str | None = None
    states: tuple[OrderState, ...] | None = None
    """None: every state."""


def to_order(row: asyncpg.Record) -> Order:
    return Order(
        row["order_id"], row["member_id"], row["partner_id"], row["offer_id"], row["kind"], row["quantity"],
        row["unit_points"], row["hold_expires_at"], row["fulfilment_deadline"], OrderState(row["state"]),
        row["stock_reserved"], row["attempts"], row["next_attempt_at"], row["voucher_code"],
        row["partner_reference"], row["cancel_reason"], row["in_doubt"],
    )  # fmt: skip


@dataclass(frozen=True)
class SoldOut:
    """An order reserved the last unit of its offer (the partners' offer.out_of_stock webhook)."""

    order: Order
    stock: int
    units_reserved: int
    units_sold: int


class OrdersTransaction:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.sold_out: list[SoldOut] = []
        self.stock = StockBook()

    async def claim_inbox(self, topic: str, event_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        return await inbox.claim(self.conn, topic, event_ids)

    async def offer(
        self, partner_id: str, offer_id: str, member_id: uuid.UUID, idempotency_key: str
    ) -> dict[str, Any] | None:
        """The offer as an order needs it, with the member's tier (`member_tier`, None if never announced), the
        published segments it is in (`member_segments`) and whether it placed an order with this key before
        (`ordered_before`)."""
        row = await self.conn.fetchrow(OFFER_FOR_ORDER, partner_id, offer_id, member_id, idempotency_key)
        if row is None:
            return None
        return {
            **dict(row),
            "tier_prices": json.loads(row["tier_prices"]),
            "tiers_only": tuple(row["tiers_only"]),
            "segment_prices": json.loads(row["segment_prices"]),
            "member_segments": tuple(row["member_segments"]),
        }

    async def insert(
        self, order: Order, idempotency_key: str, tier: str | None = None, base_unit_points: int | None = None
    ) -> bool:
        made = await self.conn.fetchval(
            INSERT_ORDER, order.order_id, order.member_id, idempotency_key, order.partner_id, order.offer_id,
            order.kind, order.quantity, order.unit_points, order.state.value, order.hold_id, order.hold_expires_at,
            order.fulfilment_deadline, tier, base_unit_points,
        )  # fmt: skip
        return made is not None

    async def place(
        self, order: Order, idempotency_key: str, tier: str | None, base_unit_points: int,
        messages: Sequence[OutboxMessage],
    ) -> bool:  # fmt: skip
        """Insert the order with its messages, both or neither: False if the member used the key before."""
        made = await self.conn.fetchval(
            PLACE_ORDER, order.order_id, order.member_id, idempotency_key, order.partner_id, order.offer_id,
            order.kind, order.quantity, order.unit_points, order.state.value, order.hold_id, order.hold_expires_at,
            order.fulfilment_deadline, tier, base_unit_points, *outbox_columns(messages),
        )  # fmt: skip
        return made is not None

    async def by_key(self, member_id: uuid.UUID, idempotency_key: str) -> Order | None:
        row = await self.conn.fetchrow(ORDER_BY_KEY, member_id, idempotency_key)
        return to_order(row) if row is not None else None

    async def lock(self, order_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Order]:
        rows = await self.conn.fetch(LOCK_ORDERS, sorted(set(order_ids)))
        return {r["order_id"]: to_order(r) for r in rows}

    async def save(self, orders: Sequence[Order]) -> None:
        if orders:
            await self.conn.execute(
                SAVE_ORDERS,
                [o.order_id for o in orders],
                [o.state.value for o in orders],
                [o.stock_reserved for o in orders],
                [o.attempts for o in orders],
                [o.next_attempt_at for o in orders],
                [o.voucher_code for o in orders],
                [o.partner_reference for o in orders],
                [o.cancel_reason for o in orders],
                [o.in_doubt for o in orders],
            )

    async def lock_stock(self, orders: Iterable[Order]) -> None:
        """Lock and read the stock counters of these orders' offers (those not locked yet), before changing them."""
        await self._lock_offers({(o.partner_id, o.offer_id) for o in orders})

    async def _lock_offers(self, offers: Iterable[OfferKey]) -> None:
        keys = sorted(set(offers) - self.stock.locked)
        if keys:
            rows = await self.conn.fetch(LOCK_STOCK, [k[0] for k in keys], [k[1] for k in keys])
            for r in rows:
                self.stock.counters[(r["partner_id"], r["offer_id"])] = Counters(
                    r["stock"], r["units_reserved"], r["units_sold"]
                )
            self.stock.locked.update(keys)

    def reserve_stock(self, order: Order) -> bool:
        """Reserve the order's units if there are enough (its offer locked by `lock_stock`); an order that takes
        the last one is kept in `sold_out`."""
        after = self.stock.reserve((order.partner_id, order.offer_id), order.quantity)
        if after is not None and after.available <= 0:
            self.sold_out.append(SoldOut(order, after.stock, after.units_reserved, after.units_sold))
        return after is not None

    def return_stock(self, order: Order) -> None:
        self.stock.give_back((order.partner_id, order.offer_id), order.quantity)

    def sell_stock(self, order: Order) -> None:
        self.stock.sell((order.partner_id, order.offer_id), order.quantity)

    async def write_stock(self) -> None:
        """Write the stock changes made so far in one statement, after locking the offers not locked yet."""
        changed = sorted(k for k, v in self.stock.changes.items() if v != (0, 0))
        if changed:
            await self._lock_offers(changed)
            moves = [self.stock.changes[k] for k in changed]
            await self.conn.execute(
                MOVE_STOCK, [k[0] for k in changed], [k[1] for k in changed], [m[0] for m in moves],
                [m[1] for m in moves],
            )  # fmt: skip
        self.stock.changes.clear()

    async def claim_fulfilments(self, now: datetime, lease_until: datetime, limit: int) -> list[tuple[Order, str]]:
        rows = await self.conn.fetch(CLAIM_FULFILMENTS, now, limit, lease_until)
        return [(to_order(r), r["fulfilment_url"]) for r in rows]

    async def enqueue(self, messages: Sequence[OutboxMessage]) -> None:
        await enqueue(self.conn, messages)


class OrdersStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[OrdersTransaction]:
        async with self._pool.acquire() as conn, conn.transaction():
            yield OrdersTransaction(conn)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[OrdersTransaction]:
        """A connection whose statements each commit on their own: for work that is one write (`place`)."""
        async with self._pool.acquire() as conn:
            yield OrdersTransaction(conn)

    async def view(self, order_id: uuid.UUID) -> dict[str, Any] | None:
        row = await self._pool.fetchrow(ORDER_VIEW, order_id)
        return dict(row) if row is not None else None

    async def orders(self, scope: OrderScope, before: tuple[datetime, uuid.UUID], limit: int) -> list[dict[str, Any]]:
        """The orders in `scope` older than `before` (created_at, order_id), newest first, at most `limit`."""
        states = [s.value for s in scope.states] if scope.states is not None else None
        page = (before[0], before[1], limit)
        if scope.member_id is not None:
            rows = await self._pool.fetch(MEMBER_ORDERS, scope.member_id, *page, scope.partner_id, states)
        elif scope.partner_id is None:
            raise ValueError("an order list is scoped to a member or a partner")
        elif states is None:
            rows = await self._pool.fetch(PARTNER_ORDERS, scope.partner_id, *page)
        else:
            rows = await self._pool.fetch(PARTNER_ORDERS_IN_STATES, scope.partner_id, *page, states)
        return [dict(r) for r in rows]
