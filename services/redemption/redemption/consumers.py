"""FastStream subscribers: decode, call a handler. Offsets are committed after the handler's transaction."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Annotated

from faststream import AckPolicy, Context
from faststream.kafka.message import KafkaMessage
from faststream.kafka.publisher.usecase import DefaultPublisher

from contracts.envelope import Event
from contracts.events.holds import HoldCaptured, HoldCaptureRefused, HoldRejected, HoldReleased, PointsHeld
from contracts.events.offers import OfferPublished, OfferWithdrawn
from contracts.topics import HOLD_RESULTS, OFFERS
from loyalty_runtime.kafka import (
    BATCH_MAX_RECORDS,
    BATCH_WAIT_MS,
    EnvelopeBatchDecoder,
    Rejected,
    accepted,
    rejected,
    send_to_dead_letter,
)
from loyalty_runtime.service import ServiceShell
from loyalty_runtime.telemetry import message_spans
from redemption.adapters.catalog_store import CatalogStore
from redemption.adapters.orders_store import OrdersStore
from redemption.domain.catalog import OfferChange, UnusableOfferError
from redemption.handlers.catalog import apply_offer_batch, to_change
from redemption.handlers.orders import Saga, apply_hold_results
from redemption.settings import Settings

log = logging.getLogger(__name__)


class OfferConsumer:
    """Builds the catalog from loyalty.offers.v1 in batches: one database transaction per batch."""

    def __init__(self, shell: ServiceShell, settings: Settings) -> None:
        self.shell = shell
        self.settings = settings
        self.name = shell.topic(OFFERS.name)
        self.dead_letters: DefaultPublisher = shell.broker.publisher(
            shell.topic(OFFERS.dead_letter),
            title=f"{OFFERS.name}: dead letters",
            description="Offer messages the redemption service could not accept, unchanged, with a dlq-reason header.",
        )

    def subscriber_options(self) -> dict[str, object]:
        return {
            "group_id": self.settings.consumer_group,
            "batch": True,
            "max_records": BATCH_MAX_RECORDS,
            "batch_timeout_ms": BATCH_WAIT_MS,
            "auto_offset_reset": "earliest",
            "ack_policy": AckPolicy.NACK_ON_ERROR,
            "decoder": EnvelopeBatchDecoder(OFFERS),
            "title": OFFERS.description,
        }

    async def consume(self, events: Sequence[Event], message: KafkaMessage) -> None:
        refused = rejected(message)
        changes: list[OfferChange] = []
        headers: list[dict[str, str]] = []
        for event, origin in zip(events, accepted(message), strict=True):
            try:
                changes.append(to_change(event))
                headers.append(origin.headers)
            except UnusableOfferError as error:
                refused.append(Rejected(origin.record, str(error)))
        await send_to_dead_letter(self.dead_letters, refused, self.shell.name)
        if not changes:
            return
        with message_spans(self.shell.tracer, f"redemption apply {OFFERS.name}", headers):
            outcome = await apply_offer_batch(CatalogStore(self.shell.pool), self.name, changes)
        log.debug("offer batch applied", extra={"topic": self.name, **outcome.counts})


class HoldResultConsumer:
    """Moves orders on by the ledger's answers (loyalty.hold-results.v1), one transaction per batch."""

    def __init__(self, shell: ServiceShell, settings: Settings, saga: Saga) -> None:
        self.shell = shell
        self.saga = saga
        self.name = shell.topic(HOLD_RESULTS.name)
        self.options = {
            "group_id": settings.consumer_group,
            "batch": True,
            "max_records": BATCH_MAX_RECORDS,
            "batch_timeout_ms": BATCH_WAIT_MS,
            "auto_offset_reset": "earliest",
            "ack_policy": AckPolicy.NACK_ON_ERROR,
            "decoder": EnvelopeBatchDecoder(HOLD_RESULTS),
            "title": HOLD_RESULTS.description,
        }
        self.dead_letters: DefaultPublisher = shell.broker.publisher(
            shell.topic(HOLD_RESULTS.dead_letter),
            title=f"{HOLD_RESULTS.name}: dead letters",
            description="Hold results the redemption service could not accept, unchanged, with a dlq-reason header.",
        )

    async def consume(self, results: Sequence[Event], message: KafkaMessage) -> None:
        await send_to_dead_letter(self.dead_letters, rejected(message), self.shell.name)
        if results:
            with message_spans(
                self.shell.tracer, "redemption apply hold result", [a.headers for a in accepted(message)]
            ):
                await apply_hold_results(OrdersStore(self.shell.pool), self.saga, self.name, results)


def register(shell: ServiceShell, settings: Settings, saga: Saga) -> None:
    offers = OfferConsumer(shell, settings)
    holds = HoldResultConsumer(shell, settings, saga)

    @shell.broker.subscriber(holds.name, **holds.options)  # type: ignore[call-overload]
    async def on_hold_results(
        batch: list[PointsHeld | HoldRejected | HoldCaptured | HoldReleased | HoldCaptureRefused],
        message: Annotated[KafkaMessage, Context("message")],
    ) -> None:
        await holds.consume(batch, message)

    @shell.broker.subscriber(offers.name, **offers.subscriber_options())  # type: ignore[call-overload]
    async def on_offers(
        batch: list[OfferPublished | OfferWithdrawn],
        message: Annotated[KafkaMessage, Context("message")],
    ) -> None:
        await offers.consume(batch, message)
