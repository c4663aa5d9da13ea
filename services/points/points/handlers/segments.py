"""Segments: ops define them and preview who they hold; activities freeze them into targets."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from points.adapters.segments import Preview, SegmentStore, StoredSegment
from points.domain.segments import SegmentRules, segment_rules_from_json
from points.handlers.queries import BadCursorError, decode_cursor, encode_cursor

SAMPLE_SIZE = 20
_NEWEST = (datetime.max.replace(tzinfo=UTC), uuid.UUID(int=2**128 - 1))


class SegmentNotFoundError(LookupError):
    def __init__(self, segment_id: uuid.UUID) -> None:
        super().__init__(f"segment {segment_id} does not exist; create it first (POST /v1/ops/segments)")


class SegmentIdReusedError(Exception):
    def __init__(self, segment_id: uuid.UUID) -> None:
        super().__init__(
            f"segment {segment_id} exists with another name or other rules; segments never change: "
            "create a new one with another segment_id (or none)"
        )


@dataclass(frozen=True)
class Segment:
    segment_id: uuid.UUID
    name: str
    rules: SegmentRules
    created_at: datetime


@dataclass(frozen=True)
class SegmentPage:
    items: list[Segment]
    next_cursor: str | None


def _parsed(stored: StoredSegment) -> Segment:
    return Segment(stored.segment_id, stored.name, segment_rules_from_json(stored.rules), stored.created_at)


async def create_segment(
    store: SegmentStore, segment_id: uuid.UUID, name: str, rules: SegmentRules
) -> tuple[Segment, bool]:
    """The segment, and whether it was created now: the same id with the same content is answered again."""
    created = await store.insert(segment_id, name, rules)
    if created is not None:
        return _parsed(created), True
    existing = await get_segment(store, segment_id)
    if existing.name != name or existing.rules.to_json() != rules.to_json():
        raise SegmentIdReusedError(segment_id)
    return existing, False


async def get_segment(store: SegmentStore, segment_id: uuid.UUID) -> Segment:
    stored = await store.get(segment_id)
    if stored is None:
        raise SegmentNotFoundError(segment_id)
    return _parsed(stored)


async def list_segments(store: SegmentStore, cursor: str | None, limit: int) -> SegmentPage:
    """Newest first."""
    before = _NEWEST
    if cursor:
        raw = decode_cursor(cursor)
        try:
            before = (datetime.fromisoformat(raw[0]), uuid.UUID(raw[1]))
        except (TypeError, ValueError, IndexError, KeyError) as error:
            raise BadCursorError from error
    found = await store.page(before, limit + 1)
    items = [_parsed(s) for s in found[:limit]]
    if len(found) <= limit:
        return SegmentPage(items, None)
    last = items[-1]
    return SegmentPage(items, encode_cursor([last.created_at.isoformat(), str(last.segment_id)]))


async def preview(
    store: SegmentStore, rules: SegmentRules | None, segment_id: uuid.UUID | None, as_of: datetime
) -> Preview:
    """How many members the rules (or the stored segment) hold as of `as_of`, and up to 20 of them."""
    if rules is None:
        if segment_id is None:
            raise ValueError("preview needs rules or a segment_id")
        rules = (await get_segment(store, segment_id)).rules
    return await store.preview(rules, as_of, SAMPLE_SIZE)
