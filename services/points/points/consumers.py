"""FastStream subscribers: decode, call a handler. Offsets are committed after the handler's transaction."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Annotated

from faststream import Context
from faststream.kafka.message import KafkaMessage

from contracts.envelope import Event
from contracts.events.cards import CardPurchasePosted, CardReversalPosted
from contracts.events.holds import CaptureHold, HoldPoints, ReleaseHold
from contracts.events.links import LinkCodeIssued
from contracts.events.partners import PartnerPurchaseRecorded, PartnerRefundRecorded
from contracts.topics import CARD_TRANSACTIONS, HOLD_COMMANDS, LINK_CODES, PARTNER_PURCHASES, Topic
from loyalty_runtime.consumer import BatchConsumer, Delivery
from loyalty_runtime.service import ServiceShell
from points.adapters.card_rates import CardRatesCache
from points.adapters.store import PointsStore
from points.domain.card_rates import CardRates
from points.domain.link_codes import LinkCode
from points.handlers.earn import Fact, apply_earn_batch, to_fact
from points.handlers.holds import HoldResults, apply_hold_commands
from points.handlers.ledger_events import LedgerEventWriter
from points.handlers.link_codes import accept_issued_codes, issued_code
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

    async def before_batch(self) -> None:
        self._rates = await self.rates.get()

    def prepare(self, event: Event) -> Fact:
        assert self._rates is not None
        return to_fact(event, self._rates)

    async def apply(self, deliveries: Sequence[Delivery[Fact]]) -> None:
        correlations = {d.event.event_id: d.event.correlation_id for d in deliveries}
        outcome = await apply_earn_batch(
            PointsStore(self.shell.pool), self.name, [d.item for d in deliveries], correlations, self.events,
            self.settings.lot_validity, zone=self.settings.programme_zone,
        )  # fmt: skip
        log.debug("earn batch applied", extra={"topic": self.name, **outcome.counts})


class HoldCommandConsumer(BatchConsumer[Event]):
    """Hold, capture and release commands from the redemption saga: one transaction per batch."""

    span_name = "apply hold commands"

    def __init__(self, shell: ServiceShell, settings: Settings, events: LedgerEventWriter) -> None:
        super().__init__(shell, HOLD_COMMANDS, settings.consumer_group)
        self.settings = settings
        self.events = events

    async def apply(self, deliveries: Sequence[Delivery[Event]]) -> None:
        results = HoldResults(self.settings.kafka_topic_prefix)
        await apply_hold_commands(
            PointsStore(self.shell.pool), self.name, [d.item for d in deliveries], self.events, results
        )


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


def register(shell: ServiceShell, settings: Settings, rates: CardRatesCache, events: LedgerEventWriter) -> None:
    partner = EarnConsumer(shell, settings, PARTNER_PURCHASES, rates, events)
    card = EarnConsumer(shell, settings, CARD_TRANSACTIONS, rates, events)
    holds = HoldCommandConsumer(shell, settings, events)
    codes = LinkCodeConsumer(shell, settings)

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
