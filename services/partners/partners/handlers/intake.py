"""Turn partners' purchases and refunds into events and publish them; answer only once the broker confirmed."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from contracts.envelope import Event
from contracts.events.partners import PartnerPurchaseRecorded, PartnerRefundRecorded, PurchasePayload, RefundPayload
from contracts.money import Money
from partners.domain.earn import EarnContract
from partners.domain.errors import PartnersError
from partners.domain.intake import (
    PurchaseReport,
    RefundReport,
    check_refunds,
    event_id_for,
    partition_key,
    price_purchases,
)

SOURCE = "partners"


class EventsUnavailableError(PartnersError):
    """The broker did not confirm every event; the caller must not report them as accepted."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            "the event broker did not confirm the request, so it was not accepted; "
            "retry with the same idempotency_key (a retry is never counted twice)"
        )
        self.reason = reason  # for our logs; the broker's address is no business of the partner


class EventPublisher(Protocol):
    async def publish(self, keyed_events: Sequence[tuple[str, Event]]) -> None:
        """Return only after the broker acknowledged every event (acks=all); else raise EventsUnavailableError."""


class ContractLookup(Protocol):
    async def contracts_of(self, partner_id: str) -> Sequence[EarnContract]: ...


@dataclass(frozen=True)
class Recorded:
    idempotency_key: str
    event_id: uuid.UUID
    points: int | None = None


async def record_purchases(
    publisher: EventPublisher,
    contracts: ContractLookup,
    partner_id: str,
    reports: Sequence[PurchaseReport],
    now: datetime,
) -> list[Recorded]:
    """All or nothing: every purchase is priced under its contract before any is published."""
    priced = price_purchases(await contracts.contracts_of(partner_id), reports, now)
    keyed: list[tuple[str, Event]] = []
    recorded: list[Recorded] = []
    for item in priced:
        report = item.report
        event_id = event_id_for("purchase", partner_id, report.idempotency_key)
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
                points=item.points,
                contract_valid_from=item.contract_valid_from,
            ),
        )
        keyed.append((partition_key(partner_id, report.customer_ref), event))
        recorded.append(Recorded(report.idempotency_key, event_id, item.points))
    await publisher.publish(keyed)
    return recorded


async def record_refunds(
    publisher: EventPublisher,
    contracts: ContractLookup,
    partner_id: str,
    reports: Sequence[RefundReport],
    now: datetime,
) -> list[Recorded]:
    """All or nothing. A refund carries no points: the ledger reverses the purchase's points in proportion."""
    check_refunds(await contracts.contracts_of(partner_id), reports, now)
    keyed: list[tuple[str, Event]] = []
    recorded: list[Recorded] = []
    for report in reports:
        event_id = event_id_for("refund", partner_id, report.idempotency_key)
        event = PartnerRefundRecorded(
            event_id=event_id,
            occurred_at=report.occurred_at,
            source=SOURCE,
            correlation_id=event_id,
            payload=RefundPayload(
                partner_id=partner_id,
                customer_ref=report.customer_ref,
                refund_id=report.refund_id,
                purchase_id=report.purchase_id,
                amount=Money(amount_minor=report.amount_minor, currency=report.currency),
            ),
        )
        keyed.append((partition_key(partner_id, report.customer_ref), event))
        recorded.append(Recorded(report.idempotency_key, event_id))
    await publisher.publish(keyed)
    return recorded
