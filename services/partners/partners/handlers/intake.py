"""Turn a partner's purchase into an event and publish it; answer only once the broker confirmed."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from contracts.envelope import Event
from contracts.events.partners import PartnerPurchaseRecorded, PurchasePayload
from contracts.money import Money
from partners.domain.intake import event_id_for, partition_key

SOURCE = "partners"


class EventsUnavailableError(RuntimeError):
    """The broker did not confirm every event; the caller must not report them as accepted."""


class EventPublisher(Protocol):
    async def publish(self, keyed_events: Sequence[tuple[str, Event]]) -> None:
        """Return only after the broker acknowledged every event (acks=all); else raise EventsUnavailableError."""


@dataclass(frozen=True)
class PurchaseReport:
    idempotency_key: str
    customer_ref: str
    purchase_id: str
    amount_minor: int
    currency: str
    category: str | None
    occurred_at: datetime


async def record_purchases(
    publisher: EventPublisher, partner_id: str, reports: Sequence[PurchaseReport]
) -> list[uuid.UUID]:
    keyed: list[tuple[str, Event]] = []
    for report in reports:
        event_id = event_id_for(partner_id, report.idempotency_key)
        event = PartnerPurchaseRecorded(
            event_id=event_id,
            occurred_at=report.occurred_at,
            source=SOURCE,
            correlation_id=event_id,
            payload=PurchasePayload(
                partner_id=partner_id,
                customer_ref=report.customer_ref,
                purchase_id=report.purchase_id,
                amount=Money(amount_minor=report.amount_minor, currency=report.currency),
                category=report.category,
            ),
        )
        keyed.append((partition_key(partner_id, report.customer_ref), event))
    await publisher.publish(keyed)
    return [event.event_id for _, event in keyed]
