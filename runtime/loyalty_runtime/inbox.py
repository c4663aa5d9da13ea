"""The inbox: a consumer records each event id in the same transaction as the event's effects."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

import asyncpg

T = TypeVar("T")

_CLAIM = """
INSERT INTO inbox (event_id, topic)
SELECT id, $2 FROM unnest($1::uuid[]) AS id
ON CONFLICT (event_id) DO NOTHING
RETURNING event_id
"""


async def claim(conn: asyncpg.Connection, topic: str, event_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Record the ids; returns those seen for the first time (the others were applied before)."""
    rows = await conn.fetch(_CLAIM, list(event_ids), topic)
    return {row["event_id"] for row in rows}


def first_copies(items: Iterable[T], fresh: set[uuid.UUID], event_id: Callable[[T], uuid.UUID]) -> list[T]:
    """The items whose event was claimed just now, in order, each event once: a batch may carry one event twice
    (a retried publish), and both copies pass the claim."""
    kept: list[T] = []
    seen: set[uuid.UUID] = set()
    for item in items:
        key = event_id(item)
        if key in fresh and key not in seen:
            seen.add(key)
            kept.append(item)
    return kept
