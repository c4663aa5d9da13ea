"""FastStream subscribers: decode, call a handler. Offsets are committed after the handler's transaction."""

from __future__ import annotations

import logging
from typing import Annotated

from faststream import AckPolicy, Context
from faststream.kafka.message import KafkaMessage

from contracts.events.partners import PartnerPurchaseRecorded, PartnerRefundRecorded
from contracts.topics import PARTNER_PURCHASES
from loyalty_runtime.kafka import (
    BATCH_MAX_RECORDS,
    BATCH_WAIT_MS,
    EnvelopeBatchDecoder,
    accepted_headers,
    rejected,
    send_to_dead_letter,
)
from loyalty_runtime.service import ServiceShell
from loyalty_runtime.telemetry import message_spans
from points.adapters.store import PointsStore
from points.handlers.partner_events import apply_partner_events
from points.settings import Settings

log = logging.getLogger(__name__)


def register(shell: ServiceShell, settings: Settings) -> None:
    topic = shell.topic(PARTNER_PURCHASES.name)
    dead_letters = shell.broker.publisher(
        shell.topic(PARTNER_PURCHASES.dead_letter),
        title="partner purchases: dead letters",
        description="Partner events the points service could not accept, unchanged, with a dlq-reason header.",
    )

    @shell.broker.subscriber(
        topic,
        group_id=settings.consumer_group,
        batch=True,
        max_records=BATCH_MAX_RECORDS,
        batch_timeout_ms=BATCH_WAIT_MS,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        decoder=EnvelopeBatchDecoder(PARTNER_PURCHASES),
        title="partner purchases and refunds",
    )
    async def on_partner_events(
        events: list[PartnerPurchaseRecorded | PartnerRefundRecorded],
        message: Annotated[KafkaMessage, Context("message")],
    ) -> None:
        await send_to_dead_letter(dead_letters, rejected(message), shell.name)
        if not events:
            return
        with message_spans(shell.tracer, "points apply partner event", accepted_headers(message)):
            outcome = await apply_partner_events(PointsStore(shell.pool), topic, events)
        log.debug("partner events applied", extra={"applied": outcome.applied, "duplicates": outcome.duplicates})
