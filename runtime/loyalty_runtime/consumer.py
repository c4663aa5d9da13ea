"""The batch consumer every service's subscribers run on: decode, isolate failures, dead-letter once."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import asyncpg
from aiokafka import ConsumerRecord
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.message import KafkaMessage
from opentelemetry import trace
from pydantic import ValidationError

from contracts.envelope import Event
from contracts.topics import Topic
from loyalty_runtime import dead_letters
from loyalty_runtime.dead_letters import Letter
from loyalty_runtime.failures import Backoff
from loyalty_runtime.isolation import Isolator
from loyalty_runtime.settings import ServiceSettings
from loyalty_runtime.telemetry import message_spans

log = logging.getLogger(__name__)

T = TypeVar("T")


class ServiceShellLike(Protocol):
    """What a consumer needs of loyalty_runtime.service.ServiceShell (which imports this module)."""

    name: str
    settings: ServiceSettings
    broker: KafkaBroker
    tracer: trace.Tracer

    @property
    def pool(self) -> asyncpg.Pool: ...


BATCH_MAX_RECORDS = 500
"""Records per consumer batch: one database transaction each (DESIGN.md, Performance model)."""
BATCH_WAIT_MS = 10
"""How long an idle consumer waits for records; a busy one returns as soon as records are buffered.
FastStream also sleeps this long after an empty poll, so it bounds the latency a quiet consumer adds."""


@dataclass(frozen=True)
class Rejected:
    """A record a consumer could not accept, with the reason it goes to the dead-letter topic."""

    record: ConsumerRecord[Any, Any]
    reason: str


@dataclass(frozen=True)
class Accepted:
    """The record behind a decoded event, and its headers (trace context among them)."""

    record: ConsumerRecord[Any, Any]
    headers: dict[str, str]


class EnvelopeBatchDecoder:
    """FastStream decoder for batch subscribers: validates each record on its own.

    Valid events reach the handler as models; invalid records are kept on the message
    (see `rejected`, and `accepted` for the records of the valid ones, in the same order)
    so that the handler sends them to the dead-letter topic instead of failing the batch.
    """

    def __init__(self, topic: Topic) -> None:
        self._topic = topic

    async def __call__(self, message: KafkaMessage) -> list[Event]:
        records: tuple[ConsumerRecord[Any, Any], ...] = message.raw_message  # type: ignore[assignment]
        events: list[Event] = []
        accepted: list[Accepted] = []
        rejected: list[Rejected] = []
        for record, record_headers in zip(records, message.batch_headers, strict=True):
            try:
                events.append(self._topic.decode(record.value or b""))
                accepted.append(Accepted(record, record_headers))
            except ValidationError as error:
                rejected.append(Rejected(record, _reason(error)))
        message.rejected = rejected  # type: ignore[attr-defined]
        message.accepted = accepted  # type: ignore[attr-defined]
        return events


def rejected(message: KafkaMessage) -> list[Rejected]:
    found: list[Rejected] = getattr(message, "rejected", [])
    return found


def accepted(message: KafkaMessage) -> list[Accepted]:
    found: list[Accepted] = getattr(message, "accepted", [])
    return found


def _reason(error: ValidationError) -> str:
    first = error.errors()[0]
    location = ".".join(str(part) for part in first["loc"]) or "message"
    more = f" (+{error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{location}: {first['msg']}{more}"[:500]


def letter_of(record: ConsumerRecord[Any, Any], reason: str, error_class: str) -> Letter:
    return Letter(
        record.topic, record.partition, record.offset, record.timestamp, record.key, record.value,
        tuple(record.headers), reason, error_class,
    )  # fmt: skip


def letter_for(record: ConsumerRecord[Any, Any], error: Exception) -> Letter:
    """The dead letter of a record that `error` refused: its message as the reason, its class."""
    return letter_of(record, str(error) or type(error).__name__, type(error).__name__)


@dataclass(frozen=True)
class Delivery(Generic[T]):
    """What a consumer made of one record (`item`), with the record and its headers (trace context among them)."""

    item: T
    event: Event
    record: ConsumerRecord[Any, Any]
    headers: dict[str, str]


def group_of(service_group: str, topic: Topic) -> str:
    """The consumer group of a service's consumers of `topic`: one group per topic it reads.

    A consumer that joins or leaves then rebalances only its own topic's group: a service's consumers start
    without waiting for each other's assignments (each join of a shared group costs every member a rebalance),
    and a busy topic's consumers never pause because a quiet topic's consumer came or went.
    """
    return f"{service_group}.{topic.name}"


class BatchConsumer(Generic[T]):
    """A service's consumer of one topic, in batches: one database transaction per batch.

    A subclass turns each event into the item its handler takes (`prepare`, pure; what it
    refuses is dead-lettered) and applies a sequence of them in one transaction (`apply`).
    The batch is applied whole; when that fails for good, `Isolator` narrows the failure to
    the records that cause it, the rest is applied, and each guilty record is dead-lettered
    once (`loyalty_runtime.dead_letters`). Offsets are committed after the handler returns
    (AckPolicy.NACK_ON_ERROR): only transient failures that outlast the patience rewind the
    batch, which is then read again; nothing is dead-lettered for them. An event that appears
    twice in one batch is applied once.
    """

    span_name = "apply"

    def __init__(self, shell: ServiceShellLike, topic: Topic, group_id: str) -> None:
        self.shell = shell
        self.topic = topic
        self.group_id = group_of(group_id, topic)
        self.name = topic.qualified(shell.settings.kafka_topic_prefix)
        self.dead_letter_topic = shell.settings.kafka_topic_prefix + topic.dead_letter
        self.isolator = Isolator(
            backoff=Backoff(cap=shell.settings.consumer_retry_cap_seconds),
            patience=shell.settings.consumer_retry_patience_seconds,
        )
        # Declared for the AsyncAPI document; the outbox relay sends.
        shell.broker.publisher(
            self.dead_letter_topic,
            title=f"{topic.name}: dead letters",
            description=f"Messages the {shell.name} service could not apply, unchanged, with dlq-* headers.",
        )

    def subscriber_options(self) -> dict[str, Any]:
        return {
            "group_id": self.group_id,
            "batch": True,
            "max_records": BATCH_MAX_RECORDS,
            "batch_timeout_ms": BATCH_WAIT_MS,
            "auto_offset_reset": "earliest",
            "heartbeat_interval_ms": self.shell.settings.consumer_heartbeat_interval_ms,
            "ack_policy": AckPolicy.NACK_ON_ERROR,
            "decoder": EnvelopeBatchDecoder(self.topic),
            "title": self.topic.description,
        }

    def prepare(self, event: Event) -> T:
        """What the handler takes for this event; raise to refuse it (it goes to the dead-letter topic)."""
        return event  # type: ignore[return-value]

    async def before_batch(self) -> None:
        """Load what `prepare` needs (e.g. cached rates); transient failures are retried."""

    async def apply(self, deliveries: Sequence[Delivery[T]]) -> None:
        """Apply the items in order, in one transaction; raise to refuse them."""
        raise NotImplementedError

    async def skipped(self, conn: asyncpg.Connection, records: Sequence[ConsumerRecord[Any, Any]]) -> None:
        """Called in the transaction that dead-letters these records (e.g. to move a watermark past them)."""

    async def refused(self, conn: asyncpg.Connection, letters: Sequence[Letter]) -> None:
        """Called in the transaction that dead-letters `letters` (again, when their batch is read again), e.g. to
        tell the world through the outbox; what it writes must be keyed so that a repeat is one fact."""

    async def consume(self, events: Sequence[Event], message: KafkaMessage) -> None:
        """The subscriber's body: prepare, apply with isolation, dead-letter what is refused."""
        await self.isolator.retry(self.before_batch)
        letters = [letter_of(r.record, r.reason, "ValidationError") for r in rejected(message)]
        deliveries: list[Delivery[T]] = []
        seen: set[uuid.UUID] = set()
        for event, origin in zip(events, accepted(message), strict=True):
            if event.event_id in seen:
                continue  # the same event twice in one batch (a retried publish): the first copy stands for both
            seen.add(event.event_id)
            try:
                deliveries.append(Delivery(self.prepare(event), event, origin.record, origin.headers))
            except Exception as error:
                letters.append(letter_for(origin.record, error))
        guilty = await self.isolator.apply(deliveries, self._apply_traced)
        letters += [letter_for(g.item.record, g.error) for g in guilty]
        if letters:
            await self.isolator.retry(lambda: self._dead_letter(letters, message))

    async def _apply_traced(self, deliveries: Sequence[Delivery[T]]) -> None:
        with message_spans(self.shell.tracer, f"{self.shell.name} {self.span_name} {self.topic.name}",
                           [d.headers for d in deliveries]):  # fmt: skip
            await self.apply(deliveries)

    async def _dead_letter(self, letters: Sequence[Letter], message: KafkaMessage) -> None:
        records: tuple[ConsumerRecord[Any, Any], ...] = message.raw_message  # type: ignore[assignment]
        places = {(letter.partition, letter.offset) for letter in letters}
        async with self.shell.pool.acquire() as conn, conn.transaction():
            fresh = await dead_letters.record(conn, letters, service=self.shell.name, dlq_topic=self.dead_letter_topic)
            await self.skipped(conn, [r for r in records if (r.partition, r.offset) in places])
            await self.refused(conn, letters)
        for letter in letters:
            log.warning(
                "record refused; it is a dead letter (once, however often its batch is read)",
                extra={"topic": letter.topic, "partition": letter.partition, "offset": letter.offset,
                       "error_class": letter.error_class, "reason": letter.reason[:300],
                       "new_in_this_batch": fresh},
            )  # fmt: skip
