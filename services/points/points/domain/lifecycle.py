"""What happens to points after they were earned: claimed by a member, or expired to breakage."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
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
    available = {lot.account_id: book.account(lot.account_id).available for lot in due}
    made: list[Transfer] = []
    for lot, amount in expiry_amounts(available, due):
        leg = expiry_transfer(lot, amount)
        made.append(
            book.transfer(
                transfer_id=leg.transfer_id, debit=leg.debit_account, credit=leg.credit_account, amount=leg.amount,
                reason=leg.reason, cause_event_id=leg.cause_event_id, occurred_at=leg.occurred_at, memo=leg.memo,
                prefer_lot=lot.lot_id,
            )
        )  # fmt: skip
    return made


def expiry_amounts(available: Mapping[str, int], due: Iterable[Lot]) -> list[tuple[Lot, int]]:
    """What each due lot gives to breakage, in `Lot.sort_key` order: what is left of it, as far as its account's
    available balance goes (what holds reserve stays); lots that give nothing are left out.

    `available` is per account before the run's transfers; the expiry run of many accounts uses it without a
    `Book` (handlers/expiry.py), `expire` with one.
    """
    left = dict(available)
    taken: list[tuple[Lot, int]] = []
    for lot in sorted(due, key=Lot.sort_key):
        amount = min(lot.remaining, left.get(lot.account_id, 0))
        if amount > 0:
            left[lot.account_id] -= amount
            taken.append((lot, amount))
    return taken


def expiry_transfer(lot: Lot, amount: int) -> Transfer:
    """The transfer that moves `amount` of what is left of `lot` to breakage."""
    return Transfer(
        # The amount already taken from the lot names the leg, so a partial expiry can continue later.
        transfer_id=transfer_id(lot.lot_id, f"expiry:{lot.amount - lot.remaining}"),
        debit_account=lot.account_id,
        credit_account=BREAKAGE,
        amount=amount,
        reason="expiry",
        cause_event_id=lot.lot_id,
        occurred_at=lot.expires_at,
        memo={"issuer": lot.issuer} if lot.issuer else {},
    )
