"""Wiring only: settings, shell, consumers, relay, jobs, routers."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI, status
from opentelemetry import trace

from contracts.events.earnings import DailyEarningsSummarised
from contracts.events.holds import HoldCaptured, HoldCaptureRefused, HoldRejected, HoldReleased, PointsHeld
from contracts.events.ledger import PointsCredited, PointsDebited, TransferPosted
from contracts.events.messages import MemberMessaged
from contracts.events.packets import RedPacketCreated, RedPacketGrabbed, RedPacketReturned
from contracts.events.segments import SegmentMembersListed
from contracts.events.tiers import TierChanged
from contracts.topics import (
    DAILY_EARNINGS,
    HOLD_RESULTS,
    LEDGER_EVENTS,
    LEDGER_TRANSFERS,
    MEMBER_MESSAGES,
    MEMBER_TIERS,
    RED_PACKETS,
    SEGMENT_MEMBERS,
)
from loyalty_runtime.auth import TokenAuthority, principal_dependency
from loyalty_runtime.service import ServiceShell
from points import consumers
from points.adapters.attribution_store import AttributionStore
from points.adapters.card_rates import CardRatesCache
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
from points.api import attribution as attribution_api
from points.api import messages as messages_api
from points.domain.activities import ActivityRuleError, LifecycleError
from points.domain.rewards import ClaimRefusedError
from points.handlers.activities import ActivityNotFoundError, ReferralRefusedError
from points.handlers.daily_earnings import earnings_topic, summarise_finished_days
from points.handlers.earn import UnprocessableEventError
from points.handlers.expiry import ExpiryOutcome
from points.handlers.expiry_runs import SCHEDULER, expire_and_record
from points.handlers.gifts import GiftIdReusedError, GiftRefusedError
from points.handlers.holds import expire_holds
from points.handlers.ledger_events import LedgerEventWriter
from points.handlers.members import IdentifierNotLinkedError, IdentifierTakenError, MemberNotFoundError
from points.handlers.messages import Messaging, messaging_job
from points.handlers.packets import PacketEvents, Packets, return_due
from points.handlers.queries import BadCursorError
from points.handlers.tiers import ReviewOutcome, run_tier_reviews
from points.settings import Settings

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
log = logging.getLogger(__name__)


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

    def store() -> PointsStore:
        return PointsStore(shell.pool)

    writer = LedgerEventWriter(settings.kafka_topic_prefix)
    consumers.register(shell, settings, CardRatesCache(store), writer)

    # Declared for the AsyncAPI document; the outbox relay sends.
    shell.broker.publisher(
        writer.topic,
        title="ledger events",
        description=LEDGER_EVENTS.description,
        schema=PointsCredited | PointsDebited,
    )
    shell.broker.publisher(
        writer.transfers_topic,
        title="ledger transfers",
        description=LEDGER_TRANSFERS.description,
        schema=TransferPosted,
    )
    shell.broker.publisher(
        HOLD_RESULTS.qualified(settings.kafka_topic_prefix),
        title="hold results",
        description=HOLD_RESULTS.description,
        schema=PointsHeld | HoldRejected | HoldCaptured | HoldReleased | HoldCaptureRefused,
    )
    packet_events = PacketEvents(settings.kafka_topic_prefix)
    shell.broker.publisher(
        packet_events.topic,
        title="red packets",
        description=RED_PACKETS.description,
        schema=RedPacketCreated | RedPacketGrabbed | RedPacketReturned,
    )

    shell.broker.publisher(
        earnings_topic(settings.kafka_topic_prefix),
        title="daily earnings",
        description=DAILY_EARNINGS.description,
        schema=DailyEarningsSummarised,
    )
    shell.broker.publisher(
        writer.tiers_topic, title="member tiers", description=MEMBER_TIERS.description, schema=TierChanged
    )

    shell.add_outbox_relay()

    def utc_now() -> datetime:
        return datetime.now(UTC)

    async def expire_now(requested_by: str = SCHEDULER) -> ExpiryOutcome:
        return await expire_and_record(store(), writer, requested_by, utc_now)

    async def expiry_schedule() -> None:
        while True:
            outcome = await expire_now()
            if outcome.lots:
                log.info("lots expired", extra={"lots": outcome.lots, "points": outcome.points})
            await asyncio.sleep(settings.expiry_interval_seconds)

    shell.add_background("expiry", expiry_schedule)

    async def hold_expiry_schedule() -> None:
        while True:
            released = await expire_holds(store(), writer, settings.kafka_topic_prefix, datetime.now(UTC))
            if released:
                log.info("expired holds released", extra={"holds": released})
            await asyncio.sleep(settings.hold_expiry_interval_seconds)

    shell.add_background("hold expiry", hold_expiry_schedule)

    async def daily_summaries() -> None:
        topic = earnings_topic(settings.kafka_topic_prefix)
        while True:
            await summarise_finished_days(store(), topic, settings.programme_zone, utc_now)
            await asyncio.sleep(settings.daily_summary_interval_seconds)

    shell.add_background("daily summaries", daily_summaries)

    shares_drawn_by = secrets.SystemRandom()

    def red_packets() -> Packets:
        return Packets(store(), writer, packet_events, shares_drawn_by, settings.lot_validity,
                       settings.gift_daily_limit)  # fmt: skip

    async def red_packet_returns() -> None:
        while True:
            settled = await return_due(red_packets(), utc_now())
            if settled:
                log.info("red packets past their deadline settled", extra={"packets": settled})
            await asyncio.sleep(settings.red_packet_interval_seconds)

    shell.add_background("red packet returns", red_packet_returns)

    tiers_now = tier_clock or utc_now

    async def review_tiers(requested_by: str = SCHEDULER) -> ReviewOutcome:
        outcome = await run_tier_reviews(store(), writer.tiers_topic, settings.programme_zone, tiers_now())
        if outcome.reviewed or outcome.upgraded or requested_by != SCHEDULER:
            log.info("tiers reviewed", extra={"requested_by": requested_by, **vars(outcome)})
        return outcome

    async def tier_review_schedule() -> None:
        while True:
            await review_tiers()
            await asyncio.sleep(settings.tier_review_interval_seconds)

    shell.add_background("tier reviews", tier_review_schedule)

    # Targeted messages (one MemberMessaged per targeted member of a live activity) and share links.
    messaging = Messaging(MEMBER_MESSAGES.qualified(settings.kafka_topic_prefix), settings.message_default_channel,
                          settings.console_url, settings.message_chunk_size)  # fmt: skip
    shell.broker.publisher(
        messaging.topic, title="member messages", description=MEMBER_MESSAGES.description, schema=MemberMessaged
    )

    def messages_store() -> MessagesStore:
        return MessagesStore(shell.pool)

    def attribution_store() -> AttributionStore:
        return AttributionStore(shell.pool)

    shell.add_background(
        "member messages",
        lambda: messaging_job(messages_store, attribution_store, messaging, settings.message_interval_seconds, utc_now),
    )

    authority = TokenAuthority(settings.jwt_secret)
    authenticate = principal_dependency(lambda: authority)
    shell.app.include_router(
        members.router(store, writer, authenticate, settings.gift_daily_limit, settings.link_code_max_wrong_attempts)
    )
    members.install(shell.app)
    shell.app.include_router(ops.router(store, expire_now, authenticate, settings.link_code_ttl, utc_now))
    shell.app.include_router(events.router(store, authenticate))
    shell.app.include_router(segments.router(lambda: SegmentStore(shell.pool), authenticate))
    segment_members = SEGMENT_MEMBERS.qualified(settings.kafka_topic_prefix)
    shell.broker.publisher(segment_members, title="segment members", description=SEGMENT_MEMBERS.description,
                           schema=SegmentMembersListed)  # fmt: skip
    shell.app.include_router(
        segment_publications.router(
            lambda: SegmentStore(shell.pool), lambda: PublicationStore(shell.pool), authenticate, segment_members
        )
    )
    shell.app.include_router(reports.router(lambda: SegmentStore(shell.pool), authenticate))
    shell.map_errors(segments.ERRORS | reports.ERRORS)
    shell.app.include_router(activities.router(store, writer, authenticate, settings.lot_validity, utc_now))
    shell.app.include_router(
        earnings.router(store, authenticate, utc_now, settings.programme_zone, settings.programme_name,
                        settings.kafka_topic_prefix)
    )  # fmt: skip
    earnings.install(shell.app)
    shell.app.include_router(packets.router(red_packets, authenticate, utc_now))
    shell.map_errors(packets.ERRORS)
    shell.app.include_router(tiers.router(store, authenticate, settings.programme_zone, tiers_now, review_tiers))
    shell.map_errors(tiers.ERRORS)
    shell.app.include_router(
        attribution_api.router(attribution_store, authenticate, lambda: authority, utc_now, settings.programme_zone,
                               settings.console_url, settings.share_link_opens_per_minute)
    )  # fmt: skip
    shell.app.include_router(
        messages_api.router(messages_store, authenticate, settings.messaging_callback_key_id,
                            settings.messaging_callback_secret, utc_now)
    )  # fmt: skip
    shell.map_errors(attribution_api.ERRORS | messages_api.ERRORS)
    shell.map_errors(
        {
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
    )
    return shell


def create_app() -> FastAPI:
    """Entry point for `uvicorn --factory points.app:create_app`."""
    return build().app
