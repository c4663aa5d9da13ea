"""Apply hold commands (hold, capture, release) in batches, and release holds nobody settled."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from contracts.envelope import Event
from contracts.events.holds import (
    CapturedPayload,
    CaptureHold,
    CaptureRefusedPayload,
    HeldPayload,
    HoldCaptured,
    HoldCaptureRefused,
    HoldPoints,
    HoldRef,
    HoldRejected,
    HoldReleased,
    PointsHeld,
    RejectedPayload,
    ReleasedPayload,
    ReleaseHold,
)
from contracts.topics import HOLD_RESULTS
from loyalty_runtime.inbox import first_copies
from loyalty_runtime.outbox import OutboxMessage
from loyalty_runtime.telemetry import inject_context
from points.adapters.store import PointsStore, Transaction
from points.domain import holds as two_phase
from points.domain.holds import Hold, HoldStatus
from points.domain.ledger import Book, member_account, partner_redeemed_account, transfer_id
from points.domain.velocity import refusal
from points.handlers.ledger_events import LedgerEventWriter, post_changes
from points.handlers.velocity import holds_today

SOURCE = "points"
HOLDS_PER_EXPIRY_RUN = 500


class HoldResults:
    """Result events, written to the outbox with the ledger changes they report."""

    def __init__(self, topic_prefix: str) -> None:
        self.topic = HOLD_RESULTS.qualified(topic_prefix)
        self.messages: list[OutboxMessage] = []

    def add(self, cause: Event | None, ref: HoldRef, result: type[Event], payload: object, leg: str) -> None:
        event = result(
            event_id=transfer_id(ref.hold_id, leg if cause is None else f"{leg}:{cause.event_id}"),
            occurred_at=datetime.now(UTC),
            source=SOURCE,
            correlation_id=cause.correlation_id if cause else ref.order_id,
            causation_id=cause.event_id if cause else None,
            payload=payload,
        )
        headers = inject_context({})
        self.messages.append(OutboxMessage(self.topic, str(ref.member_id), event.model_dump_json().encode(), headers))


def _ref(hold: Hold) -> dict[str, uuid.UUID]:
    return {"hold_id": hold.hold_id, "member_id": hold.member_id, "order_id": hold.order_id}


async def apply_hold_commands(
    store: PointsStore, topic: str, commands: Sequence[Event], events: LedgerEventWriter, results: HoldResults,
    redemptions_per_day: int | None = None,
) -> int:  # fmt: skip
    """Each command once, in order, in one transaction with its ledger changes and result events.

    `redemptions_per_day` (a velocity rule): a member's holds beyond it today (UTC) are refused, `redemption_limit`.
    """
    async with store.transaction() as tx:
        fresh = await tx.claim_inbox(topic, [c.event_id for c in commands])
        commands = first_copies(commands, fresh, lambda c: c.event_id)
        if not commands:
            return 0
        holds = await tx.holds(c.payload.hold_id for c in commands)  # type: ignore[attr-defined]
        requests = [c for c in commands if isinstance(c, HoldPoints)]
        known = await tx.existing_members(c.payload.member_id for c in requests)
        redeemed = {partner_redeemed_account(c.payload.partner_id) for c in requests}
        await tx.ensure_accounts(redeemed)
        members = {member_account(c.payload.member_id) for c in commands}  # type: ignore[attr-defined]
        accounts = await tx.lock_accounts(members | redeemed | {h.credit_account for h in holds.values()})
        capturing = {member_account(c.payload.member_id) for c in commands if isinstance(c, CaptureHold)}
        book = Book(accounts, await tx.live_lots(capturing))
        book.mark_lots_loaded(capturing)
        now = datetime.now(UTC)
        limit = DayLimit(redemptions_per_day, await _holds_today(tx, requests, redemptions_per_day, now))

        placed: list[Hold] = []
        settled: dict[uuid.UUID, Hold] = {}
        for command in commands:
            if isinstance(command, HoldPoints) and not limit.refuses(command, holds, book, results):
                _hold(book, command, holds, known, placed, results)
                limit.count(command, placed)
            elif isinstance(command, CaptureHold):
                _capture(book, command, holds, settled, results, now)
            elif isinstance(command, ReleaseHold):
                _release(book, command, holds, settled, results)
        await tx.insert_holds(placed)
        await post_changes(tx, book, events, extra=results.messages)
        await tx.settle_holds(list(settled.values()), now)
    return len(commands)


async def _holds_today(
    tx: Transaction, requests: Sequence[HoldPoints], limit: int | None, now: datetime
) -> dict[uuid.UUID, int]:
    """Holds each requesting member placed today: read under their accounts' locks, so concurrent batches agree."""
    if limit is None or not requests:
        return {}
    return await holds_today(tx, sorted({c.payload.member_id for c in requests}), now)


@dataclass
class DayLimit:
    """The velocity rule of redemptions per member and day (points/domain/velocity.py: refusal)."""

    limit: int | None
    done: dict[uuid.UUID, int]

    def refuses(self, command: HoldPoints, holds: dict[uuid.UUID, Hold], book: Book, results: HoldResults) -> bool:
        p = command.payload
        if self.limit is None or p.hold_id in holds:
            return False  # a hold asked for again is answered as the first time
        if refusal("redemptions", self.done.get(p.member_id, 0), self.limit) is None:
            return False
        account = member_account(p.member_id)
        available = max(book.account(account).available, 0) if book.has_account(account) else 0
        payload = RejectedPayload(**_ref_of(p), reason="redemption_limit", available=available)
        results.add(command, p, HoldRejected, payload, "rejected")
        return True

    def count(self, command: HoldPoints, placed: list[Hold]) -> None:
        """After `_hold`: a hold it placed counts towards the member's day."""
        if self.limit is not None and placed and placed[-1].hold_id == command.payload.hold_id:
            self.done[command.payload.member_id] = self.done.get(command.payload.member_id, 0) + 1


def _hold(
    book: Book, command: HoldPoints, holds: dict[uuid.UUID, Hold], known: set[uuid.UUID], placed: list[Hold],
    results: HoldResults,
) -> None:  # fmt: skip
    p = command.payload
    existing = holds.get(p.hold_id)
    if existing is not None:
        if (existing.member_id, existing.order_id, existing.amount) != (p.member_id, p.order_id, p.amount):
            results.add(
                command,
                p,
                HoldRejected,
                RejectedPayload(**_ref_of(p), reason="hold_id_reused", available=0),
                "rejected",
            )
        return  # the same hold asked for again: it was answered the first time
    if p.member_id not in known:
        results.add(
            command, p, HoldRejected, RejectedPayload(**_ref_of(p), reason="unknown_member", available=0), "rejected"
        )
        return
    hold = Hold(
        p.hold_id, p.member_id, p.order_id, member_account(p.member_id), partner_redeemed_account(p.partner_id),
        p.amount, p.expires_at,
    )  # fmt: skip
    if two_phase.place(book, hold):
        holds[hold.hold_id] = hold
        placed.append(hold)
        results.add(command, p, PointsHeld, HeldPayload(**_ref_of(p), amount=p.amount, expires_at=p.expires_at), "held")
    else:
        available = max(book.account(hold.debit_account).available, 0)
        payload = RejectedPayload(**_ref_of(p), reason="insufficient_points", available=available)
        results.add(command, p, HoldRejected, payload, "rejected")


def _capture(
    book: Book, command: CaptureHold, holds: dict[uuid.UUID, Hold], settled: dict[uuid.UUID, Hold],
    results: HoldResults, now: datetime,
) -> None:  # fmt: skip
    p = command.payload
    hold = holds.get(p.hold_id)
    if hold is None:
        results.add(
            command, p, HoldCaptureRefused, CaptureRefusedPayload(**_ref_of(p), reason="unknown_hold"), "refused"
        )
        return
    if hold.status is HoldStatus.POSTED:
        return  # captured before: answered then
    made = None
    if hold.status is HoldStatus.PENDING:
        made = two_phase.capture(book, hold, now, command.event_id)
    elif hold.void_reason == "expired" and command.occurred_at < hold.expires_at:
        made = two_phase.capture_after_expiry(book, hold, now, command.event_id)
    if made is None:
        reason = "hold_expired" if hold.void_reason == "expired" else "hold_released"
        results.add(command, p, HoldCaptureRefused, CaptureRefusedPayload(**_ref_of(p), reason=reason), "refused")
        return
    settled[hold.hold_id] = hold
    payload = CapturedPayload(**_ref(hold), amount=hold.amount, transfer_id=made.transfer_id)
    results.add(command, p, HoldCaptured, payload, "captured")


def _release(
    book: Book, command: ReleaseHold, holds: dict[uuid.UUID, Hold], settled: dict[uuid.UUID, Hold],
    results: HoldResults,
) -> None:  # fmt: skip
    p = command.payload
    hold = holds.get(p.hold_id)
    if hold is None or hold.status is not HoldStatus.PENDING:
        return  # unknown, or settled already: nothing is reserved any more
    two_phase.void(book, hold, p.reason)
    settled[hold.hold_id] = hold
    results.add(
        command, p, HoldReleased, ReleasedPayload(**_ref(hold), amount=hold.amount, reason=p.reason), "released"
    )


def _ref_of(p: HoldRef) -> dict[str, uuid.UUID]:
    return {"hold_id": p.hold_id, "member_id": p.member_id, "order_id": p.order_id}


async def expire_holds(store: PointsStore, events: LedgerEventWriter, results_prefix: str, as_of: datetime) -> int:
    """Release the holds nobody settled before they expired; returns how many."""
    released = 0
    while True:
        results = HoldResults(results_prefix)
        async with store.transaction() as tx:
            due = await tx.due_holds(as_of, HOLDS_PER_EXPIRY_RUN)
            if not due:
                return released
            holds = await tx.holds(due)
            pending = [h for h in holds.values() if h.status is HoldStatus.PENDING]
            book = Book(
                await tx.lock_accounts({h.debit_account for h in pending} | {h.credit_account for h in pending})
            )
            for hold in pending:
                two_phase.void(book, hold, "expired")
                payload = ReleasedPayload(**_ref(hold), amount=hold.amount, reason="expired")
                results.add(None, HoldRef(**_ref(hold)), HoldReleased, payload, "expired")
            await post_changes(tx, book, events, extra=results.messages)
            await tx.settle_holds(pending, datetime.now(UTC))
        released += len(pending)
