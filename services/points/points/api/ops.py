"""Ops tools of the points service: expiry runs, card earn rates, and link codes (ops and the card system)."""

import datetime as dt
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contracts.ids import MerchantCategoryCode
from loyalty_runtime.auth import Principal, require_ops
from points.adapters.store import PointsStore
from points.api.members import IdentifierRef
from points.handlers.cards import add_card_rate, list_card_rates
from points.handlers.expiry import ExpiryOutcome
from points.handlers.link_codes import issue_link_code


class ExpiryRun(BaseModel):
    lots_expired: int
    points_expired: int


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
    run_expiry: Callable[[], Awaitable[ExpiryOutcome]],
    authenticate: Callable[..., Principal],
    link_code_ttl: dt.timedelta,
) -> APIRouter:
    api = APIRouter(prefix="/v1/ops", tags=["ops"])
    Caller = Annotated[Principal, Depends(authenticate)]
    Store = Annotated[PointsStore, Depends(store)]

    @api.post("/expiry-runs", response_model=ExpiryRun)
    async def post_expiry_run(caller: Caller) -> ExpiryRun:
        """Expire due lots now instead of waiting for the next scheduled run."""
        require_ops(caller)
        outcome = await run_expiry()
        return ExpiryRun(lots_expired=outcome.lots, points_expired=outcome.points)

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
