"""Members: registration, linking identifiers (which claims their unclaimed points), reading."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from points.adapters.store import PointsStore
from points.domain.ledger import Book, member_account, unclaimed_account
from points.domain.lifecycle import claim
from points.handlers.ledger_events import LedgerEventWriter, post_changes


class MemberNotFoundError(LookupError):
    def __init__(self, member_id: uuid.UUID) -> None:
        super().__init__(f"member {member_id} does not exist; register it first (POST /v1/members)")


class IdentifierTakenError(Exception):
    def __init__(self, identifier: str) -> None:
        super().__init__(f"{identifier} is linked to another member; an identifier belongs to one member only")


@dataclass(frozen=True)
class LinkOutcome:
    identifier: str
    claimed_points: int
    newly_linked: bool


async def register_member(store: PointsStore, member_id: uuid.UUID, display_name: str) -> bool:
    """Create the member and its account; False when it existed already."""
    async with store.transaction() as tx:
        return await tx.create_member(member_id, display_name, member_account(member_id))


async def link_identifier(
    store: PointsStore, events: LedgerEventWriter, member_id: uuid.UUID, identifier: str
) -> LinkOutcome:
    """Link once; the identifier's unclaimed points move to the member in the same transaction."""
    now = datetime.now(UTC)
    async with store.transaction() as tx:
        if not await tx.member_exists(member_id):
            raise MemberNotFoundError(member_id)
        current = await tx.lock_identifier(identifier)
        if current == member_id:
            return LinkOutcome(identifier, 0, newly_linked=False)
        if current is not None:
            raise IdentifierTakenError(identifier)
        await tx.link_identifier(identifier, member_id, now)
        source, target = unclaimed_account(identifier), member_account(member_id)
        accounts = await tx.lock_accounts([source, target])
        book = Book(accounts, await tx.live_lots([source]))
        if not book.has_account(source):
            return LinkOutcome(identifier, 0, newly_linked=True)
        book.mark_lots_loaded([source])
        moved = claim(book, identifier, target, now)
        await post_changes(tx, book, events)
    return LinkOutcome(identifier, sum(t.amount for t in moved), newly_linked=True)
