"""Wiring only: settings, shell, consumers, routers."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from opentelemetry import trace

from loyalty_runtime.service import ServiceShell
from redemption.settings import Settings

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def build(settings: Settings | None = None, *, tracer_provider: trace.TracerProvider | None = None) -> ServiceShell:
    settings = settings or Settings()
    return ServiceShell(
        "redemption",
        settings,
        database="loyalty_redemption",
        migrations=MIGRATIONS,
        description="Redemption orders, the cross-partner catalog, vouchers and the redemption saga.",
        tracer_provider=tracer_provider,
    )


def create_app() -> FastAPI:
    """Entry point for `uvicorn --factory redemption.app:create_app`."""
    return build().app
