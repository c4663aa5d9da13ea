"""Members: registration, linking identifiers on proof (which claims their unclaimed points), unlinking."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from contracts.link_codes import MalformedLinkCodeError, code_hash
from points.adapters.store import PointsStore, Transaction
from points.domain.ledger import Book, member_account, unclaimed_account
from points.domain.lifecycle import claim
from points.domain.link_codes import (
    IdentifierEvent,
    LinkCode,
    LinkCodeRequiredError,
    LinkCodeUsedError,
    LinkRefusedError,
    MalformedCodeError,
    Via,
    check_code,
)
from points.handlers.ledger_events import LedgerEventWriter, post_changes


class MemberNotFoundError(LookupError):
    def __init__(self, member_id: uuid.UUID) -> None:
        super().__init__(f"member {member_id} does not exist; register it first (POST /v1/members)")


class IdentifierTakenError(Exception):
    def __init__(self, identifier: str) -> None:
        super().__init__(
            f"{identifier} is linked to another member; an identifier belongs to one member only "
            "(ops can unlink it from the other member first)"
        )


class IdentifierNotLinkedError(LookupError):
    def __init__(self, identifier: str, member_id: uuid.UUID) -> None:
        super().__init__(f"{identifier} is not linked to member {member_id}; list its identifiers to see which are")


@dataclass(frozen=True)
class Actor:
    """Who asks: a member for itself, or an ops user for any member."""

    subject: str
    is_ops: bool

    @property
    def role(self) -> str:
        return "ops" if self.is_ops else "member"


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
    store: PointsStore,
    events: LedgerEventWriter,
    member_id: uuid.UUID,
    identifier: str,
    actor: Actor,
    link_code: str | None,
    max_wrong_attempts: int,
) -> LinkOutcome:
    """Link on the owner's proof (a link code, used up) or on ops' authority, once.

    The code, the link, its history entry and the move of the identifier's unclaimed points share
    one transaction, under the lock of the identifier's row: of two uses of one code, one links.
    A wrong code is refused after it was counted against the identifier's open codes.
    """
    now = datetime.now(UTC)
    async with store.transaction() as tx:
        if not await tx.member_exists(member_id):
            raise MemberNotFoundError(member_id)
        current = await tx.lock_identifier(identifier)
        if current == member_id:
            return LinkOutcome(identifier, 0, newly_linked=False)
        try:
            code = await _proof(tx, identifier, actor, link_code, now, max_wrong_attempts)
        except LinkRefusedError as refused:
            if not refused.wrong_guess:
                raise
            await tx.count_wrong_link_code(identifier, now)
            wrong_code = refused
        else:
            if current is not None:
                raise IdentifierTakenError(identifier)
            claimed = await _link(tx, events, member_id, identifier, actor, code, now)
            return LinkOutcome(identifier, claimed, newly_linked=True)
    raise wrong_code  # after the commit, so that the wrong attempt stays counted


async def unlink_identifier(store: PointsStore, member_id: uuid.UUID, identifier: str, actor: Actor) -> datetime:
    """Free the identifier (ops): points it brought stay with the member, later ones wait unclaimed again."""
    now = datetime.now(UTC)
    async with store.transaction() as tx:
        if not await tx.member_exists(member_id):
            raise MemberNotFoundError(member_id)
        if await tx.lock_identifier(identifier) != member_id:
            raise IdentifierNotLinkedError(identifier, member_id)
        await tx.unlink_identifier(identifier)
        await tx.record_identifier_event(
            IdentifierEvent(member_id, identifier, "unlinked", actor.subject, actor.role, Via.OPS, None, now)
        )
    return now


async def _proof(
    tx: Transaction, identifier: str, actor: Actor, link_code: str | None, now: datetime, max_wrong_attempts: int
) -> LinkCode | None:
    """The code that proves the owner's consent; None when ops link on their own authority."""
    if link_code is None:
        if actor.is_ops:
            return None
        raise LinkCodeRequiredError(identifier)
    try:
        hashed = code_hash(link_code)
    except MalformedLinkCodeError as error:
        raise MalformedCodeError(str(error)) from error
    return check_code(await tx.link_code(hashed, identifier), identifier, now, max_wrong_attempts)


async def _link(
    tx: Transaction,
    events: LedgerEventWriter,
    member_id: uuid.UUID,
    identifier: str,
    actor: Actor,
    code: LinkCode | None,
    now: datetime,
) -> int:
    """Use the code, link, record who did it, and claim the unclaimed points; the points claimed."""
    if code is not None and not await tx.use_link_code(code, member_id, now):
        raise LinkCodeUsedError(identifier)  # cannot happen under the identifier's lock: a guard all the same
    await tx.link_identifier(identifier, member_id, now)
    via, issued_by = (Via.LINK_CODE, code.issued_by) if code is not None else (Via.OPS, None)
    await tx.record_identifier_event(
        IdentifierEvent(member_id, identifier, "linked", actor.subject, actor.role, via, issued_by, now)
    )
    return await _claim(tx, events, identifier, member_id, now)


async def _claim(
    tx: Transaction, events: LedgerEventWriter, identifier: str, member_id: uuid.UUID, now: datetime
) -> int:
    """Move the identifier's unclaimed lots to the member; the points moved."""
    source, target = unclaimed_account(identifier), member_account(member_id)
    await tx.claim_earnings(identifier, source, target)
    accounts = await tx.lock_accounts([source, target])
    book = Book(accounts, await tx.live_lots([source]))
    if not book.has_account(source):
        return 0
    book.mark_lots_loaded([source])
    moved = claim(book, identifier, target, now)
    await post_changes(tx, book, events)
    return sum(t.amount for t in moved)
