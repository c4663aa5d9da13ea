"""Earn contracts: how many points a partner's purchase earns, and which version of the terms applies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from contracts.money import MINOR_UNITS
from partners.domain.errors import PartnersError, ReportRefusedError

MAX_POINTS_PER_PURCHASE = 10**12
"""The most points one purchase event can carry (contracts.events.partners.PurchasePayload)."""


@dataclass(frozen=True)
class EarnContract:
    """One version of a partner's terms, valid from `valid_from` until the next version starts."""

    partner_id: str
    valid_from: date
    currency: str
    points_per_unit: Decimal
    """Points per one major unit of `currency` (per yuan, per dollar)."""
    issue_price_minor_per_point: Decimal
    """What the partner pays per point it issues, in minor units of `currency`."""
    redemption_price_minor_per_point: Decimal
    """What the partner is paid per point redeemed with it, in minor units of `currency`."""
    category_rates: Mapping[str, Decimal] = field(default_factory=dict)
    """Points per major unit for the categories that earn differently; 0 excludes a category."""
    breakage_rebate_share: Decimal = Decimal(0)
    """Share (0 to 1) of the issue price refunded to the partner for its points that expired (settlement)."""

    def rate_for(self, category: str | None) -> Decimal:
        if category is not None and category in self.category_rates:
            return self.category_rates[category]
        return self.points_per_unit


class NoContractError(ReportRefusedError):
    """No version of the partner's earn contract was valid on the day of the purchase."""

    field = "occurred_at"

    def __init__(self, partner_id: str, day: date, first: date | None) -> None:
        since = f"; its first contract starts {first.isoformat()}" if first else ""
        super().__init__(
            f"partner {partner_id!r} has no earn contract valid on {day.isoformat()} (UTC){since}; "
            "ask ops to add a contract version that covers that day"
        )


class BackdatedContractError(PartnersError):
    """A new version may not change the terms of days whose purchases were already accepted."""

    def __init__(self, valid_from: date, today: date) -> None:
        super().__init__(
            f"a new contract version cannot start in the past ({valid_from.isoformat()} is before "
            f"{today.isoformat()}, UTC): purchases already accepted keep their terms; start it today or later"
        )


def contract_on(contracts: Sequence[EarnContract], day: date) -> EarnContract:
    """The version in force on `day`: the one with the latest `valid_from` not after it."""
    in_force = [c for c in contracts if c.valid_from <= day]
    if not in_force:
        first = min((c.valid_from for c in contracts), default=None)
        partner = contracts[0].partner_id if contracts else "?"
        raise NoContractError(partner, day, first)
    return max(in_force, key=lambda c: c.valid_from)


def points_for(contract: EarnContract, amount_minor: int, category: str | None) -> int:
    """floor(amount in major units x rate), exactly: the rate's Decimal is turned into a fraction of integers."""
    numerator, denominator = contract.rate_for(category).as_integer_ratio()
    minor_per_major: int = 10 ** MINOR_UNITS[contract.currency]
    return (amount_minor * numerator) // (denominator * minor_per_major)


def check_new_version_start(valid_from: date, today: date) -> None:
    if valid_from < today:
        raise BackdatedContractError(valid_from, today)
