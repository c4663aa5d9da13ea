"""FastStream subscribers: decode, call a handler. Offsets are committed after the handler's transaction."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Annotated

import asyncpg
from faststream import Context
from faststream.kafka.message import KafkaMessage

from contracts.envelope import Event
from contracts.events.cards import CardPurchasePosted, CardReversalPosted
from contracts.events.exchange import CardPointsConverted, ExchangeConfirmed, ExchangeRefused
from contracts.events.holds import CaptureHold, HoldPoints, ReleaseHold
from contracts.events.liability import EarnContractVersionAdded
from contracts.events.links import LinkCodeIssued
from contracts.events.partners import PartnerPurchaseRecorded, PartnerRefundRecorded
from contracts.topics import (
    CARD_POINTS_EXCHANGES,
    CARD_TRANSACTIONS,
    EXCHANGE_DECISIONS,
    HOLD_COMMANDS,
    LINK_CODES,
    PARTNER_CONTRACTS,
    PARTNER_PURCHASES,
    Topic,
)
from loyalty_runtime.consumer import BatchConsumer, Delivery
from loyalty_runtime.dead_letters import Letter
from loyalty_runtime.outbox import enqueue
from loyalty_runtime.service import ServiceShell
from points.adapters.card_rates import CardRatesCache
from points.adapters.exchange_store import ExchangeSql
from points.adapters.liability_store import LiabilityStore
from points.adapters.store import PointsStore
from points.domain.card_rates import CardRates
from points.domain.exchange import DatedRate, convert_in
from points.domain.liability import IssuePrice
from points.domain.link_codes import LinkCode
from points.domain.velocity import VelocityRules
from points.handlers.earn import Fact, apply_earn_batch, to_fact
from points.handlers.exchange import CardConversion, apply_card_conversions, apply_exchange_decisions
from points.handlers.holds import HoldResults, apply_hold_commands
from points.handlers.ledger_events import LedgerEventWriter
from points.handlers.liability import contract_price, record_contract_prices
from points.handlers.link_codes import accept_issued_codes, issued_code
from points.handlers.purchase_outcomes import refusal_messages
from points.handlers.velocity import rules_cache
from points.settings import Settings

log = logging.getLogger(__name__)


class EarnConsumer(BatchConsumer[Fact]):
    """Purchases, refunds and card transactions into the ledger: one transaction per batch."""

    span_name = "apply"

    def __init__(
        self, shell: ServiceShell, settings: Settings, topic: Topic, rates: CardRatesCache, events: LedgerEventWriter
    ) -> None:
        super().__init__(shell, topic, settings.consumer_group)
        self.settings = settings
        self.rates = rates
        self.events = events
        self._rates: CardRates | None = None
        self.velocity = rules_cache(shell)
        self._velocity: VelocityRules | None = None

    async def before_batch(self) -> None:
        self._rates = await self.rates.get()
        self._velocity = await self.velocity.get()

    def prepare(self, event: Event) -> Fact:
        assert self._rates is not None
        return to_fact(event, self._rates)

    async def refused(self, conn: asyncpg.Connection, letters: Sequence[Letter]) -> None:
        """Partners hear of their refused purchases and refunds (webhooks), in the dead letters' transaction."""
        if self.topic is PARTNER_PURCHASES:
            await enqueue(conn, refusal_messages(letters, self.settings.kafka_topic_prefix))

    async def apply(self, deliveries: Sequence[Delivery[Fact]]) -> None:
        correlations = {d.event.event_id: d.event.correlation_id for d in deliveries}
        outcome = await apply_earn_batch(
            PointsStore(self.shell.pool), self.name, [d.item for d in deliveries], correlations, self.events,
            self.settings.lot_validity, zone=self.settings.programme_zone, rules=self._velocity,
        )  # fmt: skip
        log.debug("earn batch applied", extra={"topic": self.name, **outcome.counts})


class HoldCommandConsumer(BatchConsumer[Event]):
    """Hold, capture and release commands from the redemption saga: one transaction per batch."""

    span_name = "apply hold commands"

    def __init__(self, shell: ServiceShell, settings: Settings, events: LedgerEventWriter) -> None:
        super().__init__(shell, HOLD_COMMANDS, settings.consumer_group)
        self.settings = settings
        self.events = events
        self.velocity = rules_cache(shell)

    async def apply(self, deliveries: Sequence[Delivery[Event]]) -> None:
        results = HoldResults(self.settings.kafka_topic_prefix)
        rules = await self.velocity.get()
        await apply_hold_commands(
            PointsStore(self.shell.pool), self.name, [d.item for d in deliveries], self.events, results,
            redemptions_per_day=rules.redemptions_per_day,
        )  # fmt: skip


class LinkCodeConsumer(BatchConsumer[LinkCode]):
    """Link codes that partners issued (their hashes), kept until a member uses them: one transaction per batch."""

    span_name = "accept link codes"

    def __init__(self, shell: ServiceShell, settings: Settings) -> None:
        super().__init__(shell, LINK_CODES, settings.consumer_group)

    def prepare(self, event: Event) -> LinkCode:
        assert isinstance(event, LinkCodeIssued)
        return issued_code(event)

    async def apply(self, deliveries: Sequence[Delivery[LinkCode]]) -> None:
        codes = [(d.event.event_id, d.item) for d in deliveries]
        await accept_issued_codes(PointsStore(self.shell.pool), self.name, codes)


class CardPointsConsumer(BatchConsumer[CardConversion]):
    """Card points the card system debited, credited as alliance points (points exchange): one transaction per batch.

    A conversion without a rate in force, or worth less than a point, is refused in `prepare`: dead-lettered."""

    span_name = "convert card points"

    def __init__(self, shell: ServiceShell, settings: Settings, events: LedgerEventWriter) -> None:
        super().__init__(shell, CARD_POINTS_EXCHANGES, settings.consumer_group)
        self.settings = settings
        self.events = events
        self._rates: list[DatedRate] = []

    async def before_batch(self) -> None:
        async with PointsStore(self.shell.pool).transaction() as tx:
            self._rates = await ExchangeSql(tx.conn).card_points_rates()

    def prepare(self, event: Event) -> CardConversion:
        assert isinstance(event, CardPointsConverted)
        return CardConversion(event, convert_in(event.payload.card_points, self._rates, event.occurred_at))

    async def apply(self, deliveries: Sequence[Delivery[CardConversion]]) -> None:
        await apply_card_conversions(PointsStore(self.shell.pool), self.name, [d.item for d in deliveries],
                                     self.events, self.settings.lot_validity)  # fmt: skip


class ExchangeDecisionConsumer(BatchConsumer[Event]):
    """Partners' decisions on exchanges: capture or release their holds, one transaction per batch."""

    span_name = "apply exchange decisions"

    def __init__(self, shell: ServiceShell, settings: Settings, events: LedgerEventWriter) -> None:
        super().__init__(shell, EXCHANGE_DECISIONS, settings.consumer_group)
        self.settings = settings
        self.events = events

    async def apply(self, deliveries: Sequence[Delivery[Event]]) -> None:
        await apply_exchange_decisions(PointsStore(self.shell.pool), self.name, [d.item for d in deliveries],
                                       self.events, self.settings.kafka_topic_prefix)  # fmt: skip


def register_exchange(shell: ServiceShell, settings: Settings, events: LedgerEventWriter) -> None:
    """The points exchange's consumers (card points in, partners' decisions out)."""
    card_points = CardPointsConsumer(shell, settings, events)
    decisions = ExchangeDecisionConsumer(shell, settings, events)

    @shell.broker.subscriber(card_points.name, **card_points.subscriber_options())  # type: ignore[call-overload]
    async def on_card_points(
        batch: list[CardPointsConverted], message: Annotated[KafkaMessage, Context("message")]
    ) -> None:
        await card_points.consume(batch, message)

    @shell.broker.subscriber(decisions.name, **decisions.subscriber_options())  # type: ignore[call-overload]
    async def on_exchange_decisions(
        batch: list[ExchangeConfirmed | ExchangeRefused], message: Annotated[KafkaMessage, Context("message")]
    ) -> None:
        await decisions.consume(batch, message)


class ContractPriceConsumer(BatchConsumer[IssuePrice]):
    """Partners' earn contract versions into the issue price table (liability): one transaction per batch."""

    span_name = "record issue prices"

    def __init__(self, shell: ServiceShell, settings: Settings) -> None:
        super().__init__(shell, PARTNER_CONTRACTS, settings.consumer_group)

    def prepare(self, event: Event) -> IssuePrice:
        assert isinstance(event, EarnContractVersionAdded)
        return contract_price(event)

    async def apply(self, deliveries: Sequence[Delivery[IssuePrice]]) -> None:
        priced = [(d.event.event_id, d.item) for d in deliveries]
        await record_contract_prices(LiabilityStore(self.shell.pool), self.name, priced)


def register_contract_prices(shell: ServiceShell, settings: Settings) -> None:
    """Issue prices from partners' earn contracts (loyalty.partner-contracts.v1)."""
    contracts = ContractPriceConsumer(shell, settings)

    @shell.broker.subscriber(contracts.name, **contracts.subscriber_options())  # type: ignore[call-overload]
    async def on_partner_contracts(
        batch: list[EarnContractVersionAdded], message: Annotated[KafkaMessage, Context("message")]
    ) -> None:
        await contracts.consume(batch, message)


def register(shell: ServiceShell, settings: Settings, rates: CardRatesCache, events: LedgerEventWriter) -> None:
    partner = EarnConsumer(shell, settings, PARTNER_PURCHASES, rates, events)
    card = EarnConsumer(shell, settings, CARD_TRANSACTIONS, rates, events)
    holds = HoldCommandConsumer(shell, settings, events)
    codes = LinkCodeConsumer(shell, settings)
    register_exchange(shell, settings, events)

    @shell.broker.subscriber(holds.name, **holds.subscriber_options())  # type: ignore[call-overload]
    async def on_hold_commands(
        batch: list[HoldPoints | CaptureHold | ReleaseHold],
        message: Annotated[KafkaMessage, Context("message")],
    ) -> None:
        await holds.consume(batch, message)

    @shell.broker.subscriber(partner.name, **partner.subscriber_options())  # type: ignore[call-overload]
    async def on_partner_events(
        batch: list[PartnerPurchaseRecorded | PartnerRefundRecorded],
        message: Annotated[KafkaMessage, Context("message")],
    ) -> None:
        await partner.consume(batch, message)

    @shell.broker.subscriber(card.name, **card.subscriber_options())  # type: ignore[call-overload]
    async def on_card_transactions(
        batch: list[CardPurchasePosted | CardReversalPosted],
        message: Annotated[KafkaMessage, Context("message")],
    ) -> None:
        await card.consume(batch, message)

    @shell.broker.subscriber(codes.name, **codes.subscriber_options())  # type: ignore[call-overload]
    async def on_link_codes(
        batch: list[LinkCodeIssued],
        message: Annotated[KafkaMessage, Context("message")],
    ) -> None:
        await codes.consume(batch, message)
