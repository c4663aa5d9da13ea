"""Turn partners' purchases and refunds into events and publish them; answer only once the broker confirmed.

Intake records what it accepted (partners.domain.idempotency), so that a key or an id used again is
answered here, with its reason, rather than accepted and then dropped by the ledger.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Protocol

from contracts.envelope import Event
from contracts.events.attribution import Attribution
from contracts.events.partners import PartnerPurchaseRecorded, PartnerRefundRecorded, PurchasePayload, RefundPayload
from contracts.money import Money
from partners.domain.earn import EarnContract
from partners.domain.errors import PartnersError
from partners.domain.idempotency import IntakeConflictError, IntakeEntry, conflicts, purchase_entry, refund_entry
from partners.domain.intake import (
    Kind,
    PricedPurchase,
    PurchaseReport,
    RefundReport,
    check_refunds,
    partition_key,
    price_purchases,
)

SOURCE = "partners"


class EventsUnavailableError(PartnersError):
    """The broker did not confirm every event; the caller must not report them as accepted."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            "the event broker did not confirm the request, so it was not accepted; "
            "retry with the same idempotency_key and body (a retry is never counted twice)"
        )
        self.reason = reason  # for our logs; the broker's address is no business of the partner


class ContendedIntakeError(PartnersError):
    """Two requests that reuse each other's keys or ids were recorded at the same moment (a deadlock); one stopped."""

    def __init__(self) -> None:
        super().__init__(
            "another request with some of the same idempotency keys or ids was being recorded at the same moment, "
            "so this one was not accepted; retry it unchanged"
        )


class EventPublisher(Protocol):
    async def publish(self, keyed_events: Sequence[tuple[str, Event]]) -> None:
        """Return only after the broker acknowledged every event (acks=all); else raise EventsUnavailableError."""


class ContractLookup(Protocol):
    async def contracts_of(self, partner_id: str) -> Sequence[EarnContract]: ...


@dataclass(frozen=True)
class Particulars:
    """What an accepted item said, kept with its entry for the partner's portal (partners.handlers.history)."""

    customer_ref: str
    amount_minor: int
    currency: str
    purchase_id: str | None = None
    """Refunds only: the purchase the refund reverses."""
    points: int | None = None
    """Purchases only: the points the contract earned."""


class IntakeClaims(Protocol):
    async def claim(
        self, entries: Sequence[IntakeEntry], particulars: Sequence[Particulars] | None = None
    ) -> Sequence[IntakeEntry]:
        """Record the new entries (with what each said); return what is recorded under their keys or ids.

        Nothing is returned if all were new.

        Raise ContendedIntakeError if a concurrent request holding some of them waits for this one's.
        """


class IntakeLog(Protocol):
    def recording(self, partner_id: str, kind: Kind) -> AbstractAsyncContextManager[IntakeClaims]:
        """One transaction: what was claimed in it is committed if the block ends without an error."""


@dataclass(frozen=True)
class Recorded:
    idempotency_key: str
    event_id: uuid.UUID
    points: int | None = None


async def record_purchases(
    publisher: EventPublisher,
    contracts: ContractLookup,
    log: IntakeLog,
    partner_id: str,
    reports: Sequence[PurchaseReport],
    now: datetime,
) -> list[Recorded]:
    """All or nothing: every purchase is priced and checked against what intake recorded before any is published."""
    priced = price_purchases(await contracts.contracts_of(partner_id), reports, now)
    entries = [purchase_entry(partner_id, item.report) for item in priced]
    keyed = [_purchase_event(partner_id, item, entry.event_id) for item, entry in zip(priced, entries, strict=True)]
    said = [
        Particulars(i.report.customer_ref, i.report.amount_minor, i.report.currency, points=i.points) for i in priced
    ]
    await _accept(publisher, log, partner_id, "purchase", entries, said, keyed)
    return [
        Recorded(item.report.idempotency_key, entry.event_id, item.points)
        for item, entry in zip(priced, entries, strict=True)
    ]


async def record_refunds(
    publisher: EventPublisher,
    contracts: ContractLookup,
    log: IntakeLog,
    partner_id: str,
    reports: Sequence[RefundReport],
    now: datetime,
) -> list[Recorded]:
    """All or nothing. A refund carries no points: the ledger reverses the purchase's points in proportion."""
    check_refunds(await contracts.contracts_of(partner_id), reports, now)
    entries = [refund_entry(partner_id, report) for report in reports]
    keyed = [_refund_event(partner_id, report, entry.event_id) for report, entry in zip(reports, entries, strict=True)]
    said = [Particulars(r.customer_ref, r.amount_minor, r.currency, purchase_id=r.purchase_id) for r in reports]
    await _accept(publisher, log, partner_id, "refund", entries, said, keyed)
    return [Recorded(report.idempotency_key, entry.event_id) for report, entry in zip(reports, entries, strict=True)]


async def _accept(
    publisher: EventPublisher,
    log: IntakeLog,
    partner_id: str,
    kind: Kind,
    entries: Sequence[IntakeEntry],
    particulars: Sequence[Particulars],
    keyed: Sequence[tuple[str, Event]],
) -> None:
    """Refuse the request if an item contradicts what intake recorded; else publish it and record it.

    The rows are committed only after the broker confirmed every event, so a row exists only for what
    was published (a failed publish rolls back), and concurrent requests with the same keys wait for each
    other's rows. A retry (same key, same body) is published again: the same event id, which the ledger's
    inbox drops.

    The window left open: a crash after the broker confirmed and before the commit, or a publish that
    failed after some of its events reached the broker, leaves no row. A retry with the same key and body
    is still exact (the same event id); a retry under a new key, or another body under the same key, would
    be accepted here and dropped by the ledger, as before intake kept this record.
    """
    async with log.recording(partner_id, kind) as claims:
        problems = conflicts(kind, entries, await claims.claim(entries, particulars))
        if problems:
            raise IntakeConflictError(problems)
        await publisher.publish(keyed)


def _purchase_event(partner_id: str, item: PricedPurchase, event_id: uuid.UUID) -> tuple[str, Event]:
    report = item.report
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
            attribution=Attribution(**asdict(report.attribution)) if report.attribution is not None else None,
        ),
    )
    return partition_key(partner_id, report.customer_ref), event


def _refund_event(partner_id: str, report: RefundReport, event_id: uuid.UUID) -> tuple[str, Event]:
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
    return partition_key(partner_id, report.customer_ref), event
