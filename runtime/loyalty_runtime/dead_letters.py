"""Dead letters: the records a service's consumers could not apply, kept for ops to read and replay.

Each record is stored once, by its place in Kafka (topic, partition, offset and timestamp, so that
a topic deleted and created again does not collide), in the service's own database; the same
transaction writes it to the outbox for `<topic>.dlq`, unchanged, with headers that say why:

    dlq-reason       what went wrong, for a person
    dlq-error-class  the exception's class
    dlq-service      the service that refused it
    dlq-topic, dlq-partition, dlq-offset   where it was read
    dlq-id           `<service>:<id>`, the dead letter's id for `make dlq show`/`replay`

However often the batch that carries a record is read again (a crash, a rewind after a transient
failure, a rebalance to another process), the record is dead-lettered once. A replay writes the
record back to its original topic, with its key, value and headers (so its event id), through the
outbox; the consumers' inbox still refuses to apply an event twice.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from loyalty_runtime.outbox import OutboxMessage, enqueue

MAX_REASON = 1000


def letter_id(service: str, number: int) -> str:
    """How people name a dead letter: `<service>:<number>` (the dlq-id header, `make dlq SHOW=`)."""
    return f"{service}:{number}"


@dataclass(frozen=True)
class Letter:
    """A record to dead-letter: where it was read, what it held, and why it is refused."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]
    reason: str
    error_class: str


_RECORD = """
INSERT INTO dead_letters (topic, partition, record_offset, record_timestamp, key, value, headers,
                          event_id, event_type, reason, error_class)
SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[], $4::bigint[], $5::text[], $6::bytea[], $7::jsonb[],
                     $8::uuid[], $9::text[], $10::text[], $11::text[])
ON CONFLICT (topic, partition, record_offset, record_timestamp) DO NOTHING
RETURNING id, topic, partition, record_offset, key, value, headers, reason, error_class
"""


async def record(conn: asyncpg.Connection, letters: Sequence[Letter], *, service: str, dlq_topic: str) -> int:
    """Store the letters not stored before and queue them for the dead-letter topic; returns how many were new.

    Runs in the caller's transaction.
    """
    if not letters:
        return 0
    columns: list[list[Any]] = [[] for _ in range(11)]
    for letter in letters:
        event_id, event_type = _event_of(letter.value)
        row = (
            letter.topic, letter.partition, letter.offset, letter.timestamp, _text(letter.key), letter.value or b"",
            orjson.dumps(_headers(letter.headers)).decode(), event_id, event_type,
            _text(letter.reason.encode())[:MAX_REASON] or "refused", letter.error_class,
        )  # fmt: skip
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    stored = await conn.fetch(_RECORD, *columns)
    messages = [
        OutboxMessage(
            dlq_topic,
            row["key"],
            row["value"],
            {
                **orjson.loads(row["headers"]),
                "dlq-reason": row["reason"],
                "dlq-error-class": row["error_class"],
                "dlq-service": service,
                "dlq-topic": row["topic"],
                "dlq-partition": str(row["partition"]),
                "dlq-offset": str(row["record_offset"]),
                "dlq-id": letter_id(service, row["id"]),
            },
        )
        for row in sorted(stored, key=lambda r: r["id"])
    ]
    await enqueue(conn, messages)
    return len(stored)


def _text(raw: bytes | None) -> str | None:
    """Keys and headers are text in this system; PostgreSQL text holds neither invalid UTF-8 nor NUL."""
    if raw is None:
        return None
    return raw.decode(errors="replace").replace("\x00", "\ufffd")


def _headers(headers: Sequence[tuple[str, bytes]]) -> dict[str, str]:
    return {_text(name.encode()) or "": _text(value) or "" for name, value in headers}


def _event_of(value: bytes | None) -> tuple[uuid.UUID | None, str | None]:
    """The envelope's event id and type when the value is an envelope at all (best effort, for ops)."""
    try:
        body = orjson.loads(value or b"")
        event_id = uuid.UUID(str(body["event_id"]))
        kind = body.get("type")
        return event_id, _text(str(kind).encode())[:200] if kind is not None else None
    except (orjson.JSONDecodeError, TypeError, KeyError, ValueError, AttributeError):
        return None, None


@dataclass(frozen=True)
class DeadLetter:
    id: int
    topic: str
    partition: int
    offset: int
    key: str | None
    event_id: uuid.UUID | None
    event_type: str | None
    reason: str
    error_class: str
    dead_at: datetime
    replays: int
    last_replayed_at: datetime | None
    value: bytes = b""
    headers: dict[str, str] | None = None

    @classmethod
    def of(cls, row: asyncpg.Record) -> DeadLetter:
        value = row.get("value", b"")
        headers = row.get("headers")
        return cls(
            row["id"], row["topic"], row["partition"], row["record_offset"], row["key"], row["event_id"],
            row["event_type"], row["reason"], row["error_class"], row["dead_at"], row["replays"],
            row["last_replayed_at"], value or b"", orjson.loads(headers) if headers is not None else None,
        )  # fmt: skip


@dataclass(frozen=True)
class TopicSummary:
    topic: str
    total: int
    waiting: int
    """Never replayed."""
    newest: datetime


_COLUMNS = """id, topic, partition, record_offset, key, event_id, event_type, reason, error_class, dead_at,
replays, last_replayed_at"""

_LIST = f"""
SELECT {_COLUMNS} FROM dead_letters
WHERE ($1::text IS NULL OR topic = $1)
  AND ($2::text IS NULL OR reason ILIKE '%' || $2 || '%' OR error_class ILIKE '%' || $2 || '%')
  AND ($3::timestamptz IS NULL OR dead_at >= $3)
  AND ($4::timestamptz IS NULL OR dead_at < $4)
  AND ($5::bigint IS NULL OR id < $5)
  AND (NOT $6::boolean OR replays = 0)
ORDER BY id DESC
LIMIT $7
"""
_ONE = f"SELECT {_COLUMNS}, value, headers FROM dead_letters WHERE id = $1"
_SUMMARY = """
SELECT topic, count(*) AS total, count(*) FILTER (WHERE replays = 0) AS waiting, max(dead_at) AS newest
FROM dead_letters GROUP BY topic ORDER BY topic
"""
_REPLAY = """
UPDATE dead_letters SET replays = replays + 1, last_replayed_at = now()
WHERE id = ANY($1::bigint[])
RETURNING id, topic, key, value, headers
"""
_REPLAYABLE = """
SELECT id FROM dead_letters WHERE topic = $1 AND ($2::boolean OR replays = 0) ORDER BY id
"""


@dataclass(frozen=True)
class Query:
    topic: str | None = None
    reason: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    before_id: int | None = None
    waiting_only: bool = False
    limit: int = 50


class DeadLetterStore:
    """Reads and replays a service's dead letters; borrows a pool (or a connection) it does not own."""

    def __init__(self, pool: asyncpg.Pool | asyncpg.Connection, service: str) -> None:
        self._pool = pool
        self._service = service

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[asyncpg.Connection]:
        if isinstance(self._pool, asyncpg.Connection):
            async with self._pool.transaction():
                yield self._pool
        else:
            async with self._pool.acquire() as conn, conn.transaction():
                yield conn

    async def list(self, query: Query) -> list[DeadLetter]:
        rows = await self._pool.fetch(
            _LIST, query.topic, query.reason, query.since, query.until, query.before_id, query.waiting_only,
            query.limit,
        )  # fmt: skip
        return [DeadLetter.of(row) for row in rows]

    async def get(self, letter_id: int) -> DeadLetter | None:
        row = await self._pool.fetchrow(_ONE, letter_id)
        return DeadLetter.of(row) if row is not None else None

    async def summary(self) -> list[TopicSummary]:
        return [
            TopicSummary(r["topic"], r["total"], r["waiting"], r["newest"]) for r in await self._pool.fetch(_SUMMARY)
        ]

    async def replay(self, letter_ids: Sequence[int]) -> list[int]:
        """Write the letters back to their original topics (through the outbox); returns the ids replayed."""
        async with self._transaction() as conn:
            rows = sorted(await conn.fetch(_REPLAY, list(letter_ids)), key=lambda r: r["id"])
            await enqueue(
                conn,
                [
                    OutboxMessage(
                        r["topic"],
                        r["key"],
                        r["value"],
                        {**orjson.loads(r["headers"]), "dlq-replay-of": letter_id(self._service, r["id"])},
                    )
                    for r in rows
                ],
            )
        return [r["id"] for r in rows]

    async def replay_topic(self, topic: str, *, include_replayed: bool = False) -> list[int]:
        ids = [r["id"] for r in await self._pool.fetch(_REPLAYABLE, topic, include_replayed)]
        return await self.replay(ids) if ids else []
