"""Run services in the test process, against the real broker and database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import httpx
from opentelemetry import trace

import partners.app
import partners.settings
import points.app
import points.settings
import redemption.app
import redemption.settings
from loyalty_runtime.service import ServiceShell


def points_service(
    kafka: str, dsn: str, prefix: str, *, provider: trace.TracerProvider | None = None, group: str | None = None
) -> ServiceShell:
    settings = points.settings.Settings(
        environment="test",
        database_url=dsn,
        kafka_bootstrap_servers=kafka,
        kafka_topic_prefix=prefix,
        consumer_group=group or f"points-{uuid.uuid4().hex[:8]}",
    )
    return points.app.build(settings, tracer_provider=provider)


def partners_service(
    kafka: str,
    dsn: str,
    prefix: str,
    *,
    provider: trace.TracerProvider | None = None,
    group: str | None = None,
    clock: Callable[[], datetime] | None = None,
) -> ServiceShell:
    """`clock` stands in for the service's clock (signatures' freshness, expiry of what it issues)."""
    settings = partners.settings.Settings(
        environment="test",
        database_url=dsn,
        kafka_bootstrap_servers=kafka,
        kafka_topic_prefix=prefix,
        consumer_group=group or f"partners-{uuid.uuid4().hex[:8]}",
    )
    return partners.app.build(settings, tracer_provider=provider, clock=clock or partners.app.utc_now)


def redemption_service(
    kafka: str,
    dsn: str,
    prefix: str,
    *,
    provider: trace.TracerProvider | None = None,
    group: str | None = None,
    partners: httpx.AsyncBaseTransport | None = None,
    **overrides: Any,
) -> ServiceShell:
    """`partners` answers the fulfilment callbacks in place of real partner systems."""
    settings = redemption.settings.Settings(
        environment="test",
        database_url=dsn,
        kafka_bootstrap_servers=kafka,
        kafka_topic_prefix=prefix,
        consumer_group=group or f"redemption-{uuid.uuid4().hex[:8]}",
        **overrides,
    )
    return redemption.app.build(settings, tracer_provider=provider, fulfilment_transport=partners)


@asynccontextmanager
async def running(shell: ServiceShell) -> AsyncIterator[ServiceShell]:
    await shell.start()
    try:
        yield shell
    finally:
        await shell.stop()


def http(shell: ServiceShell) -> httpx.AsyncClient:
    """An HTTP client that talks to the service's app in-process."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=shell.app), base_url=f"http://{shell.name}")
