"""What intake accepted, with what each item said, and its events, in PostgreSQL (asyncpg).

The usual request (a fresh signature, new keys and ids) is recorded by `intake_accept` (migration 0016):
its signature, its rows and its events in the outbox in one call. Requests that arrive while a call is
under way wait and share the next one (group commit): one round trip and one commit for all of them,
each request still all or nothing. A request that reuses a key or an id is judged in a transaction of
its own (`recording`), as are the rare ones that the function sends back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import asyncpg
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from contracts.envelope import Event
from loyalty_runtime.failures import is_transient
from loyalty_runtime.outbox import OutboxMessage, enqueue, outbox_columns
from loyalty_runtime.telemetry import inject_context
from partners.domain.idempotency import IntakeEntry
from partners.domain.intake import Kind
from partners.handlers.authentication import SignatureClaim
from partners.handlers.intake import Claimed, ContendedIntakeError, Outcome, Particulars, Submission

log = logging.getLogger(__name__)

# Sorted by key, so that two requests with the same items take their row locks in the same order.
CLAIM_ENTRIES = """
INSERT INTO intake_requests (partner_id, kind, idempotency_key, body_hash, external_id, event_id,
                             customer_ref, amount_minor, currency, purchase_id, points)
SELECT $1, $2, e.idempotency_key, e.body_hash, e.external_id, e.event_id,
       e.customer_ref, e.amount_minor, e.currency, e.purchase_id, e.points
  FROM unnest($3::text[], $4::bytea[], $5::text[], $6::uuid[],
              $7::text[], $8::bigint[], $9::text[], $10::text[], $11::bigint[])
       AS e(idempotency_key, body_hash, external_id, event_id,
            customer_ref, amount_minor, currency, purchase_id, points)
 ORDER BY e.idempotency_key
ON CONFLICT DO NOTHING
RETURNING idempotency_key
"""

# A statement of its own: its snapshot sees the rows of the concurrent requests that CLAIM_ENTRIES waited for.
SELECT_RECORDED = """
SELECT idempotency_key, body_hash, external_id, event_id
  FROM intake_requests
 WHERE partner_id = $1 AND kind = $2 AND (idempotency_key = ANY($3::text[]) OR external_id = ANY($4::text[]))
"""

ACCEPT = "SELECT intake_accept($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"

MAX_GROUP_REQUESTS = 32
"""Requests per call at most: each is a subtransaction, and more than 64 of them slow every snapshot."""
MAX_GROUP_ITEMS = 2_000
"""Items per call at most (a request of more items goes alone)."""


def _columns(entries: Sequence[IntakeEntry], particulars: Sequence[Particulars | None]) -> list[list[object]]:
    """The entries as the columns the statements take, in their order (key ... points)."""
    return [
        [e.idempotency_key for e in entries],
        [e.body_hash for e in entries],
        [e.external_id for e in entries],
        [e.event_id for e in entries],
        [p.customer_ref if p else None for p in particulars],
        [p.amount_minor if p else None for p in particulars],
        [p.currency if p else None for p in particulars],
        [p.purchase_id if p else None for p in particulars],
        [p.points if p else None for p in particulars],
    ]


class IntakeTransaction:
    def __init__(self, conn: asyncpg.Connection, partner_id: str, kind: Kind, topic: str) -> None:
        self._conn = conn
        self._partner_id = partner_id
        self._kind = kind
        self._topic = topic

    async def claim(self, entries: Sequence[IntakeEntry], particulars: Sequence[Particulars] | None = None) -> Claimed:
        said: Sequence[Particulars | None] = particulars if particulars is not None else [None] * len(entries)
        try:
            rows = await self._conn.fetch(CLAIM_ENTRIES, self._partner_id, self._kind, *_columns(entries, said))
        except asyncpg.DeadlockDetectedError as error:
            raise ContendedIntakeError() from error
        new_keys = frozenset(r["idempotency_key"] for r in rows)
        if len(new_keys) == len(entries):
            return Claimed(new_keys, [])  # all new
        keys, ids = [e.idempotency_key for e in entries], [e.external_id for e in entries]
        recorded = await self._conn.fetch(SELECT_RECORDED, self._partner_id, self._kind, keys, ids)
        return Claimed(
            new_keys,
            [IntakeEntry(r["idempotency_key"], r["body_hash"], r["external_id"], r["event_id"]) for r in recorded],
        )

    async def publish(self, keyed_events: Sequence[tuple[str, Event]]) -> None:
        headers = inject_context({})
        await enqueue(self._conn, [_message(self._topic, key, event, headers) for key, event in keyed_events])


def _message(topic: str, key: str, event: Event, context: dict[str, str]) -> OutboxMessage:
    return OutboxMessage(topic, key, event.model_dump_json().encode(), {"type": event.type, **context})


@dataclass
class _Request:
    """One request waiting for a group call: its arguments, and the future its outcome lands in."""

    partner_id: str
    kind: Kind
    signature: SignatureClaim
    columns: list[list[object]]
    messages: list[OutboxMessage]
    done: asyncio.Future[Outcome] = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    @property
    def size(self) -> int:
        return len(self.messages)


class IntakeStore:
    """Borrows the service's pool (it exists only while the service runs), never owns it."""

    def __init__(
        self,
        pool: Callable[[], asyncpg.Pool],
        topic: str,
        *,
        tracer_provider: trace.TracerProvider | None = None,
    ) -> None:
        self._pool = pool
        self._topic = topic
        self._tracer = (tracer_provider or trace.get_tracer_provider()).get_tracer(__name__)
        self._waiting: list[_Request] = []
        self._writer: asyncio.Task[None] | None = None

    @asynccontextmanager
    async def recording(self, partner_id: str, kind: Kind) -> AsyncIterator[IntakeTransaction]:
        async with self._pool().acquire() as conn, conn.transaction():
            yield IntakeTransaction(conn, partner_id, kind, self._topic)

    async def accept(self, submission: Submission) -> Outcome:
        # The producer span of the events: its context travels in their headers, through the outbox, to consumers.
        with self._tracer.start_as_current_span(f"{self._topic} publish", kind=SpanKind.PRODUCER) as span:
            span.set_attribute("messaging.system", "kafka")
            span.set_attribute("messaging.destination.name", self._topic)
            span.set_attribute("messaging.batch.message_count", len(submission.keyed_events))
            context = inject_context({})
            request = _Request(
                submission.partner_id, submission.kind, submission.signature,
                _columns(submission.entries, submission.particulars),
                [_message(self._topic, key, event, context) for key, event in submission.keyed_events],
            )  # fmt: skip
            self._waiting.append(request)
            if self._writer is None:
                self._writer = asyncio.create_task(self._write(), name="intake group commit")
            # Shielded: a caller that goes away must not cancel the call it shares with others.
            return await asyncio.shield(request.done)

    async def _write(self) -> None:
        """Run group calls while requests wait, on one connection; whatever fails is answered with its error."""
        try:
            async with self._pool().acquire() as conn:
                while self._waiting:
                    await self._call(conn, self._next_group())
        except Exception as error:  # the connection failed: the requests still waiting get the same answer
            for request in self._waiting:
                _answer(request, error=error)
            self._waiting.clear()
        finally:
            self._writer = None
            if self._waiting:  # arrived while the connection was being released
                self._writer = asyncio.create_task(self._write(), name="intake group commit")

    def _next_group(self) -> list[_Request]:
        group, items = [self._waiting[0]], self._waiting[0].size
        for request in self._waiting[1:MAX_GROUP_REQUESTS]:
            if items + request.size > MAX_GROUP_ITEMS:
                break
            group.append(request)
            items += request.size
        del self._waiting[: len(group)]
        return group

    async def _call(self, conn: asyncpg.Connection, group: list[_Request]) -> None:
        try:
            outcomes = await conn.fetchval(ACCEPT, *self._arguments(group))
        except asyncpg.PostgresError as error:
            if len(group) == 1 or is_transient(error):
                for request in group:
                    _answer(request, error=error)
                raise
            log.warning("intake: a group call failed; calling its requests one by one", extra={"error": str(error)})
            for request in group:  # so that a request that cannot be recorded fails alone
                await self._call_alone(conn, request)
            return
        except BaseException as error:
            for request in group:
                _answer(request, error=error)
            raise
        for request, outcome in zip(group, outcomes, strict=True):
            _answer(request, outcome=Outcome(outcome))

    async def _call_alone(self, conn: asyncpg.Connection, request: _Request) -> None:
        try:
            await self._call(conn, [request])
        except asyncpg.PostgresError as error:
            if is_transient(error):
                raise

    def _arguments(self, group: list[_Request]) -> list[object]:
        columns: list[list[object]] = [[] for _ in range(9)]
        for request in group:
            for column, values in zip(columns, request.columns, strict=True):
                column.extend(values)
        _topics, keys, payloads, headers = outbox_columns([m for r in group for m in r.messages])
        return [
            [r.signature.signature for r in group],
            [r.signature.signed_at for r in group],
            [r.partner_id for r in group],
            [r.kind for r in group],
            [r.size for r in group],
            *columns,
            self._topic,
            keys,
            payloads,
            headers,
        ]


def _answer(request: _Request, *, outcome: Outcome | None = None, error: BaseException | None = None) -> None:
    if request.done.done():
        return
    if error is not None:
        request.done.set_exception(error)
    else:
        assert outcome is not None
        request.done.set_result(outcome)
