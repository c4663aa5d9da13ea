"""Wiring only: settings, shell, consumers, routers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import httpx
from fastapi import FastAPI, status
from opentelemetry import trace

from contracts.events.holds import CaptureHold, HoldPoints, ReleaseHold
from contracts.events.orders import OrderCancelled, OrderFulfilled, OrderPaymentFailed, OrderPlaced
from contracts.events.stock import OfferOutOfStock
from contracts.topics import HOLD_COMMANDS, OFFER_STOCK, REDEMPTION_ORDERS
from loyalty_runtime.auth import TokenAuthority, ops_dependency, principal_dependency
from loyalty_runtime.service import ServiceShell
from redemption import consumers
from redemption.adapters.catalog_store import CatalogStore
from redemption.adapters.fulfilment import PartnerFulfilment, Resolver, resolve
from redemption.adapters.fulfilment_keys_store import FulfilmentKeysStore
from redemption.adapters.orders_store import OrdersStore
from redemption.api import catalog, fulfilment_keys, orders
from redemption.data_rights import add_data_rights
from redemption.domain.catalog import BadCursorError, OfferNotFoundError
from redemption.domain.fulfilment_keys import BadGraceError, NoFulfilmentKeyError
from redemption.domain.orders import OrderRefusedError
from redemption.domain.prices import PriceChangedError
from redemption.handlers.orders import Saga, fulfil_due
from redemption.settings import Settings

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def build(
    settings: Settings | None = None,
    *,
    tracer_provider: trace.TracerProvider | None = None,
    fulfilment_transport: httpx.AsyncBaseTransport | None = None,
    resolver: Resolver = resolve,
) -> ServiceShell:
    """`fulfilment_transport` replaces the network for partner callbacks, `resolver` the DNS (tests)."""
    settings = settings or Settings()
    shell = ServiceShell(
        "redemption",
        settings,
        database="loyalty_redemption",
        migrations=MIGRATIONS,
        description="Redemption orders, the cross-partner catalog, vouchers and the redemption saga.",
        tracer_provider=tracer_provider,
    )
    saga = Saga(settings.kafka_topic_prefix, settings.hold_ttl, settings.fulfilment_timeout)
    consumers.register(shell, settings, saga)
    declare_publishers(shell, saga)
    add_routes(shell, settings, saga)
    shell.add_outbox_relay()
    partners = PartnerFulfilment(
        settings.fulfilment_signing_secret, fulfilment_transport, urls=settings.fulfilment_urls, resolver=resolver
    )
    shell.add_background("fulfilment", lambda: fulfilment_worker(shell, settings, saga, partners))
    return shell


def add_routes(shell: ServiceShell, settings: Settings, saga: Saga) -> None:
    authority = TokenAuthority(settings.jwt_secret)
    authenticate = principal_dependency(lambda: authority)
    shell.app.include_router(catalog.router(lambda: CatalogStore(shell.pool), authenticate, lambda: datetime.now(UTC)))
    shell.app.include_router(orders.router(lambda: OrdersStore(shell.pool), saga, authenticate))
    keys = fulfilment_keys.router(
        lambda: FulfilmentKeysStore(shell.pool),
        ops_dependency(authenticate),
        settings.fulfilment_signing_secret,
        settings.fulfilment_key_grace,
        lambda: datetime.now(UTC),
    )
    shell.app.include_router(keys)
    add_data_rights(shell, settings.consumer_group, authenticate, lambda: datetime.now(UTC))
    shell.map_errors(
        {
            OfferNotFoundError: status.HTTP_404_NOT_FOUND,
            BadCursorError: status.HTTP_400_BAD_REQUEST,
            OrderRefusedError: status.HTTP_409_CONFLICT,
            PriceChangedError: status.HTTP_409_CONFLICT,
            NoFulfilmentKeyError: status.HTTP_404_NOT_FOUND,
            BadGraceError: status.HTTP_400_BAD_REQUEST,
        }
    )


def declare_publishers(shell: ServiceShell, saga: Saga) -> None:
    """For the AsyncAPI document: every topic the service writes to (the outbox relay sends)."""
    declared = [
        (saga.commands, "hold commands", HOLD_COMMANDS.description, HoldPoints | CaptureHold | ReleaseHold),
        (saga.orders, "redemption orders", REDEMPTION_ORDERS.description,
         OrderPlaced | OrderFulfilled | OrderCancelled | OrderPaymentFailed),
        (saga.stock, "offer stock", OFFER_STOCK.description, OfferOutOfStock),  # webhooks: offer.out_of_stock
    ]  # fmt: skip
    for topic, title, description, schema in declared:
        shell.broker.publisher(topic, title=title, description=description, schema=schema)


async def fulfilment_worker(shell: ServiceShell, settings: Settings, saga: Saga, partners: PartnerFulfilment) -> None:
    """Until cancelled: call partners for the orders whose fulfilment is due."""
    while True:
        if not await fulfil_due(OrdersStore(shell.pool), saga, partners, FulfilmentKeysStore(shell.pool)):
            await asyncio.sleep(settings.fulfilment_poll_seconds)


def create_app() -> FastAPI:
    """Entry point for `uvicorn --factory redemption.app:create_app`."""
    return build().app
