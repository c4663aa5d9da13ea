"""Points exchange over HTTP: members exchange points out to partner programmes; ops keep rates and programmes.

- `GET  /v1/exchange-programmes` (any signed-in person): programmes with their terms and the rate in force.
- `POST /v1/members/{member_ref}/exchanges` (the member, or ops for it): hold points for a partner programme.
- `GET  /v1/members/{member_ref}/exchanges`: the member's exchanges, newest first, with their status.
- `GET/POST /v1/ops/card-points-rates`, `GET/PUT /v1/ops/exchange-programmes/{partner_id}`,
  `POST /v1/ops/exchange-programmes/{partner_id}/rates` (ops): dated versions, every change audited.
"""

import datetime as dt
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contracts.ids import ExternalRef, PartnerId
from loyalty_runtime.auth import Principal, require_ops, resolve_member
from points.adapters.exchange_store import ExchangeRow
from points.adapters.store import PointsStore
from points.domain.exchange import DatedRate, ExchangeProgramme, ExchangeRefusedError, rate_at, status_of
from points.handlers import exchange as handlers
from points.handlers.exchange import ExchangeAsk, ExchangeTerms
from points.handlers.ledger_events import LedgerEventWriter

Rate = Annotated[Decimal, Field(gt=0, le=1_000_000, max_digits=16, decimal_places=6)]


class RateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    valid_from: AwareDatetime = Field(description="From this moment on; what happened earlier keeps its rate.")
    rate: Rate


class RateOut(BaseModel):
    valid_from: dt.datetime
    rate: Decimal

    @classmethod
    def of(cls, r: DatedRate) -> "RateOut":
        return cls(valid_from=r.valid_from, rate=r.rate)


class CardPointsRateOut(RateOut):
    """Alliance points per card point."""


class ProgrammeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    units_name: str = Field(min_length=1, max_length=40, pattern=r"^[^\x00-\x1f\x7f]+$", examples=["miles"])
    min_points: int = Field(ge=1, le=10**9)
    step_points: int = Field(ge=1, le=10**9, description="Exchanges are multiples of this many points.")
    daily_limit_points: int = Field(ge=1, le=10**10, description="Per member per programme day.")
    active: bool = True


class ProgrammeOut(BaseModel):
    partner_id: str
    units_name: str
    min_points: int
    step_points: int
    daily_limit_points: int
    active: bool
    rate_in_force: RateOut | None = Field(description="Units per point now; null when no version has started yet.")
    rates: list[RateOut]

    @classmethod
    def of(cls, p: ExchangeProgramme, now: dt.datetime) -> "ProgrammeOut":
        current = rate_at(p.rates, now)
        return cls(partner_id=p.partner_id, units_name=p.units_name, min_points=p.min_points,
                   step_points=p.step_points, daily_limit_points=p.daily_limit_points, active=p.active,
                   rate_in_force=RateOut.of(current) if current else None,
                   rates=[RateOut.of(r) for r in sorted(p.rates, key=lambda r: r.valid_from)])  # fmt: skip


class ExchangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    exchange_id: uuid.UUID = Field(description="Chosen by the caller: resend the same body under it to retry safely.")
    partner_id: PartnerId
    points: int = Field(gt=0, le=10**10)
    membership_number: ExternalRef = Field(description="The member's number in the partner's programme.")


class ExchangeOut(BaseModel):
    exchange_id: uuid.UUID
    partner_id: str
    membership_number: str
    points: int
    units: int
    units_name: str
    units_per_point: Decimal
    status: str = Field(description="pending, captured (the partner confirmed), refused, or expired.")
    requested_at: dt.datetime
    expires_at: dt.datetime
    partner_reference: str | None
    decision_reason: str | None
    settled_at: dt.datetime | None

    @classmethod
    def of(cls, e: ExchangeRow) -> "ExchangeOut":
        return cls(exchange_id=e.exchange_id, partner_id=e.partner_id, membership_number=e.membership_number,
                   points=e.points, units=e.units, units_name=e.units_name, units_per_point=e.units_per_point,
                   status=status_of(e.hold_status, e.void_reason).value, requested_at=e.requested_at,
                   expires_at=e.expires_at, partner_reference=e.partner_reference, decision_reason=e.decision_reason,
                   settled_at=e.settled_at)  # fmt: skip


class ExchangesOut(BaseModel):
    items: list[ExchangeOut]


OPS: dict[int | str, dict[str, Any]] = {401: {"description": "No valid token."}, 403: {"description": "Not ops."}}
REQUEST_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Asked before with this exchange_id and the same body: the exchange as it is now."},
    403: {"description": "A member asking for another member."},
    404: {"description": "No such member, or the partner has no exchange programme."},
    409: {"description": "exchange_id used for another exchange."},
    422: {"description": "Refused by the rules (`reason`: below_minimum, not_a_step, daily_limit, no_rate, "
                         "insufficient_points, programme_closed, below_one_unit) or a malformed body."},
}  # fmt: skip


async def _refused(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ExchangeRefusedError)
    return JSONResponse({"detail": str(error), "reason": error.reason}, status_code=422)


def install(app: FastAPI) -> None:
    """Refused exchanges answer 422 with the message and a `reason` for programs."""
    app.add_exception_handler(ExchangeRefusedError, _refused)


ERRORS: dict[type[Exception], int] = {
    handlers.ExchangeIdReusedError: status.HTTP_409_CONFLICT,
    handlers.NoExchangeProgrammeError: status.HTTP_404_NOT_FOUND,
}


def router(
    store: Callable[[], PointsStore],
    events: LedgerEventWriter,
    authenticate: Callable[..., Principal],
    terms: ExchangeTerms,
    clock: Callable[[], dt.datetime],
) -> APIRouter:
    api = APIRouter(tags=["exchange"])
    Caller = Annotated[Principal, Depends(authenticate)]
    Store = Annotated[PointsStore, Depends(store)]
    MemberRef = Annotated[str, Path(description="A member id, or `me` for the caller's own.")]
    PartnerPath = Annotated[PartnerId, Path()]

    def actor(caller: Principal) -> handlers.Actor:
        return handlers.Actor(require_ops(caller).subject, caller.role.value)

    @api.get("/v1/exchange-programmes", response_model=list[ProgrammeOut])
    async def get_programmes(_caller: Caller, points: Store) -> list[ProgrammeOut]:
        """Partner programmes that take alliance points, their terms and the rate in force now."""
        now = clock()
        return [ProgrammeOut.of(p, now) for p in await handlers.programmes(points)]

    @api.post("/v1/members/{member_ref}/exchanges", status_code=201, response_model=ExchangeOut,
              responses=REQUEST_RESPONSES)  # fmt: skip
    async def post_exchange(
        member_ref: MemberRef, body: ExchangeIn, caller: Caller, points: Store, response: Response
    ) -> ExchangeOut:
        """Hold points for a partner programme; the partner confirms (captured) or refuses (released) it."""
        member_id = resolve_member(caller, member_ref)
        ask = ExchangeAsk(body.exchange_id, member_id, body.partner_id, body.points, body.membership_number)
        row, new = await handlers.request_exchange(points, events, terms, ask, clock())
        if not new:
            response.status_code = status.HTTP_200_OK
        return ExchangeOut.of(row)

    @api.get("/v1/members/{member_ref}/exchanges", response_model=ExchangesOut)
    async def get_exchanges(
        member_ref: MemberRef, caller: Caller, points: Store, limit: Annotated[int, Query(ge=1, le=100)] = 50
    ) -> ExchangesOut:
        rows = await handlers.member_exchanges(points, resolve_member(caller, member_ref), limit)
        return ExchangesOut(items=[ExchangeOut.of(r) for r in rows])

    @api.get("/v1/ops/card-points-rates", response_model=list[CardPointsRateOut], responses=OPS)
    async def get_card_points_rates(caller: Caller, points: Store) -> list[CardPointsRateOut]:
        require_ops(caller)
        return [
            CardPointsRateOut(valid_from=r.valid_from, rate=r.rate) for r in await handlers.card_points_rates(points)
        ]

    @api.post("/v1/ops/card-points-rates", status_code=201, response_model=CardPointsRateOut,
              responses={**OPS, 409: {"description": "A version already starts at that moment."}})  # fmt: skip
    async def post_card_points_rate(body: RateIn, caller: Caller, points: Store) -> CardPointsRateOut:
        """Alliance points per card point from `valid_from` on (a new dated version; audited)."""
        rate = DatedRate(body.valid_from, body.rate)
        if not await handlers.add_card_points_rate(points, rate, actor(caller)):
            raise HTTPException(status.HTTP_409_CONFLICT, "a card-points rate already starts at that moment")
        return CardPointsRateOut(valid_from=rate.valid_from, rate=rate.rate)

    @api.put("/v1/ops/exchange-programmes/{partner_id}", response_model=ProgrammeOut, responses=OPS)
    async def put_programme(partner_id: PartnerPath, body: ProgrammeIn, caller: Caller, points: Store) -> ProgrammeOut:
        """Create or change a partner's exchange programme (audited, with before and after)."""
        who = actor(caller)
        try:
            terms_in = ExchangeProgramme(partner_id, body.units_name, body.min_points, body.step_points,
                                         body.daily_limit_points, (), body.active)  # fmt: skip
        except ExchangeRefusedError as bad:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(bad)) from None
        return ProgrammeOut.of(await handlers.save_programme(points, terms_in, who), clock())

    @api.post("/v1/ops/exchange-programmes/{partner_id}/rates", status_code=201, response_model=RateOut,
              responses={**OPS, 404: {"description": "No programme."}, 409: {"description": "Exists."}})  # fmt: skip
    async def post_exchange_rate(partner_id: PartnerPath, body: RateIn, caller: Caller, points: Store) -> RateOut:
        """Units per point from `valid_from` on (a new dated version; audited)."""
        rate = DatedRate(body.valid_from, body.rate)
        if not await handlers.add_exchange_rate(points, partner_id, rate, actor(caller)):
            raise HTTPException(status.HTTP_409_CONFLICT, "a rate of this programme already starts at that moment")
        return RateOut.of(rate)

    return api
