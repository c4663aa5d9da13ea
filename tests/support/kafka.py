"""Reading topics in tests."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from tests.support.waiting import eventually


async def read_all(kafka: str, topic: str, expected: int) -> list[ConsumerRecord[Any, Any]]:
    """Every record on `topic` from the start, once at least `expected` arrived."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka, auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    found: list[ConsumerRecord[Any, Any]] = []
    try:

        async def enough() -> list[ConsumerRecord[Any, Any]] | None:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                found.extend(records)
            return found if len(found) >= expected else None

        return await eventually(enough, what=f"{expected} records on {topic}")
    finally:
        await consumer.stop()


async def caught_up(kafka: str, group: str, topic: str) -> bool:
    """Whether `group` has committed every partition of `topic` up to its end."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka, group_id=None)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
        if not any(tp.topic == topic for tp in committed):
            return False
        [described] = await admin.describe_topics([topic])
        known = [p["partition"] for p in described["partitions"]]
        if described["error_code"] or not known:  # not there yet: not caught up (no partitions would all be "done")
            return False
        partitions = [TopicPartition(topic, p) for p in known]
        ends = await consumer.end_offsets(partitions)
        return all(tp in committed and committed[tp].offset >= end for tp, end in ends.items())
    finally:
        await consumer.stop()
        await admin.close()


async def delete_topics(kafka: str, prefix: str) -> None:
    """Delete every topic of a test's namespace (a broker holding thousands of partitions runs out of files)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    await admin.start()
    try:
        doomed = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if doomed:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()


def headers_of(record: ConsumerRecord[Any, Any]) -> dict[str, str]:
    return {k: v.decode() for k, v in record.headers}
