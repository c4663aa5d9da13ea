"""The inbox: a consumer records each event id in the same transaction as the event's effects."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import asyncpg

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
