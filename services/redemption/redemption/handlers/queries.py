"""What members and ops read about orders."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

from redemption.adapters.orders_store import OrdersStore
from redemption.domain.orders import voucher_to_show


class BadCursorError(ValueError):
    def __init__(self) -> None:
        super().__init__("cursor is not one this API returned; start again without it")


def _view(row: dict[str, Any]) -> dict[str, Any]:
    voucher_code = voucher_to_show(row["state"], row["voucher_code"])
    return {**row, "points": row["unit_points"] * row["quantity"], "voucher_code": voucher_code}


async def order_view(store: OrdersStore, order_id: uuid.UUID) -> dict[str, Any] | None:
    row = await store.view(order_id)
    return _view(row) if row is not None else None


async def member_orders(
    store: OrdersStore, member_id: uuid.UUID, cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    before = (datetime.max.replace(tzinfo=UTC), uuid.UUID(int=2**128 - 1))
    if cursor:
        try:
            raw = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
            before = (datetime.fromisoformat(raw[0]), uuid.UUID(raw[1]))
        except (ValueError, TypeError, IndexError, orjson.JSONDecodeError) as error:
            raise BadCursorError from error
    rows = await store.member_orders(member_id, before, limit + 1)
    items = [_view(r) for r in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = items[-1]
        token = orjson.dumps([last["created_at"].isoformat(), str(last["order_id"])])
        next_cursor = base64.urlsafe_b64encode(token).decode().rstrip("=")
    return items, next_cursor
