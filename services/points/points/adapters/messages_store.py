"""Targeted messages in SQL: the messaging job's chunks, the callbacks, members' preferred channels.

The job walks an activity's targeted members in member id order, one chunk per transaction, under the lock of
the activity's `activity_messaging` row taken with SKIP LOCKED: two processes never work on the same activity
at once, and the message id (unique) would refuse a second message anyway.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from loyalty_runtime.outbox import OutboxMessage, enqueue
from points.domain.messages import ChannelChoice, ChannelRecord, Reported

NO_MEMBER = uuid.UUID(int=0)
"""Where the walk of an activity's targets starts: before every member id."""

DISCOVER = """
INSERT INTO activity_messaging (activity_id, queued_at)
SELECT a.activity_id, $1 FROM activities a
WHERE a.segment_id IS NOT NULL AND a.targets_frozen_at IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM activity_messaging m WHERE m.activity_id = a.activity_id)
ON CONFLICT (activity_id) DO NOTHING
"""
"""Activities aimed at a segment whose targets were frozen, queued once (a few rows: activities are few)."""

PENDING = "SELECT activity_id FROM activity_messaging WHERE finished_at IS NULL ORDER BY queued_at, activity_id"

LOCK_MESSAGING = """
SELECT after_member FROM activity_messaging WHERE activity_id = $1 AND finished_at IS NULL FOR UPDATE SKIP LOCKED
"""

NEXT_TARGETS = """
SELECT t.member_id, mb.preferred_channel FROM activity_targets t JOIN members mb ON mb.member_id = t.member_id
WHERE t.activity_id = $1 AND NOT t.holdout AND t.member_id > $2 ORDER BY t.member_id LIMIT $3
"""

HISTORY = """
SELECT member_id, channel, count(*) AS sent, count(opened_at) AS answered
FROM member_messages WHERE member_id = ANY($1::uuid[]) GROUP BY member_id, channel
"""
"""Each member's earlier messages per channel; a click implies an open, so opened_at counts both."""

INSERT_MESSAGES = """
INSERT INTO member_messages (message_id, activity_id, member_id, channel, chosen_by, sent_at, expires_at)
SELECT u.message_id, $1, u.member_id, u.channel, u.chosen_by, $2, $3
FROM unnest($4::uuid[], $5::uuid[], $6::text[], $7::text[]) AS u(message_id, member_id, channel, chosen_by)
ON CONFLICT DO NOTHING RETURNING message_id
"""

ADVANCE = "UPDATE activity_messaging SET after_member = $2, messages = messages + $3 WHERE activity_id = $1"
FINISH = "UPDATE activity_messaging SET finished_at = $2 WHERE activity_id = $1 AND finished_at IS NULL"

CLAIM_SIGNATURE = """
INSERT INTO message_callback_signatures (signature, signed_at) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING 1
"""
FORGET_SIGNATURES = "DELETE FROM message_callback_signatures WHERE signed_at < $1"

LOCK_MESSAGES = (
    "SELECT message_id FROM member_messages WHERE message_id = ANY($1::uuid[]) ORDER BY message_id FOR UPDATE"
)

APPLY_CALLBACKS = """
UPDATE member_messages m
SET delivered_at = LEAST(m.delivered_at, u.delivered_at), opened_at = LEAST(m.opened_at, u.opened_at),
    clicked_at = LEAST(m.clicked_at, u.clicked_at), failed_at = LEAST(m.failed_at, u.failed_at)
FROM unnest($1::uuid[], $2::timestamptz[], $3::timestamptz[], $4::timestamptz[], $5::timestamptz[])
    AS u(message_id, delivered_at, opened_at, clicked_at, failed_at)
WHERE m.message_id = u.message_id
"""
"""LEAST skips NULLs: each time becomes the earliest reported (points/domain/messages.py)."""

PREFERENCE = "SELECT preferred_channel FROM members WHERE member_id = $1"
SET_PREFERENCE = "UPDATE members SET preferred_channel = $2 WHERE member_id = $1 RETURNING member_id"

ACTIVITY_MESSAGES = """
SELECT message_id, member_id, channel, chosen_by, state, sent_at, expires_at, delivered_at, opened_at, clicked_at,
       failed_at
FROM member_messages WHERE activity_id = $1 AND message_id > $2 ORDER BY message_id LIMIT $3
"""


@dataclass(frozen=True)
class Target:
    member_id: uuid.UUID
    preferred_channel: str | None


@dataclass(frozen=True)
class PlannedMessage:
    message_id: uuid.UUID
    member_id: uuid.UUID
    choice: ChannelChoice


class MessagingTransaction:
    """The statements of one chunk of the messaging job."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def lock(self, activity_id: uuid.UUID) -> uuid.UUID | None:
        """Where the walk of this activity's targets stands; None when it is finished or another process has it."""
        row = await self.conn.fetchrow(LOCK_MESSAGING, activity_id)
        if row is None:
            return None
        return row["after_member"] or NO_MEMBER

    async def next_targets(self, activity_id: uuid.UUID, after: uuid.UUID, limit: int) -> list[Target]:
        rows = await self.conn.fetch(NEXT_TARGETS, activity_id, after, limit)
        return [Target(r["member_id"], r["preferred_channel"]) for r in rows]

    async def history(self, members: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[ChannelRecord]]:
        found: dict[uuid.UUID, list[ChannelRecord]] = {}
        for r in await self.conn.fetch(HISTORY, list(members)):
            found.setdefault(r["member_id"], []).append(ChannelRecord(r["channel"], r["sent"], r["answered"]))
        return found

    async def insert(
        self, activity_id: uuid.UUID, sent_at: datetime, expires_at: datetime, planned: Sequence[PlannedMessage]
    ) -> set[uuid.UUID]:
        """The messages that are new (a message id already stored is skipped): only those go out."""
        rows = await self.conn.fetch(
            INSERT_MESSAGES, activity_id, sent_at, expires_at, [p.message_id for p in planned],
            [p.member_id for p in planned], [p.choice.channel for p in planned], [p.choice.chosen_by for p in planned],
        )  # fmt: skip
        return {r["message_id"] for r in rows}

    async def enqueue(self, messages: Sequence[OutboxMessage]) -> None:
        await enqueue(self.conn, messages)

    async def advance(self, activity_id: uuid.UUID, after: uuid.UUID, sent: int) -> None:
        await self.conn.execute(ADVANCE, activity_id, after, sent)

    async def finish(self, activity_id: uuid.UUID, at: datetime) -> None:
        await self.conn.execute(FINISH, activity_id, at)


class MessagesStore:
    """Borrows a pool it does not own."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool

    async def discover(self, now: datetime) -> None:
        await self._pool.execute(DISCOVER, now)

    async def pending(self) -> list[uuid.UUID]:
        return [r["activity_id"] for r in await self._pool.fetch(PENDING)]

    async def finish(self, activity_id: uuid.UUID, at: datetime) -> None:
        await self._pool.execute(FINISH, activity_id, at)

    @asynccontextmanager
    async def chunk(self) -> AsyncIterator[MessagingTransaction]:
        async with self._pool.acquire() as conn, conn.transaction():
            yield MessagingTransaction(conn)

    async def forget_signatures(self, before: datetime) -> None:
        await self._pool.execute(FORGET_SIGNATURES, before)

    async def apply_callbacks(
        self, signature: str, signed_at: datetime, reported: Mapping[uuid.UUID, Reported]
    ) -> set[uuid.UUID] | None:
        """Record what a signed request's callbacks reported, in one transaction with its signature: the ids of
        the messages that exist, or None when the signature was seen before (nothing is recorded)."""
        ids = sorted(reported)
        async with self._pool.acquire() as conn, conn.transaction():
            if await conn.fetchval(CLAIM_SIGNATURE, signature, signed_at) is None:
                return None
            known = {r["message_id"] for r in await conn.fetch(LOCK_MESSAGES, ids)}
            rows = [(m, *reported[m].times) for m in ids if m in known]
            if rows:
                await conn.execute(APPLY_CALLBACKS, *(list(column) for column in zip(*rows, strict=True)))
        return known

    async def preference(self, member_id: uuid.UUID) -> tuple[bool, str | None]:
        """(whether the member exists, its preferred channel)."""
        row = await self._pool.fetchrow(PREFERENCE, member_id)
        return (False, None) if row is None else (True, row["preferred_channel"])

    async def set_preference(self, member_id: uuid.UUID, channel: str | None) -> bool:
        """False when there is no such member."""
        return await self._pool.fetchval(SET_PREFERENCE, member_id, channel) is not None

    async def activity_messages(self, activity_id: uuid.UUID, after: uuid.UUID, limit: int) -> list[asyncpg.Record]:
        return list(await self._pool.fetch(ACTIVITY_MESSAGES, activity_id, after, limit))
