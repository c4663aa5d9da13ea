"""FastStream subscribers: decode, call a handler. Offsets are committed after the handler's transaction."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Annotated

from faststream import Context
from faststream.kafka.message import KafkaMessage

from contracts.envelope import Event
from contracts.events.holds import HoldCaptured, HoldCaptureRefused, HoldRejected, HoldReleased, PointsHeld
from contracts.events.offers import OfferPublished, OfferWithdrawn
from contracts.events.segments import SegmentMembersListed
from contracts.events.tiers import TierChanged
from contracts.topics import HOLD_RESULTS, MEMBER_TIERS, OFFERS, SEGMENT_MEMBERS
from loyalty_runtime.consumer import BatchConsumer, Delivery
from loyalty_runtime.service import ServiceShell
from redemption.adapters.catalog_store import CatalogStore
from redemption.adapters.member_tiers_store import MemberTiersStore
from redemption.adapters.orders_store import OrdersStore
from redemption.adapters.segment_members_store import SegmentMembersStore
from redemption.domain.catalog import OfferChange
from redemption.domain.prices import SegmentPart, TierNews
from redemption.handlers.catalog import apply_offer_batch, to_change
from redemption.handlers.member_tiers import apply_tier_batch, to_news
from redemption.handlers.orders import Saga, apply_hold_results
from redemption.handlers.segment_members import apply_segment_batch, to_part
from redemption.settings import Settings

log = logging.getLogger(__name__)


class OfferConsumer(BatchConsumer[OfferChange]):
    """Builds the catalog from loyalty.offers.v1 in batches: one database transaction per batch."""

    span_name = "apply"

    def __init__(self, shell: ServiceShell, settings: Settings) -> None:
        super().__init__(shell, OFFERS, settings.consumer_group)
        self.urls = settings.fulfilment_urls

    def prepare(self, event: Event) -> OfferChange:
        return to_change(event, self.urls)

    async def apply(self, deliveries: Sequence[Delivery[OfferChange]]) -> None:
        outcome = await apply_offer_batch(CatalogStore(self.shell.pool), self.name, [d.item for d in deliveries])
        log.debug("offer batch applied", extra={"topic": self.name, **outcome.counts})


class MemberTierConsumer(BatchConsumer[TierNews]):
    """Keeps each member's tier from loyalty.member-tiers.v1, for member prices: one transaction per batch."""

    span_name = "apply tiers"

    def __init__(self, shell: ServiceShell, settings: Settings) -> None:
        super().__init__(shell, MEMBER_TIERS, settings.consumer_group)

    def prepare(self, event: Event) -> TierNews:
        return to_news(event)

    async def apply(self, deliveries: Sequence[Delivery[TierNews]]) -> None:
        members = await apply_tier_batch(MemberTiersStore(self.shell.pool), self.name, [d.item for d in deliveries])
        log.debug("tier batch applied", extra={"topic": self.name, "members": members})


class SegmentMembersConsumer(BatchConsumer[SegmentPart]):
    """Keeps published segments' members from loyalty.segment-members.v1, for segment prices: one transaction
    per batch."""

    span_name = "apply segment members"

    def __init__(self, shell: ServiceShell, settings: Settings) -> None:
        super().__init__(shell, SEGMENT_MEMBERS, settings.consumer_group)

    def prepare(self, event: Event) -> SegmentPart:
        return to_part(event)

    async def apply(self, deliveries: Sequence[Delivery[SegmentPart]]) -> None:
        new = await apply_segment_batch(SegmentMembersStore(self.shell.pool), self.name, [d.item for d in deliveries])
        log.debug("segment members applied", extra={"topic": self.name, "parts": new})


class HoldResultConsumer(BatchConsumer[Event]):
    """Moves orders on by the ledger's answers (loyalty.hold-results.v1), one transaction per batch."""

    span_name = "apply hold results"

    def __init__(self, shell: ServiceShell, settings: Settings, saga: Saga) -> None:
        super().__init__(shell, HOLD_RESULTS, settings.consumer_group)
        self.saga = saga

    async def apply(self, deliveries: Sequence[Delivery[Event]]) -> None:
        await apply_hold_results(OrdersStore(self.shell.pool), self.saga, self.name, [d.item for d in deliveries])


def register(shell: ServiceShell, settings: Settings, saga: Saga) -> None:
    offers = OfferConsumer(shell, settings)
    holds = HoldResultConsumer(shell, settings, saga)
    tiers = MemberTierConsumer(shell, settings)
    segments = SegmentMembersConsumer(shell, settings)

    @shell.broker.subscriber(segments.name, **segments.subscriber_options())  # type: ignore[call-overload]
    async def on_segment_members(
        batch: list[SegmentMembersListed],
        message: Annotated[KafkaMessage, Context("message")],
    ) -> None:
        await segments.consume(batch, message)

    @shell.broker.subscriber(tiers.name, **tiers.subscriber_options())  # type: ignore[call-overload]
    async def on_member_tiers(
        batch: list[TierChanged],
        message: Annotated[KafkaMessage, Context("message")],
    ) -> None:
        await tiers.consume(batch, message)

    @shell.broker.subscriber(holds.name, **holds.subscriber_options())  # type: ignore[call-overload]
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
