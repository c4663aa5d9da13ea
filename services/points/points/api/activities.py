"""Ops run reward activities; members claim give-aways and name who invited them."""

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contracts.ids import Category, MerchantCategoryCode, PartnerId, TierCode
from contracts.money import Currency
from loyalty_runtime.auth import Principal, require_ops, resolve_member
from points.adapters.attribution_store import AttributionStore
from points.adapters.store import PointsStore
from points.api.attribution import AttributionIn
from points.domain.activities import Activity, ActivityKind, Rules, Scope
from points.handlers import activities as handle
from points.handlers import queries as handle_queries
from points.handlers.attribution import check_attribution
from points.handlers.ledger_events import LedgerEventWriter


class ScopeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Literal["any", "partner", "card"] = "any"
    partner_id: PartnerId | None = None
    category: Category | None = None
    mcc: MerchantCategoryCode | None = None


class RulesIn(BaseModel):
    """Which fields matter depends on the kind: multiplier (multiplier, scope); spend_threshold
    (threshold_minor, currency, bonus_points, scope); first_purchase (partner_id, bonus_points);
    limited_claim (claim_points); referral (referrer_points, referee_points)."""

    model_config = ConfigDict(extra="forbid")

    scope: ScopeIn = Field(default_factory=ScopeIn)
    multiplier: Decimal | None = Field(default=None, max_digits=6, decimal_places=3, description="2 = double points.")
    threshold_minor: int | None = Field(default=None, gt=0, le=10**13)
    currency: Currency | None = None
    bonus_points: int | None = Field(default=None, gt=0, le=10**9)
    partner_id: PartnerId | None = None
    claim_points: int | None = Field(default=None, gt=0, le=10**9)
    referrer_points: int | None = Field(default=None, gt=0, le=10**9)
    referee_points: int = Field(default=0, ge=0, le=10**9)
    tiers: list[TierCode] | None = Field(
        default=None,
        min_length=1,
        max_length=10,
        description="Only members at one of these tiers when they buy (or claim) earn it; omit for every member.",
    )

    def to_rules(self) -> Rules:
        values = self.model_dump(exclude={"scope", "tiers"})
        tiers = tuple(self.tiers) if self.tiers is not None else None
        return Rules(scope=Scope(**self.scope.model_dump()), tiers=tiers, **values)


class ActivityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    kind: ActivityKind
    rules: RulesIn
    budget_points: int = Field(gt=0, le=10**12, description="Funded from the programme account at once.")
    quantity_cap: int | None = Field(default=None, gt=0, le=10**9, description="Most bonuses in total.")
    per_member_cap: int | None = Field(default=None, gt=0, le=10**12, description="Most points one member gets.")
    segment_id: uuid.UUID | None = Field(default=None, description="Who it targets; everyone if omitted.")
    holdout_share: Decimal = Field(
        default=Decimal(0), ge=0, le=Decimal("0.5"), max_digits=4, decimal_places=3,
        description="Share of the targeted members kept back as the comparison group.",
    )  # fmt: skip


class WindowIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    starts_at: AwareDatetime
    ends_at: AwareDatetime


class ActivateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ends_at: AwareDatetime | None = Field(default=None, description="Needed the first time; kept afterwards.")


class RevisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: RulesIn


class BudgetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    add_points: int = Field(gt=0, le=10**12)


class VersionOut(BaseModel):
    version: int
    effective_from: datetime
    state: str
    rules: dict[str, Any]
    window_start: datetime | None
    window_end: datetime | None
    changed_by: str


class ActivityOut(BaseModel):
    activity_id: uuid.UUID
    name: str
    kind: str
    status: str = Field(description="draft, scheduled, active, paused or ended, now.")
    budget_points: int
    points_granted: int
    points_reversed: int = Field(description="Taken back by refunds into the budget; net = granted - reversed.")
    packet_points: int = Field(default=0, description="Put into red packets from the budget.")
    packet_points_returned: int = Field(default=0, description="What nobody grabbed of them, back in the budget.")
    grants_count: int
    quantity_cap: int | None
    per_member_cap: int | None
    segment_id: uuid.UUID | None
    holdout_share: Decimal
    versions: list[VersionOut]

    @classmethod
    def of(cls, a: Activity, now: datetime) -> "ActivityOut":
        return cls(
            activity_id=a.activity_id, name=a.name, kind=a.kind.value, status=a.status(now),
            budget_points=a.budget_points, points_granted=a.points_granted, points_reversed=a.points_reversed,
            packet_points=a.packet_points, packet_points_returned=a.packet_points_returned,
            grants_count=a.grants_count,
            quantity_cap=a.quantity_cap, per_member_cap=a.per_member_cap, segment_id=a.segment_id,
            holdout_share=a.holdout_share,
            versions=[
                VersionOut(version=v.version, effective_from=v.effective_from, state=v.state.value,
                           rules=v.rules.to_json(), window_start=v.window_start, window_end=v.window_end,
                           changed_by=v.changed_by)
                for v in sorted(a.versions, key=lambda v: v.version)
            ],
        )  # fmt: skip


class ClaimIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    claim_id: uuid.UUID = Field(default_factory=uuid.uuid4, description="Send the same id again to retry safely.")
    attribution: AttributionIn | None = Field(
        default=None, description="Where the claim came from (channel, branch, staff, campaign, a share link's code)."
    )


class ClaimOut(BaseModel):
    activity_id: uuid.UUID
    points: int


class MemberActivityOut(BaseModel):
    activity_id: uuid.UUID
    name: str
    points: int = Field(description="What a claim grants now; for a claimed activity, what the claim granted.")
    ends_at: datetime | None = Field(description="When the activity ends (ended), as planned now.")
    claimed: bool


class MemberActivitiesOut(BaseModel):
    items: list[MemberActivityOut]


class ReferrerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    referrer_member_id: uuid.UUID


def router(
    store: Callable[[], PointsStore],
    events: LedgerEventWriter,
    authenticate: Callable[..., Principal],
    lot_validity: timedelta,
    clock: Callable[[], datetime],
) -> APIRouter:
    api = APIRouter(tags=["activities"])
    Caller = Annotated[Principal, Depends(authenticate)]
    Store = Annotated[PointsStore, Depends(store)]

    def ops(caller: Principal) -> str:
        require_ops(caller)
        return caller.subject

    @api.post("/v1/ops/activities", status_code=status.HTTP_201_CREATED, response_model=ActivityOut)
    async def create(body: ActivityIn, caller: Caller, points: Store) -> ActivityOut:
        """A draft activity; its budget moves from the programme account to the activity's at once."""
        made = await handle.create_activity(
            points, events, name=body.name, kind=body.kind, rules=body.rules.to_rules(),
            budget_points=body.budget_points, by=ops(caller), quantity_cap=body.quantity_cap,
            per_member_cap=body.per_member_cap, segment_id=body.segment_id, holdout_share=body.holdout_share,
        )  # fmt: skip
        return ActivityOut.of(made, clock())

    @api.get("/v1/ops/activities", response_model=list[ActivityOut])
    async def list_all(caller: Caller, points: Store, limit: Annotated[int, Query(ge=1, le=200)] = 50) -> Any:
        ops(caller)
        return [ActivityOut.of(a, clock()) for a in await handle.read_activities(points, None, limit)]

    @api.get("/v1/ops/activities/{activity_id}", response_model=ActivityOut)
    async def read(activity_id: uuid.UUID, caller: Caller, points: Store) -> ActivityOut:
        ops(caller)
        found = await handle.read_activities(points, activity_id, 1)
        if not found:
            raise handle.ActivityNotFoundError(activity_id)
        return ActivityOut.of(found[0], clock())

    @api.post("/v1/ops/activities/{activity_id}/schedule", response_model=ActivityOut)
    async def schedule(activity_id: uuid.UUID, body: WindowIn, caller: Caller, points: Store) -> ActivityOut:
        """Run it from starts_at to ends_at (UTC); its targets are decided now."""
        changed = await handle.change_lifecycle(
            points, activity_id, "schedule", ops(caller), starts_at=body.starts_at, ends_at=body.ends_at
        )
        return ActivityOut.of(changed, clock())

    @api.post("/v1/ops/activities/{activity_id}/activate", response_model=ActivityOut)
    async def activate(activity_id: uuid.UUID, body: ActivateIn, caller: Caller, points: Store) -> ActivityOut:
        """Start (or resume) now."""
        changed = await handle.change_lifecycle(points, activity_id, "activate", ops(caller), ends_at=body.ends_at)
        return ActivityOut.of(changed, clock())

    @api.post("/v1/ops/activities/{activity_id}/pause", response_model=ActivityOut)
    async def pause(activity_id: uuid.UUID, caller: Caller, points: Store) -> ActivityOut:
        return ActivityOut.of(await handle.change_lifecycle(points, activity_id, "pause", ops(caller)), clock())

    @api.post("/v1/ops/activities/{activity_id}/end", response_model=ActivityOut)
    async def end(activity_id: uuid.UUID, caller: Caller, points: Store) -> ActivityOut:
        return ActivityOut.of(await handle.change_lifecycle(points, activity_id, "end", ops(caller)), clock())

    @api.post("/v1/ops/activities/{activity_id}/revisions", response_model=ActivityOut)
    async def revise(activity_id: uuid.UUID, body: RevisionIn, caller: Caller, points: Store) -> ActivityOut:
        """New rules from now on; what happened before keeps the rules it was judged by."""
        changed = await handle.change_lifecycle(points, activity_id, "revise", ops(caller), rules=body.rules.to_rules())
        return ActivityOut.of(changed, clock())

    @api.post("/v1/ops/activities/{activity_id}/budget", response_model=ActivityOut)
    async def budget(activity_id: uuid.UUID, body: BudgetIn, caller: Caller, points: Store) -> ActivityOut:
        ops(caller)
        return ActivityOut.of(await handle.add_budget(points, events, activity_id, body.add_points), clock())

    @api.post(
        "/v1/members/{member_id}/activities/{activity_id}/claims",
        status_code=status.HTTP_201_CREATED,
        response_model=ClaimOut,
        tags=["members"],
    )
    async def claim(
        member_id: str, activity_id: uuid.UUID, body: ClaimIn, caller: Caller, points: Store, response: Response
    ) -> ClaimOut:
        """Claim a limited give-away ("the first 1,000 members to claim get 100 points")."""
        member = resolve_member(caller, member_id)
        attribution = body.attribution.to_domain() if body.attribution is not None else None
        await check_attribution(AttributionStore(points.pool), attribution)
        memo = attribution.to_memo() if attribution is not None and not attribution.empty else None
        granted, new = await handle.claim(points, events, activity_id, member, body.claim_id, lot_validity, memo)
        if not new:
            response.status_code = status.HTTP_200_OK
        return ClaimOut(activity_id=activity_id, points=granted)

    @api.get(
        "/v1/members/{member_id}/activities",
        response_model=MemberActivitiesOut,
        tags=["members"],
        responses={
            401: {"description": "No valid bearer token."},
            403: {"description": "A member asking about another member, or a partner's staff."},
            404: {"description": "No such member."},
            422: {"description": "The member reference is neither a member id nor `me` (for a member)."},
        },
    )
    async def member_activities(member_id: str, caller: Caller, points: Store) -> MemberActivitiesOut:
        """Limited give-aways the member can claim now, soonest end first: active, offered to it (among the
        activity's targets and not held out), not claimed by it yet, with quantity and budget left for a whole
        claim (the rules a claim is judged by). Then those it claimed, newest first, with `claimed` true."""
        items = await handle_queries.member_activities(points, resolve_member(caller, member_id), clock(), lot_validity)
        return MemberActivitiesOut.model_validate({"items": items})

    @api.put("/v1/members/{member_id}/referrer", status_code=status.HTTP_201_CREATED, tags=["members"])
    async def referrer(member_id: str, body: ReferrerIn, caller: Caller, points: Store) -> dict[str, str]:
        """Name the member who invited you, before your first purchase; they get a bonus when you make it."""
        member = resolve_member(caller, member_id)
        recorded = await handle.set_referrer(points, member, body.referrer_member_id)
        return {"member_id": str(member), "referrer_member_id": str(recorded)}

    return api
