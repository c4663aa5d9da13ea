"""Ops register partners and add earn contract versions; ops or the partner's staff rotate or revoke its API keys."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from partners.domain.credentials import ApiKey, derive_secret, new_key_id
from partners.domain.earn import EarnContract, check_new_version_start
from partners.domain.registry import NewCredentials, Partner, UnknownPartnerError


@dataclass(frozen=True)
class PartnerOverview:
    """A partner as the ops list shows it: its contract version in force, and how many of its keys work."""

    partner: Partner
    contract: EarnContract | None
    active_keys: int


class Registry(Protocol):
    async def create_partner(self, partner_id: str, name: str, contract: EarnContract, key_id: str) -> None:
        """All three in one transaction; raises PartnerExistsError."""

    async def partner(self, partner_id: str) -> Partner | None: ...

    async def add_contract(self, contract: EarnContract) -> None:
        """Raises UnknownPartnerError or ContractVersionExistsError."""

    async def contracts_of(self, partner_id: str) -> Sequence[EarnContract]: ...

    async def add_key(self, partner_id: str, key_id: str) -> ApiKey:
        """Raises UnknownPartnerError."""

    async def revoke_key(self, partner_id: str, key_id: str) -> ApiKey:
        """Keeps the first revocation time; raises KeyNotFoundError."""

    async def overview(self, today: date) -> Sequence[PartnerOverview]:
        """Every partner, by partner_id, with the contract version in force on `today`."""


async def register_partner(
    registry: Registry, master_secret: str, partner_id: str, name: str, contract: EarnContract
) -> NewCredentials:
    """A new partner with its first contract (any start date: history may be loaded) and its first key."""
    key_id = new_key_id()
    await registry.create_partner(partner_id, name, contract, key_id)
    return NewCredentials(partner_id, key_id, derive_secret(master_secret, key_id))


async def add_contract_version(registry: Registry, contract: EarnContract, today: date) -> EarnContract:
    check_new_version_start(contract.valid_from, today)
    await registry.add_contract(contract)
    return contract


async def rotate_key(registry: Registry, master_secret: str, partner_id: str) -> NewCredentials:
    """A new key; the old ones keep working until they are revoked, so the partner can switch without downtime."""
    key = await registry.add_key(partner_id, new_key_id())
    return NewCredentials(partner_id, key.key_id, derive_secret(master_secret, key.key_id))


async def revoke_key(registry: Registry, partner_id: str, key_id: str) -> ApiKey:
    return await registry.revoke_key(partner_id, key_id)


async def get_partner(registry: Registry, partner_id: str) -> Partner:
    found = await registry.partner(partner_id)
    if found is None:
        raise UnknownPartnerError(partner_id)
    return found


async def list_contracts(registry: Registry, partner_id: str) -> Sequence[EarnContract]:
    contracts = await registry.contracts_of(partner_id)
    if not contracts:
        await get_partner(registry, partner_id)  # every partner has a contract: none means no such partner
    return contracts


async def list_partners(registry: Registry, today: date) -> Sequence[PartnerOverview]:
    return await registry.overview(today)
