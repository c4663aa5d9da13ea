"""The outbox relay on real Kafka: commit order per key, Kafka's own partition for each key, headers kept."""

from __future__ import annotations

from collections import defaultdict

import asyncpg
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from contracts.topics import LEDGER_EVENTS
from loyalty_runtime.outbox import KeyPartitioner, OutboxMessage, OutboxRelay, enqueue
from tests.support.kafka import read_all

pytestmark = pytest.mark.integration


def test_the_partition_of_a_key_is_the_one_kafkas_default_partitioner_picks():
    partitioner = KeyPartitioner(12, remember=3)  # small memory: exercises forgetting too
    keys = [f"member-{n}".encode() for n in range(200)] + [b"", b"a", b"ab", b"abc", "élan".encode()]
    for key in keys + keys:
        assert partitioner.partition(key) == DefaultPartitioner()(key, list(range(12)), [])


async def test_the_relay_keeps_commit_order_per_key_and_puts_each_key_where_kafka_would(infra, topic_prefix, database):
    topic = LEDGER_EVENTS.qualified(topic_prefix)
    keys = [f"member-{n}" for n in range(7)]
    # More than one record batch per partition (the builder fills at 16 KiB here), across several polls.
    messages = [
        OutboxMessage(topic, keys[n % 7], orjson.dumps({"n": n, "pad": "x" * 300}), {"traceparent": f"tp-{n}"})
        for n in range(1_200)
    ]
    conn = await asyncpg.connect(await database("points"))
    try:
        for start in range(0, len(messages), 400):
            async with conn.transaction():
                await enqueue(conn, messages[start : start + 400])
        producer = AIOKafkaProducer(
            bootstrap_servers=infra.kafka, acks="all", enable_idempotence=True, max_batch_size=16 * 1024
        )
        await producer.start()
        try:
            partitions = len(await producer.partitions_for(topic))
            relay = OutboxRelay(lambda: None, infra.kafka, client_id="test", batch_size=500)  # type: ignore[arg-type,return-value]
            sent = [await relay.relay_once(conn, producer) for _ in range(4)]
        finally:
            await producer.stop()
        assert sent == [500, 500, 200, 0]
        assert await conn.fetchval("SELECT count(*) FROM outbox") == 0
    finally:
        await conn.close()

    records = await read_all(infra.kafka, topic, len(messages))
    assert len(records) == len(messages)
    by_key: dict[str, list[int]] = defaultdict(list)
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        key = record.key.decode()
        body = orjson.loads(record.value)
        by_key[key].append(body["n"])
        assert dict(record.headers) == {"traceparent": f"tp-{body['n']}".encode()}
        assert record.partition == DefaultPartitioner()(record.key, list(range(partitions)), [])
    assert by_key == {k: [n for n in range(1_200) if n % 7 == i] for i, k in enumerate(keys)}
