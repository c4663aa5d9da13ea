"""Two-phase transfers (TigerBeetle's pending, post, void) for redemption, and gifts between members.

A hold reserves points: a pending debit of the member and a pending credit of the partner the
points are redeemed with. Capturing posts it as a transfer (which takes the member's lots,
those that expire first first); releasing voids it. The member's available balance (posted
minus pending) can never go below zero, so concurrent holds cannot overspend.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from points.domain.ledger import Book, InsufficientPointsError, LedgerError, Transfer, transfer_id


class HoldStatus(StrEnum):
    PENDING = "pending"
    POSTED = "posted"
    VOIDED = "voided"


@dataclass
class Hold:
    hold_id: uuid.UUID
    member_id: uuid.UUID
    order_id: uuid.UUID
    debit_account: str
    credit_account: str
    amount: int
    expires_at: datetime
    status: HoldStatus = HoldStatus.PENDING
    void_reason: str | None = None
    transfer_id: uuid.UUID | None = None


def place(book: Book, hold: Hold) -> bool:
    """Reserve the hold's points if the member has them available; False (nothing reserved) if not."""
    if book.account(hold.debit_account).available < hold.amount:
        return False
    book.reserve(hold.debit_account, hold.credit_account, hold.amount)
    return True


def capture(
    book: Book, hold: Hold, at: datetime, cause_event_id: uuid.UUID, reason: str = "redemption",
    memo: Mapping[str, Any] | None = None,
) -> Transfer:  # fmt: skip
    """Post a pending hold: the reservation becomes a transfer that takes the member's lots.

    `reason` and `memo` name what the hold paid for (a redemption order; an exchange, domain/exchange.py)."""
    if hold.status is not HoldStatus.PENDING:
        raise LedgerError(f"hold {hold.hold_id} is {hold.status}, not pending")
    book.unreserve(hold.debit_account, hold.credit_account, hold.amount)
    made = book.transfer(
        transfer_id=transfer_id(hold.hold_id, "capture"),
        debit=hold.debit_account,
        credit=hold.credit_account,
        amount=hold.amount,
        reason=reason,
        cause_event_id=cause_event_id,
        occurred_at=at,
        memo=memo if memo is not None else {"hold_id": str(hold.hold_id), "order_id": str(hold.order_id)},
    )
    hold.status = HoldStatus.POSTED
    hold.transfer_id = made.transfer_id
    return made


def void(book: Book, hold: Hold, reason: str) -> None:
    """Release a pending hold: the points are the member's to spend again."""
    if hold.status is not HoldStatus.PENDING:
        raise LedgerError(f"hold {hold.hold_id} is {hold.status}, not pending")
    book.unreserve(hold.debit_account, hold.credit_account, hold.amount)
    hold.status = HoldStatus.VOIDED
    hold.void_reason = reason


def gift(
    book: Book, gift_id: uuid.UUID, sender: str, recipient: str, amount: int, at: datetime, message: str = ""
) -> list[Transfer]:
    """Move points from one member to another, lot by lot, so each keeps its expiry and issuer.

    The sender's lots that expire first go first. Raises InsufficientPointsError before moving
    anything if the sender does not have `amount` available.
    """
    return move_lots(book, cause=gift_id, leg="", debit=sender, credit=recipient, amount=amount, reason="gift",
                     at=at, memo={"gift_id": str(gift_id), "message": message})  # fmt: skip


def move_lots(
    book: Book,
    *,
    cause: uuid.UUID,
    leg: str,
    debit: str,
    credit: str,
    amount: int,
    reason: str,
    at: datetime,
    memo: Mapping[str, Any],
) -> list[Transfer]:
    """Move `amount` from `debit`'s lots to `credit`, lot by lot (those that expire first first), each transfer
    keeping its lot's expiry, earning date and issuer (also in its memo). Raises InsufficientPointsError before
    moving anything. Each transfer's id derives from `cause`, `leg` and the lot (gifts have no leg)."""
    source = book.account(debit)
    if source.available < amount:
        raise InsufficientPointsError(debit, source.available, amount)
    made: list[Transfer] = []
    wanted = amount
    for lot in book.live_lots(debit):
        if wanted == 0:
            break
        portion = min(lot.remaining, wanted)
        wanted -= portion
        made.append(
            book.transfer(
                transfer_id=transfer_id(cause, f"{leg}:{lot.lot_id}" if leg else str(lot.lot_id)),
                debit=debit,
                credit=credit,
                amount=portion,
                reason=reason,
                cause_event_id=cause,
                occurred_at=at,
                memo={**memo, "issuer": lot.issuer},
                lot_expires_at=lot.expires_at,
                lot_earned_at=lot.earned_at,
                lot_issuer=lot.issuer,
                prefer_lot=lot.lot_id,
            )
        )
    return made


def capture_after_expiry(book: Book, hold: Hold, at: datetime, cause_event_id: uuid.UUID) -> Transfer | None:
    """A capture asked for in time that reached the ledger after the hold expired: post it from what
    the member has available now, or return None (the caller refuses the capture)."""
    if hold.status is not HoldStatus.VOIDED or hold.void_reason != "expired":
        raise LedgerError(f"hold {hold.hold_id} did not expire")
    if book.account(hold.debit_account).available < hold.amount:
        return None
    hold.status = HoldStatus.PENDING
    book.reserve(hold.debit_account, hold.credit_account, hold.amount)
    hold.void_reason = None
    return capture(book, hold, at, cause_event_id)
