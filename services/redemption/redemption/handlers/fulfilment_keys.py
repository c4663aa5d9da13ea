"""Partners' fulfilment keys: ops issue or rotate them and read which one signs; the saga signs with them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from redemption.adapters.fulfilment_keys_store import FulfilmentKeysStore, FulfilmentKeysTransaction
from redemption.domain.fulfilment_keys import (
    FulfilmentKey,
    NoFulfilmentKeyError,
    current_key,
    derive_secret,
    first_key,
    next_key,
)


@dataclass(frozen=True)
class IssuedKey:
    key: FulfilmentKey
    secret: str
    """Shown once, to ops, who hand it to the partner."""
    signing_until_then: FulfilmentKey | None
    """The key that goes on signing until the new one is active, if any."""


@dataclass(frozen=True)
class PartnerKeys:
    current: FulfilmentKey
    keys: list[FulfilmentKey]


async def issue_key(
    store: FulfilmentKeysStore, master_secret: str, partner_id: str, grace: timedelta, now: datetime
) -> IssuedKey:
    """The partner's next key and its secret; the current one signs for `grace` more (see domain)."""
    async with store.transaction() as tx:
        await tx.lock([partner_id])
        keys = (await tx.keys_of([partner_id])).get(partner_id, [])
        key = next_key(keys, partner_id, now, grace)
        await tx.add([key])
    previous = current_key(keys, now) if key.active_from > now else None
    return IssuedKey(key, derive_secret(master_secret, key), previous)


async def partner_keys(store: FulfilmentKeysStore, partner_id: str, now: datetime) -> PartnerKeys:
    keys = await store.keys_of(partner_id)
    current = current_key(keys, now)
    if current is None:
        raise NoFulfilmentKeyError(partner_id)
    return PartnerKeys(current, keys)


async def signing_keys(
    tx: FulfilmentKeysTransaction, partner_ids: Iterable[str], now: datetime
) -> dict[str, FulfilmentKey]:
    """Each partner's current key; a partner that has none gets its first one now, so no callback waits for ops."""
    wanted = set(partner_ids)
    keys = await tx.keys_of(wanted)
    missing = sorted(wanted - keys.keys())
    if missing:
        await tx.lock(missing)
        keys |= await tx.keys_of(missing)  # another worker may have made them meanwhile
        made = [first_key(p, now) for p in missing if p not in keys]
        await tx.add(made)
        keys |= {k.partner_id: [k] for k in made}
    return {p: key for p, found in keys.items() if (key := current_key(found, now)) is not None}
