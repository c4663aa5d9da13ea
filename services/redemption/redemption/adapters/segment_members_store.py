"""Segments' members as the points service publishes them (loyalty.segment-members.v1), in PostgreSQL (asyncpg).

A publication's parts may arrive twice (each part once: its primary key) and a publication older than the
segment's current one may arrive late: it is kept only until the current one is known to be newer.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import asyncpg

from loyalty_runtime import inbox
from redemption.domain.prices import SegmentPart

NEW_PUBLICATIONS = """
INSERT INTO segment_publications (publication_id, segment_id, as_of, parts)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::int[])
ON CONFLICT (publication_id) DO NOTHING
"""

NEW_PARTS = """
INSERT INTO segment_publication_parts (publication_id, part)
SELECT * FROM unnest($1::uuid[], $2::int[])
ON CONFLICT DO NOTHING
RETURNING publication_id, part
"""

ADD_MEMBERS = """
INSERT INTO segment_publication_members (publication_id, member_id)
SELECT * FROM unnest($1::uuid[], $2::uuid[])
ON CONFLICT DO NOTHING
"""

COUNT_PARTS = """
UPDATE segment_publications p SET parts_seen = p.parts_seen + n.parts
FROM (SELECT publication_id, count(*) AS parts FROM unnest($1::uuid[]) AS t(publication_id) GROUP BY 1) n
WHERE p.publication_id = n.publication_id
"""

# A complete publication becomes its segment's members when it is newer than the current one.
PROMOTE = """
INSERT INTO segment_current (segment_id, publication_id, as_of)
SELECT segment_id, publication_id, as_of FROM segment_publications
WHERE publication_id = ANY($1::uuid[]) AND parts_seen = parts
ON CONFLICT (segment_id) DO UPDATE SET publication_id = EXCLUDED.publication_id, as_of = EXCLUDED.as_of
WHERE segment_current.as_of < EXCLUDED.as_of
"""

# What a newer current publication replaced: its members are no one's price any more.
FORGET_OLDER = """
DELETE FROM segment_publications p USING segment_current c
WHERE p.segment_id = c.segment_id AND p.segment_id = ANY($1::uuid[]) AND p.as_of < c.as_of
"""


class SegmentMembersTransaction:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def claim_inbox(self, topic: str, event_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        return await inbox.claim(self.conn, topic, event_ids)

    async def add_parts(self, parts: Sequence[SegmentPart]) -> None:
        """Record each part once with its members; promote the publications they complete, forget older ones."""
        if not parts:
            return
        await self.conn.execute(NEW_PUBLICATIONS, [p.publication_id for p in parts], [p.segment_id for p in parts],
                                [p.as_of for p in parts], [p.parts for p in parts])  # fmt: skip
        rows = await self.conn.fetch(NEW_PARTS, [p.publication_id for p in parts], [p.part for p in parts])
        new = {(r["publication_id"], r["part"]) for r in rows}
        fresh = [p for p in parts if (p.publication_id, p.part) in new]
        pairs = [(p.publication_id, m) for p in fresh for m in p.member_ids]
        await self.conn.execute(ADD_MEMBERS, [pub for pub, _ in pairs], [member for _, member in pairs])
        await self.conn.execute(COUNT_PARTS, [p.publication_id for p in fresh])
        await self.conn.execute(PROMOTE, list({p.publication_id for p in fresh}))
        await self.conn.execute(FORGET_OLDER, list({p.segment_id for p in parts}))


class SegmentMembersStore:
    """Borrows the service's pool, never owns it."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SegmentMembersTransaction]:
        async with self._pool.acquire() as conn, conn.transaction():
            yield SegmentMembersTransaction(conn)
