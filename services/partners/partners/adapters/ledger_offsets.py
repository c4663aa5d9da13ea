"""The end offsets of the ledger-transfers topic, read from the broker when a month is finalised."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from partners.domain.errors import PartnersError


class BrokerUnavailableError(PartnersError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"the broker did not answer with the ledger topic's end offsets ({reason}); retry shortly")


class KafkaTopicEnds:
    """A short-lived client per call: finalising is monthly, so no connection is kept for it."""

    def __init__(self, bootstrap_servers: str, topic: str, *, timeout: float = 10.0) -> None:
        self._bootstrap = bootstrap_servers
        self._topic = topic
        self._timeout = timeout

    async def end_offsets(self) -> dict[int, int]:
        """Per partition: the offset the next record will get (0 for an empty partition)."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, group_id=None, enable_auto_commit=False)
        try:
            async with asyncio.timeout(self._timeout):
                await consumer.start()
                if self._topic not in await consumer.topics():
                    return {}
                partitions = [TopicPartition(self._topic, p) for p in consumer.partitions_for_topic(self._topic) or ()]
                ends = await consumer.end_offsets(partitions)
        except (KafkaError, TimeoutError, OSError) as error:
            raise BrokerUnavailableError(f"{type(error).__name__}: {error}") from error
        finally:
            await consumer.stop()
        return {tp.partition: offset for tp, offset in ends.items()}
