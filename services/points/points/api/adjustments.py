"""Ops adjustments of members' points, under four eyes above the approval threshold (domain/adjustments.py)."""

import base64
import datetime as dt
import uuid
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from loyalty_runtime.auth import Principal, require_ops
from points.adapters import adjustments_store
from points.domain import adjustments as rules
from points.domain.adjustments import Adjustment, Direction, Reason, Status
from points.handlers import adjustments as handle
from points.handlers.adjustments import AdjustmentIdReusedError, AdjustmentNotFoundError, Adjustments

ERRORS: dict[type[Exception], int] = {
    rules.AdjustmentRuleError: status.HTTP_422_UNPROCESSABLE_CONTENT,
    rules.SameOpsUserError: status.HTTP_403_FORBIDDEN,
    rules.AlreadyDecidedError: status.HTTP_409_CONFLICT,
    AdjustmentIdReusedError: status.HTTP_409_CONFLICT,
    AdjustmentNotFoundError: status.HTTP_404_NOT_FOUND,
}
"""The statuses of the handlers' refusals, mapped in app.py (NotEnoughPointsError: `install`)."""

MAX_PAGE = 200
FAR_FUTURE = (dt.datetime(9999, 1, 1, tzinfo=dt.UTC), uuid.UUID(int=(1 << 128) - 1))

RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No valid bearer token."},
    403: {"description": "Not an ops token; or (approve, reject) the ops user who requested it: four eyes."},
}


class AdjustmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    adjustment_id: uuid.UUID = Field(description="Chosen by the client: the same id and body again requests it once.")
    member_id: uuid.UUID
    direction: Literal["credit", "debit"]
    points: int = Field(gt=0, le=rules.MAX_POINTS)
    reason: Reason = Field(description="goodwill, service_recovery, correction, fraud_reversal, migration_fix, other.")
    note: str = Field(min_length=1, max_length=rules.MAX_NOTE, description="Why: required, read by the auditors.")


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(default=None, max_length=rules.MAX_NOTE)


class AdjustmentOut(BaseModel):
    adjustment_id: uuid.UUID
    member_id: uuid.UUID
    direction: Direction
    points: int
    reason: Reason
    note: str
    status: Status
    needs_approval: bool = Field(description="Above its threshold: a second ops user approves it before it posts.")
    threshold: int = Field(description="The approval threshold in force when it was requested.")
    requested_by: str
    requested_at: dt.datetime
    decided_by: str | None
    decided_at: dt.datetime | None
    decision_note: str | None
    posted_at: dt.datetime | None
    transfer_id: uuid.UUID | None

    @classmethod
    def of(cls, a: Adjustment) -> "AdjustmentOut":
        return cls(**{k: v for k, v in vars(a).items()}, needs_approval=a.needs_approval)


class AdjustmentPage(BaseModel):
    items: list[AdjustmentOut]
    next_before: str | None = Field(description="Pass as `before` for the next (older) page; null on the last.")
    threshold: int = Field(description="The approval threshold now: adjustments above it wait for a second ops user.")


def _cursor(a: Adjustment) -> str:
    return base64.urlsafe_b64encode(f"{a.requested_at.isoformat()}|{a.adjustment_id}".encode()).decode()


def _after_cursor(text: str | None) -> tuple[dt.datetime, uuid.UUID]:
    if text is None:
        return FAR_FUTURE
    try:
        at, _, ident = base64.urlsafe_b64decode(text.encode()).decode().partition("|")
        return dt.datetime.fromisoformat(at), uuid.UUID(ident)
    except ValueError:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "bad `before`: pass a next_before as answered") from None


def router(
    adjustments: Callable[[], Adjustments], authenticate: Callable[..., Principal], clock: Callable[[], dt.datetime]
) -> APIRouter:
    api = APIRouter(prefix="/v1/ops/adjustments", tags=["adjustments"], responses=RESPONSES)
    Caller = Annotated[Principal, Depends(authenticate)]
    Deps = Annotated[Adjustments, Depends(adjustments)]

    @api.post("", status_code=status.HTTP_201_CREATED,
              responses={200: {"description": "The same adjustment_id and body again: the adjustment as it is."},
                         404: {"description": "No such member."},
                         409: {"description": "adjustment_id used for another request; or a debit beyond the "
                                              "member's available points (`available` says how many)."},
                         422: {"description": "Points out of range, no note, an unknown reason."}})  # fmt: skip
    async def request(body: AdjustmentIn, caller: Caller, deps: Deps, response: Response) -> AdjustmentOut:
        """Credit or debit a member. At or below the approval threshold it posts at once (`posted`); above it,
        it waits (`pending`) for a second ops user to approve it."""
        ops = require_ops(caller)
        ask = rules.Request(body.adjustment_id, body.member_id, Direction(body.direction), body.points, body.reason,
                            body.note)  # fmt: skip
        done = await handle.request(deps, ask, ops, clock())
        if not done.new:
            response.status_code = status.HTTP_200_OK
        return AdjustmentOut.of(done.adjustment)

    @api.get("")
    async def list_adjustments(
        caller: Caller,
        deps: Deps,
        status_: Annotated[Status | None, Query(alias="status")] = None,
        member_id: uuid.UUID | None = None,
        before: Annotated[str | None, Query(max_length=200)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    ) -> AdjustmentPage:
        """Adjustments newest first: `status=pending` for those waiting for a second ops user."""
        require_ops(caller)
        found = await adjustments_store.page(deps.store.pool, status_, member_id, _after_cursor(before), limit)
        more = len(found) == limit
        return AdjustmentPage(items=[AdjustmentOut.of(a) for a in found],
                              next_before=_cursor(found[-1]) if more else None, threshold=deps.threshold)  # fmt: skip

    @api.get("/{adjustment_id}", responses={404: {"description": "No such adjustment."}})
    async def show(adjustment_id: uuid.UUID, caller: Caller, deps: Deps) -> AdjustmentOut:
        require_ops(caller)
        found = await adjustments_store.get(deps.store.pool, adjustment_id)
        if found is None:
            raise AdjustmentNotFoundError(adjustment_id)
        return AdjustmentOut.of(found)

    @api.post("/{adjustment_id}/approve",
              responses={404: {"description": "No such adjustment."},
                         409: {"description": "Decided already; or a debit beyond the member's available points now "
                                              "(`available`): it stays pending."}})  # fmt: skip
    async def approve(
        adjustment_id: uuid.UUID, caller: Caller, deps: Deps, body: DecisionIn | None = None
    ) -> AdjustmentOut:
        """A second ops user (not the requester) approves a pending adjustment: it posts now. Of two approvers at
        once, one posts it and the other is answered 409. Repeated by its approver, it answers the adjustment."""
        done = await handle.approve(deps, adjustment_id, require_ops(caller), clock(), body.note if body else None)
        return AdjustmentOut.of(done.adjustment)

    @api.post(
        "/{adjustment_id}/reject",
        responses={404: {"description": "No such adjustment."}, 409: {"description": "Decided already."}},
    )
    async def reject(
        adjustment_id: uuid.UUID, caller: Caller, deps: Deps, body: DecisionIn | None = None
    ) -> AdjustmentOut:
        """A second ops user (not the requester) rejects a pending adjustment: nothing moves."""
        done = await handle.reject(deps, adjustment_id, require_ops(caller), clock(), body.note if body else None)
        return AdjustmentOut.of(done.adjustment)

    return api


async def _not_enough(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, rules.NotEnoughPointsError)
    return JSONResponse({"detail": str(error), "available": error.available, "wanted": error.wanted},
                        status_code=status.HTTP_409_CONFLICT)  # fmt: skip


def install(app: FastAPI) -> None:
    """A debit beyond the member's points answers 409 with the available figure beside the message."""
    app.add_exception_handler(rules.NotEnoughPointsError, _not_enough)
