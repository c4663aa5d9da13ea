"""How far behind its topics each consumer group of a service is: the ops API `GET /v1/ops/consumers`.

Every ServiceShell mounts it, for the groups its own subscribers consume with. The lag of a partition is its
end offset (the offset its next record will get) minus the group's position there: the committed offset (the
next record the group reads), or the partition's first offset where the group never committed (a new group
starts there, `auto_offset_reset="earliest"`) or where retention deleted records it had not read.

One answer is kept for CACHE_SECONDS, and requests meanwhile share it (or the one query in flight), so a
dashboard refreshing cannot hammer the broker. A broker that does not answer within TIMEOUT_SECONDS raises
KafkaTimeoutError, which the shell answers with 503 and Retry-After.

No `from __future__ import annotations` here: FastAPI must resolve the local `Ops` alias in the signature.
"""

import asyncio
import datetime as dt
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaTimeoutError
from fastapi import APIRouter, Depends
from faststream.kafka import KafkaBroker
from pydantic import BaseModel, Field

from loyalty_runtime.auth import Principal

TIMEOUT_SECONDS = 3.0
CACHE_SECONDS = 2.0


class PartitionLag(BaseModel):
    partition: int
    committed: int | None = Field(description="The group's committed offset; null if it never committed here.")
    end: int = Field(description="The offset the partition's next record will get.")
    lag: int = Field(description="Records the group has yet to read here.")


class GroupLag(BaseModel):
    group_id: str
    topic: str
    partitions: list[PartitionLag] = Field(description="Empty while the topic does not exist.")
    lag: int = Field(description="The sum over the partitions.")


class ConsumersLag(BaseModel):
    as_of: dt.datetime = Field(description="When the broker was asked (answers are reused for a couple of seconds).")
    groups: list[GroupLag]


@dataclass(frozen=True, order=True)
class Subscription:
    group_id: str
    topic: str


def subscriptions(broker: KafkaBroker) -> list[Subscription]:
    """The (group, topic) pairs the broker's subscribers consume in a consumer group, in a stable order."""
    found = {
        Subscription(group, topic)
        for subscriber in broker.subscribers
        if (group := getattr(subscriber, "group_id", None))
        for topic in subscriber.topic_names
    }
    return sorted(found)


@dataclass(frozen=True)
class _Offsets:
    """What the broker said: each topic's partitions, their first and end offsets, each group's commits."""

    partitions: dict[str, list[TopicPartition]]
    starts: dict[TopicPartition, int]
    ends: dict[TopicPartition, int]
    committed: dict[str, dict[TopicPartition, int]]


def _partition_lag(tp: TopicPartition, offsets: _Offsets, group_id: str) -> PartitionLag:
    committed = offsets.committed[group_id].get(tp, -1)
    start, end = offsets.starts[tp], offsets.ends[tp]
    position = max(committed, start)
    return PartitionLag(partition=tp.partition, committed=committed if committed >= 0 else None, end=end,
                        lag=max(end - position, 0))  # fmt: skip


def _report(subs: Iterable[Subscription], offsets: _Offsets, as_of: dt.datetime) -> ConsumersLag:
    groups = []
    for sub in subs:
        partitions = [_partition_lag(tp, offsets, sub.group_id) for tp in offsets.partitions[sub.topic]]
        groups.append(GroupLag(group_id=sub.group_id, topic=sub.topic, partitions=partitions,
                               lag=sum(p.lag for p in partitions)))  # fmt: skip
    return ConsumersLag(as_of=as_of, groups=groups)


class LagProbe:
    """Measures the lag of a service's consumer groups on demand, at most once per `ttl` seconds."""

    def __init__(
        self,
        bootstrap: str,
        client_id: str,
        subscriptions: Callable[[], list[Subscription]],
        *,
        timeout: float = TIMEOUT_SECONDS,
        ttl: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bootstrap = bootstrap
        self.client_id = client_id
        self.subscriptions = subscriptions
        self.timeout = timeout
        self.ttl = ttl
        self.clock = clock
        self._cached: tuple[float, ConsumersLag] | None = None
        self._in_flight: asyncio.Task[ConsumersLag] | None = None

    async def read(self) -> ConsumersLag:
        """The latest answer if younger than `ttl`, else the one query in flight (started if there is none)."""
        if self._cached is not None and self.clock() - self._cached[0] < self.ttl:
            return self._cached[1]
        if self._in_flight is None:
            self._in_flight = asyncio.create_task(self._measure_in_time(), name=f"{self.client_id}:consumer lag")
            self._in_flight.add_done_callback(self._landed)
        # Shielded: a caller that goes away does not cancel the query the others wait for.
        return await asyncio.shield(self._in_flight)

    def _landed(self, task: "asyncio.Task[ConsumersLag]") -> None:
        self._in_flight = None
        if not task.cancelled() and task.exception() is None:
            self._cached = (self.clock(), task.result())

    async def _measure_in_time(self) -> ConsumersLag:
        try:
            async with asyncio.timeout(self.timeout):
                return await self._measure()
        except TimeoutError:
            raise KafkaTimeoutError(f"the broker did not answer within {self.timeout:g} s") from None

    async def _measure(self) -> ConsumersLag:
        subs = self.subscriptions()
        as_of = dt.datetime.now(dt.UTC)
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, client_id=f"{self.client_id}-lag")
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, client_id=f"{self.client_id}-lag", group_id=None)
        try:
            await admin.start()
            await consumer.start()
            offsets = await _ask(admin, consumer, subs)
        finally:
            await consumer.stop()
            await admin.close()
        return _report(subs, offsets, as_of)


async def _ask(admin: AIOKafkaAdminClient, consumer: AIOKafkaConsumer, subs: list[Subscription]) -> _Offsets:
    """The offsets behind the lag of `subs`, through aiokafka's public admin and consumer calls."""
    topics = {s.topic for s in subs}
    partitions: dict[str, list[TopicPartition]] = {t: [] for t in topics}
    for described in await admin.describe_topics():  # every topic: asking for one by name would create it
        if described["topic"] in topics and not described["error_code"]:
            numbers = sorted(p["partition"] for p in described["partitions"])
            partitions[described["topic"]] = [TopicPartition(described["topic"], n) for n in numbers]
    every = [tp for tps in partitions.values() for tp in tps]
    starts = await consumer.beginning_offsets(every) if every else {}
    ends = await consumer.end_offsets(every) if every else {}
    committed: dict[str, dict[TopicPartition, int]] = {}
    for group in sorted({s.group_id for s in subs}):
        mine = [tp for s in subs if s.group_id == group for tp in partitions[s.topic]]
        found = await admin.list_consumer_group_offsets(group, partitions=mine) if mine else {}
        committed[group] = {tp: meta.offset for tp, meta in found.items()}
    return _Offsets(partitions, starts, ends, committed)


def router(probe: Callable[[], LagProbe], ops: Callable[..., Principal]) -> APIRouter:
    api = APIRouter(prefix="/v1/ops/consumers", tags=["consumers"])
    Ops = Annotated[Principal, Depends(ops)]

    @api.get(
        "", summary="How many records each of this service's consumer groups has yet to read, per partition",
        responses={401: {"description": "No valid bearer token."}, 403: {"description": "Not an ops token."},
                   503: {"description": "The broker did not answer in a few seconds; retry after Retry-After."}},
    )  # fmt: skip
    async def consumers(_caller: Ops) -> ConsumersLag:
        return await probe().read()

    return api
