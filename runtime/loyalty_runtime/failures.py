"""Which failures retrying can fix, and how long to wait before the next try.

A consumer meets two kinds of failure (DESIGN.md, Reliability):
- transient: the database or the broker is gone, busy or restarting, a serializable transaction
  lost a race, a deadlock was broken, a call timed out. The same work succeeds later; it is
  retried with capped exponential backoff and never dead-lettered.
- permanent: everything else (a domain refusal, a CHECK or constraint violation, a value the
  handler rejects, a bug). Retrying gives the same answer; the record that causes it is isolated
  and dead-lettered, and ops replay it after a fix.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import asyncpg
from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError

TRANSIENT_SQLSTATE_CLASSES = ("08", "40", "53", "57", "58")
"""Connection exceptions, transaction rollbacks (serialization, deadlock), insufficient resources,
operator intervention (shutdown, cancel, statement timeout), system errors (I/O)."""
TRANSIENT_SQLSTATES = ("55P03",)
"""lock_not_available: a lock timeout."""

_PERMANENT_INTERFACE_ERRORS = (
    asyncpg.exceptions.DataError,
    asyncpg.exceptions.ClientConfigurationError,
    asyncpg.exceptions.UnsupportedClientFeatureError,
)


class TransientFailureError(Exception):
    """Work kept failing for a reason that retrying could fix; it is retried later, never dead-lettered."""


def is_transient(error: BaseException) -> bool:
    """True when trying the same work again later may succeed; looks through the error's causes."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _transient_itself(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def _transient_itself(error: BaseException) -> bool:
    if isinstance(error, TransientFailureError | TimeoutError | OSError):  # OSError: refused, reset, unreachable
        return True
    if isinstance(error, asyncpg.PostgresError):
        state = getattr(error, "sqlstate", "") or ""
        return state.startswith(TRANSIENT_SQLSTATE_CLASSES) or state in TRANSIENT_SQLSTATES
    if isinstance(error, asyncpg.InterfaceError):  # "connection is closed", "pool is closing", ...
        return not isinstance(error, _PERMANENT_INTERFACE_ERRORS)
    if isinstance(error, asyncpg.InternalClientError):  # a connection left mid-operation when the server died
        return True
    if isinstance(error, KafkaConnectionError | KafkaTimeoutError):
        return True
    if isinstance(error, KafkaError):
        return bool(getattr(error, "retriable", False))
    return False


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff with full jitter: attempt 0 waits up to `first`, then twice as long, up to `cap`."""

    first: float = 0.05
    cap: float = 5.0

    def delay(self, attempt: int) -> float:
        ceiling = min(self.cap, self.first * (2 ** min(attempt, 30)))
        return random.uniform(ceiling / 2, ceiling)
