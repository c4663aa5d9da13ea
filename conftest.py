"""Fixtures shared by every test folder: the real Kafka and PostgreSQL that `make test` provides."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from contracts.topics import ALL_TOPICS
from loyalty_runtime import db
from loyalty_runtime.kafka import ensure_topics
from tests.support.kafka import delete_topics

SERVICE_MIGRATIONS = {
    name: Path(__file__).resolve().parent / "services" / name / "migrations"
    for name in ("partners", "points", "redemption", "console")
}


TEST_PARTITIONS = 4
"""Enough to spread members over several partitions, few enough that a run leaves the broker light."""


@dataclass(frozen=True)
class Infra:
    kafka: str
    admin_dsn: str
    run_id: str


@pytest.fixture(scope="session")
def infra() -> Infra:
    kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    admin = os.environ.get("TEST_DATABASE_ADMIN_URL")
    if not kafka or not admin:
        pytest.fail("integration tests need Kafka and PostgreSQL: run them with `make test`, which starts both")
    return Infra(kafka=kafka, admin_dsn=admin, run_id=uuid.uuid4().hex[:8])


@pytest.fixture
async def topic_prefix(infra: Infra) -> AsyncIterator[str]:
    """A fresh namespace of every topic, so each test reads only its own messages; deleted after the test."""
    prefix = f"test-{infra.run_id}-{uuid.uuid4().hex[:6]}."
    await ensure_topics(
        infra.kafka,
        ALL_TOPICS,
        prefix,
        partitions=TEST_PARTITIONS,
        replication_factor=int(os.environ.get("KAFKA_REPLICATION_FACTOR", "1")),
        min_insync_replicas=int(os.environ.get("KAFKA_MIN_INSYNC_REPLICAS", "1")),
    )
    yield prefix
    # Deleted now rather than at the end of the run: a broker holding thousands of partitions runs out of files.
    await delete_topics(infra.kafka, prefix)


@pytest.fixture(scope="session")
async def _templates(infra: Infra) -> AsyncIterator[dict[str, str]]:
    """Each service's migrations applied once into a template database (pgqueuer's trick)."""
    templates: dict[str, str] = {}
    for service, migrations in SERVICE_MIGRATIONS.items():
        name = f"tpl_{service}_{infra.run_id}"
        await db.ensure_database(infra.admin_dsn, name)
        await db.migrate(db.with_database(infra.admin_dsn, name), migrations)
        templates[service] = name
    yield templates
    for name in templates.values():
        await db.drop_database(infra.admin_dsn, name)


@pytest.fixture
async def database(infra: Infra, _templates: dict[str, str]) -> AsyncIterator[Callable[[str], Awaitable[str]]]:
    """`await database("points")` gives the DSN of a new, migrated database for this test only."""
    created: list[str] = []

    async def make(service: str) -> str:
        name = f"t_{service}_{uuid.uuid4().hex[:10]}"
        await db.ensure_database(infra.admin_dsn, name, template=_templates[service])
        created.append(name)
        return db.with_database(infra.admin_dsn, name)

    yield make
    for name in created:
        await db.drop_database(infra.admin_dsn, name)
