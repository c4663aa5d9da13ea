"""What the chaos run asks Kafka itself: are all replicas in sync again, and has every consumer group caught up?"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

REQUEST_TIMEOUT_MS = 5_000


async def under_replicated(bootstrap: str) -> list[str]:
    """Partitions that lack a leader or an in-sync replica, as 'topic/partition isr [..] of [..]'; [] when whole."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=REQUEST_TIMEOUT_MS)
    await admin.start()
    try:
        topics = await admin.describe_topics()
    finally:
        await admin.close()
    lagging: list[str] = []
    for topic in topics:
        if topic["error_code"]:
            lagging.append(f"{topic['topic']}: metadata error {topic['error_code']}")
        for part in topic["partitions"]:
            if part["leader"] < 0 or set(part["isr"]) != set(part["replicas"]):
                lagging.append(
                    f"{topic['topic']}/{part['partition']} isr {sorted(part['isr'])} of {sorted(part['replicas'])}"
                )
    return lagging


@dataclass(frozen=True)
class Lag:
    group: str
    topic: str
    partition: int
    committed: int
    end: int

    def __str__(self) -> str:
        return f"{self.group} on {self.topic}/{self.partition}: committed {self.committed} of {self.end}"


async def consumer_lag(bootstrap: str) -> list[Lag]:
    """Every partition where a consumer group's committed offset is short of the end offset.

    A group's topics are those it ever committed on; all their partitions are checked, so a partition
    the group never committed on while others did counts as stuck (committed -1).
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=REQUEST_TIMEOUT_MS)
    await admin.start()
    try:
        groups = sorted(str(g[0]) for g in await admin.list_consumer_groups())
        committed = {group: await admin.list_consumer_group_offsets(group) for group in groups}
    finally:
        await admin.close()
    topics = {tp.topic for offsets in committed.values() for tp in offsets}
    ends = await end_offsets(bootstrap, topics)
    lags: list[Lag] = []
    for group, offsets in committed.items():
        for tp, end in sorted(ends.items()):
            if tp.topic not in {t.topic for t in offsets}:
                continue
            done = offsets[tp].offset if tp in offsets else -1
            if done < end and end > 0:
                lags.append(Lag(group, tp.topic, tp.partition, done, end))
    return lags


async def end_offsets(bootstrap: str, topics: Iterable[str]) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, request_timeout_ms=REQUEST_TIMEOUT_MS
    )
    await consumer.start()
    try:
        await consumer.topics()  # loads every topic's metadata, which partitions_for_topic reads
        partitions = [
            TopicPartition(topic, p)
            for topic in sorted(topics)
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if not partitions:
            return {}
        ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
        return ends
    finally:
        await consumer.stop()
