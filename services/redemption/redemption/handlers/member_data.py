"""A member's data rights in the redemption service: its export, and the record of its erasure on MemberErased."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from contracts.events.erasures import MemberErased
from loyalty_runtime import audit
from loyalty_runtime.auth import Principal
from redemption.adapters.member_data_store import MemberDataStore

SCHEMA_VERSION = 1


async def export_member_data(store: MemberDataStore, member_id: uuid.UUID, caller: Principal,
                             now: datetime) -> dict[str, Any]:  # fmt: skip
    """The member's orders (their vouchers within), its tier as this service knows it, its segments. Audited."""
    async with store.transaction(snapshot=True) as tx:
        tables = await tx.export(member_id)
        await tx.audit(audit.AuditEntry(
            actor=caller.subject, role=caller.role.value, action="member.exported", subject=f"member:{member_id}",
            after={"rows": sum(len(v) for v in tables.values())},
        ))  # fmt: skip
    vouchers = [
        {"order_id": o["order_id"], "partner_id": o["partner_id"], "offer_id": o["offer_id"],
         "voucher_code": o["voucher_code"]}
        for o in tables["orders"] if o.get("voucher_code")
    ]  # fmt: skip
    return {
        "service": "redemption", "schema_version": SCHEMA_VERSION, "member_id": str(member_id),
        "generated_at": now.isoformat(), "vouchers": vouchers, "tables_listed": list(tables), "tables": tables,
    }  # fmt: skip


async def record_erasures(store: MemberDataStore, topic: str, events: Sequence[MemberErased]) -> int:
    """Nothing here is personal beyond the member id (adapters/member_data_store.py): each part is audited, once."""
    async with store.transaction() as tx:
        fresh = await tx.claim_inbox(topic, [e.event_id for e in events])
        for event in (e for e in events if e.event_id in fresh):
            p = event.payload
            await tx.audit(audit.AuditEntry(
                actor="points", role="system", action="member.erased", subject=f"member:{p.member_id}",
                after={"erasure_id": str(p.erasure_id), "part": p.part, "parts": p.parts, "rows": 0},
                note="no personal data held here beyond the member id", details={"event_id": str(event.event_id)},
            ))  # fmt: skip
    return len(fresh)
