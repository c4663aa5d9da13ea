"""A whole platform of its own (Kafka, PostgreSQL, the services) on free ports in one directory.

The fault tests and `make chaos` start one, break its processes on purpose and stop it when done;
it never touches what `make up` runs.

    fleet = Fleet(Path("/tmp/x"), kafka_nodes=3)
    await fleet.start()
    fleet.kill_service("points"); await fleet.start_service("points")
    await fleet.stop()
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path

from deploy.local.cluster import (
    KafkaCluster,
    Postgres,
    Processes,
    Service,
    free_ports,
    ready,
    start_service,
    wait_until_async,
)

DATABASES = {
    "partners": "loyalty_partners",
    "points": "loyalty_points",
    "redemption": "loyalty_redemption",
    "console": "loyalty_console",
}


class Fleet:
    def __init__(
        self,
        home: Path,
        *,
        kafka_nodes: int = 1,
        partitions: int = 4,
        services: Sequence[str] = ("partners", "points", "redemption"),
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.home = home
        self.partitions = partitions
        self.processes = Processes(home / "run", home / "logs")
        first_port = free_ports(2 * kafka_nodes, consecutive=True)[0]
        self.kafka = KafkaCluster(self.processes, home / "kafka", nodes=kafka_nodes, first_port=first_port)
        self.postgres = Postgres(home / "pg", free_ports(1)[0])
        ports = free_ports(len(services))
        self.services = {name: Service(name, port, DATABASES[name]) for name, port in zip(services, ports, strict=True)}
        self.extra_env = dict(env or {})

    def dsn(self, service: str) -> str:
        from loyalty_runtime.db import with_database

        return with_database(self.postgres.admin_url, self.services[service].database)

    def url(self, service: str) -> str:
        return self.services[service].url

    def env(self, service: str) -> dict[str, str]:
        return {
            **os.environ,
            **self._console_env(service),
            "DATABASE_URL": self.dsn(service),
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka.bootstrap,
            "KAFKA_REPLICATION_FACTOR": str(self.kafka.replication_factor),
            "KAFKA_MIN_INSYNC_REPLICAS": str(self.kafka.min_insync_replicas),
            "HTTP_PORT": str(self.services[service].port),
            "ENVIRONMENT": "test",
            **self.extra_env,
        }

    def _console_env(self, service: str) -> dict[str, str]:
        """The console calls this fleet's services, wherever they listen."""
        if service != "console":
            return {}
        urls = {f"{name.upper()}_URL": self.url(name) for name in self.services if name != "console"}
        return {**urls, "PUBLIC_URL": self.url("console")}

    async def start(self) -> None:
        """Kafka and PostgreSQL (side by side), the topics and databases, then every service, ready."""
        await asyncio.gather(asyncio.to_thread(self.kafka.start), asyncio.to_thread(self.postgres.start))
        await self._create_topics()
        await self._create_databases()
        for name in self.services:
            await self.start_service(name, wait=False)
        for name in self.services:
            await self.wait_ready(name)

    async def start_service(self, name: str, *, wait: bool = True) -> None:
        await asyncio.to_thread(start_service, self.processes, self.services[name], self.env(name))
        if wait:
            await self.wait_ready(name)

    async def wait_ready(self, name: str, timeout: float = 90) -> None:
        service = self.services[name]
        log = self.processes.log(name)
        await wait_until_async(f"{name} /ready", lambda: ready(service.port), timeout, log)

    def signal_service(self, name: str, sig: signal.Signals) -> bool:
        return self.processes.signal(name, sig)

    async def stop(self) -> None:
        """Stop everything it started, even what a test left paused."""
        for name in reversed(list(self.services)):
            await asyncio.to_thread(self.processes.stop, name)
        await asyncio.to_thread(self.kafka.stop)
        await asyncio.to_thread(self.postgres.stop)

    async def _create_topics(self) -> None:
        from contracts.topics import ALL_TOPICS
        from loyalty_runtime.kafka import ensure_topics

        await ensure_topics(
            self.kafka.bootstrap,
            ALL_TOPICS,
            partitions=self.partitions,
            replication_factor=self.kafka.replication_factor,
            min_insync_replicas=self.kafka.min_insync_replicas,
        )

    async def _create_databases(self) -> None:
        from loyalty_runtime import db

        for service in self.services.values():
            await db.ensure_database(self.postgres.admin_url, service.database)
