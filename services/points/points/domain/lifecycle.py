"""What happens to points after they were earned: claimed by a member, or expired to breakage."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from points.domain.ledger import BREAKAGE, Book, Lot, Transfer, transfer_id, unclaimed_account

_CLAIMS = uuid.UUID("9d7f0c2e-51a8-4c6b-b7f4-2e8a6d13c0f5")


def claim_id(identifier: str) -> uuid.UUID:
    """The cause of every claim of an identifier's points: each link (again after an unlink) moves each lot once."""
    return uuid.uuid5(_CLAIMS, identifier)


def claim(book: Book, identifier: str, member_account_id: str, claimed_at: datetime) -> list[Transfer]:
    """Move every live lot of an identifier's unclaimed account to the member, keeping each lot's dates."""
    source = unclaimed_account(identifier)
    cause = claim_id(identifier)
    return [
        book.transfer(
            transfer_id=transfer_id(cause, str(lot.lot_id)),
            debit=source,
            credit=member_account_id,
            amount=lot.remaining,
            reason="claim",
            cause_event_id=cause,
            occurred_at=claimed_at,
            memo={"identifier": identifier},
            lot_expires_at=lot.expires_at,
            lot_earned_at=lot.earned_at,
            lot_issuer=lot.issuer,
            prefer_lot=lot.lot_id,
        )
        for lot in book.live_lots(source)
    ]


def expire(book: Book, account_ids: Iterable[str], as_of: datetime) -> list[Transfer]:
    """Move what is left of each lot that expired by `as_of` to breakage.

    Points reserved by a hold stay until the hold is settled; a later run takes them if the
    hold is released.
    """
    due = [lot for account in account_ids for lot in book.live_lots(account) if lot.expires_at <= as_of]
    made: list[Transfer] = []
    for lot in sorted(due, key=Lot.sort_key):
        account = book.account(lot.account_id)
        amount = min(lot.remaining, account.available)
        if amount <= 0:
            continue
        made.append(
            book.transfer(
                # The amount already taken from the lot names the leg, so a partial expiry can continue later.
                transfer_id=transfer_id(lot.lot_id, f"expiry:{lot.amount - lot.remaining}"),
                debit=lot.account_id,
                credit=BREAKAGE,
                amount=amount,
                reason="expiry",
                cause_event_id=lot.lot_id,
                occurred_at=lot.expires_at,
                memo={"issuer": lot.issuer} if lot.issuer else {},
                prefer_lot=lot.lot_id,
            )
        )
    return made
