"""The shell every service runs in: HTTP app, Kafka broker, database pool, health and shutdown.

A service's `app.py` builds one `ServiceShell`, registers its consumers on `shell.broker`
and its routers on `shell.app`; the shell owns start-up and graceful shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka.errors import KafkaError
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from faststream.specification import AsyncAPI
from opentelemetry import trace

from loyalty_runtime import audit_api, consumer_lag, db, dead_letter_api, telemetry
from loyalty_runtime.audit_http import AuditMiddleware
from loyalty_runtime.auth import Principal, TokenAuthority, ops_dependency, principal_dependency
from loyalty_runtime.dead_letters import DeadLetterStore
from loyalty_runtime.failures import is_transient
from loyalty_runtime.kafka import build_broker
from loyalty_runtime.outbox import OutboxRelay
from loyalty_runtime.settings import ServiceSettings

log = logging.getLogger(__name__)

BackgroundTask = Callable[[], Awaitable[None]]
"""A coroutine that runs for the whole life of the service, e.g. an outbox relay."""


RETRY_AFTER_SECONDS = 2


class NotStartedError(RuntimeError):
    pass


def dependency_of(error: BaseException) -> str:
    """Which dependency an error came from (its class, or the library its traceback went through)."""
    current: BaseException | None = error
    while current is not None:
        if isinstance(current, asyncpg.PostgresError | asyncpg.InterfaceError | asyncpg.InternalClientError):
            return "the database"
        if isinstance(current, KafkaError):
            return "the event broker"
        modules = {str(frame.f_globals.get("__name__", "")) for frame, _ in traceback.walk_tb(current.__traceback__)}
        if any(m.startswith("asyncpg") for m in modules):
            return "the database"
        if any(m.startswith("aiokafka") for m in modules):
            return "the event broker"
        current = current.__cause__ or current.__context__
    return "the database or the event broker"


class ServiceShell:
    def __init__(
        self,
        name: str,
        settings: ServiceSettings,
        *,
        database: str,
        migrations: Path,
        description: str,
        tracer_provider: trace.TracerProvider | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.dsn = settings.dsn(database)
        self.migrations = migrations
        self.provider = tracer_provider or telemetry.build_tracer_provider(name)
        self.tracer = self.provider.get_tracer(name)
        self.broker = build_broker(settings, name, self.provider)
        self._pool: asyncpg.Pool | None = None
        self._background: list[tuple[str, BackgroundTask]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.app = FastAPI(title=f"{name} service", description=description, version="1.0.0", lifespan=self._lifespan)
        self.app.include_router(self._health_router())
        self.app.include_router(self._dead_letter_router())
        self.consumer_lag = consumer_lag.LagProbe(
            settings.kafka_bootstrap_servers, name, lambda: consumer_lag.subscriptions(self.broker)
        )
        self.app.include_router(self._consumer_lag_router())
        self.app.include_router(audit_api.router(name, lambda: self.pool, self._ops()))
        self._answer_unavailable_dependencies()
        self._audit_ops_writes()
        telemetry.instrument_http(self.app, self.provider)

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise NotStartedError(f"{self.name}: the database pool exists only while the service runs")
        return self._pool

    def topic(self, name: str) -> str:
        return self.settings.kafka_topic_prefix + name

    def map_errors(self, statuses: dict[type[Exception], int]) -> None:
        """Answer these domain errors with the given HTTP status and the error's own message."""

        async def answer(_request: Request, error: Exception) -> JSONResponse:
            status = next(code for kind, code in statuses.items() if isinstance(error, kind))
            return JSONResponse({"detail": str(error)}, status_code=status)

        for kind in statuses:
            self.app.add_exception_handler(kind, answer)

    def _answer_unavailable_dependencies(self) -> None:
        """While the database or the broker is unreachable, every endpoint answers 503 with Retry-After, never 500."""

        async def unavailable(request: Request, error: Exception) -> JSONResponse:
            if not is_transient(error):
                raise error  # a real server error: the default 500 handling logs it
            dependency = dependency_of(error)
            log.warning(
                "request refused: a dependency is unreachable",
                extra={"path": request.url.path, "dependency": dependency, "error": f"{type(error).__name__}: {error}"},
            )
            return JSONResponse(
                {"detail": f"{dependency} is unreachable for a moment; nothing was changed. Retry in a few seconds."},
                status_code=503,
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )

        database = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError)
        for kind in (OSError, TimeoutError, *database, KafkaError):
            self.app.add_exception_handler(kind, unavailable)

    def _audit_ops_writes(self) -> None:
        """Every write an ops token makes lands in the audit log (audit_http.py); inside the tracing middleware."""
        authority = TokenAuthority(self.settings.jwt_secret)
        self.app.add_middleware(
            AuditMiddleware, service=self.name, pool=lambda: self.pool, authority=lambda: authority,
            routes=lambda: self.app.routes,
        )  # fmt: skip

    def add_outbox_relay(self) -> None:
        """Publish the service's outbox table for as long as the service runs."""
        relay = OutboxRelay(lambda: self.pool, self.settings.kafka_bootstrap_servers, client_id=self.name)
        self.add_background("outbox relay", relay.run)

    def add_background(self, name: str, task: BackgroundTask) -> None:
        self._background.append((name, task))

    def asyncapi(self) -> dict[str, Any]:
        spec = AsyncAPI(self.broker, title=f"{self.name} service", version="1.0.0", description=self.app.description)
        document: dict[str, Any] = spec.to_specification().to_jsonable()
        return document

    async def start(self) -> None:
        telemetry.instrument_database(self.provider)
        await db.wait_for_database(self.dsn)
        self._pool = await db.create_pool(
            self.dsn, min_size=self.settings.database_pool_min, max_size=self.settings.database_pool_max
        )
        try:
            async with asyncio.timeout(self.settings.startup_timeout_seconds):
                await self.broker.start()
        except TimeoutError:
            await self._pool.close()
            self._pool = None
            raise ConnectionError(
                f"Kafka at {self.settings.kafka_bootstrap_servers} did not answer within "
                f"{self.settings.startup_timeout_seconds:.0f} s; is it running (`make up`)?"
            ) from None
        for name, task in self._background:
            self._tasks.append(asyncio.create_task(self._supervise(name, task), name=f"{self.name}:{name}"))
        log.info("service started", extra={"kafka": self.settings.kafka_bootstrap_servers, "db": db.redact(self.dsn)})

    async def stop(self) -> None:
        """Stop taking messages, let in-flight ones finish (bounded by the grace period), then close."""
        log.info("service stopping")
        # Background work first (the outbox relay publishes through the broker's producer), then the
        # consumers, which finish the batch in flight and commit it.
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            _done, pending = await asyncio.wait(self._tasks, timeout=self.settings.shutdown_grace_seconds)
            for task in pending:  # never hang the shutdown on a task that ignores its cancellation
                log.error("background task did not stop; leaving it", extra={"task": task.get_name()})
        self._tasks.clear()
        await self.broker.stop()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        log.info("service stopped")

    async def _supervise(self, name: str, task: BackgroundTask) -> None:
        """Restart a background task that failed, after a pause, so one error does not stop it for good."""
        while True:
            try:
                await task()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background task failed; restarting in 1 s", extra={"task": name})
                await asyncio.sleep(1.0)

    @asynccontextmanager
    async def _lifespan(self, _app: FastAPI) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.stop()

    def _health_router(self) -> APIRouter:
        router = APIRouter(tags=["health"])

        @router.get("/health", summary="The process is alive")
        async def health() -> dict[str, str]:
            return {"status": "ok", "service": self.name}

        @router.get("/ready", summary="Database and broker are reachable", response_model=None)
        async def ready() -> JSONResponse:
            checks = {"database": self._check_database(), "kafka": self._check_kafka()}
            results = dict(zip(checks, await asyncio.gather(*checks.values()), strict=True))
            ok = all(result == "ok" for result in results.values())
            status = 200 if ok else 503
            return JSONResponse({"status": "ready" if ok else "not ready", "checks": results}, status_code=status)

        @router.get("/asyncapi.json", summary="AsyncAPI document of this service's topics", tags=["docs"])
        async def asyncapi() -> dict[str, Any]:
            return self.asyncapi()

        return router

    def _ops(self) -> Callable[..., Principal]:
        authority = TokenAuthority(self.settings.jwt_secret)
        return ops_dependency(principal_dependency(lambda: authority))

    def _dead_letter_router(self) -> APIRouter:
        return dead_letter_api.router(self.name, lambda: DeadLetterStore(self.pool, self.name), self._ops())

    def _consumer_lag_router(self) -> APIRouter:
        return consumer_lag.router(lambda: self.consumer_lag, self._ops())

    async def _check_database(self) -> str:
        try:
            async with asyncio.timeout(2):
                await self.pool.fetchval("SELECT 1")
        except Exception as error:  # a readiness probe reports any failure instead of raising
            return f"failed: {type(error).__name__}: {error}"
        return "ok"

    async def _check_kafka(self) -> str:
        try:
            reachable = await self.broker.ping(timeout=2)
        except Exception as error:
            return f"failed: {type(error).__name__}: {error}"
        return "ok" if reachable else f"failed: broker {self.settings.kafka_bootstrap_servers} not reachable"
