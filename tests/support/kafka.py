"""Reading topics in tests."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord

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
