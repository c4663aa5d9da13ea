"""Money as integer minor units with an ISO 4217 currency. No floats anywhere."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from contracts.envelope import Contract

# ISO 4217 code -> number of minor units. The programme accepts these currencies only.
MINOR_UNITS: dict[str, int] = {
    "AED": 2, "AUD": 2, "CAD": 2, "CHF": 2, "CNY": 2, "EUR": 2, "GBP": 2, "HKD": 2,
    "IDR": 2, "INR": 2, "JPY": 0, "KRW": 0, "MOP": 2, "MYR": 2, "NZD": 2, "PHP": 2,
    "SGD": 2, "THB": 2, "TWD": 2, "USD": 2, "VND": 0,
}  # fmt: skip


def _known_currency(code: str) -> str:
    if code not in MINOR_UNITS:
        known = ", ".join(sorted(MINOR_UNITS))
        raise ValueError(f"unknown currency {code!r}; use one of {known}")
    return code


Currency = Annotated[
    str,
    Field(pattern=r"^[A-Z]{3}$", json_schema_extra={"enum": sorted(MINOR_UNITS)}),
    AfterValidator(_known_currency),
]
"""An ISO 4217 code that the programme accepts."""


class Money(Contract):
    """An amount in the currency's minor units (cents, fen); always positive in events."""

    amount_minor: int = Field(gt=0, le=10**13, description="Amount in minor units, e.g. 1999 for 19.99 CNY.")
    currency: Currency
