"""Wiring only: settings, shell, consumers, relay, jobs, routers."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi import FastAPI, status
from opentelemetry import trace

from contracts.events.earnings import DailyEarningsSummarised
from contracts.events.erasures import MemberErased
from contracts.events.exchange import ExchangeRequested, ExchangeSettled
from contracts.events.holds import HoldCaptured, HoldCaptureRefused, HoldRejected, HoldReleased, PointsHeld
from contracts.events.ledger import PointsCredited, PointsDebited, TransferPosted
from contracts.events.messages import MemberMessaged
from contracts.events.outcomes import PurchaseRefused
from contracts.events.packets import RedPacketCreated, RedPacketGrabbed, RedPacketReturned
from contracts.events.reviews import EarningHeldForReview, EarningReviewDecided
from contracts.events.segments import SegmentMembersListed
from contracts.events.tiers import TierChanged
from contracts.topics import (
    DAILY_EARNINGS,
    EARNING_REVIEWS,
    HOLD_RESULTS,
    LEDGER_EVENTS,
    LEDGER_TRANSFERS,
    MEMBER_ERASURES,
    MEMBER_MESSAGES,
    MEMBER_TIERS,
    POINTS_EXCHANGES,
    PURCHASE_OUTCOMES,
    RED_PACKETS,
    SEGMENT_MEMBERS,
)
from loyalty_runtime.auth import TokenAuthority, principal_dependency
from loyalty_runtime.service import ServiceShell
from points import consumers
from points.adapters.attribution_store import AttributionStore
from points.adapters.card_rates import CardRatesCache
from points.adapters.liability_store import LiabilityStore
from points.adapters.messages_store import MessagesStore
from points.adapters.segment_publications import PublicationStore
from points.adapters.segments import SegmentStore
from points.adapters.store import PointsStore
from points.api import (
    activities,
    earnings,
    events,
    members,
    ops,
    packets,
    reports,
    segment_publications,
    segments,
    tiers,
)
from points.api import adjustments as adjustments_api
from points.api import attribution as attribution_api
from points.api import exchange as exchange_api
from points.api import imports as imports_api
from points.api import liability as liability_api
from points.api import member_data as member_data_api
from points.api import messages as messages_api
from points.api import reviews as reviews_api
from points.domain.activities import ActivityRuleError, LifecycleError
from points.domain.rewards import ClaimRefusedError
from points.handlers.activities import ActivityNotFoundError, ReferralRefusedError
from points.handlers.adjustments import Adjustments
from points.handlers.daily_earnings import earnings_topic, summarise_finished_days
from points.handlers.earn import UnprocessableEventError
from points.handlers.exchange import ExchangeTerms
from points.handlers.expiry import ExpiryOutcome
from points.handlers.expiry_runs import SCHEDULER, expire_and_record
from points.handlers.gifts import GiftIdReusedError, GiftRefusedError
from points.handlers.holds import expire_holds
from points.handlers.ledger_events import LedgerEventWriter
from points.handlers.liability import Clock as LiabilityClock
from points.handlers.members import IdentifierNotLinkedError, IdentifierTakenError, MemberNotFoundError
from points.handlers.messages import Messaging, messaging_job
from points.handlers.packets import PacketEvents, Packets, return_due
from points.handlers.queries import BadCursorError
from points.handlers.tiers import ReviewOutcome, run_tier_reviews
from points.handlers.velocity import rules_cache
from points.settings import Settings

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
log = logging.getLogger(__name__)


@dataclass
class Wiring:
    """What the parts of the service share: its shell, settings, stores, clocks and the jobs routes also run."""

    shell: ServiceShell
    settings: Settings
    writer: LedgerEventWriter
    tiers_now: Callable[[], datetime]
    packet_events: PacketEvents
    messaging: Messaging
    shares_drawn_by: secrets.SystemRandom = field(default_factory=secrets.SystemRandom)

    def store(self) -> PointsStore:
        return PointsStore(self.shell.pool)

    def messages_store(self) -> MessagesStore:
        return MessagesStore(self.shell.pool)

    def attribution_store(self) -> AttributionStore:
        return AttributionStore(self.shell.pool)

    def liability_store(self) -> LiabilityStore:
        return LiabilityStore(self.shell.pool)

    def liability_clock(self) -> LiabilityClock:
        return LiabilityClock(self.settings.programme_zone, utc_now(), self.settings.liability_close_margin)

    def segment_store(self) -> SegmentStore:
        return SegmentStore(self.shell.pool)

    def red_packets(self) -> Packets:
        return Packets(self.store(), self.writer, self.packet_events, self.shares_drawn_by,
                       self.settings.lot_validity, self.settings.gift_daily_limit)  # fmt: skip

    @property
    def segment_members_topic(self) -> str:
        return SEGMENT_MEMBERS.qualified(self.settings.kafka_topic_prefix)

    async def expire_now(self, requested_by: str = SCHEDULER) -> ExpiryOutcome:
        return await expire_and_record(self.store(), self.writer, requested_by, utc_now)

    async def review_tiers(self, requested_by: str = SCHEDULER) -> ReviewOutcome:
        zone = self.settings.programme_zone
        outcome = await run_tier_reviews(self.store(), self.writer.tiers_topic, zone, self.tiers_now())
        if outcome.reviewed or outcome.upgraded or requested_by != SCHEDULER:
            log.info("tiers reviewed", extra={"requested_by": requested_by, **vars(outcome)})
        return outcome


def utc_now() -> datetime:
    return datetime.now(UTC)


def build(
    settings: Settings | None = None,
    *,
    tracer_provider: trace.TracerProvider | None = None,
    tier_clock: Callable[[], datetime] | None = None,
) -> ServiceShell:
    """`tier_clock` stands in for the clock of tiers (their reviews, and the day a member's progress is read on)."""
    settings = settings or Settings()
    shell = ServiceShell(
        "points",
        settings,
        database="loyalty_points",
        migrations=MIGRATIONS,
        description="Members, earn rules and the points ledger.",
        tracer_provider=tracer_provider,
    )
    prefix = settings.kafka_topic_prefix
    messaging = Messaging(MEMBER_MESSAGES.qualified(prefix), settings.message_default_channel,
                          settings.console_url, settings.message_chunk_size)  # fmt: skip
    wiring = Wiring(shell, settings, LedgerEventWriter(prefix), tier_clock or utc_now, PacketEvents(prefix), messaging)
    consumers.register(shell, settings, CardRatesCache(wiring.store), wiring.writer)
    consumers.register_contract_prices(shell, settings)
    declare_publishers(wiring)
    shell.add_outbox_relay()
    schedule_jobs(wiring)
    add_routes(wiring)
    return shell


def declare_publishers(w: Wiring) -> None:
    """For the AsyncAPI document: every topic the service writes to (the outbox relay sends)."""
    prefix = w.settings.kafka_topic_prefix
    declared = [
        (w.writer.topic, "ledger events", LEDGER_EVENTS.description, PointsCredited | PointsDebited),
        (w.writer.transfers_topic, "ledger transfers", LEDGER_TRANSFERS.description, TransferPosted),
        (HOLD_RESULTS.qualified(prefix), "hold results", HOLD_RESULTS.description,
         PointsHeld | HoldRejected | HoldCaptured | HoldReleased | HoldCaptureRefused),
        (w.packet_events.topic, "red packets", RED_PACKETS.description,
         RedPacketCreated | RedPacketGrabbed | RedPacketReturned),
        (earnings_topic(prefix), "daily earnings", DAILY_EARNINGS.description, DailyEarningsSummarised),
        (w.writer.tiers_topic, "member tiers", MEMBER_TIERS.description, TierChanged),
        (w.messaging.topic, "member messages", MEMBER_MESSAGES.description, MemberMessaged),
        (w.segment_members_topic, "segment members", SEGMENT_MEMBERS.description, SegmentMembersListed),
        (MEMBER_ERASURES.qualified(prefix), "member erasures", MEMBER_ERASURES.description, MemberErased),
        (w.writer.reviews_topic, "earning reviews", EARNING_REVIEWS.description,
         EarningHeldForReview | EarningReviewDecided),
        (POINTS_EXCHANGES.qualified(prefix), "points exchanges", POINTS_EXCHANGES.description,
         ExchangeRequested | ExchangeSettled),
        (PURCHASE_OUTCOMES.qualified(prefix), "purchase outcomes", PURCHASE_OUTCOMES.description, PurchaseRefused),
    ]  # fmt: skip
    for topic, title, description, schema in declared:
        w.shell.broker.publisher(topic, title=title, description=description, schema=schema)


def every(seconds: float, step: Callable[[], Awaitable[object]]) -> Callable[[], Awaitable[None]]:
    """A background task that runs `step`, then waits `seconds`, for as long as the service runs."""

    async def loop() -> None:
        while True:
            await step()
            await asyncio.sleep(seconds)

    return loop


def schedule_jobs(w: Wiring) -> None:
    """Expiry of lots and holds, daily summaries, red packet returns, tier reviews and targeted messages."""
    s = w.settings

    async def expire_lots() -> None:
        outcome = await w.expire_now()
        if outcome.lots:
            log.info("lots expired", extra={"lots": outcome.lots, "points": outcome.points})

    async def release_holds() -> None:
        released = await expire_holds(w.store(), w.writer, s.kafka_topic_prefix, utc_now())
        if released:
            log.info("expired holds released", extra={"holds": released})

    async def summarise_days() -> None:
        await summarise_finished_days(w.store(), earnings_topic(s.kafka_topic_prefix), s.programme_zone, utc_now)

    async def return_packets() -> None:
        settled = await return_due(w.red_packets(), utc_now())
        if settled:
            log.info("red packets past their deadline settled", extra={"packets": settled})

    add = w.shell.add_background
    add("expiry", every(s.expiry_interval_seconds, expire_lots))
    add("hold expiry", every(s.hold_expiry_interval_seconds, release_holds))
    add("daily summaries", every(s.daily_summary_interval_seconds, summarise_days))
    add("red packet returns", every(s.red_packet_interval_seconds, return_packets))
    add("tier reviews", every(s.tier_review_interval_seconds, w.review_tiers))
    add("member messages", lambda: messaging_job(w.messages_store, w.attribution_store, w.messaging,
                                                 s.message_interval_seconds, utc_now))  # fmt: skip


def add_routes(w: Wiring) -> None:
    """Every router, each with what it needs; the errors of the domain as statuses."""
    s, app, store = w.settings, w.shell.app, w.store
    authority = TokenAuthority(s.jwt_secret)
    authenticate = principal_dependency(lambda: authority)
    app.include_router(
        members.router(store, w.writer, authenticate, s.gift_daily_limit, s.link_code_max_wrong_attempts)
    )
    members.install(app)
    app.include_router(ops.router(store, w.expire_now, authenticate, s.link_code_ttl, utc_now))
    app.include_router(imports_api.router(store, authenticate))
    app.include_router(events.router(store, authenticate))
    app.include_router(segments.router(w.segment_store, authenticate))
    app.include_router(segment_publications.router(w.segment_store, lambda: PublicationStore(w.shell.pool),
                                                   authenticate, w.segment_members_topic))  # fmt: skip
    app.include_router(reports.router(w.segment_store, authenticate))
    app.include_router(activities.router(store, w.writer, authenticate, s.lot_validity, utc_now))
    app.include_router(earnings.router(store, authenticate, utc_now, s.programme_zone, s.programme_name,
                                       s.kafka_topic_prefix))  # fmt: skip
    earnings.install(app)
    app.include_router(packets.router(w.red_packets, authenticate, utc_now))
    app.include_router(reviews_api.router(store, w.writer, authenticate, rules_cache(w.shell)))
    exchange_terms = ExchangeTerms(s.programme_zone, timedelta(hours=s.exchange_hold_hours), s.kafka_topic_prefix)
    app.include_router(exchange_api.router(store, w.writer, authenticate, exchange_terms, utc_now))
    exchange_api.install(app)
    adjust = lambda: Adjustments(store(), w.writer, s.adjustment_approval_threshold, s.lot_validity)  # noqa: E731
    app.include_router(adjustments_api.router(adjust, authenticate, utc_now))
    adjustments_api.install(app)
    app.include_router(tiers.router(store, authenticate, s.programme_zone, w.tiers_now, w.review_tiers))
    opens = s.share_link_opens_per_minute
    app.include_router(attribution_api.router(w.attribution_store, authenticate, lambda: authority, utc_now,
                                              s.programme_zone, s.console_url, opens))  # fmt: skip
    app.include_router(liability_api.router(w.liability_store, authenticate, w.liability_clock))
    app.include_router(member_data_api.router(store, authenticate, MEMBER_ERASURES.qualified(s.kafka_topic_prefix),
                                              utc_now))  # fmt: skip
    app.include_router(messages_api.router(w.messages_store, authenticate, s.messaging_callback_key_id,
                                           s.messaging_callback_secret, utc_now))  # fmt: skip
    w.shell.map_errors(segments.ERRORS | reports.ERRORS | packets.ERRORS | tiers.ERRORS | attribution_api.ERRORS
                       | messages_api.ERRORS | liability_api.ERRORS | adjustments_api.ERRORS | exchange_api.ERRORS
                       | reviews_api.ERRORS | member_data_api.ERRORS | ERRORS)  # fmt: skip


ERRORS: dict[type[Exception], int] = {
    MemberNotFoundError: status.HTTP_404_NOT_FOUND,
    IdentifierTakenError: status.HTTP_409_CONFLICT,
    IdentifierNotLinkedError: status.HTTP_404_NOT_FOUND,
    BadCursorError: status.HTTP_400_BAD_REQUEST,
    UnprocessableEventError: status.HTTP_422_UNPROCESSABLE_CONTENT,
    GiftRefusedError: status.HTTP_422_UNPROCESSABLE_CONTENT,
    GiftIdReusedError: status.HTTP_409_CONFLICT,
    ActivityNotFoundError: status.HTTP_404_NOT_FOUND,
    LifecycleError: status.HTTP_409_CONFLICT,
    ActivityRuleError: status.HTTP_422_UNPROCESSABLE_CONTENT,
    ClaimRefusedError: status.HTTP_409_CONFLICT,
    ReferralRefusedError: status.HTTP_409_CONFLICT,
}
"""The points service's own errors; each router module brings its own beside them."""


def create_app() -> FastAPI:
    """Entry point for `uvicorn --factory points.app:create_app`."""
    return build().app
