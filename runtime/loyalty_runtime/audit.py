"""The append-only audit log of ops actions (DESIGN.md, "Operations"): who did what, when, before and after.

Every service keeps its own `audit_log` table (each service's migration `..._audit_log.sql`); rows are only ever
inserted, and a trigger refuses UPDATE, DELETE and TRUNCATE. An action that changes state writes its entry with
`record` in the same transaction as the change, so an entry exists exactly when the change does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import asyncpg

SECRET_KEYS = frozenset({"secret", "api_secret", "key_secret", "signing_secret", "password", "token", "authorization"})
"""Fields whose values never reach the log (they are replaced by "[redacted]"), at any depth."""


@dataclass(frozen=True)
class AuditEntry:
    actor: str
    """Who acted: the token's subject (an ops user's id), or `scheduler`/`import` for the system itself."""
    role: str
    """The actor's role (`ops`, `member`, `partner`, `system`)."""
    action: str
    """What was done, as `<area>.<verb>`: `adjustment.requested`, `adjustment.approved`, `member.erased`, ..."""
    subject: str
    """What it was done to: `member:<id>`, `partner:<id>`, `adjustment:<id>`, ..."""
    before: Mapping[str, Any] | None = None
    after: Mapping[str, Any] | None = None
    note: str | None = None
    request_id: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    """Anything else worth keeping: the request's parameters, the answer's status."""


_INSERT = """
INSERT INTO audit_log (actor, role, action, subject, before, after, note, request_id, details)
VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7, $8, $9::jsonb)
RETURNING seq
"""


def redacted(value: Any) -> Any:
    """`value` with every secret-looking field's value replaced, so the log never keeps a credential."""
    if isinstance(value, Mapping):
        return {k: "[redacted]" if str(k).lower() in SECRET_KEYS else redacted(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redacted(v) for v in value]
    return value


def _json(value: Mapping[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(redacted(value), default=str, sort_keys=True)


async def record(conn: asyncpg.Connection, entry: AuditEntry) -> int:
    """Append `entry`; call it inside the transaction that makes the change. Returns the entry's number."""
    seq: int = await conn.fetchval(
        _INSERT,
        entry.actor,
        entry.role,
        entry.action,
        entry.subject,
        _json(entry.before),
        _json(entry.after),
        entry.note,
        entry.request_id,
        _json(entry.details) or "{}",
    )
    return seq
