"""Kafka wiring shared by the services: broker, topics, batch decoding, dead letters."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.message import KafkaMessage
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.kafka.publisher.usecase import DefaultPublisher
from opentelemetry import trace
from pydantic import ValidationError

from contracts.envelope import Event
from contracts.topics import Topic
from loyalty_runtime.settings import ServiceSettings

log = logging.getLogger(__name__)


class ServiceShellLike(Protocol):
    """What a consumer needs of loyalty_runtime.service.ServiceShell (which imports this module)."""

    name: str
    settings: ServiceSettings
    broker: KafkaBroker


BATCH_MAX_RECORDS = 500
"""Records per consumer batch: one database transaction each (DESIGN.md, Performance model)."""
BATCH_WAIT_MS = 10
"""How long an idle consumer waits for records; a busy one returns as soon as records are buffered.
FastStream also sleeps this long after an empty poll, so it bounds the latency a quiet consumer adds."""


def reliable_producer(bootstrap: str, client_id: str, *, linger_ms: int) -> AIOKafkaProducer:
    """A plain aiokafka producer for hot paths: idempotent, acknowledged by all in-sync replicas."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=linger_ms,
        max_batch_size=256 * 1024,
    )


def build_broker(settings: ServiceSettings, service: str, provider: trace.TracerProvider) -> KafkaBroker:
    """An idempotent, acks=all producer plus consumers; per-message logs only at DEBUG."""
    return KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id=service,
        acks="all",
        enable_idempotence=True,
        linger_ms=2,
        graceful_timeout=settings.shutdown_grace_seconds,
        middlewares=[KafkaTelemetryMiddleware(tracer_provider=provider, include_messages_counters=False)],
        log_level=logging.DEBUG,
        logger=logging.getLogger(f"{service}.kafka"),
    )


async def ensure_topics(
    bootstrap: str, topics: Iterable[Topic], prefix: str = "", *, partitions: int | None = None
) -> list[str]:
    """Create each topic and its dead-letter topic if missing; returns the names created.

    `partitions` overrides the topics' own counts (tests use a few, to keep the broker light).
    """
    wanted: list[NewTopic] = []
    for topic in topics:
        count = partitions or topic.partitions
        wanted.append(
            NewTopic(
                topic.qualified(prefix), num_partitions=count, replication_factor=1, topic_configs=dict(topic.config)
            )
        )
        wanted.append(NewTopic(prefix + topic.dead_letter, num_partitions=1, replication_factor=1))
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="loyalty-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t.name not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # created meanwhile by another process
                await admin.create_topics(missing)
        return [t.name for t in missing]
    finally:
        await admin.close()


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


async def send_to_dead_letter(publisher: DefaultPublisher, records: Iterable[Rejected], service: str) -> int:
    """Publish each rejected record, unchanged, with headers saying where it came from and why."""
    sent = 0
    for item in records:
        record = item.record
        headers = {k: v.decode(errors="replace") for k, v in record.headers}
        headers.update(
            {
                "dlq-reason": item.reason,
                "dlq-service": service,
                "dlq-topic": record.topic,
                "dlq-partition": str(record.partition),
                "dlq-offset": str(record.offset),
            }
        )
        await publisher.publish(record.value or b"", key=record.key, headers=headers)
        log.warning(
            "message sent to dead-letter topic",
            extra={
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "reason": item.reason,
            },
        )
        sent += 1
    return sent


class BatchConsumer:
    """A service's consumer of one topic, in batches: one database transaction per batch.

    Offsets are committed after the handler returns (AckPolicy.NACK_ON_ERROR: an exception
    rewinds the batch); records that do not decode go to the topic's dead-letter topic.
    Subclasses register a typed subscriber with `subscriber_options()` and call `dead_letter`.
    """

    def __init__(self, shell: ServiceShellLike, topic: Topic, group_id: str) -> None:
        self.shell = shell
        self.topic = topic
        self.group_id = group_id
        self.name = topic.qualified(shell.settings.kafka_topic_prefix)
        self.dead_letters: DefaultPublisher = shell.broker.publisher(
            shell.settings.kafka_topic_prefix + topic.dead_letter,
            title=f"{topic.name}: dead letters",
            description=f"Messages the {shell.name} service could not accept, unchanged, with a dlq-reason header.",
        )

    def subscriber_options(self) -> dict[str, Any]:
        return {
            "group_id": self.group_id,
            "batch": True,
            "max_records": BATCH_MAX_RECORDS,
            "batch_timeout_ms": BATCH_WAIT_MS,
            "auto_offset_reset": "earliest",
            "ack_policy": AckPolicy.NACK_ON_ERROR,
            "decoder": EnvelopeBatchDecoder(self.topic),
            "title": self.topic.description,
        }

    async def dead_letter(self, records: Iterable[Rejected]) -> int:
        return await send_to_dead_letter(self.dead_letters, records, self.shell.name)
