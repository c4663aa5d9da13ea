"""PostgreSQL persistence of partners' fulfilment keys (never their secrets: domain/fulfilment_keys.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager

import asyncpg

from redemption.domain.fulfilment_keys import FulfilmentKey

_COLUMNS = "partner_id, version, issued, created_at, active_from"

# Issues and first uses of one partner take turns: each reads the versions, then adds the next.
# unnest keeps the array's order, which the caller sorted: every writer locks in the same order.
LOCK_PARTNERS = "SELECT pg_advisory_xact_lock(hashtext('fulfilment_keys'), hashtext(p)) FROM unnest($1::text[]) AS p"

KEYS_OF = f"SELECT {_COLUMNS} FROM fulfilment_keys WHERE partner_id = ANY($1::text[]) ORDER BY partner_id, version"

ADD_KEYS = """
INSERT INTO fulfilment_keys (partner_id, version, key_id, issued, created_at, active_from)
SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::bool[], $5::timestamptz[], $6::timestamptz[])
ON CONFLICT (partner_id, version) DO NOTHING
"""


def to_key(row: asyncpg.Record) -> FulfilmentKey:
    return FulfilmentKey(row["partner_id"], row["version"], row["issued"], row["created_at"], row["active_from"])


class FulfilmentKeysTransaction:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def lock(self, partner_ids: Iterable[str]) -> None:
        """Until the transaction ends, nobody else adds keys for these partners."""
        await self.conn.execute(LOCK_PARTNERS, sorted(set(partner_ids)))

    async def keys_of(self, partner_ids: Iterable[str]) -> dict[str, list[FulfilmentKey]]:
        """Each partner's keys, oldest first; a partner without keys is absent."""
        found: dict[str, list[FulfilmentKey]] = {}
        for row in await self.conn.fetch(KEYS_OF, sorted(set(partner_ids))):
            found.setdefault(row["partner_id"], []).append(to_key(row))
        return found

    async def add(self, keys: Sequence[FulfilmentKey]) -> None:
        if keys:
            await self.conn.execute(
                ADD_KEYS,
                [k.partner_id for k in keys],
                [k.version for k in keys],
                [k.key_id for k in keys],
                [k.issued for k in keys],
                [k.created_at for k in keys],
                [k.active_from for k in keys],
            )


class FulfilmentKeysStore:
    """Borrows the service's pool, never owns it."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[FulfilmentKeysTransaction]:
        async with self._pool.acquire() as conn, conn.transaction():
            yield FulfilmentKeysTransaction(conn)

    async def keys_of(self, partner_id: str) -> list[FulfilmentKey]:
        rows = await self._pool.fetch(KEYS_OF, [partner_id])
        return [to_key(r) for r in rows]
