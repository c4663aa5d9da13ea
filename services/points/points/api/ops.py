"""Ops tools of the points service: expiry runs, card earn rates, link codes (ops and the card system), finding
members and the programme's summary."""

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contracts.ids import MerchantCategoryCode
from loyalty_runtime.auth import Principal, require_ops
from points.adapters.store import PointsStore
from points.api.members import IdentifierRef
from points.handlers import queries
from points.handlers.cards import add_card_rate, list_card_rates
from points.handlers.expiry import ExpiryOutcome
from points.handlers.expiry_runs import expiry_runs, requested_by_ops
from points.handlers.link_codes import issue_link_code

OPS_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No valid bearer token."},
    403: {"description": "Not an ops token (members and partners' staff have their own reads)."},
}


class ExpiryRun(BaseModel):
    lots_expired: int
    points_expired: int


class ExpiryRunOut(BaseModel):
    run_id: int
    started_at: dt.datetime
    finished_at: dt.datetime
    lots_expired: int
    points_expired: int
    requested_by: str = Field(description="`scheduler`, or `ops:<subject>` for a run ops asked for.")


class ExpiryRunsOut(BaseModel):
    items: list[ExpiryRunOut]


class MemberHit(BaseModel):
    member_id: uuid.UUID
    display_name: str
    created_at: dt.datetime
    available: int = Field(description="Points the member can spend now (posted minus held).")
    identifiers: list[str] = Field(description="Linked identifiers: `card:<token>`, `partner:<partner>:<ref>`.")


class MemberHits(BaseModel):
    items: list[MemberHit]


class MemberCounts(BaseModel):
    total: int
    new_today: int
    new_this_month: int


class PointCounts(BaseModel):
    issued_today: int
    issued_this_month: int
    redeemed_today: int
    redeemed_this_month: int
    expired_today: int
    expired_this_month: int
    outstanding: int


class Summary(BaseModel):
    as_of: dt.datetime
    members: MemberCounts
    points: PointCounts


SUMMARY_DEFINITIONS = """The programme at a glance. "Today" and "this month" are the UTC day and month of
`as_of`; points count by when the ledger posted their transfers (an old purchase that arrives today counts today).

- **members**: registered members; new ones by when they were registered.
- **issued**: points credited to members and to unclaimed identifiers (points waiting for their identifier to be
  linked) by partners (`partner:<id>:issued`), the card programme (`card:issued`) and reward activities
  (`activity:<id>:budget`). Not counted: gifts between members, claims of unclaimed points by the member who
  links the identifier, and holds (reserving or releasing points moves none). Gross: refunds that take points
  back do not lower it.
- **redeemed**: points members' holds captured for redemption orders (member to `partner:<id>:redeemed`).
- **expired**: what was left of expired lots, moved to `breakage`.
- **outstanding**: the posted balances of every member and unclaimed identifier now (held points included),
  read as minus the sum of every other account's, the ledger summing to zero.

Each figure is an index range scan of the day's or month's transfers of its kind, whatever the ledger's size.
"""

SEARCH_TEXT = Query(
    max_length=200,
    description="A member id, an identifier (`card:<token>`, `partner:<partner>:<ref>`), a bare card token, "
    "or part of a display name (any case). Omit it for the newest members.",
)


class CardRateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mcc: MerchantCategoryCode | None = Field(default=None, description="Merchant category code; none for the default.")
    valid_from: AwareDatetime
    points_per_unit: Decimal = Field(ge=0, le=1000, max_digits=12, decimal_places=4)


class CardRateOut(BaseModel):
    mcc: str
    valid_from: dt.datetime
    points_per_unit: Decimal


class LinkCodeOut(BaseModel):
    link_code: str = Field(description="Show it to the customer once; only its hash is kept.")
    identifier: str
    expires_at: dt.datetime


def router(
    store: Callable[[], PointsStore],
    run_expiry: Callable[[str], Awaitable[ExpiryOutcome]],
    authenticate: Callable[..., Principal],
    link_code_ttl: dt.timedelta,
    clock: Callable[[], dt.datetime],
) -> APIRouter:
    """`run_expiry(requested_by)` expires due lots and records the run."""
    api = APIRouter(prefix="/v1/ops", tags=["ops"])
    Caller = Annotated[Principal, Depends(authenticate)]
    Store = Annotated[PointsStore, Depends(store)]

    @api.post("/expiry-runs", response_model=ExpiryRun, responses=OPS_RESPONSES)
    async def post_expiry_run(caller: Caller) -> ExpiryRun:
        """Expire due lots now instead of waiting for the next scheduled run; the run is recorded."""
        require_ops(caller)
        outcome = await run_expiry(requested_by_ops(caller.subject))
        return ExpiryRun(lots_expired=outcome.lots, points_expired=outcome.points)

    @api.get("/expiry-runs", response_model=ExpiryRunsOut, responses=OPS_RESPONSES)
    async def get_expiry_runs(
        caller: Caller, points: Store, limit: Annotated[int, Query(ge=1, le=100)] = 20
    ) -> ExpiryRunsOut:
        """Expiry runs, scheduled or asked for, newest first, with what each expired."""
        require_ops(caller)
        return ExpiryRunsOut.model_validate({"items": await expiry_runs(points, limit)})

    @api.get(
        "/members",
        response_model=MemberHits,
        responses={**OPS_RESPONSES, 422: {"description": "`q` longer than 200 characters, or `limit` not 1 to 50."}},
    )
    async def search_members(
        caller: Caller,
        points: Store,
        q: Annotated[str | None, SEARCH_TEXT] = None,
        limit: Annotated[int, Query(ge=1, le=50)] = 20,
    ) -> MemberHits:
        """Find members: exact matches (member id, identifier, card token) first, then names, newest first."""
        require_ops(caller)
        return MemberHits.model_validate({"items": await queries.find_members(points, q, limit)})

    @api.get("/summary", response_model=Summary, responses=OPS_RESPONSES, description=SUMMARY_DEFINITIONS)
    async def get_summary(caller: Caller, points: Store) -> Summary:
        require_ops(caller)
        return Summary.model_validate(await queries.summary(points, clock()))

    @api.get("/card-earn-rates", response_model=list[CardRateOut])
    async def get_card_rates(caller: Caller, points: Store) -> list[CardRateOut]:
        require_ops(caller)
        return [
            CardRateOut(mcc=r.mcc, valid_from=r.valid_from, points_per_unit=r.points_per_unit)
            for r in await list_card_rates(points)
        ]

    @api.post("/card-earn-rates", status_code=status.HTTP_201_CREATED, response_model=CardRateOut)
    async def post_card_rate(body: CardRateIn, caller: Caller, points: Store) -> CardRateOut:
        """A new rate for a merchant category (or the default) from `valid_from` on; earlier spend keeps its rate."""
        require_ops(caller)
        rate = await add_card_rate(points, body.mcc, body.valid_from, body.points_per_unit)
        if rate is None:
            raise HTTPException(status.HTTP_409_CONFLICT, "a rate for this category already starts at that time")
        return CardRateOut(mcc=rate.mcc, valid_from=rate.valid_from, points_per_unit=rate.points_per_unit)

    @api.post("/link-codes", status_code=status.HTTP_201_CREATED, response_model=LinkCodeOut)
    async def post_link_code(body: IdentifierRef, caller: Caller, points: Store) -> LinkCodeOut:
        """A one-time code with which a member links this card token (or customer reference), for the card
        system's app or for ops to hand to the customer. Partners issue theirs through the partners service."""
        require_ops(caller)
        issued = await issue_link_code(points, body.identifier, f"ops:{caller.subject}", link_code_ttl)
        return LinkCodeOut(link_code=issued.link_code, identifier=issued.identifier, expires_at=issued.expires_at)

    return api
