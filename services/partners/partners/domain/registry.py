"""The partner registry: partners, their keys, and what can go wrong when ops change them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from partners.domain.credentials import ApiKey
from partners.domain.errors import PartnersError


@dataclass(frozen=True)
class Partner:
    partner_id: str
    name: str
    created_at: datetime
    keys: tuple[ApiKey, ...] = ()


@dataclass(frozen=True)
class NewCredentials:
    """A key and its secret; the secret is shown once, when the key is made."""

    partner_id: str
    key_id: str
    secret: str


class PartnerExistsError(PartnersError):
    def __init__(self, partner_id: str) -> None:
        super().__init__(
            f"partner {partner_id!r} already exists; choose another partner_id, "
            "or add a contract version or a key to the existing partner"
        )


class UnknownPartnerError(PartnersError):
    def __init__(self, partner_id: str) -> None:
        super().__init__(f"no partner {partner_id!r}; register it first with POST /v1/partners")


class ContractVersionExistsError(PartnersError):
    def __init__(self, partner_id: str, valid_from: date) -> None:
        super().__init__(
            f"partner {partner_id!r} already has a contract version starting {valid_from.isoformat()}; "
            "versions are never changed: start the new one on another day"
        )


class KeyNotFoundError(PartnersError):
    def __init__(self, partner_id: str, key_id: str) -> None:
        super().__init__(
            f"partner {partner_id!r} has no API key {key_id[:64]!r}; list its keys with GET /v1/partners/{partner_id}"
        )


class InvalidContractError(PartnersError):
    def __init__(self, constraint: str) -> None:
        super().__init__(
            f"the contract breaks the rule {constraint!r}: rates and prices must be positive numbers "
            "with at most 4 decimals (a category rate may be 0)"
        )
