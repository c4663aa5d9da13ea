"""Wiring only: settings, shell, consumers, routers."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI, status
from opentelemetry import trace

from loyalty_runtime.auth import TokenAuthority, principal_dependency
from loyalty_runtime.service import ServiceShell
from redemption import consumers
from redemption.adapters.catalog_store import CatalogStore
from redemption.api import catalog
from redemption.domain.catalog import BadCursorError, OfferNotFoundError
from redemption.settings import Settings

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def build(settings: Settings | None = None, *, tracer_provider: trace.TracerProvider | None = None) -> ServiceShell:
    settings = settings or Settings()
    shell = ServiceShell(
        "redemption",
        settings,
        database="loyalty_redemption",
        migrations=MIGRATIONS,
        description="Redemption orders, the cross-partner catalog, vouchers and the redemption saga.",
        tracer_provider=tracer_provider,
    )
    consumers.register(shell, settings)
    authority = TokenAuthority(settings.jwt_secret)
    authenticate = principal_dependency(lambda: authority)
    shell.app.include_router(catalog.router(lambda: CatalogStore(shell.pool), authenticate, lambda: datetime.now(UTC)))
    shell.map_errors({OfferNotFoundError: status.HTTP_404_NOT_FOUND, BadCursorError: status.HTTP_400_BAD_REQUEST})
    return shell


def create_app() -> FastAPI:
    """Entry point for `uvicorn --factory redemption.app:create_app`."""
    return build().app
