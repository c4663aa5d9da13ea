"""What members, partner staff and ops read about orders."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson

from redemption.adapters.orders_store import OrderScope, OrdersStore
from redemption.domain.orders import OrderState, voucher_to_show


class BadCursorError(ValueError):
    def __init__(self) -> None:
        super().__init__("cursor is not one this API returned; start again without it")


class StateFilter(StrEnum):
    """An order state to list, or a named group of states."""

    AWAITING_HOLD = "awaiting_hold"
    FULFILLING = "fulfilling"
    CAPTURING = "capturing"
    CANCELLING = "cancelling"
    FULFILLED = "fulfilled"
    CANCELLED = "cancelled"
    PAYMENT_FAILED = "payment_failed"
    AWAITING_FULFILMENT = "awaiting_fulfilment"
    """Points held, nothing handed to the member yet: the partner is to deliver (fulfilling), or it delivered
    (or the order is a voucher) and the capture that precedes the voucher's code is on its way (capturing)."""

    @property
    def states(self) -> tuple[OrderState, ...]:
        if self is StateFilter.AWAITING_FULFILMENT:
            return (OrderState.FULFILLING, OrderState.CAPTURING)
        return (OrderState(self.value),)


def _view(row: dict[str, Any]) -> dict[str, Any]:
    voucher_code = voucher_to_show(row["state"], row["voucher_code"])
    return {**row, "points": row["unit_points"] * row["quantity"], "voucher_code": voucher_code}


async def order_view(store: OrdersStore, order_id: uuid.UUID) -> dict[str, Any] | None:
    row = await store.view(order_id)
    return _view(row) if row is not None else None


def _decode_cursor(cursor: str | None) -> tuple[datetime, uuid.UUID]:
    if not cursor:
        return datetime.max.replace(tzinfo=UTC), uuid.UUID(int=2**128 - 1)
    try:
        raw = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return datetime.fromisoformat(raw[0]), uuid.UUID(raw[1])
    except (ValueError, TypeError, IndexError, orjson.JSONDecodeError) as error:
        raise BadCursorError from error


def _encode_cursor(last: dict[str, Any]) -> str:
    token = orjson.dumps([last["created_at"].isoformat(), str(last["order_id"])])
    return base64.urlsafe_b64encode(token).decode().rstrip("=")


async def list_orders(
    store: OrdersStore, scope: OrderScope, cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the orders in `scope`, newest first, and the cursor of the next page (None on the last)."""
    rows = await store.orders(scope, _decode_cursor(cursor), limit + 1)
    items = [_view(r) for r in rows[:limit]]
    return items, _encode_cursor(items[-1]) if len(rows) > limit else None
