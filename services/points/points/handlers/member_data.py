"""A member's data rights: export everything the points service holds of it, or erase its personal data.

Both are audited in their own transaction (the entry names the member id, never a value). The erasure's
decisions are in points/domain/erasure.py; the tables it reads and rewrites in points/adapters/member_data.py.
The other services learn of an erasure from MemberErased (contracts/events/erasures.py), which carries no
personal value: the partners service finds its copies by the purchase event ids and transfer ids it already has.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from contracts.events.erasures import ErasedIdentifier, MemberErased, MemberErasedPayload
from loyalty_runtime import audit
from loyalty_runtime.auth import Principal
from loyalty_runtime.outbox import OutboxMessage, enqueue
from loyalty_runtime.telemetry import inject_context
from points.adapters.member_data import EXPORTED, MemberData
from points.adapters.store import PointsStore
from points.domain.erasure import (
    CONFIRMATION,
    ErasureNotConfirmedError,
    ErasurePlan,
    Pseudonymiser,
    Rename,
    chunks,
    partner_of,
    plan_erasure,
)
from points.domain.ledger import member_account, receivable_account, unclaimed_account
from points.handlers.members import MemberNotFoundError

SCHEMA_VERSION = 1
"""Of the export's JSON: a new version when a table's rows change shape in a way a reader would notice."""
SOURCE = "points"
IDS_PER_PART = 1000


@asynccontextmanager
async def _snapshot(store: PointsStore) -> AsyncIterator[MemberData]:
    """One consistent view of every table for an export (and the audit entry of it)."""
    async with store.pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        yield MemberData(conn)


async def export_member_data(
    store: PointsStore, member_id: uuid.UUID, caller: Principal, now: datetime
) -> dict[str, Any]:
    """Every row of every table that holds data of the member (adapters/member_data.py lists them)."""
    async with _snapshot(store) as rows:
        if await rows.member(member_id) is None:
            raise MemberNotFoundError(member_id)
        identifiers = await rows.identifiers_of(member_id)
        accounts = [member_account(member_id), receivable_account(member_id)] + [
            unclaimed_account(i) for i in identifiers
        ]
        tables = await rows.export(member_id, accounts, identifiers)
        await audit.record(rows.conn, audit.AuditEntry(
            actor=caller.subject, role=caller.role.value, action="member.exported", subject=f"member:{member_id}",
            after={"tables": len(tables), "rows": sum(len(v) for v in tables.values())},
        ))  # fmt: skip
    purchases = [e["event_id"] for e in tables["earnings"] if e.get("channel") == "partner"]
    return {
        "service": SOURCE, "schema_version": SCHEMA_VERSION, "member_id": str(member_id),
        "generated_at": now.isoformat(), "identifiers": identifiers, "partner_purchase_event_ids": purchases,
        "tables_listed": [t.table for t in EXPORTED], "tables": tables,
    }  # fmt: skip


@dataclass(frozen=True)
class ErasureOutcome:
    member_id: uuid.UUID
    erasure_id: uuid.UUID
    erased_at: datetime
    identifiers: int
    """Identifiers replaced by this request (0 when an earlier erasure had replaced everything)."""
    repeated: bool
    """Whether an earlier erasure had already replaced everything: this one changed nothing."""


async def erase_member(
    store: PointsStore, topic: str, member_id: uuid.UUID, caller: Principal, confirm: str | None, now: datetime
) -> ErasureOutcome:
    """Pseudonymise the member's personal data in one transaction, audit it and tell the other services."""
    if confirm != CONFIRMATION:
        raise ErasureNotConfirmedError()
    pseudonyms = Pseudonymiser()  # its key dies with this call
    async with store.transaction() as tx:
        rows = MemberData(tx.conn)
        name = await rows.member(member_id, lock=True)  # two erasures of one member queue here
        if name is None:
            raise MemberNotFoundError(member_id)
        identifiers = await _lock_identifiers(rows, member_id)
        plan = plan_erasure(name, identifiers, pseudonyms)
        previous = await rows.erasure_of(member_id)
        erasure_id = previous["erasure_id"] if previous else uuid.uuid4()
        await _apply(rows, member_id, plan, now)  # what has no personal value left is left alone
        if plan.changes_anything:
            await rows.record_erasure(member_id, erasure_id, caller.subject, caller.role.value,
                                      len(plan.identifiers), now)  # fmt: skip
            await enqueue(tx.conn, await _events(rows, topic, member_id, erasure_id, plan.identifiers, now))
        await audit.record(tx.conn, audit.AuditEntry(
            actor=caller.subject, role=caller.role.value, action="member.erased", subject=f"member:{member_id}",
            after={"erasure_id": str(erasure_id), "identifiers": len(plan.identifiers),
                   "display_name": plan.display_name is not None, "repeated": not plan.changes_anything},
        ))  # fmt: skip
    erased_at = previous["erased_at"] if previous and not plan.changes_anything else now
    return ErasureOutcome(member_id, erasure_id, erased_at, len(plan.identifiers), not plan.changes_anything)


async def _lock_identifiers(rows: MemberData, member_id: uuid.UUID) -> list[str]:
    """The member's identifiers, locked with their earnings and accounts; again if a link slipped in meanwhile."""
    locked: list[str] = []
    while True:
        identifiers = await rows.identifiers_of(member_id)
        if set(identifiers) <= set(locked):
            return identifiers
        locked = sorted(set(locked) | set(identifiers))
        await rows.lock(locked, [unclaimed_account(i) for i in locked])


async def _apply(rows: MemberData, member_id: uuid.UUID, plan: ErasurePlan, now: datetime) -> None:
    for rename in plan.identifiers:
        await rows.rename_identifier(rename.original, rename.pseudonym)
        old, new = unclaimed_account(rename.original), unclaimed_account(rename.pseudonym)
        if await rows.existing_accounts([old]):
            await rows.rename_account(old, new)
    await rows.forget_names(member_id, plan.display_name, now)


async def _events(
    rows: MemberData, topic: str, member_id: uuid.UUID, erasure_id: uuid.UUID, renames: tuple[Rename, ...],
    now: datetime,
) -> list[OutboxMessage]:  # fmt: skip
    """MemberErased in parts: one identifier's ids (at most IDS_PER_PART of each kind) per part."""
    entries: list[ErasedIdentifier] = []
    for rename in renames:
        purchases = await rows.purchases_under(rename.pseudonym)
        transfers = await rows.transfers_of(unclaimed_account(rename.pseudonym))
        kind = "partner" if rename.pseudonym.startswith("partner:") else "card"
        for i in range(max(len(chunks(purchases, IDS_PER_PART)), len(chunks(transfers, IDS_PER_PART)))):
            entries.append(ErasedIdentifier(
                pseudonym=rename.pseudonym, kind=kind, partner_id=partner_of(rename.pseudonym),
                purchase_event_ids=purchases[i * IDS_PER_PART:(i + 1) * IDS_PER_PART],
                transfer_ids=transfers[i * IDS_PER_PART:(i + 1) * IDS_PER_PART],
            ))  # fmt: skip
    parts: list[list[ErasedIdentifier]] = [[e] for e in entries] or [[]]
    messages = []
    for number, part in enumerate(parts, start=1):
        event_id = uuid.uuid5(erasure_id, f"{now.isoformat()}\x1f{number}")
        event = MemberErased(
            event_id=event_id, occurred_at=now, source=SOURCE, correlation_id=erasure_id,
            payload=MemberErasedPayload(erasure_id=erasure_id, member_id=member_id, erased_at=now, part=number,
                                        parts=len(parts), identifiers=part),
        )  # fmt: skip
        messages.append(OutboxMessage(topic, str(member_id), event.model_dump_json().encode(), inject_context({})))
    return messages
