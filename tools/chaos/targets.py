"""The nemesis' hands on a Fleet: signal a Kafka node, a service or PostgreSQL, bring it back, wait until whole."""

from __future__ import annotations

import asyncio
import logging
import signal
import time

from deploy.local.cluster import KafkaNode, port_open, wait_until_async
from deploy.local.fleet import Fleet
from tools.chaos.brokers import under_replicated
from tools.chaos.nemesis import FaultKind

log = logging.getLogger("chaos.targets")

KAFKA_FAULTS = (FaultKind.KAFKA_KILL, FaultKind.KAFKA_PAUSE)
SERVICE_FAULTS = (FaultKind.SERVICE_KILL, FaultKind.SERVICE_PAUSE)


class NotHealedError(RuntimeError):
    """The platform did not become whole again in time; the message says what is still missing."""


class FleetTargets:
    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet

    def node(self, name: str) -> KafkaNode:
        return next(node for node in self.fleet.kafka.nodes if node.name == name)

    def break_target(self, kind: FaultKind, target: str) -> bool:
        """SIGKILL or SIGSTOP the target; False when it was not running."""
        if kind in KAFKA_FAULTS:
            return self.fleet.kafka.signal(self.node(target), kind.signal)
        if kind in SERVICE_FAULTS:
            return self.fleet.signal_service(target, kind.signal)
        return self.fleet.postgres.signal_all(kind.signal)

    async def heal_target(self, kind: FaultKind, target: str) -> None:
        """Restart what was killed, resume what was paused."""
        if kind is FaultKind.KAFKA_KILL:
            await self.start_node(self.node(target))
        elif kind is FaultKind.KAFKA_PAUSE:
            self.fleet.kafka.signal(self.node(target), signal.SIGCONT)
        elif kind is FaultKind.SERVICE_KILL:
            await self.fleet.start_service(target)
        elif kind is FaultKind.SERVICE_PAUSE:
            self.fleet.signal_service(target, signal.SIGCONT)
        elif kind is FaultKind.POSTGRES_KILL:
            await asyncio.to_thread(self.fleet.postgres.start)
        else:
            self.fleet.postgres.signal_all(signal.SIGCONT)

    async def start_node(self, node: KafkaNode) -> None:
        """Spawn the node (quick), then wait for its port without holding a thread, so that Ctrl-C is not kept."""
        await asyncio.to_thread(self.fleet.kafka.start_node, node, wait=False)
        log = self.fleet.processes.log(node.name)
        await wait_until_async(f"Kafka node {node.node_id}", lambda: port_open(node.port), 90, log)

    async def wait_whole(self, timeout: float) -> None:
        """Every service ready and every Kafka partition led and fully in sync; raises NotHealedError."""
        deadline = time.monotonic() + timeout
        for name in self.fleet.services:
            await self.fleet.wait_ready(name, timeout=max(deadline - time.monotonic(), 1.0))
        await self.wait_in_sync(deadline)

    async def wait_in_sync(self, deadline: float) -> None:
        lagging: list[str] = ["(not asked yet)"]
        while time.monotonic() < deadline:
            try:
                lagging = await under_replicated(self.fleet.kafka.bootstrap)
            except Exception as error:  # a broker still starting answers with errors; ask again
                lagging = [f"{type(error).__name__}: {error}"]
            if not lagging:
                return
            await asyncio.sleep(0.5)
        raise NotHealedError(f"Kafka partitions still not fully in sync: {', '.join(lagging[:5])}")

    async def heal_everything(self, timeout: float = 180.0) -> None:
        """At the end, whatever happened: resume every paused process, start every stopped one, wait until whole."""
        kafka, postgres = self.fleet.kafka, self.fleet.postgres
        for node in kafka.nodes:
            kafka.signal(node, signal.SIGCONT)
            if not kafka.running(node):
                await self.start_node(node)
        postgres.signal_all(signal.SIGCONT)
        await asyncio.to_thread(postgres.start)
        for name in self.fleet.services:
            self.fleet.signal_service(name, signal.SIGCONT)
            if self.fleet.processes.pid(name) is None:
                await self.fleet.start_service(name, wait=False)
        await self.wait_whole(timeout)
