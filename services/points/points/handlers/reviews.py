"""Ops decide the earnings the velocity rules held: release (to the member, as a lot with the purchase's own
expiry) or reject (back to the issuer, so the partner is not charged). One decision per review: two ops deciding at
once queue on the purchase's lock, and the later one is told who decided first."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

import asyncpg

from contracts.events.reviews import EarningReviewDecided, ReviewDecidedPayload
from loyalty_runtime import audit
from loyalty_runtime.auth import Principal
from loyalty_runtime.outbox import OutboxMessage
from loyalty_runtime.telemetry import inject_context
from points.adapters.store import PointsStore, Transaction
from points.adapters.velocity_store import VelocitySql
from points.domain.ledger import REVIEW_PENDING, Book, member_account, transfer_id, unclaimed_account
from points.handlers.ledger_events import LedgerEventWriter, post_changes

SOURCE = "points"


class Decision(StrEnum):
    RELEASE = "released"
    REJECT = "rejected"


class ReviewNotFoundError(LookupError):
    def __init__(self, review_id: uuid.UUID) -> None:
        super().__init__(f"no earning review {review_id}")


class ReviewDecidedError(Exception):
    """The review was decided already (by another ops user, or cancelled by a refund)."""

    def __init__(self, row: asyncpg.Record) -> None:
        super().__init__(
            f"review {row['review_id']} was already {row['status']} by {row['decided_by']} at "
            f"{row['decided_at'].isoformat()}; reload the queue"
        )
        self.decided_by = row["decided_by"]


@dataclass(frozen=True)
class Decided:
    review_id: uuid.UUID
    decision: Decision
    points: int
    transfer_id: uuid.UUID
    decided_at: datetime


def review_key(member_id: uuid.UUID | None, identifier: str) -> str:
    return str(member_id) if member_id is not None else identifier


def decided_message(topic: str, correlation_id: uuid.UUID, payload: ReviewDecidedPayload) -> OutboxMessage:
    event = EarningReviewDecided(
        event_id=transfer_id(payload.review_id, "decided"),
        occurred_at=payload.decided_at,
        source=SOURCE,
        correlation_id=correlation_id,
        causation_id=None,
        payload=payload,
    )
    key = review_key(payload.member_id, payload.identifier)
    return OutboxMessage(topic, key, event.model_dump_json().encode(), inject_context({}))


def cancelled_messages(topic: str, rows: Sequence[asyncpg.Record]) -> list[OutboxMessage]:
    now = datetime.now(UTC)
    return [decided_message(topic, r["event_id"], _cancelled(r, now)) for r in rows]


def _cancelled(r: asyncpg.Record, now: datetime) -> ReviewDecidedPayload:
    return ReviewDecidedPayload(
        review_id=r["review_id"], member_id=r["member_id"], identifier=r["identifier"], decision="cancelled",
        points=0, decided_by="refund", decided_at=now, transfer_id=None,
    )  # fmt: skip


async def decide(
    store: PointsStore, events: LedgerEventWriter, topic: str, review_id: uuid.UUID, decision: Decision,
    caller: Principal, note: str | None,
) -> Decided:  # fmt: skip
    """Raises ReviewNotFoundError, or ReviewDecidedError when it is not open any more."""
    async with store.transaction() as tx:
        sql = VelocitySql(tx.conn)
        found = await sql.find_review(review_id)
        if found is None:
            raise ReviewNotFoundError(review_id)
        await tx.lock_purchases([found["source_key"]])  # a refund of the purchase, or another decision, waits
        row = await sql.find_review(review_id, lock=True)
        assert row is not None
        if row["status"] != "open":
            raise ReviewDecidedError(row)
        await tx.earnings([row["source_key"]])  # locks the earning, as the earn batch does
        target = await _target(tx, row, decision)
        made = await _move(tx, events, topic, row, decision, target, caller, note)
        await sql.decide(review_id, decision.value, caller.subject, made.decided_at, note, made.points,
                         made.transfer_id)  # fmt: skip
        await sql.move_earning(row["source_key"], target)
        await _audit(tx, row, made, caller, note)
    return made


async def _target(tx: Transaction, row: asyncpg.Record, decision: Decision) -> str:
    """Released: whoever holds the identifier's points now (its member, or its unclaimed account); rejected: the
    issuer."""
    if decision is Decision.REJECT:
        issuer: str = row["issuer_account"]
        return issuer
    member = (await tx.lock_identifiers([row["identifier"]])).get(row["identifier"])
    return member_account(member) if member is not None else unclaimed_account(row["identifier"])


async def _move(
    tx: Transaction, events: LedgerEventWriter, topic: str, row: asyncpg.Record, decision: Decision, target: str,
    caller: Principal, note: str | None,
) -> Decided:  # fmt: skip
    await tx.ensure_accounts([target])
    book = Book(await tx.lock_accounts([target, REVIEW_PENDING]))
    points, now = int(row["points_pending"]), datetime.now(UTC)
    moved = transfer_id(row["review_id"], decision.value)
    book.transfer(
        transfer_id=moved, debit=REVIEW_PENDING, credit=target, amount=points, reason=f"review_{decision.value}",
        cause_event_id=transfer_id(row["review_id"], "decision"), occurred_at=now,
        memo={"review_id": str(row["review_id"]), "source_key": row["source_key"], "rule": row["rule"],
              "issuer": row["issuer_account"]},
        lot_expires_at=row["lot_expires_at"], lot_earned_at=row["earned_at"], lot_issuer=row["issuer_account"],
    )  # fmt: skip
    payload = ReviewDecidedPayload(
        review_id=row["review_id"], member_id=row["member_id"], identifier=row["identifier"],
        decision=decision.value, points=points, decided_by=caller.subject, note=note, decided_at=now,
        transfer_id=moved,
    )  # fmt: skip
    await post_changes(tx, book, events, extra=[decided_message(topic, row["event_id"], payload)])
    return Decided(row["review_id"], decision, points, moved, now)


async def _audit(tx: Transaction, row: asyncpg.Record, made: Decided, caller: Principal, note: str | None) -> None:
    await audit.record(tx.conn, audit.AuditEntry(
        actor=caller.subject, role=caller.role.value, action=f"earning_review.{made.decision.value}",
        subject=f"earning_review:{made.review_id}",
        before={"status": "open", "points": int(row["points_pending"]), "rule": row["rule"]},
        after={"status": made.decision.value, "points": made.points, "transfer_id": str(made.transfer_id)},
        note=note,
    ))  # fmt: skip


async def reviews(store: PointsStore, status: str, member_id: uuid.UUID | None, limit: int) -> list[asyncpg.Record]:
    return await VelocitySql(store.pool).list_reviews(status, member_id, limit)


async def pending_points(store: PointsStore, member_id: uuid.UUID) -> int:
    """Points of the member's open reviews: shown as pending, not spendable."""
    return await VelocitySql(store.pool).pending_of(member_id)
