"""Points exchange (issue 13, item 2): card points in, alliance points out to a partner programme (miles).

In: the bank's card system debited its own reward points and tells the points service, which credits
the member linked to the card with alliance points at the rate in force when the card system debited them.

Out: a member asked to convert alliance points into a partner programme's units. The points service holds
the points and tells the partner (`ExchangeRequested`); the partner confirms (with its own reference) or
refuses through the partners service (`ExchangeConfirmed`, `ExchangeRefused`); the points service then
captures or releases the hold and says which (`ExchangeSettled`).
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Literal

from pydantic import Field

from contracts.envelope import Contract, Event, UtcDatetime
from contracts.ids import CardToken, ExternalRef, PartnerId


class CardPointsConvertedPayload(Contract):
    request_id: uuid.UUID = Field(description="The card system's id of this conversion: the same id, one credit.")
    card_token: CardToken
    card_points: int = Field(gt=0, le=10**12, description="The card system's own points it debited, a whole number.")


class CardPointsConverted(Event):
    """The card system debited `card_points` of its own points from the card, to be credited as alliance points.

    The rate is the one in force at `occurred_at`; the points service rounds down and keeps the remainder stated.
    """

    type: Literal["CardPointsConverted"] = "CardPointsConverted"
    version: Literal[1] = 1
    payload: CardPointsConvertedPayload


class ExchangeRequestedPayload(Contract):
    exchange_id: uuid.UUID
    partner_id: PartnerId
    member_id: uuid.UUID
    membership_number: ExternalRef = Field(description="The member's number in the partner's programme.")
    points: int = Field(gt=0, description="Alliance points held for this exchange.")
    units: int = Field(gt=0, description="Whole units (miles) to credit: points x units_per_point, rounded down.")
    units_name: str = Field(min_length=1, max_length=40, description="What the partner calls its units, e.g. miles.")
    units_per_point: Decimal = Field(gt=0, description="The exchange rate in force when the member asked.")
    expires_at: UtcDatetime = Field(description="Without a decision by then the hold is released.")


class ExchangeRequested(Event):
    """A member's alliance points are held for a partner programme; the partner is asked to credit its units."""

    type: Literal["ExchangeRequested"] = "ExchangeRequested"
    version: Literal[1] = 1
    payload: ExchangeRequestedPayload


class ExchangeSettledPayload(Contract):
    exchange_id: uuid.UUID
    partner_id: PartnerId
    member_id: uuid.UUID
    points: int = Field(gt=0)
    outcome: Literal["captured", "released"]
    reason: str = Field(max_length=200, description="For a release: refused_by_partner, expired.")


class ExchangeSettled(Event):
    """The ledger captured (the partner confirmed) or released (refused, expired) an exchange's hold."""

    type: Literal["ExchangeSettled"] = "ExchangeSettled"
    version: Literal[1] = 1
    payload: ExchangeSettledPayload


class ExchangeConfirmedPayload(Contract):
    exchange_id: uuid.UUID
    partner_id: PartnerId
    member_id: uuid.UUID
    partner_reference: ExternalRef = Field(description="The partner's own id of the credit of its units.")


class ExchangeConfirmed(Event):
    """The partner credited its units for an exchange: the ledger captures the hold."""

    type: Literal["ExchangeConfirmed"] = "ExchangeConfirmed"
    version: Literal[1] = 1
    payload: ExchangeConfirmedPayload


class ExchangeRefusedPayload(Contract):
    exchange_id: uuid.UUID
    partner_id: PartnerId
    member_id: uuid.UUID
    reason: str = Field(min_length=1, max_length=200)


class ExchangeRefused(Event):
    """The partner refused an exchange (e.g. an unknown membership number): the ledger releases the hold."""

    type: Literal["ExchangeRefused"] = "ExchangeRefused"
    version: Literal[1] = 1
    payload: ExchangeRefusedPayload
