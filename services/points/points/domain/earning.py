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
- Bonuses that reward activities granted for the purchase are taken back by the same refund, by the
  same rules, into the activity's budget (points/domain/rewards.py says in which measure).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from points.domain.ledger import (
    BREAKAGE,
    REVIEW_PENDING,
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
    partner_id: str | None = None
    """The partner it was bought at; None for a card purchase."""
    holder_account: str | None = None
    """The account its points were credited to (the member's that claimed them, if they waited unclaimed);
    None for purchases recorded before the ledger kept it: its identifier's holder now."""
    qualifying_day: date | None = None
    """The programme day its points count on towards its member's tier; None: they never qualify (tiers.py)."""
    tier_code: str | None = None
    """The tier its member held when it occurred."""
    tier_bonus: int = 0
    tier_bonus_reversed: int = 0

    @property
    def lot_id(self) -> uuid.UUID:
        return earn_transfer_id(self.event_id)

    @property
    def fully_refunded(self) -> bool:
        return self.refunded_minor >= self.amount_minor


class EarnListener(Protocol):
    """What else purchases and refunds change (activity bonuses), told as the book moves, in order."""

    def earned(self, fact: Earn, holder: str) -> None:
        """The purchase was just credited to `holder`, before any refund that waited for it applies."""

    def reversed(self, fact: Reverse, earning: Earning, refunded_before: int) -> None:
        """The refund just reversed the purchase's own points; `earning.refunded_minor` is the new total."""


class EarnScreen(Protocol):
    """Decides, purchase by purchase, which earnings are held for review (points/domain/velocity.py)."""

    def check(self, fact: Earn, holder: str) -> Any:
        """Why the purchase is held (a Finding), or None to credit it to `holder`."""

    def record(self, fact: Earn, holder: str, credited: bool) -> None:
        """Count the purchase, once it was credited or held."""


@dataclass(frozen=True)
class Held:
    """A purchase whose points went to the suspense account instead of `holder`, and why."""

    fact: Earn
    holder: str
    finding: Any


class CurrencyMismatchError(LedgerError):
    """A refund in another currency than its purchase: it cannot be applied in proportion."""


class Outcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE_PURCHASE = "duplicate_purchase"
    PARKED = "parked"
    HELD = "held_for_review"
    REJECTED = "rejected"


def holder_of_earning(earning: Earning, holders: Mapping[str, str]) -> str:
    """Who holds a purchase's points: the account they went to, else (older records) its identifier's holder now."""
    return earning.holder_account or holders[earning.identifier]


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
    listener: EarnListener | None = None
    new_earnings: list[Earning] = field(default_factory=list)
    changed_earnings: dict[str, Earning] = field(default_factory=dict)
    newly_parked: list[Reverse] = field(default_factory=list)
    unparked: list[uuid.UUID] = field(default_factory=list)
    rejected: list[tuple[Reverse, str]] = field(default_factory=list)
    """Parked reversals that cannot apply, with the reason; they go to the dead-letter topic."""
    screen: EarnScreen | None = None
    held: list[Held] = field(default_factory=list)
    """Purchases held for review: their points are pending in REVIEW_PENDING, not their holder's."""
    cancelled: list[Earning] = field(default_factory=list)
    """Held earnings that refunds reversed in full: their review is over."""
    _new_keys: set[str] = field(default_factory=set, repr=False)
    """The source keys of `new_earnings`."""

    def earn(self, fact: Earn) -> Outcome:
        if fact.source_key in self.earnings:
            return Outcome.DUPLICATE_PURCHASE
        holder = self.holders[fact.identifier]
        finding = self.screen.check(fact, holder) if self.screen is not None and fact.points > 0 else None
        credited = holder if finding is None else REVIEW_PENDING
        earning = Earning(
            fact.source_key, fact.event_id, fact.identifier, fact.issuer_account,
            fact.amount_minor, fact.currency, fact.points, partner_id=fact.partner_id, holder_account=credited,
        )  # fmt: skip
        self.earnings[fact.source_key] = earning
        self.new_earnings.append(earning)
        self._new_keys.add(fact.source_key)
        if self.screen is not None:
            self.screen.record(fact, holder, credited=finding is None)
        if finding is not None:
            return self._hold(fact, holder, finding, earning)
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
        if self.listener is not None:
            self.listener.earned(fact, holder)
        self._unpark(earning)
        return Outcome.APPLIED

    def _hold(self, fact: Earn, holder: str, finding: Any, earning: Earning) -> Outcome:
        """The purchase's points go to the suspense account; no bonus, no tier credit, no clawback repayment."""
        self.book.transfer(
            transfer_id=earning.lot_id, debit=fact.issuer_account, credit=REVIEW_PENDING, amount=fact.points,
            reason=fact.reason, cause_event_id=fact.event_id, occurred_at=fact.occurred_at, memo=fact.memo,
        )  # fmt: skip
        self.held.append(Held(fact, holder, finding))
        self._unpark(earning)
        return Outcome.HELD

    def _unpark(self, earning: Earning) -> None:
        for waiting in self.parked.pop(earning.source_key, []):
            self.unparked.append(waiting.event_id)
            self._try_reverse(waiting, earning)

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
        before = earning.refunded_minor
        refunded, points = points_to_reverse(earning, fact.amount_minor)
        earning.refunded_minor = refunded
        earning.points_reversed += points
        if earning.source_key not in self._new_keys:  # a set: a list's `in` compares every field of every earning
            self.changed_earnings[earning.source_key] = earning
        made: list[Transfer] = []
        holder = holder_of_earning(earning, self.holders)
        if points and holder != earning.issuer_account:  # a rejected review's points went back to their issuer
            made = take_back(
                self.book, fact, holder=holder, credit=earning.issuer_account, points=points, prefer_lot=earning.lot_id
            )
        if holder == REVIEW_PENDING and earning.points_reversed >= earning.points:
            self.cancelled.append(earning)
        if self.listener is not None and refunded > before:
            self.listener.reversed(fact, earning, before)
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


def take_back(
    book: Book,
    fact: Reverse,
    *,
    holder: str,
    credit: str,
    points: int,
    prefer_lot: uuid.UUID,
    leg: str = "",
    reasons: tuple[str, str] | None = None,
    memo: Mapping[str, Any] | None = None,
) -> list[Transfer]:
    """Move `points` from `holder` back to `credit` for a refund, by the refund policy above.

    What the holder still has is taken (`prefer_lot` first); a member's shortfall is a clawback on
    its receivable, an unclaimed identifier's comes from breakage. `leg` prefixes the transfer legs,
    `reasons` names the taken and clawed back parts (the refund's reason and 'clawback' if None).
    """
    taken_reason, clawback_reason = reasons or (fact.reason, "clawback")

    def move(name: str, debit: str, amount: int, reason: str, lot: uuid.UUID | None = None) -> Transfer:
        return book.transfer(
            transfer_id=transfer_id(fact.event_id, f"{leg}{name}"),
            debit=debit,
            credit=credit,
            amount=amount,
            reason=reason,
            cause_event_id=fact.event_id,
            occurred_at=fact.occurred_at,
            memo=fact.memo if memo is None else memo,
            prefer_lot=lot,
        )

    made: list[Transfer] = []
    account = book.account(holder)
    taken = min(points, max(account.available, 0))
    if taken:
        made.append(move("reverse", holder, taken, taken_reason, prefer_lot))
    shortfall = points - taken
    if shortfall and account.kind is AccountKind.MEMBER:
        made.append(move("clawback", receivable_account(member_of(holder)), shortfall, clawback_reason))
    elif shortfall:
        made.append(move("from-breakage", BREAKAGE, shortfall, "expired_reversal"))
    return made
