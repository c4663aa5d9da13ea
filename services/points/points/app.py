"""Wiring only: settings, shell, consumers, routers."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from opentelemetry import trace

from loyalty_runtime.service import ServiceShell
from points import consumers
from points.adapters.store import PointsStore
from points.api import events
from points.settings import Settings

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def build(settings: Settings | None = None, *, tracer_provider: trace.TracerProvider | None = None) -> ServiceShell:
    settings = settings or Settings()
    shell = ServiceShell(
        "points",
        settings,
        database="loyalty_points",
        migrations=MIGRATIONS,
        description="Members, earn rules and the points ledger.",
        tracer_provider=tracer_provider,
    )
    consumers.register(shell, settings)
    shell.app.include_router(events.router(lambda: PointsStore(shell.pool)))
    return shell


def create_app() -> FastAPI:
    """Entry point for `uvicorn --factory points.app:create_app`."""
    return build().app
