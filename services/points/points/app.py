"""Wiring only: settings, shell, consumers, relay, jobs, routers."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI, status
from opentelemetry import trace

from contracts.events.holds import HoldCaptured, HoldCaptureRefused, HoldRejected, HoldReleased, PointsHeld
from contracts.events.ledger import PointsCredited, PointsDebited, TransferPosted
from contracts.topics import HOLD_RESULTS, LEDGER_EVENTS, LEDGER_TRANSFERS
from loyalty_runtime.auth import TokenAuthority, principal_dependency
from loyalty_runtime.service import ServiceShell
from points import consumers
from points.adapters.card_rates import CardRatesCache
from points.adapters.segments import SegmentStore
from points.adapters.store import PointsStore
from points.api import activities, events, members, ops, reports, segments
from points.domain.activities import ActivityRuleError, LifecycleError
from points.domain.rewards import ClaimRefusedError
from points.handlers.activities import ActivityNotFoundError, ReferralRefusedError
from points.handlers.earn import UnprocessableEventError
from points.handlers.expiry import ExpiryOutcome
from points.handlers.expiry_runs import SCHEDULER, expire_and_record
from points.handlers.gifts import GiftIdReusedError, GiftRefusedError
from points.handlers.holds import expire_holds
from points.handlers.ledger_events import LedgerEventWriter
from points.handlers.members import IdentifierNotLinkedError, IdentifierTakenError, MemberNotFoundError
from points.handlers.queries import BadCursorError
from points.settings import Settings

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
log = logging.getLogger(__name__)


def build(settings: Settings | None = None, *, tracer_provider: trace.TracerProvider | None = None) -> ServiceShell:
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

    authority = TokenAuthority(settings.jwt_secret)
    authenticate = principal_dependency(lambda: authority)
    shell.app.include_router(
        members.router(store, writer, authenticate, settings.gift_daily_limit, settings.link_code_max_wrong_attempts)
    )
    members.install(shell.app)
    shell.app.include_router(ops.router(store, expire_now, authenticate, settings.link_code_ttl, utc_now))
    shell.app.include_router(events.router(store, authenticate))
    shell.app.include_router(segments.router(lambda: SegmentStore(shell.pool), authenticate))
    shell.app.include_router(reports.router(lambda: SegmentStore(shell.pool), authenticate))
    shell.map_errors(segments.ERRORS | reports.ERRORS)
    shell.app.include_router(activities.router(store, writer, authenticate, settings.lot_validity, utc_now))
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
