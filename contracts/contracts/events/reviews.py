"""Earnings the points service's velocity rules held for review, and how each review ended
(services/points/points/domain/velocity.py).

A held earning's points wait in the ledger's suspense account (`review:pending`): the member sees them as
pending, cannot spend them, and its partner's issued account was already debited. Ops release them (to the
member, as a lot with the purchase's own expiry) or reject them (back to the issuer); a refund that reverses the
purchase in full cancels the review. The topic is keyed by member id (the identifier while none is linked).
"""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import Field

from contracts.envelope import Contract, Event, UtcDatetime
from contracts.money import Money

ReviewDecision = Literal["released", "rejected", "cancelled"]


class EarningHeldPayload(Contract):
    review_id: uuid.UUID
    member_id: uuid.UUID | None = Field(description="Null while the purchase's identifier is linked to nobody.")
    identifier: str = Field(max_length=300, description="`partner:<partner>:<customer ref>` or `card:<token>`.")
    partner_id: str | None = Field(description="The partner it was bought at; null for a card purchase.")
    source_key: str = Field(max_length=300, description="The purchase: `partner:<partner>:<purchase>` or `card:<tx>`.")
    amount: Money
    points: int = Field(gt=0, description="Points pending review.")
    rule: str = Field(max_length=64, description="The rule that fired, e.g. `member_points_per_day`.")
    detail: str = Field(max_length=500, description="What the rule saw, in words.")
    held_at: UtcDatetime


class EarningHeldForReview(Event):
    """A purchase's points were held for review instead of credited."""

    type: Literal["EarningHeldForReview"] = "EarningHeldForReview"
    version: Literal[1] = 1
    payload: EarningHeldPayload


class ReviewDecidedPayload(Contract):
    review_id: uuid.UUID
    member_id: uuid.UUID | None
    identifier: str = Field(max_length=300)
    decision: ReviewDecision = Field(
        description="released: credited to the member; rejected: back to the issuer; cancelled: a refund reversed it."
    )
    points: int = Field(ge=0, description="Points the decision moved (0 for a cancellation: the refund moved them).")
    decided_by: str = Field(max_length=200, description="The ops user's subject, or `refund`.")
    note: str | None = Field(default=None, max_length=500)
    decided_at: UtcDatetime
    transfer_id: uuid.UUID | None = Field(description="The decision's transfer; null for a cancellation.")


class EarningReviewDecided(Event):
    """A held earning's review ended."""

    type: Literal["EarningReviewDecided"] = "EarningReviewDecided"
    version: Literal[1] = 1
    payload: ReviewDecidedPayload
