"""Ops see how many records each consumer group of a service has yet to read, from the real broker."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from contracts.topics import HOLD_RESULTS, MEMBER_ERASURES, MEMBER_TIERS, OFFERS, SEGMENT_MEMBERS
from loyalty_runtime.auth import Role
from loyalty_runtime.consumer import group_of
from loyalty_runtime.consumer_lag import LagProbe
from loyalty_runtime.service import ServiceShell
from tests.support.ledger import AUTHORITY, OPS, member_headers
from tests.support.services import http, redemption_service

pytestmark = pytest.mark.integration

NOWHERE = "postgresql://postgres@127.0.0.1:1/unused"
"""The lag is the broker's business: the service is built, never started, and needs no database."""


async def produce(kafka: str, topic: str, counts: dict[int, int]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka, acks="all")
    await producer.start()
    try:
        for partition, count in counts.items():
            for n in range(count):
                await producer.send_and_wait(topic, f"record {n}".encode(), partition=partition)
    finally:
        await producer.stop()


async def commit(kafka: str, group: str, offsets: dict[TopicPartition, int]) -> None:
    """Commit for `group` as one of its consumers would, after reading up to these offsets."""
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit(offsets)
    finally:
        await consumer.stop()


def by_topic(answer: dict) -> dict[str, dict]:
    return {g["topic"]: g for g in answer["groups"]}


def lags(group: dict) -> list[tuple[int | None, int, int]]:
    return [(p["committed"], p["end"], p["lag"]) for p in group["partitions"]]


async def test_lag_counts_what_a_group_has_not_read_and_is_cached_for_two_seconds(infra, topic_prefix):
    group = f"redemption-{uuid.uuid4().hex[:8]}"
    shell: ServiceShell = redemption_service(infra.kafka, NOWHERE, topic_prefix, group=group)
    clock = [100.0]
    shell.consumer_lag.clock = lambda: clock[0]
    offers, holds = OFFERS.qualified(topic_prefix), HOLD_RESULTS.qualified(topic_prefix)
    tiers, segments = MEMBER_TIERS.qualified(topic_prefix), SEGMENT_MEMBERS.qualified(topic_prefix)
    await produce(infra.kafka, offers, {0: 5, 1: 2})

    async with http(shell) as api:
        answers = await asyncio.gather(*(api.get("/v1/ops/consumers", headers=OPS) for _ in range(5)))
        assert {a.status_code for a in answers} == {200}
        first = answers[0].json()
        assert {a.json()["as_of"] for a in answers} == {first["as_of"]}  # one query to the broker for all five
        groups = by_topic(first)
        assert set(groups) == {offers, holds, tiers, segments, MEMBER_ERASURES.qualified(topic_prefix)}
        # One group per topic the service reads, named after the service's group and the topic.
        assert {t: g["group_id"] for t, g in groups.items()} == {
            t: f"{group}.{t.removeprefix(topic_prefix)}" for t in groups
        }
        partitions = len(groups[offers]["partitions"])
        assert [p["partition"] for p in groups[offers]["partitions"]] == list(range(partitions))
        rest = [(None, 0, 0)] * (partitions - 2)
        assert (groups[offers]["lag"], lags(groups[offers])) == (7, [(None, 5, 5), (None, 2, 2), *rest])
        assert groups[holds]["lag"] == 0

        await produce(infra.kafka, offers, {1: 1})
        await commit(infra.kafka, group_of(group, OFFERS), {TopicPartition(offers, 0): 3})
        clock[0] += 1.5
        cached = (await api.get("/v1/ops/consumers", headers=OPS)).json()
        assert cached == first  # younger than two seconds: the broker is not asked again

        clock[0] += 1.0
        fresh = by_topic((await api.get("/v1/ops/consumers", headers=OPS)).json())
        assert (fresh[offers]["lag"], lags(fresh[offers])[:2]) == (5, [(3, 5, 2), (None, 3, 3)])


async def test_lag_is_for_ops_only(infra, topic_prefix):
    shell = redemption_service(infra.kafka, NOWHERE, topic_prefix)
    partner_staff = {"Authorization": f"Bearer {AUTHORITY.issue('staff-1', Role.PARTNER, partner_id='skyair')}"}
    async with http(shell) as api:
        assert (await api.get("/v1/ops/consumers")).status_code == 401
        assert (await api.get("/v1/ops/consumers", headers=member_headers(uuid.uuid4()))).status_code == 403
        assert (await api.get("/v1/ops/consumers", headers=partner_staff)).status_code == 403


async def test_a_broker_that_does_not_answer_in_time_gives_503_with_retry_after(infra, topic_prefix):
    unreachable = redemption_service("127.0.0.1:1", NOWHERE, topic_prefix)
    slow = redemption_service(infra.kafka, NOWHERE, topic_prefix)
    slow.consumer_lag = LagProbe(infra.kafka, "slow", slow.consumer_lag.subscriptions, timeout=0.001)
    for shell in (unreachable, slow):
        async with http(shell) as api:
            answer = await api.get("/v1/ops/consumers", headers=OPS)
        assert answer.status_code == 503, answer.text
        assert answer.headers["Retry-After"] == "2"
        assert "the event broker is unreachable" in answer.json()["detail"]
