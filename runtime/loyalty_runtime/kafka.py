"""Kafka wiring shared by the services: the broker, producers for hot paths, topics."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from faststream.kafka import KafkaBroker
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from opentelemetry import trace

from contracts.topics import Topic
from loyalty_runtime.settings import ServiceSettings

log = logging.getLogger(__name__)


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


def bootstrap_servers(setting: str) -> list[str]:
    """'host:port,host:port' as the list FastStream needs (it takes a whole string for one host)."""
    servers = [s.strip() for s in setting.split(",") if s.strip()]
    if not servers:
        raise ValueError("KAFKA_BOOTSTRAP_SERVERS is empty; give host:port[,host:port...]")
    return servers


def build_broker(settings: ServiceSettings, service: str, provider: trace.TracerProvider) -> KafkaBroker:
    """An idempotent, acks=all producer plus consumers; per-message logs only at DEBUG."""
    return KafkaBroker(
        bootstrap_servers(settings.kafka_bootstrap_servers),
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
    bootstrap: str,
    topics: Iterable[Topic],
    prefix: str = "",
    *,
    partitions: int | None = None,
    replication_factor: int = 1,
    min_insync_replicas: int = 1,
) -> list[str]:
    """Create each topic and its dead-letter topic if missing; returns the names created.

    `partitions` overrides the topics' own counts (tests use a few, to keep the broker light). On a
    replicated cluster give replication factor 3 and min.insync.replicas 2: with acks=all a write is
    then acknowledged by two brokers at least, and survives the loss of any one.
    """
    durability = {"min.insync.replicas": str(min_insync_replicas)}
    wanted: list[NewTopic] = []
    for topic in topics:
        count = partitions or topic.partitions
        config = {**dict(topic.config), **durability}
        wanted.append(NewTopic(topic.qualified(prefix), count, replication_factor, topic_configs=config))
        wanted.append(NewTopic(prefix + topic.dead_letter, 1, replication_factor, topic_configs=durability))
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
