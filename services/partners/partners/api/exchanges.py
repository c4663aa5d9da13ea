"""A partner sees the exchanges of alliance points into its programme and confirms or refuses each, once.

- `GET  /v1/partners/{partner_id}/exchanges?status=pending` (the partner signed, its staff, or ops)
- `POST /v1/partners/{partner_id}/exchanges/{exchange_id}/confirm` `{"partner_reference": "..."}`
- `POST /v1/partners/{partner_id}/exchanges/{exchange_id}/refuse` `{"reason": "..."}`

A decision on a decided or expired exchange is answered 409 with `reason` (already_confirmed, already_refused,
expired) and changes nothing. The decision reaches the ledger through the outbox (loyalty.exchange-decisions.v1).
"""

import uuid
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contracts.ids import ExternalRef, PartnerId
from loyalty_runtime.auth import TokenAuthority, principal_dependency
from partners.adapters.exchanges_store import ExchangesStore
from partners.api.errors import MalformedBodyError
from partners.api.signed import OPS_STAFF_OR_PARTNER, PartnerCall, ops_or_signed_partner
from partners.domain.exchanges import (
    Decision,
    DecisionConflictError,
    ExchangeNotFoundError,
    ExchangeRequest,
)
from partners.handlers.authentication import PartnerAuthenticator
from partners.handlers.exchanges import decide_exchange


class ConfirmIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    partner_reference: ExternalRef = Field(description="Your own id of the credit of your units to the member.")


class RefuseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$",
                        examples=["unknown membership number"])  # fmt: skip


class ExchangeOut(BaseModel):
    exchange_id: uuid.UUID
    member_id: uuid.UUID
    membership_number: str = Field(description="Credit the units to this number in your programme.")
    points: int = Field(description="Alliance points the member exchanges (held until you decide).")
    units: int = Field(description="Your units to credit.")
    units_name: str
    units_per_point: Decimal
    requested_at: datetime
    expires_at: datetime = Field(description="Decide before this moment; after it the points go back to the member.")
    status: str = Field(description="pending, confirmed, refused, or expired.")
    partner_reference: str | None
    refuse_reason: str | None
    decided_at: datetime | None
    settled: str | None = Field(description="What the ledger did: captured, released; null until it said.")

    @classmethod
    def of(cls, r: ExchangeRequest, now: datetime) -> "ExchangeOut":
        return cls(exchange_id=r.exchange_id, member_id=r.member_id, membership_number=r.membership_number,
                   points=r.points, units=r.units, units_name=r.units_name, units_per_point=r.units_per_point,
                   requested_at=r.requested_at, expires_at=r.expires_at, status=r.status_at(now).value,
                   partner_reference=r.partner_reference, refuse_reason=r.refuse_reason, decided_at=r.decided_at,
                   settled=r.settled)  # fmt: skip


class ExchangesOut(BaseModel):
    items: list[ExchangeOut]


DECISION_RESPONSES: dict[int | str, dict[str, Any]] = {
    **OPS_STAFF_OR_PARTNER,
    400: {"description": "The body is not JSON."},
    404: {"description": "No such exchange of this partner."},
    409: {"description": "Decided already, or expired: `reason` says which; nothing changed."},
    422: {"description": "A malformed reference or reason."},
}


async def _answer(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, DecisionConflictError | ExchangeNotFoundError)
    code = 409 if isinstance(error, DecisionConflictError) else 404
    return JSONResponse({"detail": error.message, "reason": error.reason}, status_code=code)


def install(app: FastAPI) -> None:
    app.add_exception_handler(DecisionConflictError, _answer)
    app.add_exception_handler(ExchangeNotFoundError, _answer)


Model = TypeVar("Model", bound=BaseModel)


def _body(model: type[Model], raw: bytes) -> Model:
    """The signed body as `model`: 400 when it is not JSON, 422 (FastAPI's format) when it does not fit."""
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as error:
        if any(e["type"] == "json_invalid" for e in error.errors()):
            raise MalformedBodyError("invalid JSON") from error
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in error.errors()]) from error


def router(
    store: ExchangesStore,
    authenticator: PartnerAuthenticator,
    tokens: TokenAuthority,
    topic_prefix: str,
    clock: Callable[[], datetime],
) -> APIRouter:
    api = APIRouter(prefix="/v1/partners/{partner_id}/exchanges", tags=["exchanges"])
    current_principal = principal_dependency(lambda: tokens)
    Caller = Annotated[PartnerCall, Depends(ops_or_signed_partner(authenticator, current_principal))]
    ExchangePath = Annotated[uuid.UUID, Path()]

    @api.get("", response_model=ExchangesOut, responses=OPS_STAFF_OR_PARTNER)
    async def list_exchanges(
        partner_id: Annotated[PartnerId, Path()],
        caller: Caller,
        status: Annotated[Literal["pending", "confirmed", "refused", "expired", "all"], Query()] = "pending",
        limit: Annotated[int, Query(ge=1, le=200)] = 100,
    ) -> ExchangesOut:
        """Exchanges into your programme, newest first; `pending` ones wait for your decision."""
        now = clock()
        return ExchangesOut(
            items=[ExchangeOut.of(r, now) for r in await store.list(caller.partner_id, status, now, limit)]
        )

    async def decided(caller: PartnerCall, exchange_id: uuid.UUID, decision: Decision, said: str) -> ExchangeOut:
        now = clock()
        made = await decide_exchange(store, topic_prefix, caller.partner_id, exchange_id, decision, said,
                                     caller.caller, now)  # fmt: skip
        return ExchangeOut.of(made, now)

    @api.post("/{exchange_id}/confirm", response_model=ExchangeOut, responses=DECISION_RESPONSES)
    async def confirm(exchange_id: ExchangePath, caller: Caller) -> ExchangeOut:
        """You credited the units: the member's points are captured. Once; a second decision is 409."""
        body = _body(ConfirmIn, caller.body)
        return await decided(caller, exchange_id, Decision.CONFIRM, body.partner_reference)

    @api.post("/{exchange_id}/refuse", response_model=ExchangeOut, responses=DECISION_RESPONSES)
    async def refuse(exchange_id: ExchangePath, caller: Caller) -> ExchangeOut:
        """You will not credit the units: the member's points are released. Once; a second decision is 409."""
        body = _body(RefuseIn, caller.body)
        return await decided(caller, exchange_id, Decision.REFUSE, body.reason)

    return api
