"""The outbox relay: publishes the rows a service wrote in its transactions, in order, then deletes them.

At-least-once: a crash between publishing and deleting publishes those rows again, and
consumers drop the copies by event id. One relay per database is active at a time (an
advisory lock), so events leave in the order they were committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2
from aiokafka.producer.message_accumulator import BatchBuilder

from loyalty_runtime.db import copy_rows
from loyalty_runtime.kafka import reliable_producer

log = logging.getLogger(__name__)

_ENQUEUE = """
WITH queued AS (
    INSERT INTO outbox (topic, key, payload, headers)
    SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::jsonb[])
)
SELECT pg_notify('outbox', '')
"""
"""Wakes the relay when the transaction commits (PostgreSQL delivers notifications at commit, one per channel)."""
_NOTIFY = "SELECT pg_notify('outbox', '')"
OUTBOX_COLUMNS = ("topic", "key", "payload", "headers")
COPY_FROM = 32
"""From this many messages on, they are written with binary COPY (then notified): one statement either way below."""


@dataclass(frozen=True)
class OutboxMessage:
    """A message to publish once the transaction that wrote it commits."""

    topic: str
    key: str | None
    """The partition key; None only for dead letters and replays of records that had none."""
    payload: bytes
    headers: dict[str, str]


async def enqueue(conn: asyncpg.Connection, messages: Sequence[OutboxMessage]) -> None:
    """Write messages into the outbox, inside the caller's transaction, in order (binary COPY keeps it: ids are
    taken from the sequence row by row)."""
    if len(messages) >= COPY_FROM:
        headers: dict[int, str] = {}  # a batch's messages often share one headers dict: serialised once
        rows = [
            (m.topic, m.key, m.payload, headers.get(id(m.headers)) or headers.setdefault(id(m.headers), _dumps(m)))
            for m in messages
        ]
        await copy_rows(conn, "outbox", OUTBOX_COLUMNS, rows)
        await conn.execute(_NOTIFY)
    elif messages:
        await conn.execute(_ENQUEUE, *outbox_columns(messages))


def outbox_columns(messages: Sequence[OutboxMessage]) -> tuple[list[str], list[str | None], list[bytes], list[str]]:
    """The messages as the outbox's columns (topic, key, payload, headers as JSON text), for a statement that
    writes them with `unnest` (as `enqueue` does below COPY_FROM, and statements that write a state change and
    its messages at once)."""
    return (
        [m.topic for m in messages],
        [m.key for m in messages],
        [m.payload for m in messages],
        [_dumps(m) for m in messages],
    )


def _dumps(message: OutboxMessage) -> str:
    return orjson.dumps(message.headers).decode()


_LEADER_LOCK = "SELECT pg_try_advisory_lock(hashtext('outbox-relay'))"
_NEXT = "SELECT id, topic, key, payload, headers FROM outbox ORDER BY id LIMIT $1"
_DONE = "DELETE FROM outbox WHERE id = ANY($1::bigint[])"


class OutboxRelay:
    """Publishes the outbox with its own idempotent, acks=all producer: plain aiokafka, no per-message
    middleware, because the relay carries every event a service emits (the trace context travels in the
    stored headers)."""

    def __init__(
        self,
        pool: Callable[[], asyncpg.Pool],
        bootstrap: str,
        *,
        client_id: str,
        batch_size: int = 500,
        idle_wait: float = 0.5,
        drain_wait: float = 5.0,
    ) -> None:
        self._pool = pool
        self._bootstrap = bootstrap
        self._client_id = client_id
        self._batch_size = batch_size
        self._idle_wait = idle_wait
        self._drain_wait = drain_wait
        self._partitioners: dict[str, KeyPartitioner] = {}

    async def run(self) -> None:
        """Run until cancelled: wait for leadership, then relay as soon as a commit notifies it."""
        producer = reliable_producer(self._bootstrap, f"{self._client_id}-outbox", linger_ms=2)
        await producer.start()
        try:
            async with self._pool().acquire() as conn:
                while not await conn.fetchval(_LEADER_LOCK):
                    await asyncio.sleep(1.0)
                log.info("outbox relay is the leader")
                # The lock goes with the connection: asyncpg's pool unlocks all advisory locks on release.
                woken = asyncio.Event()

                def wake(*_: object) -> None:
                    woken.set()

                await conn.add_listener("outbox", wake)
                sending: asyncio.Future[int] | None = None
                try:
                    while True:
                        woken.clear()
                        # Shielded: a stop never cuts a send between the broker's ack and marking its rows done
                        # (that would publish them twice); it waits for the send, then drains the rest.
                        sending = asyncio.ensure_future(self.relay_once(conn, producer))
                        if await asyncio.shield(sending) < self._batch_size:
                            # A notification ends the wait at once; the timeout is the fallback. Not
                            # asyncio.wait_for: on Python 3.11 it can swallow the cancellation that stops
                            # the service when the wait ends at the same moment, and the relay runs on.
                            with contextlib.suppress(TimeoutError):
                                async with asyncio.timeout(self._idle_wait):
                                    await woken.wait()
                except asyncio.CancelledError:
                    if sending is not None:
                        await asyncio.wait([sending])
                    await self._drain(conn, producer)
                    raise
                finally:
                    with contextlib.suppress(Exception):  # the connection may be closing with the service
                        await conn.remove_listener("outbox", wake)
        finally:
            await producer.stop()

    async def _drain(self, conn: asyncpg.Connection, producer: AIOKafkaProducer) -> None:
        """When the service stops: publish what its last commits left (an intake answered 202 a moment ago),
        within `drain_wait`; what is left then waits for the next leader, as after a crash."""
        sent = 0
        with contextlib.suppress(Exception):  # a broker or database already gone: the rows wait, nothing is lost
            async with asyncio.timeout(self._drain_wait):
                while count := await self.relay_once(conn, producer):
                    sent += count
        log.info("outbox relay stopped", extra={"sent_on_the_way_out": sent})

    async def relay_once(self, conn: asyncpg.Connection, producer: AIOKafkaProducer) -> int:
        rows = await conn.fetch(_NEXT, self._batch_size)
        if not rows:
            return 0
        # One record batch per partition, filled in commit order (the producer sends one request per
        # partition at a time, so the order holds), then wait for every ack: no per-message future.
        partitioners = {t: await self._partitioner(producer, t) for t in {r["topic"] for r in rows}}
        open_batches: dict[tuple[str, int], BatchBuilder] = {}
        acks: list[asyncio.Future[Any]] = []
        for r in rows:
            topic, key = r["topic"], r["key"].encode() if r["key"] is not None else None
            partition = partitioners[topic].partition(key)
            headers = [(k, v.encode()) for k, v in orjson.loads(r["headers"]).items()]
            batch = open_batches.get((topic, partition))
            while batch is None or batch.append(timestamp=None, key=key, value=r["payload"], headers=headers) is None:
                if batch is not None:  # full: send it, continue in a new one
                    acks.append(await producer.send_batch(batch, topic, partition=partition))
                batch = open_batches[(topic, partition)] = producer.create_batch()
        for (topic, partition), batch in open_batches.items():
            acks.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*acks)
        await conn.execute(_DONE, [r["id"] for r in rows])
        return len(rows)

    async def _partitioner(self, producer: AIOKafkaProducer, topic: str) -> KeyPartitioner:
        count = len(await producer.partitions_for(topic))
        known = self._partitioners.get(topic)
        if known is None or known.count != count:
            known = self._partitioners[topic] = KeyPartitioner(count)
        return known


class KeyPartitioner:
    """The partition Kafka's default partitioner picks for a key (murmur2, as the Java client does).

    aiokafka computes murmur2 in pure Python; keys repeat (a member, a partner), so results are kept.
    """

    def __init__(self, count: int, *, remember: int = 100_000) -> None:
        self.count = count
        self._remember = remember
        self._known: dict[bytes, int] = {}
        self._next_unkeyed = 0

    def partition(self, key: bytes | None) -> int:
        if key is None:  # no key, no order to keep: spread them
            self._next_unkeyed = (self._next_unkeyed + 1) % self.count
            return self._next_unkeyed
        found = self._known.get(key)
        if found is None:
            if len(self._known) >= self._remember:
                self._known.clear()
            found = self._known[key] = (murmur2(key) & 0x7FFFFFFF) % self.count
        return found
