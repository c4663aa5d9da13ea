"""Server-side sessions in the console's own database; the browser holds only a random token."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from loyalty_runtime.auth import Role


@dataclass(frozen=True)
class Identity:
    """Who signed in, as their identity provider (or the local sign-in page) said."""

    subject: str
    role: Role
    partner_id: str | None = None
    display: str = ""


@dataclass(frozen=True)
class Session:
    identity: Identity
    bearer: str
    """The person's own token: the only credential the console sends to the services on their behalf."""
    csrf: str
    expires_at: datetime


INSERT = """
INSERT INTO sessions (token_hash, subject, role, partner_id, display, bearer, csrf, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
"""
SELECT = """
SELECT subject, role, partner_id, display, bearer, csrf, expires_at
FROM sessions WHERE token_hash = $1 AND expires_at > $2
"""
DELETE = "DELETE FROM sessions WHERE token_hash = $1"
DELETE_EXPIRED = "DELETE FROM sessions WHERE expires_at <= $1"
# Data rights: a member's sessions, without their tokens, and their end at its erasure.
SESSIONS_OF = """
SELECT role, created_at, expires_at FROM sessions WHERE subject = $1 AND role = $2 ORDER BY created_at
"""
DELETE_OF = "DELETE FROM sessions WHERE subject = $1 AND role = $2"


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class SessionStore:
    """Borrows the console's pool; the cookie token is never stored, only its SHA-256."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def open(self, identity: Identity, bearer: str, now: datetime, ttl: timedelta) -> tuple[str, Session]:
        """A new session; returns the cookie token (shown once) and the session."""
        token = secrets.token_urlsafe(32)
        session = Session(identity, bearer, secrets.token_urlsafe(32), now + ttl)
        await self._pool.execute(
            INSERT, _hash(token), identity.subject, identity.role.value, identity.partner_id, identity.display,
            bearer, session.csrf, session.expires_at,
        )  # fmt: skip
        return token, session

    async def find(self, token: str, now: datetime) -> Session | None:
        row = await self._pool.fetchrow(SELECT, _hash(token), now)
        if row is None:
            return None
        identity = Identity(row["subject"], Role(row["role"]), row["partner_id"], row["display"])
        return Session(identity, row["bearer"], row["csrf"], row["expires_at"])

    async def close(self, token: str) -> None:
        await self._pool.execute(DELETE, _hash(token))

    async def reachable(self) -> None:
        """Raises unless the sessions' database answers."""
        await self._pool.fetchval("SELECT 1")

    async def of_subject(self, subject: str, role: Role) -> list[dict[str, object]]:
        """The person's open sessions: when each began and ends (never a token, a bearer or a CSRF value)."""
        return [dict(r) for r in await self._pool.fetch(SESSIONS_OF, subject, role.value)]

    async def close_all_of(self, subject: str, role: Role) -> int:
        """End every session of the person (a member erased): it signs out everywhere."""
        status = await self._pool.execute(DELETE_OF, subject, role.value)
        return int(status.split()[-1])

    async def forget_expired(self, now: datetime) -> int:
        status = await self._pool.execute(DELETE_EXPIRED, now)
        return int(status.split()[-1])
