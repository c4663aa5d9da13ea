"""What members and ops read: balance, lots, history. Reads never lock and never grow with history."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from points.adapters.store import PointsStore
from points.handlers.members import MemberNotFoundError

EXPIRING_WINDOW = timedelta(days=30)
_START = (datetime(1970, 1, 1, tzinfo=UTC), uuid.UUID(int=0))


class BadCursorError(ValueError):
    def __init__(self) -> None:
        super().__init__("cursor is not one this API returned; start again without it")


def encode_cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


def decode_cursor(cursor: str) -> Any:
    try:
        return orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, orjson.JSONDecodeError) as error:
        raise BadCursorError from error


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None


async def balance(store: PointsStore, member_id: uuid.UUID) -> dict[str, Any]:
    row = await store.balance(member_id, EXPIRING_WINDOW)
    if row is None:
        raise MemberNotFoundError(member_id)
    return {"member_id": member_id, **dict(row), "expiring_within_days": EXPIRING_WINDOW.days}


async def lots(store: PointsStore, member_id: uuid.UUID, cursor: str | None, limit: int) -> Page:
    await _must_exist(store, member_id)
    after = _START
    if cursor:
        raw = decode_cursor(cursor)
        try:
            after = (datetime.fromisoformat(raw[0]), uuid.UUID(raw[1]))
        except (TypeError, ValueError, IndexError) as error:
            raise BadCursorError from error
    rows = await store.lots_page(member_id, after, limit + 1)
    items = [dict(r) for r in rows[:limit]]
    more = len(rows) > limit
    last = items[-1] if items else None
    next_cursor = encode_cursor([last["expires_at"].isoformat(), str(last["lot_id"])]) if more and last else None
    return Page(items, next_cursor)


async def history(store: PointsStore, member_id: uuid.UUID, cursor: str | None, limit: int) -> Page:
    await _must_exist(store, member_id)
    before = 2**63 - 1
    if cursor:
        raw = decode_cursor(cursor)
        if not isinstance(raw, int):
            raise BadCursorError
        before = raw
    rows = await store.history_page(member_id, before, limit + 1)
    items = [{**dict(r), "memo": orjson.loads(r["memo"])} for r in rows[:limit]]
    next_cursor = encode_cursor(items[-1]["seq"]) if len(rows) > limit else None
    return Page(items, next_cursor)


async def identifiers(store: PointsStore, member_id: uuid.UUID) -> list[dict[str, Any]]:
    await _must_exist(store, member_id)
    return [dict(r) for r in await store.identifiers_of(member_id)]


async def _must_exist(store: PointsStore, member_id: uuid.UUID) -> None:
    if not await store.member_exists(member_id):
        raise MemberNotFoundError(member_id)
