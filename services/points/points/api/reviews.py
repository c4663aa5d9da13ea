"""Ops: the velocity rules (GET/PUT, versioned and audited) and the queue of earnings held for review."""

import uuid
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, status
from pydantic import BaseModel, ConfigDict, Field

from loyalty_runtime.auth import Principal, require_ops
from points.adapters.store import PointsStore
from points.api.ops import OPS_RESPONSES
from points.domain.velocity import Limits, RulesError, VelocityRules
from points.handlers import reviews, velocity
from points.handlers.ledger_events import LedgerEventWriter
from points.handlers.reviews import Decision, ReviewDecidedError, ReviewNotFoundError

Count = Annotated[int | None, Field(ge=0, le=10**12)]


class LimitsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    points_per_day: Count = Field(default=None, description="Points a scope may earn per UTC day; above: held.")
    purchases_per_hour: Count = Field(default=None, description="Purchases per hour; beyond: held.")


class RulesIn(BaseModel):
    """Every rule is off when null (the default)."""

    model_config = ConfigDict(extra="forbid")

    member: LimitsIn = Field(default_factory=LimitsIn, description="Limits of each member.")
    identifier: LimitsIn = Field(default_factory=LimitsIn, description="Limits of each card or partner customer.")
    partner: LimitsIn = Field(default_factory=LimitsIn, description="Limits of each partner's purchases, all members.")
    new_member_days: Annotated[int | None, Field(ge=1, le=365)] = Field(
        default=None, description="Cool-off: within this many days of joining, ..."
    )
    new_member_points: Count = Field(default=None, description="... an earning above this many points is held.")
    unusual_factor: Decimal | None = Field(
        default=None, gt=1, le=1000, max_digits=8, decimal_places=3,
        description="Held when the amount is above this times the member's average purchase (same currency).",
    )  # fmt: skip
    unusual_min_purchases: int = Field(default=5, ge=1, le=10_000, description="Purchases the average needs.")
    unusual_days: int = Field(default=90, ge=1, le=366, description="Days the average looks back on, before today.")
    gifts_per_day: Count = Field(default=None, description="Gifts a member may give per UTC day; beyond: refused.")
    redemptions_per_day: Count = Field(default=None, description="Redemption holds per member and UTC day; refused.")

    def rules(self) -> VelocityRules:
        data = self.model_dump(exclude={"member", "identifier", "partner"})
        return VelocityRules(**data, member=Limits(**self.member.model_dump()),
                             identifier=Limits(**self.identifier.model_dump()),
                             partner=Limits(**self.partner.model_dump()))  # fmt: skip


class RulesOut(RulesIn):
    version: int = Field(description="0: the defaults, every rule off; each PUT that changes something adds one.")
    set_by: str | None
    set_at: datetime | None


class ReviewOut(BaseModel):
    review_id: uuid.UUID
    source_key: str
    identifier: str
    member_id: uuid.UUID | None
    partner_id: str | None
    amount_minor: int
    currency: str
    points: int = Field(description="Points the purchase earned.")
    points_pending: int = Field(description="What is still held: its points minus what refunds reversed.")
    rule: str
    detail: str
    earned_at: datetime
    lot_expires_at: datetime = Field(description="The expiry a release gives the member's lot (the purchase's own).")
    status: Literal["open", "released", "rejected", "cancelled"]
    opened_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    note: str | None
    decided_points: int | None
    transfer_id: uuid.UUID | None


class ReviewsOut(BaseModel):
    items: list[ReviewOut]


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(default=None, max_length=500, description="Why; kept in the review and the audit log.")


class BulkIn(DecisionIn):
    decision: Literal["release", "reject"]
    review_ids: list[uuid.UUID] = Field(min_length=1, max_length=100)


class DecidedOut(BaseModel):
    review_id: uuid.UUID
    status: str
    points: int
    transfer_id: uuid.UUID


class BulkItem(BaseModel):
    review_id: uuid.UUID
    status: str = Field(description="released / rejected, or `refused` with the reason.")
    reason: str | None = None


class BulkOut(BaseModel):
    items: list[BulkItem]


DECIDE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **OPS_RESPONSES,
    404: {"description": "No such review."},
    409: {"description": "Already decided (by whom and when are in the detail) or cancelled by a refund."},
}


def router(
    store: Callable[[], PointsStore], events: LedgerEventWriter, authenticate: Callable[..., Principal],
    cache: velocity.RulesCache,
) -> APIRouter:  # fmt: skip
    api = APIRouter(prefix="/v1/ops", tags=["ops"])
    Caller = Annotated[Principal, Depends(authenticate)]
    Store = Annotated[PointsStore, Depends(store)]

    @api.get("/velocity-rules", response_model=RulesOut, responses=OPS_RESPONSES)
    async def get_rules(caller: Caller, points: Store) -> dict[str, Any]:
        """The rules in force (version 0 when ops never set any: every rule off)."""
        require_ops(caller)
        return _rules_out(*await velocity.current_rules(points))

    @api.put("/velocity-rules", response_model=RulesOut, responses={**OPS_RESPONSES, 422: {"description": "Bad."}})
    async def put_rules(body: RulesIn, caller: Caller, points: Store) -> dict[str, Any]:
        """Replace the rules (a new version, audited); the earn consumers apply it within a few seconds."""
        await velocity.put_rules(points, body.rules(), require_ops(caller))
        cache.invalidate()
        return _rules_out(*await velocity.current_rules(points))

    @api.get("/reviews", response_model=ReviewsOut, responses=OPS_RESPONSES)
    async def get_reviews(
        caller: Caller, points: Store,
        review_status: Annotated[Literal["open", "released", "rejected", "cancelled"], Query(alias="status")] = "open",
        member_id: uuid.UUID | None = None, limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> ReviewsOut:  # fmt: skip
        """Earnings held for review, newest first, with the rule that fired."""
        require_ops(caller)
        rows = await reviews.reviews(points, review_status, member_id, limit)
        return ReviewsOut.model_validate({"items": [dict(r) for r in rows]})

    async def decide(review_id: uuid.UUID, decision: Decision, body: DecisionIn, caller: Principal) -> DecidedOut:
        require_ops(caller)
        made = await reviews.decide(store(), events, events.reviews_topic, review_id, decision, caller, body.note)
        return DecidedOut(review_id=made.review_id, status=made.decision.value, points=made.points,
                          transfer_id=made.transfer_id)  # fmt: skip

    @api.post("/reviews/{review_id}/release", response_model=DecidedOut, responses=DECIDE_RESPONSES)
    async def release(review_id: uuid.UUID, caller: Caller, body: DecisionIn | None = None) -> DecidedOut:
        """Credit the held points to the member (a lot with the purchase's own expiry); audited."""
        return await decide(review_id, Decision.RELEASE, body or DecisionIn(), caller)

    @api.post("/reviews/{review_id}/reject", response_model=DecidedOut, responses=DECIDE_RESPONSES)
    async def reject(review_id: uuid.UUID, caller: Caller, body: DecisionIn | None = None) -> DecidedOut:
        """Send the held points back to their issuer (the partner is not charged for them); audited."""
        return await decide(review_id, Decision.REJECT, body or DecisionIn(), caller)

    @api.post("/reviews/bulk", response_model=BulkOut, responses=OPS_RESPONSES)
    async def bulk(body: BulkIn, caller: Caller) -> BulkOut:
        """Decide several reviews alike, each in its own transaction; one already decided does not stop the rest."""
        require_ops(caller)
        decision = Decision.RELEASE if body.decision == "release" else Decision.REJECT
        items = []
        for review_id in dict.fromkeys(body.review_ids):
            try:
                made = await decide(review_id, decision, body, caller)
                items.append(BulkItem(review_id=review_id, status=made.status))
            except (ReviewDecidedError, ReviewNotFoundError) as error:
                items.append(BulkItem(review_id=review_id, status="refused", reason=str(error)))
        return BulkOut(items=items)

    return api


def _rules_out(rules: VelocityRules, set_by: str | None, set_at: datetime | None) -> dict[str, Any]:
    return {**rules.to_json(), "version": rules.version, "set_by": set_by, "set_at": set_at}


ERRORS: dict[type[Exception], int] = {
    ReviewNotFoundError: status.HTTP_404_NOT_FOUND,
    ReviewDecidedError: status.HTTP_409_CONFLICT,
    RulesError: status.HTTP_422_UNPROCESSABLE_CONTENT,
}
