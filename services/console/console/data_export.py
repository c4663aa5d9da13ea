"""One download of everything the programme holds of a member (data rights): each service's part and a manifest.

Each service answers `GET /v1/members/{ref}/data-export` with its own part (points: member, identifiers, ledger,
gifts, tiers, ...; partners: what partners posted under the member's customer references, found by the member's
purchase event ids that the points part lists; redemption: orders and vouchers). The console adds its own part:
the member's open sessions (when each began and ends; never a token), which is all it keeps of anyone.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from console.clients.services import PartnersApi, PointsApi, RedemptionApi
from console.sessions import SessionStore
from loyalty_runtime.auth import Role

SCHEMA_VERSION = 1
PURCHASES_PER_CALL = 1000
"""The partners service takes at most this many purchase event ids per request."""


async def assemble(
    member_id: str, points: PointsApi, partners: PartnersApi, redemption: RedemptionApi, sessions: SessionStore,
    now: datetime,
) -> dict[str, Any]:  # fmt: skip
    """The member's data from every service, and a manifest naming the parts."""
    reference = member_id
    points_part = await points.data_export(reference)
    member = points_part["member_id"]
    parts = {
        "points": points_part,
        "partners": await _partners_part(partners, member, points_part.get("partner_purchase_event_ids", [])),
        "redemption": await redemption.member_data_export(reference),
        "console": await _console_part(sessions, member, now),
    }
    manifest = {
        "schema_version": SCHEMA_VERSION, "generated_at": now.isoformat(), "member_id": member,
        "services": [
            {"service": name, "schema_version": part.get("schema_version"), "generated_at": part.get("generated_at"),
             "tables": part.get("tables_listed", list(part.get("tables", {})))}
            for name, part in parts.items()
        ],
    }  # fmt: skip
    return {"manifest": manifest, **parts}


async def _partners_part(partners: PartnersApi, member: str, purchases: list[str]) -> dict[str, Any]:
    """The partners service's part, asked in pages of purchases; the pages' rows merged, each row once."""
    pages = [purchases[i : i + PURCHASES_PER_CALL] for i in range(0, len(purchases), PURCHASES_PER_CALL)] or [[]]
    merged: dict[str, Any] = {}
    for page in pages:
        part = await partners.member_data_export(member, page)
        if not merged:
            merged = part
            continue
        for table, rows in part["tables"].items():
            seen = {json.dumps(r, sort_keys=True) for r in merged["tables"][table]}
            merged["tables"][table] += [r for r in rows if json.dumps(r, sort_keys=True) not in seen]
        merged["customer_refs"] += [r for r in part["customer_refs"] if r not in merged["customer_refs"]]
    return merged


async def _console_part(sessions: SessionStore, member: str, now: datetime) -> dict[str, Any]:
    rows = await sessions.of_subject(member, Role.MEMBER)
    return {
        "service": "console", "schema_version": SCHEMA_VERSION, "member_id": member, "generated_at": now.isoformat(),
        "tables_listed": ["sessions"],
        "tables": {"sessions": [{k: v.isoformat() if isinstance(v, datetime) else v for k, v in r.items()}
                                for r in rows]},
        "not_kept": "the console keeps nothing else of a member: its pages read the other services each time",
    }  # fmt: skip


def filename(member_id: str, now: datetime) -> str:
    return f"loyalty-data-{uuid.UUID(member_id)}-{now:%Y%m%d}.json"


def as_download(data: dict[str, Any]) -> bytes:
    return json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False, default=str).encode()
