"""Turn partners' purchases and refunds into events; answer once they are recorded with their events (the outbox).

Intake records what it accepted (partners.domain.idempotency), so that a key or an id used again is
answered here, with its reason, rather than accepted and then dropped by the ledger. The request's
signature, its intake rows and its events commit together (usually in one database call shared with the
requests that arrived at the same moment); the outbox relay publishes the events after the commit, so
an accepted purchase reaches the ledger even if the broker is gone when it is accepted.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import Enum
from typing import Protocol, TypeVar

from contracts.envelope import Event
from contracts.events.attribution import Attribution
from contracts.events.partners import PartnerPurchaseRecorded, PartnerRefundRecorded, PurchasePayload, RefundPayload
from contracts.money import Money
from partners.domain.credentials import ReplayedRequestError
from partners.domain.earn import EarnContract
from partners.domain.errors import PartnersError
from partners.domain.idempotency import IntakeConflictError, IntakeEntry, conflicts, purchase_entry, refund_entry
from partners.domain.intake import (
    BatchRefusedError,
    Kind,
    PricedPurchase,
    PurchaseReport,
    RefundReport,
    check_refunds,
    partition_key,
    price_purchases,
)
from partners.handlers.authentication import SignatureClaim

SOURCE = "partners"


class ContendedIntakeError(PartnersError):
    """Two requests that reuse each other's keys or ids were recorded at the same moment (a deadlock); one stopped."""

    def __init__(self) -> None:
        super().__init__(
            "another request with some of the same idempotency keys or ids was being recorded at the same moment, "
            "so this one was not accepted; retry it unchanged"
        )


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


class Outcome(Enum):
    """What the one-call path (IntakeLog.accept) did with a request."""

    ACCEPTED = "accepted"
    """Its signature and every item were new: recorded with their events."""
    REPLAYED = "replayed"
    """Its signature was already used: nothing recorded."""
    RECORDED = "recorded"
    """Some key or id of it is recorded already (a retry, or a conflict): nothing recorded; judge it apart."""
    CONTENDED = "contended"
    """A concurrent request holding some of the same keys or ids deadlocked with it: nothing recorded."""


@dataclass(frozen=True)
class Claimed:
    """What one claim found: the keys it recorded now, and what is recorded under the entries' keys or ids."""

    new_keys: frozenset[str]
    recorded: Sequence[IntakeEntry]
    """Empty when every entry was new."""


class IntakeClaims(Protocol):
    async def claim(self, entries: Sequence[IntakeEntry], particulars: Sequence[Particulars] | None = None) -> Claimed:
        """Record the new entries (with what each said); report which were new and what is recorded already.

        Raise ContendedIntakeError if a concurrent request holding some of them waits for this one's.
        """

    async def publish(self, keyed_events: Sequence[tuple[str, Event]]) -> None:
        """Queue the events in the outbox, in this transaction: they leave when it commits."""


@dataclass(frozen=True)
class Submission:
    """One signed request as intake records it: its signature, its entries with what each said, and its events."""

    partner_id: str
    kind: Kind
    signature: SignatureClaim
    entries: Sequence[IntakeEntry]
    particulars: Sequence[Particulars]
    keyed_events: Sequence[tuple[str, Event]]
    """(partition key, event), one per entry, in the entries' order."""


class IntakeLog(Protocol):
    async def accept(self, submission: Submission) -> Outcome:
        """Claim the signature, record the entries and queue their events at once, if all of it is new."""

    def recording(self, partner_id: str, kind: Kind) -> AbstractAsyncContextManager[IntakeClaims]:
        """One transaction: what was claimed in it is committed if the block ends without an error."""


class SignatureClaims(Protocol):
    async def claim_once(self, claim: SignatureClaim) -> None:
        """Mark the signature as used; ReplayedRequestError if it already was."""


@dataclass(frozen=True)
class Recorded:
    idempotency_key: str
    event_id: uuid.UUID
    points: int | None = None


@dataclass(frozen=True)
class Intake:
    """Where a signed request is recorded, and how its signature is marked as used when it is refused."""

    contracts: ContractLookup
    log: IntakeLog
    signatures: SignatureClaims


async def record_purchases(
    intake: Intake, partner_id: str, signature: SignatureClaim, reports: Sequence[PurchaseReport], now: datetime
) -> list[Recorded]:
    """All or nothing: every purchase is priced and checked against what intake recorded before any is accepted."""
    contracts = await intake.contracts.contracts_of(partner_id)
    priced = await _refusing(intake, signature, lambda: price_purchases(contracts, reports, now))
    entries = [purchase_entry(partner_id, item.report) for item in priced]
    keyed = [_purchase_event(partner_id, item, entry.event_id) for item, entry in zip(priced, entries, strict=True)]
    said = [
        Particulars(i.report.customer_ref, i.report.amount_minor, i.report.currency, points=i.points) for i in priced
    ]
    await _accept(intake, Submission(partner_id, "purchase", signature, entries, said, keyed))
    return [
        Recorded(item.report.idempotency_key, entry.event_id, item.points)
        for item, entry in zip(priced, entries, strict=True)
    ]


async def record_refunds(
    intake: Intake, partner_id: str, signature: SignatureClaim, reports: Sequence[RefundReport], now: datetime
) -> list[Recorded]:
    """All or nothing. A refund carries no points: the ledger reverses the purchase's points in proportion."""
    contracts = await intake.contracts.contracts_of(partner_id)
    await _refusing(intake, signature, lambda: check_refunds(contracts, reports, now))
    entries = [refund_entry(partner_id, report) for report in reports]
    keyed = [_refund_event(partner_id, report, entry.event_id) for report, entry in zip(reports, entries, strict=True)]
    said = [Particulars(r.customer_ref, r.amount_minor, r.currency, purchase_id=r.purchase_id) for r in reports]
    await _accept(intake, Submission(partner_id, "refund", signature, entries, said, keyed))
    return [Recorded(report.idempotency_key, entry.event_id) for report, entry in zip(reports, entries, strict=True)]


T = TypeVar("T")


async def _refusing(intake: Intake, signature: SignatureClaim, check: Callable[[], T]) -> T:
    """The domain's verdict; a refused request still uses its signature up (a replay of it is a replay)."""
    try:
        return check()
    except BatchRefusedError:
        await intake.signatures.claim_once(signature)
        raise


async def _accept(intake: Intake, submission: Submission) -> None:
    """Record the request with its events, or refuse it if an item contradicts what intake recorded.

    The usual request (a fresh signature, new keys and ids) costs one database call, shared with the
    requests that arrive at the same moment. One that reuses a key or an id is judged in a transaction of
    its own: a retry (the same key and body) is accepted again without a second event, a conflict refuses
    the whole request. Concurrent requests with the same keys wait for each other's rows.
    """
    outcome = await intake.log.accept(submission)
    if outcome is Outcome.REPLAYED:
        raise ReplayedRequestError()
    if outcome is Outcome.CONTENDED:
        raise ContendedIntakeError()
    if outcome is Outcome.ACCEPTED:
        return
    entries = submission.entries
    await intake.signatures.claim_once(submission.signature)
    async with intake.log.recording(submission.partner_id, submission.kind) as claims:
        claimed = await claims.claim(entries, submission.particulars)
        problems = conflicts(submission.kind, entries, claimed.recorded)
        if problems:
            raise IntakeConflictError(problems)
        await claims.publish([
            keyed for keyed, entry in zip(submission.keyed_events, entries, strict=True)
            if entry.idempotency_key in claimed.new_keys
        ])  # fmt: skip


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
