"""Ops tools of the points service: expiry runs and card earn rates."""

import datetime as dt
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contracts.ids import MerchantCategoryCode
from loyalty_runtime.auth import Principal, require_ops
from points.adapters.store import PointsStore
from points.handlers.cards import add_card_rate, list_card_rates
from points.handlers.expiry import ExpiryOutcome


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


def router(
    store: Callable[[], PointsStore],
    run_expiry: Callable[[], Awaitable[ExpiryOutcome]],
    authenticate: Callable[..., Principal],
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

    return api
