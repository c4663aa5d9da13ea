"""Wiring only: settings, shell, stores, publishers, routers, background tasks."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI
from opentelemetry import trace

from contracts.events.exchange import ExchangeConfirmed, ExchangeRefused
from contracts.events.liability import EarnContractVersionAdded
from contracts.events.links import LinkCodeIssued
from contracts.events.offers import OfferPublished, OfferWithdrawn
from contracts.events.partners import PartnerPurchaseRecorded, PartnerRefundRecorded
from contracts.topics import EXCHANGE_DECISIONS, LINK_CODES, OFFERS, PARTNER_CONTRACTS, PARTNER_PURCHASES
from loyalty_runtime.auth import TokenAuthority
from loyalty_runtime.service import ServiceShell
from partners import consumers
from partners.adapters.cache import CachingRegistry
from partners.adapters.contract_publications import ContractPublications
from partners.adapters.events import KafkaEventPublisher
from partners.adapters.exchanges_store import ExchangesStore
from partners.adapters.history_store import HistoryStore
from partners.adapters.intake_store import IntakeStore
from partners.adapters.ledger_offsets import KafkaTopicEnds
from partners.adapters.offers_store import OfferStore
from partners.adapters.outbox import OutboxWriter
from partners.adapters.settlement_store import SettlementStore
from partners.adapters.store import PartnerStore
from partners.api import (
    errors,
    exchanges,
    history,
    intake,
    link_codes,
    offers,
    registry,
    statements,
)
from partners.data_rights import add_data_rights
from partners.handlers.authentication import Clock, PartnerAuthenticator, forget_expired_signatures
from partners.handlers.contract_events import ContractEvents, publish_contract_versions
from partners.handlers.link_codes import LinkCodeEvents
from partners.handlers.offers import OfferEvents
from partners.settings import Settings
from partners.webhooks_app import add_webhooks

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def utc_now() -> datetime:
    return datetime.now(UTC)


def build(
    settings: Settings | None = None,
    *,
    tracer_provider: trace.TracerProvider | None = None,
    clock: Clock = utc_now,
) -> ServiceShell:
    settings = settings or Settings()
    shell = ServiceShell(
        "partners",
        settings,
        database="loyalty_partners",
        migrations=MIGRATIONS,
        description="Partner registry, earn contracts, purchase and refund intake, offers and settlement.",
        tracer_provider=tracer_provider,
    )
    shell.broker.publisher(  # declared for the AsyncAPI document; intake sends with its own producer
        shell.topic(PARTNER_PURCHASES.name),
        title="partner purchases and refunds",
        description=PARTNER_PURCHASES.description,
        schema=PartnerPurchaseRecorded | PartnerRefundRecorded,
    )
    shell.broker.publisher(  # declared for the AsyncAPI document; the outbox relay sends
        shell.topic(OFFERS.name),
        title="reward offers",
        description=OFFERS.description,
        schema=OfferPublished | OfferWithdrawn,
    )
    shell.broker.publisher(  # declared for the AsyncAPI document; the outbox relay sends
        shell.topic(LINK_CODES.name),
        title="link codes",
        description=LINK_CODES.description,
        schema=LinkCodeIssued,
    )

    store = PartnerStore(lambda: shell.pool)
    cached = CachingRegistry(store, ttl=settings.credential_cache_seconds)
    authenticator = PartnerAuthenticator(cached, store, settings.partner_key_secret, clock)
    tokens = TokenAuthority(settings.jwt_secret)

    shell.app.include_router(registry.router(cached, authenticator, tokens, settings.partner_key_secret, clock))
    partner_events = KafkaEventPublisher(
        settings.kafka_bootstrap_servers,
        shell.topic(PARTNER_PURCHASES.name),
        client_id=shell.name,
        tracer_provider=shell.provider,
    )
    shell.add_background("intake producer", partner_events.run)
    intake_log, history_store = IntakeStore(lambda: shell.pool), HistoryStore(lambda: shell.pool)
    shell.app.include_router(intake.router(partner_events, cached, intake_log, history_store, authenticator, clock))
    shell.app.include_router(history.router(history_store, cached, authenticator, tokens))
    offer_store, offer_writer = OfferStore(lambda: shell.pool), OfferEvents(settings.kafka_topic_prefix)
    shell.app.include_router(offers.router(offer_store, offer_writer, authenticator, tokens, clock))
    shell.app.include_router(
        link_codes.router(
            OutboxWriter(lambda: shell.pool),
            LinkCodeEvents(settings.kafka_topic_prefix),
            authenticator,
            tokens,
            clock,
            settings.link_code_ttl,
        )
    )
    settlement = SettlementStore(lambda: shell.pool)
    transfers = consumers.register(shell, settings, settlement)
    ends = KafkaTopicEnds(settings.kafka_bootstrap_servers, transfers.name)
    shell.app.include_router(
        statements.router(
            settlement, store, ends, transfers.name, authenticator, tokens, settings.settlement_margin_seconds, clock
        )
    )
    exchanges_store = ExchangesStore(lambda: shell.pool)
    consumers.register_exchanges(shell, settings, exchanges_store)
    prefix = settings.kafka_topic_prefix
    shell.app.include_router(exchanges.router(exchanges_store, authenticator, tokens, prefix, clock))
    exchanges.install(shell.app)
    shell.broker.publisher(  # declared for the AsyncAPI document; the outbox relay sends
        shell.topic(EXCHANGE_DECISIONS.name),
        title="exchange decisions",
        description=EXCHANGE_DECISIONS.description,
        schema=ExchangeConfirmed | ExchangeRefused,
    )
    errors.install(shell.app)
    offers.install(shell.app)
    add_webhooks(shell, settings, clock)
    add_data_rights(shell, settings, clock)
    shell.add_outbox_relay()
    add_contract_publication(shell, settings)
    shell.add_background("forget-expired-signatures", lambda: forget_expired_signatures(store, clock))
    return shell


def add_contract_publication(shell: ServiceShell, settings: Settings) -> None:
    """Every earn contract version leaves through the outbox for the points service's liability (issue prices)."""
    shell.broker.publisher(  # declared for the AsyncAPI document; the outbox relay sends
        shell.topic(PARTNER_CONTRACTS.name),
        title="partner contracts",
        description=PARTNER_CONTRACTS.description,
        schema=EarnContractVersionAdded,
    )
    publications, events = ContractPublications(lambda: shell.pool), ContractEvents(settings.kafka_topic_prefix)

    async def publish() -> None:
        while True:
            await publish_contract_versions(publications, events)
            await asyncio.sleep(settings.contract_publish_interval_seconds)

    shell.add_background("contract publication", publish)


def create_app() -> FastAPI:
    """Entry point for `uvicorn --factory partners.app:create_app`."""
    return build().app
