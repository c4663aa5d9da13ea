"""Members give points to each other, within a daily limit; a gift is given once, whatever the retries."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from points.adapters.store import PointsStore, Transaction
from points.adapters.velocity_store import VelocitySql
from points.domain import holds
from points.domain.ledger import Book, member_account
from points.domain.velocity import refusal
from points.handlers.ledger_events import LedgerEventWriter, post_changes
from points.handlers.members import MemberNotFoundError
from points.handlers.velocity import gifts_today


class GiftRefusedError(ValueError):
    """A gift the rules do not allow; the message says why."""


class GiftIdReusedError(Exception):
    def __init__(self, gift_id: uuid.UUID) -> None:
        super().__init__(f"gift {gift_id} was already given with other details; use a new gift_id for a new gift")


@dataclass(frozen=True)
class GiftOutcome:
    gift_id: uuid.UUID
    amount: int
    given_at: datetime
    new: bool


async def give(
    store: PointsStore,
    events: LedgerEventWriter,
    gift_id: uuid.UUID,
    sender: uuid.UUID,
    recipient: uuid.UUID,
    amount: int,
    message: str,
    daily_limit: int,
) -> GiftOutcome:
    if sender == recipient:
        raise GiftRefusedError("a member cannot give points to itself")
    now = datetime.now(UTC)
    async with store.transaction() as tx:
        await tx.lock_gift_id(gift_id)  # a concurrent request with this id waits, then reads what this one did
        existing = await tx.find_gift(gift_id)
        if existing is not None:
            if (existing["sender"], existing["recipient"], existing["amount"]) != (sender, recipient, amount):
                raise GiftIdReusedError(gift_id)
            return GiftOutcome(gift_id, amount, existing["given_at"], new=False)
        known = await tx.existing_members([sender, recipient])
        for member in (sender, recipient):
            if member not in known:
                raise MemberNotFoundError(member)
        source, target = member_account(sender), member_account(recipient)
        book = Book(await tx.lock_accounts([source, target]), await tx.live_lots([source]))
        book.mark_lots_loaded([source])
        # The sender's account is locked now, so concurrent gifts cannot both slip under the limit.
        today = now.replace(hour=0, minute=0, second=0, microsecond=0)
        given_today = await tx.gifted_since(sender, today)
        if given_today + amount > daily_limit:
            left = max(daily_limit - given_today, 0)
            raise GiftRefusedError(f"the daily gift limit is {daily_limit} points; {left} left today (UTC)")
        await _within_gift_count(tx, sender, now)
        available = book.account(source).available
        if available < amount:
            raise GiftRefusedError(f"only {available} points available to give")
        holds.gift(book, gift_id, source, target, amount, now, message)
        await tx.insert_gift(gift_id, sender, recipient, amount, message, now)
        await post_changes(tx, book, events)
    return GiftOutcome(gift_id, amount, now, new=True)


async def _within_gift_count(tx: Transaction, sender: uuid.UUID, now: datetime) -> None:
    """The velocity rule of gifts per member and day (a count, beside the daily limit of points)."""
    limit = (await VelocitySql(tx.conn).latest_rules())[0].gifts_per_day
    if limit is not None:
        reason = refusal("gifts", await gifts_today(tx, sender, now), limit)
        if reason is not None:
            raise GiftRefusedError(reason)
