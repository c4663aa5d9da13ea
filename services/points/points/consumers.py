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
from contracts.events.partners import PartnerPurchaseRecorded, PartnerRefundRecorded
from contracts.topics import CARD_TRANSACTIONS, HOLD_COMMANDS, PARTNER_PURCHASES, Topic
from loyalty_runtime.kafka import BatchConsumer, Rejected, accepted, rejected
from loyalty_runtime.service import ServiceShell
from loyalty_runtime.telemetry import message_spans
from points.adapters.card_rates import CardRatesCache
from points.adapters.store import PointsStore
from points.handlers.earn import Fact, UnprocessableEventError, apply_earn_batch, to_fact
from points.handlers.holds import HoldResults, apply_hold_commands
from points.handlers.ledger_events import LedgerEventWriter
from points.settings import Settings

log = logging.getLogger(__name__)


class EarnConsumer(BatchConsumer):
    def __init__(
        self, shell: ServiceShell, settings: Settings, topic: Topic, rates: CardRatesCache, events: LedgerEventWriter
    ) -> None:
        super().__init__(shell, topic, settings.consumer_group)
        self.settings = settings
        self.rates = rates
        self.events = events

    async def consume(self, events: Sequence[Event], message: KafkaMessage) -> None:
        refused = rejected(message)
        rates = await self.rates.get()
        facts: list[Fact] = []
        headers: list[dict[str, str]] = []
        for event, origin in zip(events, accepted(message), strict=True):
            try:
                facts.append(to_fact(event, rates))
                headers.append(origin.headers)
            except UnprocessableEventError as error:
                refused.append(Rejected(origin.record, str(error)))
        await self.dead_letter(refused)
        if not facts:
            return
        correlations = {e.event_id: e.correlation_id for e in events}
        with message_spans(self.shell.tracer, f"points apply {self.topic.name}", headers):
            outcome = await apply_earn_batch(
                PointsStore(self.shell.pool), self.name, facts, correlations, self.events, self.settings.lot_validity
            )
        log.debug("earn batch applied", extra={"topic": self.name, **outcome.counts})


class HoldCommandConsumer(BatchConsumer):
    def __init__(self, shell: ServiceShell, settings: Settings, events: LedgerEventWriter) -> None:
        super().__init__(shell, HOLD_COMMANDS, settings.consumer_group)
        self.settings = settings
        self.events = events

    async def consume(self, commands: Sequence[Event], message: KafkaMessage) -> None:
        await self.dead_letter(rejected(message))
        if not commands:
            return
        with message_spans(self.shell.tracer, "points apply hold command", [a.headers for a in accepted(message)]):
            results = HoldResults(self.settings.kafka_topic_prefix)
            await apply_hold_commands(PointsStore(self.shell.pool), self.name, commands, self.events, results)


def register(shell: ServiceShell, settings: Settings, rates: CardRatesCache, events: LedgerEventWriter) -> None:
    partner = EarnConsumer(shell, settings, PARTNER_PURCHASES, rates, events)
    card = EarnConsumer(shell, settings, CARD_TRANSACTIONS, rates, events)
    holds = HoldCommandConsumer(shell, settings, events)

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
