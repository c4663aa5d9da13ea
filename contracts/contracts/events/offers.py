"""Reward offers that partners publish; the redemption service builds the member catalog from them."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import AnyHttpUrl, Field, model_validator

from contracts.envelope import Contract, Event, UtcDatetime
from contracts.ids import Category, ExternalRef, PartnerId, TierCode

OfferKind = Literal["product", "voucher", "discount"]
MAX_TIER_PRICES = 20


class SegmentPrice(Contract):
    """What one unit costs a member of this segment (as the segment was last published)."""

    segment_id: uuid.UUID
    price_points: int = Field(gt=0, le=10**9)


class TierPrice(Contract):
    """What one unit costs a member at this tier ("one customer, one price")."""

    tier: TierCode
    price_points: int = Field(gt=0, le=10**9)


class OfferPayload(Contract):
    partner_id: PartnerId
    offer_id: ExternalRef = Field(description="The partner's id for the offer; unique per partner.")
    revision: int = Field(ge=1, description="Grows with every change; a reader keeps the highest it has seen.")
    kind: OfferKind
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    category: Category
    price_points: int = Field(gt=0, le=10**9, description="What one unit costs, in points.")
    stock: int = Field(ge=0, le=10**9, description="Units offered in total over the offer's life.")
    valid_from: UtcDatetime
    valid_until: UtcDatetime
    fulfilment_url: AnyHttpUrl | None = Field(
        default=None,
        description="Where the redemption service asks the partner to fulfil an order (products, discounts). "
        "Vouchers need none: the programme issues their codes.",
    )
    tier_prices: list[TierPrice] = Field(
        default_factory=list,
        max_length=MAX_TIER_PRICES,
        description="Prices for members at these tiers; a member at another tier pays price_points.",
    )
    segment_prices: list[SegmentPrice] = Field(
        default_factory=list,
        max_length=MAX_TIER_PRICES,
        description="Prices for members of these published segments; a member to whom several prices apply (its "
        "tier's, its segments') pays the lowest of them.",
    )
    tiers_only: list[TierCode] = Field(
        default_factory=list,
        max_length=MAX_TIER_PRICES,
        description="Only members at one of these tiers see and may order the offer; empty: every member.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> OfferPayload:
        if self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        if self.kind != "voucher" and self.fulfilment_url is None:
            raise ValueError(f"a {self.kind} offer needs a fulfilment_url")
        tiers = [price.tier for price in self.tier_prices]
        if len(set(tiers)) < len(tiers):
            raise ValueError("tier_prices names a tier twice: give each tier one price")
        segments = [price.segment_id for price in self.segment_prices]
        if len(set(segments)) < len(segments):
            raise ValueError("segment_prices names a segment twice: give each segment one price")
        if len(set(self.tiers_only)) < len(self.tiers_only):
            raise ValueError("tiers_only names a tier twice")
        excluded = sorted(set(tiers) - set(self.tiers_only)) if self.tiers_only else []
        if excluded:
            raise ValueError(f"tier_prices for {', '.join(excluded)}, which tiers_only leaves out: drop them")
        return self


class OfferWithdrawnPayload(Contract):
    partner_id: PartnerId
    offer_id: ExternalRef
    revision: int = Field(ge=1)


class OfferPublished(Event):
    """A partner published a reward offer, or a new revision of it (price, stock, window)."""

    type: Literal["OfferPublished"] = "OfferPublished"
    version: Literal[1] = 1
    payload: OfferPayload


class OfferWithdrawn(Event):
    """A partner withdrew an offer; orders already placed complete."""

    type: Literal["OfferWithdrawn"] = "OfferWithdrawn"
    version: Literal[1] = 1
    payload: OfferWithdrawnPayload
