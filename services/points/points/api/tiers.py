"""Tiers: the programme's tier set (anyone signed in reads it, ops put it), a member's tier and progress, the
number of members per tier, and reviews on demand (the rules: points/domain/tiers.py)."""

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field

from contracts.ids import TierCode
from loyalty_runtime.auth import Principal, ops_dependency, resolve_member
from points.adapters.store import PointsStore
from points.domain import tiers as rules
from points.domain.tiers import MAX_BENEFIT, MAX_BENEFITS, MAX_NAME, MAX_THRESHOLD, MAX_TIERS, Tier, TierChange, TierSet
from points.handlers import tiers as handle
from points.handlers.tiers import ReviewOutcome

RULES = (rules.__doc__ or "").strip()


class TierIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: TierCode = Field(description="Fixed for good: offers, activities and segments name tiers by code.")
    name: str = Field(min_length=1, max_length=MAX_NAME, description="As members read it, e.g. 'Gold'.")
    threshold_points: int = Field(ge=0, le=MAX_THRESHOLD, description="Qualifying points in a window to reach it.")
    earn_multiplier: Decimal = Field(
        default=Decimal(1), ge=1, le=10, max_digits=4, decimal_places=2, description="1.5 = half as many points again."
    )
    benefits: list[Annotated[str, Field(min_length=1, max_length=MAX_BENEFIT)]] = Field(
        default_factory=list, max_length=MAX_BENEFITS, description="Short texts members read, e.g. 'Lounge access'."
    )


class TierSetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    qualification: Literal["rolling_12_months", "calendar_year"]
    grace_days: int = Field(ge=0, le=366, description="Days after a tier's period before its review.")
    downgrade_policy: Literal["one_tier_down", "to_qualified"]
    tiers: list[TierIn] = Field(min_length=1, max_length=MAX_TIERS, description="Lowest first.")

    def to_tier_set(self) -> TierSet:
        return rules.new_tier_set(
            self.qualification, self.grace_days, self.downgrade_policy, [t.model_dump() for t in self.tiers]
        )


class TierOut(BaseModel):
    code: str
    name: str
    threshold_points: int
    earn_multiplier: Decimal
    benefits: list[str]

    @classmethod
    def of(cls, tier: Tier | None) -> "TierOut | None":
        if tier is None:
            return None
        return cls(code=tier.code, name=tier.name, threshold_points=tier.threshold_points,
                   earn_multiplier=tier.earn_multiplier, benefits=list(tier.benefits))  # fmt: skip


class TierSetOut(BaseModel):
    version: int
    effective_from: dt.datetime
    qualification: str
    grace_days: int
    downgrade_policy: str
    base_tier: str | None = Field(description="The code members hold without qualifying; null if the first is above 0.")
    tiers: list[TierOut]

    @classmethod
    def of(cls, s: TierSet) -> "TierSetOut":
        assert s.effective_from is not None
        return cls(
            version=s.version, effective_from=s.effective_from, qualification=s.qualification.value,
            grace_days=s.grace_days, downgrade_policy=s.downgrade_policy.value, base_tier=s.base_code,
            tiers=[t for t in map(TierOut.of, s.tiers) if t is not None],
        )  # fmt: skip


class WindowOut(BaseModel):
    first_day: dt.date = Field(description="In the programme's time zone.")
    last_day: dt.date
    qualifying_points: int


class TierChangeOut(BaseModel):
    from_tier: str | None
    to_tier: str | None
    direction: str = Field(description="upgrade, downgrade or confirmed.")
    reason: str = Field(description="qualified, review_confirmed, review_downgraded or tier_set_changed.")
    qualifying_points: int
    at: dt.datetime
    valid_until: dt.date | None
    tier_set_version: int

    @classmethod
    def of(cls, c: TierChange) -> "TierChangeOut":
        return cls(
            from_tier=c.from_tier, to_tier=c.to_tier, direction=c.direction.value, reason=c.reason.value,
            qualifying_points=c.qualifying_points, at=c.at, valid_until=c.valid_until,
            tier_set_version=c.tier_set_version,
        )  # fmt: skip


class MemberTierOut(BaseModel):
    member_id: uuid.UUID
    tier: TierOut | None = Field(description="Null: no tier (the tier set's first tier needs points).")
    since: dt.datetime | None = Field(description="When the member moved to it; null: it never changed.")
    valid_until: dt.date | None = Field(description="The last day of its period; null: held without review.")
    review_at: dt.datetime | None = Field(description="When its review is due (after the grace days).")
    review_on: dt.date | None = Field(description="The day of `review_at` in the programme's time zone.")
    current_window: WindowOut = Field(description="The window upgrades look at: it ends today.")
    review_window: WindowOut | None = Field(description="The window the next review judges; null: no review.")
    points_to_keep: int | None = Field(description="Still needed in the review window to keep the tier.")
    next_tier: TierOut | None
    points_to_reach: int | None = Field(description="Still needed in the current window to reach the next tier.")
    tier_set_version: int
    history: list[TierChangeOut] = Field(description="Newest first.")


class TierCount(BaseModel):
    code: str | None = Field(description="Null: members without a tier.")
    name: str | None
    members: int


class TierSummaryOut(BaseModel):
    tier_set_version: int
    members: int
    tiers: list[TierCount] = Field(description="The tier set's tiers lowest first, then any other code held.")


class ReviewRunOut(BaseModel):
    reviewed: int = Field(description="Members whose tier was reviewed at the end of its period.")
    confirmed: int
    downgraded: int
    upgraded: int = Field(description="By a review (points earned in the grace days) or by the catch-up.")
    caught_up_versions: list[int] = Field(description="Tier set versions whose catch-up this run finished.")

    @classmethod
    def of(cls, o: ReviewOutcome) -> "ReviewRunOut":
        return cls(reviewed=o.reviewed, confirmed=o.confirmed, downgraded=o.downgraded, upgraded=o.upgraded,
                   caught_up_versions=o.caught_up)  # fmt: skip


SIGNED_IN: dict[int | str, dict[str, Any]] = {
    401: {"description": "No valid bearer token."},
    404: {"description": "The programme has no tier set yet."},
}
OPS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No valid bearer token."},
    403: {"description": "Not an ops token."},
}


def router(
    store: Callable[[], PointsStore],
    authenticate: Callable[..., Principal],
    zone: ZoneInfo,
    clock: Callable[[], dt.datetime],
    run_reviews: Callable[[str], Awaitable[ReviewOutcome]],
) -> APIRouter:
    """`clock` is the tiers' today; `run_reviews(requested_by)` runs the reviews and the catch-up now."""
    api = APIRouter(tags=["tiers"])
    Caller = Annotated[Principal, Depends(authenticate)]
    Ops = Annotated[Principal, Depends(ops_dependency(authenticate))]
    Store = Annotated[PointsStore, Depends(store)]
    MemberRef = Annotated[str, Path(description="A member id, or `me` for the caller's own.")]

    @api.get("/v1/tiers", response_model=TierSetOut, responses=SIGNED_IN, description=f"The tier set.\n\n{RULES}")
    async def get_tiers(_caller: Caller, points: Store) -> TierSetOut:
        return TierSetOut.of(await handle.current_tier_set(points))

    @api.put(
        "/v1/ops/tier-set",
        response_model=TierSetOut,
        responses={
            **OPS,
            409: {"description": "It removes a tier that members hold; `detail` says which and how many."},
            422: {"description": "Not a usable tier set; `detail` says what to change."},
        },
        description=f"Replace the tier set: a new version from now on.\n\n{RULES}",
    )
    async def put_tier_set(body: TierSetIn, caller: Ops, points: Store) -> TierSetOut:
        made = await handle.put_tier_set(points, body.to_tier_set(), f"ops:{caller.subject}", clock())
        return TierSetOut.of(made)

    @api.get(
        "/v1/members/{member_ref}/tier",
        response_model=MemberTierOut,
        tags=["members"],
        responses={
            **SIGNED_IN,
            400: {"description": "`me` with a token that is not a member's: name the member id."},
            403: {"description": "A member asking about another member, or a partner's staff."},
            404: {"description": "No such member, or no tier set yet."},
        },
    )
    async def member_tier(
        member_ref: MemberRef, caller: Caller, points: Store, limit: Annotated[int, Query(ge=1, le=100)] = 20
    ) -> MemberTierOut:
        """The member's tier, since when and until when, what it needs to keep it and to reach the next, and its
        changes (newest first). Points count by day in the programme's time zone."""
        member_id = resolve_member(caller, member_ref)
        found = await handle.member_tier(points, member_id, zone, clock(), limit)
        p = found.progress
        review = p.judged_window
        return MemberTierOut(
            member_id=member_id, tier=TierOut.of(p.tier), since=p.state.since, valid_until=p.state.valid_until,
            review_at=found.review_at, review_on=p.review_day,
            current_window=WindowOut(first_day=p.current_window[0], last_day=p.current_window[1],
                                     qualifying_points=p.current_points),
            review_window=WindowOut(first_day=review[0], last_day=review[1], qualifying_points=p.judged_points or 0)
            if review else None,
            points_to_keep=p.points_to_keep, next_tier=TierOut.of(p.next_tier), points_to_reach=p.points_to_reach,
            tier_set_version=found.tier_set.version, history=[TierChangeOut.of(c) for c in found.history],
        )  # fmt: skip

    @api.get("/v1/ops/tiers/summary", response_model=TierSummaryOut, responses={**OPS, 404: SIGNED_IN[404]})
    async def summary(_ops: Ops, points: Store) -> TierSummaryOut:
        """Members per tier now; members whose tier never changed count for the base tier."""
        found = await handle.tier_summary(points)
        names = {t.code: t.name for t in found.tier_set.tiers}
        order = [*found.tier_set.codes, *sorted(c for c in found.by_tier if c is not None and c not in names)]
        counts = [TierCount(code=c, name=names.get(c), members=found.by_tier.get(c, 0)) for c in order]
        if found.by_tier.get(None):
            counts.append(TierCount(code=None, name=None, members=found.by_tier[None]))
        return TierSummaryOut(tier_set_version=found.tier_set.version, members=found.members, tiers=counts)

    @api.post("/v1/ops/tier-reviews", response_model=ReviewRunOut, responses=OPS)
    async def tier_reviews(caller: Ops) -> ReviewRunOut:
        """Review every tier due now and catch up members after a new tier set, instead of waiting for the job."""
        return ReviewRunOut.of(await run_reviews(f"ops:{caller.subject}"))

    return api


ERRORS: dict[type[Exception], int] = {
    rules.TierSetError: status.HTTP_422_UNPROCESSABLE_CONTENT,
    rules.UnknownTierError: status.HTTP_422_UNPROCESSABLE_CONTENT,
    handle.TierInUseError: status.HTTP_409_CONFLICT,
    handle.TierSetNotFoundError: status.HTTP_404_NOT_FOUND,
}
