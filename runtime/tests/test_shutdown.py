"""Stopping a service lets the message it is handling finish, and commits its offset."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from faststream import AckPolicy

from loyalty_runtime.service import ServiceShell
from loyalty_runtime.settings import ServiceSettings
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration
POINTS_MIGRATIONS = Path(__file__).resolve().parents[2] / "services" / "points" / "migrations"


async def test_stop_waits_for_the_in_flight_message_and_commits_it(infra, topic_prefix, database):
    topic = f"{topic_prefix}shutdown"
    group = f"shutdown-{uuid.uuid4().hex[:6]}"
    settings = ServiceSettings(
        environment="test", database_url=await database("points"), kafka_bootstrap_servers=infra.kafka
    )
    shell = ServiceShell("probe", settings, database="unused", migrations=POINTS_MIGRATIONS, description="probe")
    started, release = asyncio.Event(), asyncio.Event()
    finished: list[bytes] = []

    @shell.broker.subscriber(topic, group_id=group, auto_offset_reset="earliest", ack_policy=AckPolicy.ACK)
    async def slow(body: bytes) -> None:
        started.set()
        await release.wait()
        finished.append(body)

    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka, acks="all")
    await producer.start()
    await producer.send_and_wait(topic, b"in-flight", partition=0)
    await producer.stop()

    await shell.start()
    await asyncio.wait_for(started.wait(), timeout=30)
    stopping = asyncio.create_task(shell.stop())
    await asyncio.sleep(0)  # let stop() begin while the handler still waits
    assert not stopping.done()
    release.set()
    await asyncio.wait_for(stopping, timeout=30)

    assert finished == [b"in-flight"]
    probe = AIOKafkaConsumer(bootstrap_servers=infra.kafka, group_id=group, enable_auto_commit=False)
    await probe.start()
    try:
        committed = await eventually(
            lambda: probe.committed(TopicPartition(topic, 0)), what="the offset of the finished message"
        )
    finally:
        await probe.stop()
    assert committed == 1
