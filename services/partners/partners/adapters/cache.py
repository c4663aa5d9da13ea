"""A short-lived in-memory cache of keys and contracts, so that intake does not query them per request."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import date
from typing import Generic, TypeVar

from partners.adapters.store import PartnerStore
from partners.domain.credentials import ApiKey
from partners.domain.earn import EarnContract
from partners.domain.registry import Partner
from partners.handlers.registry import PartnerOverview

K = TypeVar("K")
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """Entries live `ttl` seconds; a full cache is emptied rather than grown (bounded memory under key spraying)."""

    def __init__(self, ttl: float, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._entries: dict[K, tuple[float, V]] = {}

    def get(self, key: K) -> tuple[bool, V | None]:
        found = self._entries.get(key)
        if found is None or found[0] <= self._clock():
            return False, None
        return True, found[1]

    def put(self, key: K, value: V) -> None:
        if self._ttl <= 0:
            return
        if len(self._entries) >= self._max:
            self._entries.clear()
        self._entries[key] = (self._clock() + self._ttl, value)

    def forget(self, key: K) -> None:
        self._entries.pop(key, None)


class CachingRegistry:
    """The registry with cached key and contract reads.

    Writes through this object forget what they change at once; a change made by another replica is
    seen after at most `ttl` seconds, which bounds how long a revoked key keeps working.
    """

    def __init__(self, registry: PartnerStore, ttl: float) -> None:
        self._registry = registry
        self._keys: TtlCache[str, ApiKey | None] = TtlCache(ttl)
        self._contracts: TtlCache[str, Sequence[EarnContract]] = TtlCache(ttl)

    async def find_key(self, key_id: str) -> ApiKey | None:
        hit, key = self._keys.get(key_id)
        if not hit:
            key = await self._registry.find_key(key_id)
            self._keys.put(key_id, key)
        return key

    async def contracts_of(self, partner_id: str) -> Sequence[EarnContract]:
        hit, contracts = self._contracts.get(partner_id)
        if not hit or contracts is None:
            contracts = await self._registry.contracts_of(partner_id)
            self._contracts.put(partner_id, contracts)
        return contracts

    async def create_partner(self, partner_id: str, name: str, contract: EarnContract, key_id: str) -> None:
        await self._registry.create_partner(partner_id, name, contract, key_id)
        self._contracts.forget(partner_id)
        self._keys.forget(key_id)

    async def partner(self, partner_id: str) -> Partner | None:
        return await self._registry.partner(partner_id)

    async def overview(self, today: date) -> Sequence[PartnerOverview]:
        return await self._registry.overview(today)

    async def add_contract(self, contract: EarnContract) -> None:
        await self._registry.add_contract(contract)
        self._contracts.forget(contract.partner_id)

    async def add_key(self, partner_id: str, key_id: str) -> ApiKey:
        key = await self._registry.add_key(partner_id, key_id)
        self._keys.forget(key_id)
        return key

    async def revoke_key(self, partner_id: str, key_id: str) -> ApiKey:
        key = await self._registry.revoke_key(partner_id, key_id)
        self._keys.forget(key_id)
        return key
