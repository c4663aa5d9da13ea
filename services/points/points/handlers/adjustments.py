"""Adjustments under four eyes: request, approve, reject. Each is one transaction with its audit entries and
the ledger events of what it posted (points/domain/adjustments.py says the rules)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from loyalty_runtime import audit
from loyalty_runtime.auth import Principal
from points.adapters.adjustments_store import AdjustmentRows
from points.adapters.store import PointsStore, Transaction
from points.domain import adjustments as rules
from points.domain.adjustments import Adjustment, Request, Status
from points.domain.ledger import ADJUSTMENTS, Book, member_account
from points.handlers.ledger_events import LedgerEventWriter, post_changes
from points.handlers.members import MemberNotFoundError


class AdjustmentNotFoundError(LookupError):
    def __init__(self, adjustment_id: uuid.UUID) -> None:
        super().__init__(f"no adjustment {adjustment_id}")


class AdjustmentIdReusedError(Exception):
    def __init__(self, adjustment_id: uuid.UUID) -> None:
        super().__init__(
            f"adjustment {adjustment_id} was requested already with other details; use a new adjustment_id"
        )


@dataclass(frozen=True)
class Adjustments:
    """What the handlers need, as app.py wires it."""

    store: PointsStore
    events: LedgerEventWriter
    threshold: int
    lot_validity: timedelta


@dataclass(frozen=True)
class Outcome:
    adjustment: Adjustment
    new: bool


async def request(deps: Adjustments, ask: Request, caller: Principal, at: datetime) -> Outcome:
    """Open an adjustment; at or below the threshold it posts in the same transaction."""
    wanted = rules.open_request(ask, caller.subject, at, deps.threshold)
    fingerprint = rules.validate(ask).fingerprint(caller.subject)
    async with deps.store.transaction() as tx:
        rows = AdjustmentRows(tx.conn)
        await rows.lock_id(wanted.adjustment_id)  # a concurrent retry waits, then reads what this one did
        existing = await rows.find(wanted.adjustment_id)
        if existing is not None:
            if existing[1] != fingerprint:
                raise AdjustmentIdReusedError(wanted.adjustment_id)
            return Outcome(existing[0], new=False)
        if not await tx.member_exists(wanted.member_id):
            raise MemberNotFoundError(wanted.member_id)
        book = await _load_book(tx, wanted)
        rules.check_debit(wanted, book.account(member_account(wanted.member_id)).available)
        await rows.insert(wanted, fingerprint)
        await _audit(tx, caller, "adjustment.requested", wanted, before=None, note=wanted.note)
        done = wanted
        if not wanted.needs_approval:
            done = await _post(deps, tx, rows, book, wanted, caller, at)
    return Outcome(done, new=True)


async def approve(
    deps: Adjustments, adjustment_id: uuid.UUID, caller: Principal, at: datetime, note: str | None
) -> Outcome:
    """A second ops user approves a pending adjustment: it posts now, or the approval is refused (nothing changes).

    An approval repeated by the one who approved it answers what it did (a retry); any other is refused.
    """
    async with deps.store.transaction() as tx:
        rows = AdjustmentRows(tx.conn)
        pending = await rows.lock(adjustment_id)  # two approvers at once: the second waits, then finds it posted
        if pending is None:
            raise AdjustmentNotFoundError(adjustment_id)
        if pending.status is Status.POSTED and pending.decided_by == caller.subject:
            return Outcome(pending, new=False)
        approved = rules.approve(pending, caller.subject, at, note)
        book = await _load_book(tx, approved)
        await _audit(tx, caller, "adjustment.approved", approved, before=pending, note=note)
        done = await _post(deps, tx, rows, book, approved, caller, at)
    return Outcome(done, new=True)


async def reject(
    deps: Adjustments, adjustment_id: uuid.UUID, caller: Principal, at: datetime, note: str | None
) -> Outcome:
    async with deps.store.transaction() as tx:
        rows = AdjustmentRows(tx.conn)
        pending = await rows.lock(adjustment_id)
        if pending is None:
            raise AdjustmentNotFoundError(adjustment_id)
        if pending.status is Status.REJECTED and pending.decided_by == caller.subject:
            return Outcome(pending, new=False)
        rejected = rules.reject(pending, caller.subject, at, note)
        await rows.save(rejected)
        await _audit(tx, caller, "adjustment.rejected", rejected, before=pending, note=note)
    return Outcome(rejected, new=True)


async def _load_book(tx: Transaction, adjustment: Adjustment) -> Book:
    """The member's account (locked) and live lots, and the adjustments account."""
    member = member_account(adjustment.member_id)
    book = Book(await tx.lock_accounts([member, ADJUSTMENTS]), await tx.live_lots([member]))
    book.mark_lots_loaded([member])
    return book


async def _post(
    deps: Adjustments, tx: Transaction, rows: AdjustmentRows, book: Book, adjustment: Adjustment, caller: Principal,
    at: datetime,
) -> Adjustment:  # fmt: skip
    """Move the points, save the adjustment as posted, audit it and emit the ledger events, in `tx`."""
    member = book.account(member_account(adjustment.member_id))
    before = {"posted": member.posted, "available": member.available}
    posted, _transfer = rules.post(book, adjustment, at, deps.lot_validity)
    await rows.save(posted)
    after = {"posted": member.posted, "available": member.available, "transfer_id": str(posted.transfer_id)}
    await audit.record(tx.conn, audit.AuditEntry(
        actor=caller.subject, role=caller.role.value, action="adjustment.posted",
        subject=f"member:{adjustment.member_id}", before=before, after=after,
        details={"adjustment_id": str(adjustment.adjustment_id), "points": adjustment.signed_points},
    ))  # fmt: skip
    await post_changes(tx, book, deps.events)
    return posted


async def _audit(
    tx: Transaction, caller: Principal, action: str, now: Adjustment, *, before: Adjustment | None, note: str | None
) -> None:
    await audit.record(tx.conn, audit.AuditEntry(
        actor=caller.subject, role=caller.role.value, action=action, subject=f"adjustment:{now.adjustment_id}",
        before=before.summary() if before else None, after=now.summary(), note=note,
        details={"member": f"member:{now.member_id}"},
    ))  # fmt: skip
