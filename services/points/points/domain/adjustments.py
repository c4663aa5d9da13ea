"""Adjustments: ops credit or debit a member's points by hand, with a reason and a note, under four eyes.

- An adjustment names a member, a direction (credit or debit), a positive whole number of points, a reason
  from a fixed list and a note that says why (required: an auditor reads it).
- At or below the approval threshold in force when it is requested, it posts at once. Above it, it waits
  (`pending`) until a second ops user approves it (then it posts) or rejects it. The one who decides is never
  the one who asked: four eyes. A decided adjustment is never decided again.
- A credit moves points from the `adjustments` account to the member as a new lot with the programme's
  normal validity; a debit takes the member's lots (those that expire first first) back to `adjustments`.
  A debit beyond what the member has available is refused, when asked and again when approved.
- Transfer ids derive from the adjustment id, so an adjustment can never post twice.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from points.domain.ledger import ADJUSTMENTS, Book, Transfer, member_account, transfer_id

MAX_POINTS = 10_000_000
"""The most one adjustment moves; anything larger is a migration (batch import), not a correction."""
MAX_NOTE = 1_000


class Reason(StrEnum):
    GOODWILL = "goodwill"
    """A gesture to a member (a complaint, a delay), not owed by any rule."""
    SERVICE_RECOVERY = "service_recovery"
    """Points the member should have earned but a failure (a partner's, ours) lost."""
    CORRECTION = "correction"
    """A mistake in an earlier posting (a wrong rate, a duplicate), undone or completed."""
    FRAUD_REVERSAL = "fraud_reversal"
    """Points obtained by abuse, taken back."""
    MIGRATION_FIX = "migration_fix"
    """A balance the legacy programme's migration got wrong."""
    OTHER = "other"
    """Anything else; the note must say what."""


class Direction(StrEnum):
    CREDIT = "credit"
    DEBIT = "debit"


class Status(StrEnum):
    PENDING = "pending"
    POSTED = "posted"
    REJECTED = "rejected"


class AdjustmentError(Exception):
    """An adjustment the rules refuse; the message says why."""


class AdjustmentRuleError(AdjustmentError):
    """The request itself is wrong (points, note)."""


class SameOpsUserError(AdjustmentError):
    """Four eyes: the requester tried to decide its own adjustment."""


class AlreadyDecidedError(AdjustmentError):
    def __init__(self, adjustment: Adjustment) -> None:
        super().__init__(
            f"adjustment {adjustment.adjustment_id} is {adjustment.status} already"
            f" (by {adjustment.decided_by or adjustment.requested_by}); it can be decided only once"
        )
        self.adjustment = adjustment


class NotEnoughPointsError(AdjustmentError):
    def __init__(self, member_id: uuid.UUID, available: int, wanted: int) -> None:
        super().__init__(
            f"member {member_id} has {available} points available; a debit of {wanted} cannot post"
            " (debit at most the available points, or reject the request)"
        )
        self.available = available
        self.wanted = wanted


@dataclass(frozen=True)
class Request:
    adjustment_id: uuid.UUID
    member_id: uuid.UUID
    direction: Direction
    points: int
    reason: Reason
    note: str

    def fingerprint(self, requested_by: str) -> str:
        """What makes two requests with one id the same request (a retry), as a hash."""
        parts = (self.adjustment_id, self.member_id, self.direction, self.points, self.reason, self.note, requested_by)
        return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()


@dataclass(frozen=True)
class Adjustment:
    adjustment_id: uuid.UUID
    member_id: uuid.UUID
    direction: Direction
    points: int
    reason: Reason
    note: str
    requested_by: str
    requested_at: datetime
    threshold: int
    """The approval threshold in force when it was requested (a later change of setting does not re-decide it)."""
    status: Status
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision_note: str | None = None
    posted_at: datetime | None = None
    transfer_id: uuid.UUID | None = None

    @property
    def needs_approval(self) -> bool:
        return self.points > self.threshold

    @property
    def signed_points(self) -> int:
        """What it adds to the member's balance: positive for a credit, negative for a debit."""
        return self.points if self.direction is Direction.CREDIT else -self.points

    def summary(self) -> dict[str, object]:
        """Its state as the audit log keeps it (`approved`: decided by a second ops user, posting now)."""
        approved = self.status is Status.PENDING and self.decided_by is not None
        return {
            "member_id": str(self.member_id), "direction": self.direction.value, "points": self.points,
            "reason": self.reason.value, "status": "approved" if approved else self.status.value,
            "requested_by": self.requested_by,
            "decided_by": self.decided_by, "threshold": self.threshold,
            "transfer_id": str(self.transfer_id) if self.transfer_id else None,
        }  # fmt: skip


def validate(request: Request) -> Request:
    """The request with its note trimmed; raises AdjustmentRuleError if it cannot be an adjustment."""
    if isinstance(request.points, bool) or not isinstance(request.points, int):
        raise AdjustmentRuleError("points are a whole number")
    if not 0 < request.points <= MAX_POINTS:
        raise AdjustmentRuleError(f"an adjustment moves 1 to {MAX_POINTS:,} points, not {request.points}")
    note = request.note.strip()
    if not note:
        raise AdjustmentRuleError("a note is required: say why the member's points change")
    if len(note) > MAX_NOTE:
        raise AdjustmentRuleError(f"the note has at most {MAX_NOTE} characters")
    return replace(request, note=note)


def open_request(request: Request, requested_by: str, at: datetime, threshold: int) -> Adjustment:
    """A new adjustment, pending until approved if it is above the threshold (it posts at once otherwise)."""
    if threshold < 0:
        raise AdjustmentRuleError("the approval threshold is 0 or more points")
    valid = validate(request)
    return Adjustment(
        valid.adjustment_id, valid.member_id, valid.direction, valid.points, valid.reason, valid.note,
        requested_by, at, threshold, Status.PENDING,
    )  # fmt: skip


def check_decider(adjustment: Adjustment, decider: str) -> None:
    """Raise unless `decider` may approve or reject `adjustment` now."""
    if adjustment.status is not Status.PENDING:
        raise AlreadyDecidedError(adjustment)
    if decider == adjustment.requested_by:
        raise SameOpsUserError(
            f"{decider} requested adjustment {adjustment.adjustment_id}: a second ops user must approve or reject it"
        )


def approve(adjustment: Adjustment, approver: str, at: datetime, note: str | None = None) -> Adjustment:
    check_decider(adjustment, approver)
    return replace(adjustment, decided_by=approver, decided_at=at, decision_note=note)


def reject(adjustment: Adjustment, rejecter: str, at: datetime, note: str | None = None) -> Adjustment:
    check_decider(adjustment, rejecter)
    return replace(adjustment, status=Status.REJECTED, decided_by=rejecter, decided_at=at, decision_note=note)


def post(book: Book, adjustment: Adjustment, at: datetime, lot_validity: timedelta) -> tuple[Adjustment, Transfer]:
    """Move the adjustment's points in `book` (which holds the member's account and lots, and `adjustments`).

    Only a pending adjustment at or below its threshold, or one approved by a second ops user, posts.
    Raises NotEnoughPointsError (nothing moved) for a debit beyond the member's available points.
    """
    if adjustment.status is not Status.PENDING:
        raise AlreadyDecidedError(adjustment)
    if adjustment.needs_approval and (adjustment.decided_by in (None, adjustment.requested_by)):
        needed = f"adjustment {adjustment.adjustment_id} is above its threshold: a second ops user approves it"
        raise SameOpsUserError(needed)
    member = member_account(adjustment.member_id)
    memo: dict[str, object] = {"adjustment_id": str(adjustment.adjustment_id), "adjustment_reason": adjustment.reason}
    if adjustment.direction is Direction.CREDIT:
        made = book.transfer(
            transfer_id=transfer_id(adjustment.adjustment_id, "credit"), debit=ADJUSTMENTS, credit=member,
            amount=adjustment.points, reason="adjustment_credit", cause_event_id=adjustment.adjustment_id,
            occurred_at=at, memo={**memo, "issuer": ADJUSTMENTS}, lot_expires_at=at + lot_validity,
            lot_earned_at=at, lot_issuer=ADJUSTMENTS,
        )  # fmt: skip
    else:
        available = book.account(member).available
        if available < adjustment.points:
            raise NotEnoughPointsError(adjustment.member_id, available, adjustment.points)
        made = book.transfer(
            transfer_id=transfer_id(adjustment.adjustment_id, "debit"), debit=member, credit=ADJUSTMENTS,
            amount=adjustment.points, reason="adjustment_debit", cause_event_id=adjustment.adjustment_id,
            occurred_at=at, memo=memo,
        )  # fmt: skip
    return replace(adjustment, status=Status.POSTED, posted_at=at, transfer_id=made.transfer_id), made


def check_debit(adjustment: Adjustment, available: int) -> None:
    """Refuse a debit request the member cannot cover now (asked again at approval, when it posts)."""
    if adjustment.direction is Direction.DEBIT and available < adjustment.points:
        raise NotEnoughPointsError(adjustment.member_id, available, adjustment.points)
