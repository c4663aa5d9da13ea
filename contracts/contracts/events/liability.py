"""Earn contract versions that the partners service publishes, so that the points service can value its
liability at each partner's issue price (issue 13, item 1).

A version is immutable once added: it is keyed by (partner_id, valid_from), and its event id derives from that
key, so a repeated publication is the same event; a reader keeps the first copy of each key and ignores the rest.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Literal

from pydantic import Field

from contracts.envelope import Contract, Event
from contracts.ids import PartnerId
from contracts.money import Currency

# Fixed forever: every EarnContractVersionAdded event id derives from it.
_CONTRACT_EVENT_IDS = uuid.UUID("5d0e8a4c-77b1-4f43-9a2e-0c6b3f1d2e87")


def contract_event_id(partner_id: str, valid_from: dt.date) -> uuid.UUID:
    """The one event id of a partner's contract version: a republication is a duplicate, never a second fact."""
    return uuid.uuid5(_CONTRACT_EVENT_IDS, f"{partner_id}\x1f{valid_from.isoformat()}")


class EarnContractVersionPayload(Contract):
    partner_id: PartnerId
    valid_from: dt.date = Field(description="The first UTC day the version is in force; it lasts until the next one.")
    currency: Currency
    # Positive, below 10^10 minor units, at most 4 decimals: as partners' contracts store prices.
    issue_price_minor_per_point: Decimal = Field(
        gt=0, lt=10**10, max_digits=14, decimal_places=4,
        description="What the partner pays per point it issues, in minor units of `currency`.",
    )  # fmt: skip
    redemption_price_minor_per_point: Decimal = Field(
        gt=0, lt=10**10, max_digits=14, decimal_places=4,
        description="What the partner is paid per point redeemed with it, in minor units of `currency`.",
    )  # fmt: skip


class EarnContractVersionAdded(Event):
    """Ops added a version of a partner's earn contract (or registered the partner with its first one)."""

    type: Literal["EarnContractVersionAdded"] = "EarnContractVersionAdded"
    version: Literal[1] = 1
    payload: EarnContractVersionPayload
