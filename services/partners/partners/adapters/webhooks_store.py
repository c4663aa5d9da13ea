"""PostgreSQL persistence of webhook endpoints, deliveries and attempts (migration 0014)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from loyalty_runtime import audit, inbox
from loyalty_runtime.outbox import OutboxMessage, enqueue

_ENDPOINT = """endpoint_id, partner_id, url, description, event_types, enabled, disabled_reason, disabled_by,
       disabled_at, last_success_at, created_at, created_by, previous_until"""

INSERT_ENDPOINT = """
INSERT INTO webhook_endpoints (endpoint_id, partner_id, url, description, event_types, secret_sealed, created_at,
                               created_by)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (endpoint_id) DO NOTHING
RETURNING endpoint_id
"""
ENDPOINT = f"SELECT {_ENDPOINT} FROM webhook_endpoints WHERE partner_id = $1 AND endpoint_id = $2"
LOCK_ENDPOINT = ENDPOINT + " FOR UPDATE"
ENDPOINT_BY_ID = f"SELECT {_ENDPOINT} FROM webhook_endpoints WHERE endpoint_id = $1"
ENDPOINTS = f"SELECT {_ENDPOINT} FROM webhook_endpoints WHERE partner_id = $1 ORDER BY created_at, endpoint_id"
DISABLED_ENDPOINTS = f"""
SELECT {_ENDPOINT} FROM webhook_endpoints WHERE NOT enabled ORDER BY disabled_at DESC NULLS LAST LIMIT $1
"""
COUNT_ENDPOINTS = "SELECT count(*) FROM webhook_endpoints WHERE partner_id = $1"
LOCK_PARTNER = "SELECT pg_advisory_xact_lock(hashtext('webhook-endpoints:' || $1))"
UPDATE_ENDPOINT = f"""
UPDATE webhook_endpoints SET description = $3, event_types = $4, enabled = $5, disabled_reason = $6,
       disabled_by = $7, disabled_at = $8
WHERE partner_id = $1 AND endpoint_id = $2
RETURNING {_ENDPOINT}
"""
ROTATE_SECRET = f"""
UPDATE webhook_endpoints SET previous_sealed = $3, previous_until = $4, secret_sealed = $5
WHERE partner_id = $1 AND endpoint_id = $2
RETURNING {_ENDPOINT}
"""
SECRETS = "SELECT secret_sealed, previous_sealed, previous_until FROM webhook_endpoints WHERE endpoint_id = $1"

ENQUEUE = """
INSERT INTO webhook_deliveries (delivery_id, endpoint_id, partner_id, message_id, event_type, body, status,
                                created_at, window_start, next_attempt_at)
SELECT gen_random_uuid(), e.endpoint_id, e.partner_id, m.message_id, m.event_type, m.body, 'pending', $5, $5, $5
FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[]) AS m(partner_id, event_type, message_id, body)
JOIN webhook_endpoints e ON e.partner_id = m.partner_id AND e.enabled AND m.event_type = ANY(e.event_types)
ORDER BY e.endpoint_id, m.message_id
ON CONFLICT (endpoint_id, message_id) DO NOTHING
"""

CLAIM_DUE = """
WITH due AS (
    SELECT d.delivery_id FROM webhook_deliveries d
    JOIN webhook_endpoints e ON e.endpoint_id = d.endpoint_id AND e.enabled
    WHERE d.status = 'pending' AND d.next_attempt_at <= $1
    ORDER BY d.next_attempt_at LIMIT $2
    FOR UPDATE OF d SKIP LOCKED
)
UPDATE webhook_deliveries d SET next_attempt_at = $3, attempts = d.attempts + 1
FROM due, webhook_endpoints e
WHERE d.delivery_id = due.delivery_id AND e.endpoint_id = d.endpoint_id
RETURNING d.delivery_id, d.endpoint_id, d.partner_id, d.message_id, d.event_type, d.body, d.attempts,
          d.attempts_before, d.window_start, e.url, e.secret_sealed, e.previous_sealed, e.previous_until
"""
"""Each due delivery goes to one worker: the row is locked while claimed, and leased (next_attempt_at moves past
the attempt's timeout) once the claim commits; a worker that dies mid-attempt leaves it due again after the lease."""

RECORD_ATTEMPT = """
INSERT INTO webhook_attempts (delivery_id, attempt, started_at, status_code, error, duration_ms)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (delivery_id, attempt) DO NOTHING
RETURNING attempt
"""
SETTLE_DELIVERY = """
UPDATE webhook_deliveries SET status = $3::text, next_attempt_at = coalesce($4::timestamptz, next_attempt_at),
       last_status = $5, last_error = $6, last_attempt_at = $7::timestamptz,
       delivered_at = CASE WHEN $3::text = 'delivered' THEN $7::timestamptz END
WHERE delivery_id = $1 AND attempts = $2 AND status = 'pending'
RETURNING endpoint_id
"""
ENDPOINT_SUCCEEDED = """
UPDATE webhook_endpoints SET last_success_at = greatest(coalesce(last_success_at, $2), $2) WHERE endpoint_id = $1
"""
DISABLE_FAILING = f"""
UPDATE webhook_endpoints SET enabled = false, disabled_reason = $3, disabled_by = 'webhook-dispatcher',
       disabled_at = $4
WHERE endpoint_id = $1 AND enabled AND (last_success_at IS NULL OR last_success_at < $2)
RETURNING {_ENDPOINT}
"""
FAIL_PENDING = """
UPDATE webhook_deliveries SET status = 'failed', last_error = coalesce(last_error, '') || ' (endpoint disabled)'
WHERE endpoint_id = $1 AND status = 'pending'
"""

_DELIVERY = """d.delivery_id, d.endpoint_id, e.url, d.message_id, d.event_type, d.status, d.created_at, d.attempts,
       d.last_status, d.last_error, d.last_attempt_at, d.next_attempt_at, d.delivered_at, d.window_start"""
DELIVERIES = f"""
SELECT {_DELIVERY} FROM webhook_deliveries d JOIN webhook_endpoints e ON e.endpoint_id = d.endpoint_id
WHERE d.partner_id = $1 AND ($2::uuid IS NULL OR d.endpoint_id = $2) AND ($3::text IS NULL OR d.status = $3)
  AND (d.created_at, d.delivery_id) < ($4, $5)
ORDER BY d.created_at DESC, d.delivery_id DESC LIMIT $6
"""
DELIVERY = f"""
SELECT {_DELIVERY}, d.body FROM webhook_deliveries d JOIN webhook_endpoints e ON e.endpoint_id = d.endpoint_id
WHERE d.partner_id = $1 AND d.delivery_id = $2
"""
LOCK_DELIVERY = DELIVERY + " FOR UPDATE OF d"
ATTEMPTS = """
SELECT attempt, started_at, status_code, error, duration_ms FROM webhook_attempts
WHERE delivery_id = $1 ORDER BY attempt
"""
REPLAY = """
UPDATE webhook_deliveries SET status = 'pending', window_start = $3, next_attempt_at = $3, attempts_before = attempts
WHERE partner_id = $1 AND delivery_id = $2
"""


@dataclass(frozen=True)
class Claimed:
    """A delivery a worker may attempt now: attempt number `attempt` is its alone."""

    delivery_id: uuid.UUID
    endpoint_id: uuid.UUID
    partner_id: str
    message_id: str
    event_type: str
    body: bytes
    attempt: int
    attempts_before: int
    """Attempts made before `window_start`: the schedule counts the attempts of this window only."""
    window_start: datetime
    url: str
    secret_sealed: bytes
    previous_sealed: bytes | None
    previous_until: datetime | None


@dataclass(frozen=True)
class Message:
    """A message for every enabled endpoint of `partner_id` subscribed to `event_type`."""

    partner_id: str
    event_type: str
    message_id: str
    body: bytes


def _claimed(r: asyncpg.Record) -> Claimed:
    return Claimed(
        r["delivery_id"], r["endpoint_id"], r["partner_id"], r["message_id"], r["event_type"], r["body"],
        r["attempts"], r["attempts_before"], r["window_start"], r["url"], r["secret_sealed"], r["previous_sealed"],
        r["previous_until"],
    )  # fmt: skip


class WebhookTransaction:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def claim_inbox(self, topic: str, event_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        return await inbox.claim(self.conn, topic, event_ids)

    async def enqueue_messages(self, messages: Sequence[Message], now: datetime) -> None:
        await enqueue_messages(self.conn, messages, now)

    async def lock_partner(self, partner_id: str) -> None:
        await self.conn.execute(LOCK_PARTNER, partner_id)

    async def count_endpoints(self, partner_id: str) -> int:
        count: int = await self.conn.fetchval(COUNT_ENDPOINTS, partner_id)
        return count

    async def insert_endpoint(self, row: dict[str, Any], sealed: bytes, now: datetime, by: str) -> bool:
        made = await self.conn.fetchval(
            INSERT_ENDPOINT, row["endpoint_id"], row["partner_id"], row["url"], row["description"],
            row["event_types"], sealed, now, by,
        )  # fmt: skip
        return made is not None

    async def lock_endpoint(self, partner_id: str, endpoint_id: uuid.UUID) -> dict[str, Any] | None:
        row = await self.conn.fetchrow(LOCK_ENDPOINT, partner_id, endpoint_id)
        return dict(row) if row is not None else None

    async def endpoint_by_id(self, endpoint_id: uuid.UUID) -> dict[str, Any] | None:
        row = await self.conn.fetchrow(ENDPOINT_BY_ID, endpoint_id)
        return dict(row) if row is not None else None

    async def update_endpoint(self, row: dict[str, Any]) -> dict[str, Any]:
        updated = await self.conn.fetchrow(
            UPDATE_ENDPOINT, row["partner_id"], row["endpoint_id"], row["description"], row["event_types"],
            row["enabled"], row["disabled_reason"], row["disabled_by"], row["disabled_at"],
        )  # fmt: skip
        return dict(updated)

    async def rotate_secret(
        self, partner_id: str, endpoint_id: uuid.UUID, previous: bytes, until: datetime, sealed: bytes
    ) -> dict[str, Any]:
        row = await self.conn.fetchrow(ROTATE_SECRET, partner_id, endpoint_id, previous, until, sealed)
        return dict(row)

    async def sealed_secret(self, endpoint_id: uuid.UUID) -> bytes:
        sealed: bytes = await self.conn.fetchval(SECRETS, endpoint_id)
        return sealed

    async def claim_due(self, now: datetime, lease_until: datetime, limit: int) -> list[Claimed]:
        rows = await self.conn.fetch(CLAIM_DUE, now, limit, lease_until)
        return [_claimed(r) for r in rows]

    async def record_attempt(
        self, claimed: Claimed, started: datetime, status: int | None, error: str | None, duration_ms: int
    ) -> bool:
        """False when this attempt was recorded before (it is not recorded twice)."""
        done = await self.conn.fetchval(
            RECORD_ATTEMPT, claimed.delivery_id, claimed.attempt, started, status, error, duration_ms
        )
        return done is not None

    async def settle(
        self, claimed: Claimed, state: str, next_at: datetime | None, status: int | None, error: str | None,
        at: datetime,
    ) -> bool:  # fmt: skip
        """Record the attempt's outcome; False when the delivery moved on meanwhile (replayed, disabled)."""
        found = await self.conn.fetchval(
            SETTLE_DELIVERY, claimed.delivery_id, claimed.attempt, state, next_at, status, error, at
        )
        if found is not None and state == "delivered":
            await self.conn.execute(ENDPOINT_SUCCEEDED, claimed.endpoint_id, at)
        return found is not None

    async def disable_failing(
        self, endpoint_id: uuid.UUID, failing_since: datetime, reason: str, now: datetime
    ) -> dict[str, Any] | None:
        """Disable the endpoint unless it delivered something since `failing_since`; its pending deliveries fail."""
        row = await self.conn.fetchrow(DISABLE_FAILING, endpoint_id, failing_since, reason, now)
        if row is None:
            return None
        await self.conn.execute(FAIL_PENDING, endpoint_id)
        return dict(row)

    async def lock_delivery(self, partner_id: str, delivery_id: uuid.UUID) -> dict[str, Any] | None:
        row = await self.conn.fetchrow(LOCK_DELIVERY, partner_id, delivery_id)
        return dict(row) if row is not None else None

    async def replay(self, partner_id: str, delivery_id: uuid.UUID, now: datetime) -> None:
        await self.conn.execute(REPLAY, partner_id, delivery_id, now)

    async def audit(self, entry: audit.AuditEntry) -> None:
        await audit.record(self.conn, entry)

    async def outbox(self, messages: Sequence[OutboxMessage]) -> None:
        await enqueue(self.conn, messages)


async def enqueue_messages(conn: asyncpg.Connection, messages: Sequence[Message], now: datetime) -> None:
    """Write one delivery per subscribed enabled endpoint, in the caller's transaction (the fact's own)."""
    if messages:
        await conn.execute(
            ENQUEUE,
            [m.partner_id for m in messages],
            [m.event_type for m in messages],
            [m.message_id for m in messages],
            [m.body for m in messages],
            now,
        )


class WebhookStore:
    def __init__(self, pool: Callable[[], asyncpg.Pool]) -> None:
        self._pool = pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[WebhookTransaction]:
        async with self._pool().acquire() as conn, conn.transaction():
            yield WebhookTransaction(conn)

    async def endpoints(self, partner_id: str) -> list[dict[str, Any]]:
        return [dict(r) for r in await self._pool().fetch(ENDPOINTS, partner_id)]

    async def endpoint(self, partner_id: str, endpoint_id: uuid.UUID) -> dict[str, Any] | None:
        row = await self._pool().fetchrow(ENDPOINT, partner_id, endpoint_id)
        return dict(row) if row is not None else None

    async def disabled_endpoints(self, limit: int) -> list[dict[str, Any]]:
        return [dict(r) for r in await self._pool().fetch(DISABLED_ENDPOINTS, limit)]

    async def deliveries(
        self,
        partner_id: str,
        endpoint_id: uuid.UUID | None,
        status: str | None,
        before: tuple[datetime, uuid.UUID],
        limit: int,
    ) -> list[dict[str, Any]]:
        rows = await self._pool().fetch(DELIVERIES, partner_id, endpoint_id, status, *before, limit)
        return [dict(r) for r in rows]

    async def delivery(self, partner_id: str, delivery_id: uuid.UUID) -> dict[str, Any] | None:
        async with self._pool().acquire() as conn:
            row = await conn.fetchrow(DELIVERY, partner_id, delivery_id)
            if row is None:
                return None
            attempts = await conn.fetch(ATTEMPTS, delivery_id)
        return {**dict(row), "attempt_log": [dict(a) for a in attempts]}
