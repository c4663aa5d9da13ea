"""Earn rates for card spend, by merchant category code, versioned by the time they start."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal

from contracts.money import MINOR_UNITS

ANY_MCC = "*"


@dataclass(frozen=True)
class CardRate:
    mcc: str
    """A four-digit merchant category code, or '*' for every code without its own rate."""
    valid_from: datetime
    points_per_unit: Decimal
    """Points per one major unit of the transaction's currency (1 CNY, 1 USD)."""


class CardRates:
    def __init__(self, rates: Iterable[CardRate]) -> None:
        self._by_mcc: dict[str, list[CardRate]] = {}
        for rate in rates:
            self._by_mcc.setdefault(rate.mcc, []).append(rate)
        for versions in self._by_mcc.values():
            versions.sort(key=lambda r: r.valid_from, reverse=True)

    def rate_for(self, mcc: str, at: datetime) -> Decimal:
        """The rate in force at `at`: the code's own if it has one then, else the default, else 0."""
        for code in (mcc, ANY_MCC):
            for rate in self._by_mcc.get(code, []):
                if rate.valid_from <= at:
                    return rate.points_per_unit
        return Decimal(0)


def points_for(amount_minor: int, currency: str, rate: Decimal) -> int:
    """Whole points for a spend, rounded down: 25.80 CNY at 2 points per CNY earns 51 points."""
    major = Decimal(amount_minor).scaleb(-MINOR_UNITS[currency])
    return int((major * rate).to_integral_value(rounding=ROUND_FLOOR))
