"""Rules of purchase and refund intake that do not depend on how a report arrives."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from partners.domain.earn import MAX_POINTS_PER_PURCHASE, EarnContract, contract_on, points_for
from partners.domain.errors import PartnersError, ReportRefusedError

Kind = Literal["purchase", "refund"]

EXTERNAL_ID: dict[Kind, str] = {"purchase": "purchase_id", "refund": "refund_id"}
"""The field that names a purchase or a refund in the partner's own systems (once, under one key)."""

# Fixed forever: changing one would give a retried request a new event id. Each kind has its own
# namespace, so a purchase and a refund with the same idempotency key are different events, and the
# purchase ids published before refunds existed stay what they were.
_EVENT_IDS: dict[Kind, uuid.UUID] = {
    "purchase": uuid.UUID("5b0f6a38-4d0e-4bb5-9a55-3f6f1c7f2b1e"),
    "refund": uuid.UUID("c8d1e4a6-0f5b-4f0e-8a8e-2b7d3c9e61a4"),
}

FUTURE_TOLERANCE = timedelta(minutes=5)
"""How far ahead of our clock a report may be dated (the partner's clock may run a little fast)."""


@dataclass(frozen=True)
class AttributionReport:
    """Where the purchase came from, as the partner reported it (contracts.events.attribution); each part optional."""

    channel: str | None = None
    branch_id: str | None = None
    staff_id: str | None = None
    campaign_ref: str | None = None
    share_code: str | None = None

    @property
    def fields(self) -> tuple[str | None, ...]:
        return (self.channel, self.branch_id, self.staff_id, self.campaign_ref, self.share_code)


@dataclass(frozen=True)
class PurchaseReport:
    idempotency_key: str
    customer_ref: str
    purchase_id: str
    amount_minor: int
    currency: str
    category: str | None
    occurred_at: datetime
    attribution: AttributionReport | None = None
    """None when the partner said nothing of it (an empty attribution is none)."""


@dataclass(frozen=True)
class RefundReport:
    idempotency_key: str
    customer_ref: str
    refund_id: str
    purchase_id: str
    amount_minor: int
    currency: str
    occurred_at: datetime


@dataclass(frozen=True)
class PricedPurchase:
    report: PurchaseReport
    points: int
    contract_valid_from: date


class DatedInFutureError(ReportRefusedError):
    field = "occurred_at"

    def __init__(self, occurred_at: datetime, now: datetime) -> None:
        super().__init__(
            f"occurred_at {occurred_at.isoformat()} is more than {int(FUTURE_TOLERANCE.total_seconds() // 60)} "
            f"minutes after our clock ({now.isoformat()}); report a purchase or refund once it happened, "
            "and check your clock"
        )


class CurrencyMismatchError(ReportRefusedError):
    field = "currency"

    def __init__(self, currency: str, expected: Sequence[str], day: date) -> None:
        wanted = " or ".join(sorted(set(expected)))
        super().__init__(
            f"currency {currency} differs from your earn contract's {wanted} on {day.isoformat()}; "
            f"report amounts in {wanted}"
        )


class TooManyPointsError(ReportRefusedError):
    field = "amount_minor"

    def __init__(self, points: int) -> None:
        super().__init__(
            f"this purchase would earn {points} points, more than one purchase may earn "
            f"({MAX_POINTS_PER_PURCHASE}); check amount_minor and its currency's minor units"
        )


class DuplicateKeyError(ReportRefusedError):
    field = "idempotency_key"

    def __init__(self, key: str, first_index: int) -> None:
        super().__init__(
            f"idempotency_key {key!r} is already used by item {first_index} of this batch; give every item its own key"
        )


class DuplicateIdError(ReportRefusedError):
    def __init__(self, kind: Kind, external_id: str, first_index: int) -> None:
        self.field = EXTERNAL_ID[kind]
        super().__init__(
            f"{self.field} {external_id!r} is already used by item {first_index} of this batch; report each {kind} "
            f"once, under one idempotency_key"
        )


class BatchRefusedError(PartnersError):
    """At least one report was refused, so none was accepted; `problems` lists each with its index."""

    def __init__(self, problems: Sequence[tuple[int, ReportRefusedError]]) -> None:
        self.problems = tuple(problems)
        first_index, first = self.problems[0]
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(f"item {first_index}: {first.message}{more}; nothing was accepted")


def event_id_for(kind: Kind, partner_id: str, idempotency_key: str) -> uuid.UUID:
    """The same partner, kind and key always name the same event, so a retried request is applied once."""
    return uuid.uuid5(_EVENT_IDS[kind], f"{partner_id}\x1f{idempotency_key}")


def partition_key(partner_id: str, customer_ref: str) -> str:
    """One customer's purchases and refunds share a partition and stay in order."""
    return f"{partner_id}:{customer_ref}"


def price_purchases(
    contracts: Sequence[EarnContract], reports: Sequence[PurchaseReport], now: datetime
) -> list[PricedPurchase]:
    """Points of every purchase under the contract valid on its UTC date; refuses the whole batch on any problem."""
    priced: list[PricedPurchase] = []
    problems: list[tuple[int, ReportRefusedError]] = []
    for index, report in enumerate(reports):
        try:
            priced.append(_price(contracts, report, now))
        except ReportRefusedError as error:
            problems.append((index, error))
    problems.extend(_duplicates("purchase", [(r.idempotency_key, r.purchase_id) for r in reports]))
    if problems:
        raise BatchRefusedError(sorted(problems, key=lambda p: p[0]))
    return priced


def check_refunds(contracts: Sequence[EarnContract], reports: Sequence[RefundReport], now: datetime) -> None:
    """A refund is dated no later than now and in a currency of the partner's contracts.

    The purchase it reverses may predate a change of contract, so any contracted currency is
    accepted; the ledger reverses the points the purchase itself earned.
    """
    currencies = sorted({c.currency for c in contracts})
    problems: list[tuple[int, ReportRefusedError]] = []
    for index, report in enumerate(reports):
        if report.occurred_at > now + FUTURE_TOLERANCE:
            problems.append((index, DatedInFutureError(report.occurred_at, now)))
        elif report.currency not in currencies:
            problems.append((index, CurrencyMismatchError(report.currency, currencies, _utc_day(report.occurred_at))))
    problems.extend(_duplicates("refund", [(r.idempotency_key, r.refund_id) for r in reports]))
    if problems:
        raise BatchRefusedError(sorted(problems, key=lambda p: p[0]))


def _price(contracts: Sequence[EarnContract], report: PurchaseReport, now: datetime) -> PricedPurchase:
    if report.occurred_at > now + FUTURE_TOLERANCE:
        raise DatedInFutureError(report.occurred_at, now)
    day = _utc_day(report.occurred_at)
    contract = contract_on(contracts, day)
    if report.currency != contract.currency:
        raise CurrencyMismatchError(report.currency, [contract.currency], day)
    points = points_for(contract, report.amount_minor, report.category)
    if points > MAX_POINTS_PER_PURCHASE:
        raise TooManyPointsError(points)
    return PricedPurchase(report=report, points=points, contract_valid_from=contract.valid_from)


def _utc_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def _duplicates(kind: Kind, keys_and_ids: Sequence[tuple[str, str]]) -> list[tuple[int, ReportRefusedError]]:
    """Items of one batch that repeat an earlier item's key or its purchase (refund) id; the key is named first."""
    first_key: dict[str, int] = {}
    first_id: dict[str, int] = {}
    problems: list[tuple[int, ReportRefusedError]] = []
    for index, (key, external_id) in enumerate(keys_and_ids):
        if key in first_key:
            problems.append((index, DuplicateKeyError(key, first_key[key])))
        elif external_id in first_id:
            problems.append((index, DuplicateIdError(kind, external_id, first_id[external_id])))
        first_key.setdefault(key, index)
        first_id.setdefault(external_id, index)
    return problems
