"""Wiring only: settings, shell, publishers, routers."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from opentelemetry import trace

from contracts.events.partners import PartnerPurchaseRecorded, PartnerRefundRecorded
from contracts.topics import PARTNER_PURCHASES
from loyalty_runtime.service import ServiceShell
from partners.adapters.events import KafkaEventPublisher
from partners.api import purchases
from partners.settings import Settings

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def build(settings: Settings | None = None, *, tracer_provider: trace.TracerProvider | None = None) -> ServiceShell:
    settings = settings or Settings()
    shell = ServiceShell(
        "partners",
        settings,
        database="loyalty_partners",
        migrations=MIGRATIONS,
        description="Partner registry, purchase and refund intake, offers and settlement.",
        tracer_provider=tracer_provider,
    )
    partner_events = shell.broker.publisher(
        shell.topic(PARTNER_PURCHASES.name),
        title="partner purchases and refunds",
        description=PARTNER_PURCHASES.description,
        schema=PartnerPurchaseRecorded | PartnerRefundRecorded,
    )
    shell.app.include_router(purchases.router(KafkaEventPublisher(partner_events)))
    return shell


def create_app() -> FastAPI:
    """Entry point for `uvicorn --factory partners.app:create_app`."""
    return build().app
