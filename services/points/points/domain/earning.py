"""How purchases earn points and how refunds and reversals take them back.

Refund policy (DESIGN.md, "The ledger"):
- A refund reverses the points its purchase earned in proportion to the amount refunded,
  cumulatively, so that refunding a purchase in parts reverses exactly what a full refund
  would: points * refunded_so_far // amount, minus what earlier refunds already reversed.
- The reversal takes the purchase's own lot first, then the lots that expire first.
- If the member already spent (or lost to expiry) some of those points, what it still has
  is taken, and the rest becomes a clawback: a debt on the member's receivable account,
  repaid first from its next earnings. A member's balance never goes negative.
- Points of an identifier that is not linked yet cannot be spent, only expire: a shortfall
  there is taken back from breakage, where the expired points went.
- A refund that arrives before its purchase waits (is parked) and applies when the purchase does.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from points.domain.ledger import (
    BREAKAGE,
    AccountKind,
    Book,
    LedgerError,
    Transfer,
    kind_of,
    member_of,
    receivable_account,
    transfer_id,
)


@dataclass(frozen=True)
class Earn:
    """A purchase (at a partner or with the card) that earns points for an identifier."""

    event_id: uuid.UUID
    source_key: str
    """What was bought, unique per channel: 'partner:<partner>:<purchase id>' or 'card:<transaction id>'."""
    identifier: str
    issuer_account: str
    amount_minor: int
    currency: str
    points: int
    occurred_at: datetime
    reason: str
    memo: Mapping[str, Any] = field(default_factory=dict)
    channel: str = "partner"
    partner_id: str | None = None
    category: str | None = None
    mcc: str | None = None


@dataclass(frozen=True)
class Reverse:
    """A refund or card reversal of (part of) an earlier purchase."""

    event_id: uuid.UUID
    source_key: str
    """The purchase it reverses."""
    amount_minor: int
    currency: str
    occurred_at: datetime
    reason: str
    memo: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Earning:
    """A purchase the ledger has seen, with how much of it was refunded so far."""

    source_key: str
    event_id: uuid.UUID
    identifier: str
    issuer_account: str
    amount_minor: int
    currency: str
    points: int
    refunded_minor: int = 0
    points_reversed: int = 0

    @property
    def lot_id(self) -> uuid.UUID:
        return earn_transfer_id(self.event_id)


class CurrencyMismatchError(LedgerError):
    """A refund in another currency than its purchase: it cannot be applied in proportion."""


class Outcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE_PURCHASE = "duplicate_purchase"
    PARKED = "parked"
    REJECTED = "rejected"


def earn_transfer_id(event_id: uuid.UUID) -> uuid.UUID:
    return transfer_id(event_id, "earn")


def points_to_reverse(earning: Earning, refund_minor: int) -> tuple[int, int]:
    """(refunded amount after this refund, points this refund reverses); refunds beyond the price count to it."""
    refunded = min(earning.amount_minor, earning.refunded_minor + refund_minor)
    reversed_total = earning.points * refunded // earning.amount_minor
    return refunded, reversed_total - earning.points_reversed


@dataclass
class EarnPlan:
    """Applies a batch of earn facts to a `Book`, in order, and records what changed besides transfers."""

    book: Book
    holders: Mapping[str, str]
    """Identifier -> the account that holds its points now (its member's, or its unclaimed account)."""
    earnings: dict[str, Earning]
    """Earnings this batch may touch, by source key; new ones are added."""
    parked: dict[str, list[Reverse]]
    """Reversals waiting for their purchase, by source key."""
    lot_validity: timedelta
    new_earnings: list[Earning] = field(default_factory=list)
    changed_earnings: dict[str, Earning] = field(default_factory=dict)
    newly_parked: list[Reverse] = field(default_factory=list)
    unparked: list[uuid.UUID] = field(default_factory=list)
    rejected: list[tuple[Reverse, str]] = field(default_factory=list)
    """Parked reversals that cannot apply, with the reason; they go to the dead-letter topic."""

    def earn(self, fact: Earn) -> Outcome:
        if fact.source_key in self.earnings:
            return Outcome.DUPLICATE_PURCHASE
        earning = Earning(
            fact.source_key, fact.event_id, fact.identifier, fact.issuer_account,
            fact.amount_minor, fact.currency, fact.points,
        )  # fmt: skip
        self.earnings[fact.source_key] = earning
        self.new_earnings.append(earning)
        holder = self.holders[fact.identifier]
        if fact.points > 0:
            self.book.transfer(
                transfer_id=earning.lot_id,
                debit=fact.issuer_account,
                credit=holder,
                amount=fact.points,
                reason=fact.reason,
                cause_event_id=fact.event_id,
                occurred_at=fact.occurred_at,
                memo=fact.memo,
                lot_expires_at=fact.occurred_at + self.lot_validity,
                lot_issuer=fact.issuer_account,
            )
            self._repay_clawback(holder, fact)
        for waiting in self.parked.pop(fact.source_key, []):
            self.unparked.append(waiting.event_id)
            self._try_reverse(waiting, earning)
        return Outcome.APPLIED

    def reverse(self, fact: Reverse) -> Outcome:
        """Raises CurrencyMismatchError for a reversal that cannot apply: its record is dead-lettered."""
        earning = self.earnings.get(fact.source_key)
        if earning is None:
            self.parked.setdefault(fact.source_key, []).append(fact)
            self.newly_parked.append(fact)
            return Outcome.PARKED
        self._reverse(fact, earning)
        return Outcome.APPLIED

    def _try_reverse(self, fact: Reverse, earning: Earning) -> Outcome:
        """A parked reversal, applied when its purchase arrives; one that cannot apply must not refuse the purchase."""
        try:
            self._reverse(fact, earning)
        except CurrencyMismatchError as error:
            self.rejected.append((fact, str(error)))
            return Outcome.REJECTED
        return Outcome.APPLIED

    def _reverse(self, fact: Reverse, earning: Earning) -> list[Transfer]:
        if fact.currency != earning.currency:
            raise CurrencyMismatchError(
                f"{fact.reason} {fact.event_id} is in {fact.currency}, its purchase {earning.source_key} in "
                f"{earning.currency}; resend it in {earning.currency}"
            )
        refunded, points = points_to_reverse(earning, fact.amount_minor)
        earning.refunded_minor = refunded
        earning.points_reversed += points
        if earning not in self.new_earnings:
            self.changed_earnings[earning.source_key] = earning
        if points == 0:
            return []
        holder = self.holders[earning.identifier]
        account = self.book.account(holder)

        def move(leg: str, debit: str, amount: int, reason: str, prefer_lot: uuid.UUID | None = None) -> Transfer:
            return self.book.transfer(
                transfer_id=transfer_id(fact.event_id, leg),
                debit=debit,
                credit=earning.issuer_account,
                amount=amount,
                reason=reason,
                cause_event_id=fact.event_id,
                occurred_at=fact.occurred_at,
                memo=fact.memo,
                prefer_lot=prefer_lot,
            )

        made: list[Transfer] = []
        taken = min(points, max(account.available, 0))
        if taken:
            made.append(move("reverse", holder, taken, fact.reason, prefer_lot=earning.lot_id))
        shortfall = points - taken
        if shortfall and account.kind is AccountKind.MEMBER:
            made.append(move("clawback", receivable_account(member_of(holder)), shortfall, "clawback"))
        elif shortfall:
            made.append(move("from-breakage", BREAKAGE, shortfall, "expired_reversal"))
        return made

    def _repay_clawback(self, holder: str, fact: Earn) -> None:
        if kind_of(holder) is not AccountKind.MEMBER:
            return
        debt_account = receivable_account(member_of(holder))
        if not self.book.has_account(debt_account):
            return
        owed = -self.book.account(debt_account).posted
        amount = min(owed, self.book.account(holder).available)
        if amount > 0:
            self.book.transfer(
                transfer_id=transfer_id(fact.event_id, "repay"),
                debit=holder,
                credit=debt_account,
                amount=amount,
                reason="clawback_repayment",
                cause_event_id=fact.event_id,
                occurred_at=fact.occurred_at,
            )
