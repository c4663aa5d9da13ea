"""A member's data rights in the partners service: its export, and the erasure of its copies on MemberErased.

The service keys nothing by member (adapters/member_data_store.py): the points service names what leads to the
member's rows, the ids of the purchase events recorded under its identifiers. These ids are random and only the
member's own points history shows them, so naming one proves nothing else than having seen that history.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from contracts.events.erasures import ErasedIdentifier, MemberErased
from loyalty_runtime import audit
from loyalty_runtime.auth import Principal
from partners.adapters.member_data_store import MemberDataStore, MemberDataTransaction

SCHEMA_VERSION = 1
MAX_PURCHASES = 1000
"""Purchase event ids per export request; the console asks in pages of this size."""


async def export_member_data(
    store: MemberDataStore, member_id: uuid.UUID, purchase_event_ids: Sequence[uuid.UUID], caller: Principal,
    now: datetime,
) -> dict[str, Any]:  # fmt: skip
    """The intake rows of the member's customer references (found by its purchases) and audit entries about it."""
    ids = sorted(set(purchase_event_ids))
    async with store.transaction(snapshot=True) as tx:
        refs = await tx.customer_refs(ids)
        tables = await tx.export(ids, refs, member_id)
        await tx.audit(audit.AuditEntry(
            actor=caller.subject, role=caller.role.value, action="member.exported", subject=f"member:{member_id}",
            after={"purchases_named": len(ids), "rows": sum(len(v) for v in tables.values())},
        ))  # fmt: skip
    return {
        "service": "partners", "schema_version": SCHEMA_VERSION, "member_id": str(member_id),
        "generated_at": now.isoformat(),
        "customer_refs": [{"partner_id": p, "customer_ref": c} for p, c in refs],
        "tables_listed": list(tables), "tables": tables,
        "not_kept": "link codes (only their hashes pass through, to the points service) and the member id itself",
    }  # fmt: skip


async def erase_copies(store: MemberDataStore, topic: str, events: Sequence[MemberErased]) -> int:
    """Apply each part once (inbox); applying one again would change nothing anyway. Returns rows changed."""
    changed = 0
    async with store.transaction() as tx:
        fresh = await tx.claim_inbox(topic, [e.event_id for e in events])
        for event in events:
            if event.event_id in fresh:
                changed += await _erase_part(tx, event)
    return changed


async def _erase_part(tx: MemberDataTransaction, event: MemberErased) -> int:
    p = event.payload
    rows = await tx.forget_membership_numbers(p.member_id)
    for erased in p.identifiers:
        rows += await _erase_customer(tx, erased) + await _rename_unclaimed(tx, erased)
    await tx.audit(audit.AuditEntry(
        actor="points", role="system", action="member.erased", subject=f"member:{p.member_id}",
        after={"erasure_id": str(p.erasure_id), "part": p.part, "parts": p.parts, "rows": rows},
        details={"event_id": str(event.event_id)},
    ))  # fmt: skip
    return rows


async def _erase_customer(tx: MemberDataTransaction, erased: ErasedIdentifier) -> int:
    """The customer reference behind the purchases, replaced by the pseudonym's in every intake row."""
    if erased.kind != "partner" or not erased.purchase_event_ids:
        return 0
    pseudonym = erased.pseudonym.rsplit(":", 1)[-1]
    rows = 0
    for partner_id, customer_ref in await tx.customer_refs(erased.purchase_event_ids):
        if partner_id == erased.partner_id and customer_ref != pseudonym:
            rows += await tx.rename_customer(partner_id, customer_ref, pseudonym)
    return rows


async def _rename_unclaimed(tx: MemberDataTransaction, erased: ErasedIdentifier) -> int:
    """The settlement copies of the transfers name the identifier's unclaimed account by its pseudonym."""
    if not erased.transfer_ids:
        return 0
    new = f"unclaimed:{erased.pseudonym}"
    rows = 0
    for old in await tx.unclaimed_accounts(erased.transfer_ids):
        if old != new:
            rows += await tx.rename_account(erased.transfer_ids, old, new)
    return rows
