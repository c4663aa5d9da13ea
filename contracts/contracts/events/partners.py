"""Facts that partners report: purchases and refunds of their customers."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field

from contracts.envelope import Contract, Event
from contracts.events.attribution import Attribution
from contracts.ids import Category, ExternalRef, PartnerId
from contracts.money import Money


class PurchasePayload(Contract):
    partner_id: PartnerId
    customer_ref: ExternalRef = Field(description="The partner's own id for its customer.")
    purchase_id: ExternalRef = Field(description="The partner's order id; unique per partner.")
    amount: Money
    category: Category | None = Field(default=None, description="Category for category-specific earn rates.")
    points: int | None = Field(
        default=None,
        ge=0,
        le=10**12,
        description="Points earned under the partner's earn contract, computed by the partners service at intake.",
    )
    contract_valid_from: date | None = Field(
        default=None, description="The earn contract version (its first day) that `points` was computed with."
    )
    attribution: Attribution | None = Field(
        default=None, description="Channel, branch, staff member, campaign or share link the partner reported."
    )


class RefundPayload(Contract):
    partner_id: PartnerId
    customer_ref: ExternalRef
    refund_id: ExternalRef = Field(description="The partner's refund id; unique per partner.")
    purchase_id: ExternalRef = Field(description="The purchase this refund reverses, in part or in full.")
    amount: Money


class PartnerPurchaseRecorded(Event):
    """A partner reported that its customer bought something."""

    type: Literal["PartnerPurchaseRecorded"] = "PartnerPurchaseRecorded"
    version: Literal[1] = 1
    payload: PurchasePayload


class PartnerRefundRecorded(Event):
    """A partner reported a refund of an earlier purchase."""

    type: Literal["PartnerRefundRecorded"] = "PartnerRefundRecorded"
    version: Literal[1] = 1
    payload: RefundPayload
