"""Stock of the catalog's offers, as the redemption service counts it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from contracts.envelope import Contract, Event
from contracts.ids import ExternalRef, PartnerId


class StockPayload(Contract):
    partner_id: PartnerId
    offer_id: ExternalRef
    stock: int = Field(ge=0, description="Units the partner offers in total.")
    units_reserved: int = Field(ge=0, description="Units held by orders not yet fulfilled.")
    units_sold: int = Field(ge=0)


class OfferOutOfStock(Event):
    """An order reserved the last unit of an offer: nothing is left to redeem until an order gives units back
    or the partner raises the stock."""

    type: Literal["OfferOutOfStock"] = "OfferOutOfStock"
    version: Literal[1] = 1
    payload: StockPayload
