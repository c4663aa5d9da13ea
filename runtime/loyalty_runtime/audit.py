"""The append-only audit log of ops actions (DESIGN.md, "Operations"): who did what, when, before and after.

Every service keeps its own `audit_log` table (each service's migration `..._audit_log.sql`); rows are only ever
inserted, and a trigger refuses UPDATE, DELETE and TRUNCATE. An action that changes state writes its entry with
`record` in the same transaction as the change, so an entry exists exactly when the change does.
"""

from __future__ import annotations

import contextvars
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

SECRET_KEYS = frozenset({
    "secret", "api_secret", "key_secret", "signing_secret", "master_secret", "client_secret", "password", "token",
    "authorization", "link_code", "link_token", "url_token",
})  # fmt: skip
"""Fields whose values never reach the log (they are replaced by "[redacted]"), at any depth: credentials, and the
one-time codes and links an answer shows once (a link code, a red packet's or share card's link)."""
PERSONAL_KEYS = frozenset({"display_name", "customer_ref", "card_token", "identifier", "message", "membership_number"})
"""Members' personal data (data rights): the log is append-only and kept, so it names members by id only and
never keeps these values (replaced by "[personal]"), which an erasure could not remove from it."""
PERSONAL_PREFIXES = ("unclaimed:",)
"""Names that carry personal data in their value, whatever the field: an unclaimed account is named after its
identifier (`unclaimed:partner:<p>:<customer ref>`); the log keeps only the kind (`unclaimed:[personal]`)."""


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


def _hidden(key: object) -> str | None:
    name = str(key).lower()
    return "[redacted]" if name in SECRET_KEYS else "[personal]" if name in PERSONAL_KEYS else None


def masked(text: str) -> str:
    """`text` with the personal part of a name that carries one (PERSONAL_PREFIXES) replaced."""
    for prefix in PERSONAL_PREFIXES:
        if text.startswith(prefix):
            return f"{prefix}[personal]"
    return text


def redacted(value: Any) -> Any:
    """`value` with every secret-looking and personal field's value replaced, so the log never keeps a credential
    or a value that an erasure would have to remove."""
    if isinstance(value, Mapping):
        return {k: _hidden(k) or redacted(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redacted(v) for v in value]
    if isinstance(value, str):
        return masked(value)
    return value


def _json(value: Mapping[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(redacted(value), default=str, sort_keys=True)


@dataclass
class RequestTrail:
    """What the HTTP request being served recorded (audit_http.py sets one per ops write request)."""

    request_id: str
    recorded: list[int] = field(default_factory=list)
    """The numbers of the explicit entries the route wrote (in its transaction, which may still roll back)."""
    actor: str | None = None
    """The ops user making the request (record_in_request writes entries for it)."""
    role: str | None = None
    companions: list[int] = field(default_factory=list)
    """Entries written by shared steps (a ledger move) that do not replace the request's generic entry."""


_request: contextvars.ContextVar[RequestTrail | None] = contextvars.ContextVar("audit_request", default=None)


def current_request() -> RequestTrail | None:
    return _request.get()


def begin_request(trail: RequestTrail) -> contextvars.Token[RequestTrail | None]:
    return _request.set(trail)


def end_request(token: contextvars.Token[RequestTrail | None]) -> None:
    _request.reset(token)


async def record(conn: asyncpg.Connection, entry: AuditEntry) -> int:
    """Append `entry`; call it inside the transaction that makes the change. Returns the entry's number.

    Inside an HTTP request the entry takes the request's id (unless it names one), and the request's generic
    entry (audit_http.py) is then left out: the route's own entries say what it did.
    """
    trail = _request.get()
    seq = await _append(conn, entry, entry.request_id or (trail.request_id if trail else None))
    if trail is not None:
        trail.recorded.append(seq)
    return seq


async def record_in_request(
    conn: asyncpg.Connection,
    action: str,
    subject: str,
    *,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    details: Mapping[str, Any] | None = None,
) -> int | None:
    """An entry for what the ops request being served does, written by a step it shares with others (a ledger move)
    inside the request's transaction, in the name of the request's ops user.

    Nothing outside an ops request (the scheduler, consumers, members' own requests: None), nor once the route
    wrote its own entries (they say it already). It does not replace the request's generic entry (audit_http.py).
    """
    trail = _request.get()
    if trail is None or trail.actor is None or trail.recorded:
        return None
    entry = AuditEntry(trail.actor, trail.role or "ops", action, subject, before, after, details=details or {})
    seq = await _append(conn, entry, trail.request_id)
    trail.companions.append(seq)
    return seq


async def _append(conn: asyncpg.Connection, entry: AuditEntry, request_id: str | None) -> int:
    seq: int = await conn.fetchval(
        _INSERT,
        entry.actor,
        entry.role,
        entry.action,
        masked(entry.subject),
        _json(entry.before),
        _json(entry.after),
        entry.note,
        request_id,
        _json(entry.details) or "{}",
    )
    return seq


@dataclass(frozen=True)
class Search:
    """Which entries to find; every field narrows the search. Newest first, keyset paged on `seq`."""

    actor: str | None = None
    """Exactly this actor."""
    action: str | None = None
    """Actions that start with this (`adjustment.` finds every adjustment action)."""
    subject: str | None = None
    """Subjects that start with this (`member:<id>`, or `member:` for every member)."""
    since: datetime | None = None
    until: datetime | None = None
    before: int | None = None
    """Only entries numbered below this (the previous page's last `seq`)."""
    limit: int = 50


@dataclass(frozen=True)
class Recorded:
    seq: int
    at: datetime
    actor: str
    role: str
    action: str
    subject: str
    before: Any
    after: Any
    note: str | None
    request_id: str | None
    details: Any


_SEARCH = """
SELECT seq, at, actor, role, action, subject, before, after, note, request_id, details FROM audit_log
WHERE ($1::text IS NULL OR actor = $1)
  AND ($2::text IS NULL OR action LIKE $2 ESCAPE '\\')
  AND ($3::text IS NULL OR subject LIKE $3 ESCAPE '\\')
  AND ($4::timestamptz IS NULL OR at >= $4) AND ($5::timestamptz IS NULL OR at < $5)
  AND ($6::bigint IS NULL OR seq < $6)
ORDER BY seq DESC LIMIT $7
"""


def _prefix(text: str | None) -> str | None:
    if text is None:
        return None
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _loaded(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


async def search(pool: asyncpg.Pool, query: Search) -> list[Recorded]:
    """Entries matching `query`, newest first; an index range scan for each filter, whatever the log's size."""
    rows = await pool.fetch(
        _SEARCH, query.actor, _prefix(query.action), _prefix(query.subject), query.since, query.until, query.before,
        query.limit,
    )  # fmt: skip
    return [
        Recorded(
            r["seq"],
            r["at"],
            r["actor"],
            r["role"],
            r["action"],
            r["subject"],
            _loaded(r["before"]),
            _loaded(r["after"]),
            r["note"],
            r["request_id"],
            _loaded(r["details"]),
        )
        for r in rows
    ]
