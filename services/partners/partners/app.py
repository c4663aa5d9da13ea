"""Wiring only: settings, shell, stores, publishers, routers, background tasks."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Parts:
    """What the service's routes share: settings, the registry (cached), who signed a request, tokens, the clock."""

    shell: ServiceShell
    settings: Settings
    store: PartnerStore
    cached: CachingRegistry
    authenticator: PartnerAuthenticator
    tokens: TokenAuthority
    clock: Clock


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
    declare_publishers(shell)
    store = PartnerStore(lambda: shell.pool)
    cached = CachingRegistry(store, ttl=settings.credential_cache_seconds)
    authenticator = PartnerAuthenticator(cached, store, settings.partner_key_secret, clock)
    parts = Parts(shell, settings, store, cached, authenticator, TokenAuthority(settings.jwt_secret), clock)
    shell.app.include_router(registry.router(cached, authenticator, parts.tokens, settings.partner_key_secret, clock))
    add_intake(parts)
    add_offers_and_link_codes(parts)
    add_settlement(parts)
    add_exchanges(parts)
    errors.install(shell.app)
    add_webhooks(shell, settings, clock)
    add_data_rights(shell, settings, clock)
    shell.add_outbox_relay()
    add_contract_publication(shell, settings)
    shell.add_background("forget-expired-signatures", lambda: forget_expired_signatures(store, clock))
    return shell


def declare_publishers(shell: ServiceShell) -> None:
    """For the AsyncAPI document: the outbox relay sends them all, intake's purchases and refunds included."""
    declared = [
        (PARTNER_PURCHASES, "partner purchases and refunds", PartnerPurchaseRecorded | PartnerRefundRecorded),
        (OFFERS, "reward offers", OfferPublished | OfferWithdrawn),
        (LINK_CODES, "link codes", LinkCodeIssued),
        (EXCHANGE_DECISIONS, "exchange decisions", ExchangeConfirmed | ExchangeRefused),
    ]
    for topic, title, schema in declared:
        shell.broker.publisher(shell.topic(topic.name), title=title, description=topic.description, schema=schema)


def add_intake(parts: Parts) -> None:
    """Signed purchases and refunds (recorded with their events, which the outbox relay sends), and what partners
    read of them."""
    shell = parts.shell
    intake_log = IntakeStore(lambda: shell.pool, shell.topic(PARTNER_PURCHASES.name), tracer_provider=shell.provider)
    history_store = HistoryStore(lambda: shell.pool)
    shell.app.include_router(intake.router(parts.cached, intake_log, history_store, parts.authenticator, parts.clock))
    shell.app.include_router(history.router(history_store, parts.cached, parts.authenticator, parts.tokens))


def add_offers_and_link_codes(parts: Parts) -> None:
    shell, settings = parts.shell, parts.settings
    offer_store, offer_writer = OfferStore(lambda: shell.pool), OfferEvents(settings.kafka_topic_prefix)
    shell.app.include_router(offers.router(offer_store, offer_writer, parts.authenticator, parts.tokens, parts.clock))
    offers.install(shell.app)
    outbox, events = OutboxWriter(lambda: shell.pool), LinkCodeEvents(settings.kafka_topic_prefix)
    shell.app.include_router(
        link_codes.router(outbox, events, parts.authenticator, parts.tokens, parts.clock, settings.link_code_ttl)
    )


def add_settlement(parts: Parts) -> None:
    """The ledger's transfers, consumed into settlement entries; statements and their finalise runs."""
    shell, settings = parts.shell, parts.settings
    settlement = SettlementStore(lambda: shell.pool)
    transfers = consumers.register(shell, settings, settlement)
    ends = KafkaTopicEnds(settings.kafka_bootstrap_servers, transfers.name)
    margin = settings.settlement_margin_seconds
    shell.app.include_router(
        statements.router(
            settlement, parts.store, ends, transfers.name, parts.authenticator, parts.tokens, margin, parts.clock
        )
    )


def add_exchanges(parts: Parts) -> None:
    """Members' exchanges into partners' programmes: requests consumed from points, partners' decisions back."""
    shell, settings = parts.shell, parts.settings
    exchanges_store = ExchangesStore(lambda: shell.pool)
    consumers.register_exchanges(shell, settings, exchanges_store)
    prefix = settings.kafka_topic_prefix
    shell.app.include_router(exchanges.router(exchanges_store, parts.authenticator, parts.tokens, prefix, parts.clock))
    exchanges.install(shell.app)


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
