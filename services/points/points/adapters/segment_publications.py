"""Publications of segments (their members at a moment) in PostgreSQL, with the outbox rows that carry them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from loyalty_runtime.outbox import OutboxMessage, enqueue
from points.adapters.segments import compile_members
from points.domain.segments import SegmentRules

MEMBERS = "SELECT seg.member_id FROM ({members}) seg ORDER BY seg.member_id"

RECORD = """
INSERT INTO segment_publications (publication_id, segment_id, as_of, members, parts, published_by)
VALUES ($1, $2, $3, $4, $5, $6)
"""

# The latest publication of each segment that has one, with the segment's name.
LATEST = """
SELECT DISTINCT ON (p.segment_id) p.segment_id, s.name, p.publication_id, p.as_of, p.members, p.published_by
FROM segment_publications p JOIN segments s USING (segment_id)
ORDER BY p.segment_id, p.as_of DESC
"""


@dataclass(frozen=True)
class Publication:
    publication_id: uuid.UUID
    segment_id: uuid.UUID
    as_of: datetime
    members: int
    parts: int
    published_by: str
    name: str = ""


class PublicationWrites:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def members(self, rules: SegmentRules, as_of: datetime) -> list[uuid.UUID]:
        """Every member the rules hold at `as_of`, by id."""
        params: list[object] = []
        rows = await self.conn.fetch(MEMBERS.format(members=compile_members(rules, as_of, params)), *params)
        return [row["member_id"] for row in rows]

    async def record(self, publication: Publication) -> None:
        p = publication
        await self.conn.execute(RECORD, p.publication_id, p.segment_id, p.as_of, p.members, p.parts, p.published_by)

    async def enqueue(self, messages: Sequence[OutboxMessage]) -> None:
        await enqueue(self.conn, messages)


class PublicationStore:
    """Borrows a pool it does not own."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PublicationWrites]:
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
            yield PublicationWrites(conn)

    async def latest(self) -> list[Publication]:
        rows = await self._pool.fetch(LATEST)
        return [Publication(r["publication_id"], r["segment_id"], r["as_of"], r["members"], 0, r["published_by"],
                            r["name"]) for r in rows]  # fmt: skip
