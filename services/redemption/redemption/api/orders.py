"""Members order rewards and follow their orders; partner staff read the orders placed with their partner; ops any.

Only the member (and ops) see a voucher's code: partner staff see an order's state, never the code.
"""

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from contracts.ids import ExternalRef, PartnerId
from loyalty_runtime.auth import Principal, Role, require_member_access, require_partner_access
from redemption.adapters.orders_store import OrderScope, OrdersStore
from redemption.api.dependencies import on_loop
from redemption.domain.orders import voucher_to_show
from redemption.handlers.orders import Saga, place_order
from redemption.handlers.queries import BadCursorError, StateFilter, list_orders, order_view


class OrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    partner_id: PartnerId
    offer_id: ExternalRef
    quantity: int = Field(default=1, ge=1, le=100)
    idempotency_key: str = Field(min_length=1, max_length=128, description="Same key, same order: retry safely.")
    expected_unit_points: int | None = Field(
        default=None,
        gt=0,
        le=10**9,
        description="The unit price you were shown (the catalog's price_points): if it moved since, the order is "
        "refused with 409 and the price now, instead of being charged another price.",
    )


class OrderOut(BaseModel):
    order_id: uuid.UUID
    member_id: uuid.UUID
    partner_id: str
    offer_id: str
    kind: str
    quantity: int
    points: int
    state: str = Field(
        description="awaiting_hold, fulfilling, capturing, cancelling, fulfilled, cancelled or payment_failed."
    )
    voucher_code: str | None = Field(
        default=None, description="A voucher's code, once the order is fulfilled; shown to the member and ops only."
    )
    partner_reference: str | None = None
    cancel_reason: str | None = Field(default=None, description="Why it was cancelled or its payment failed.")
    created_at: datetime | None = None
    updated_at: datetime | None = None


STATE_FILTER = "One state, or `awaiting_fulfilment`: points held, not yet fulfilled (fulfilling or capturing)."


class OrdersPage(BaseModel):
    items: list[OrderOut]
    next_cursor: str | None


def _scope(caller: Principal, member_id: uuid.UUID | None, partner_id: str | None) -> OrderScope:
    """The orders the caller asks for, once it may see them: 403 for another's, 400 for an unbounded list."""
    if caller.role is Role.MEMBER:
        if partner_id is not None:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "a member lists its own orders: leave out partner_id")
        own = uuid.UUID(caller.subject)
        require_member_access(caller, member_id or own)
        return OrderScope(member_id=own)
    if caller.role is Role.PARTNER:
        partner_id = partner_id or caller.partner_id
    elif member_id is None and partner_id is None:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "ops name a member or a partner: ?member_id= or ?partner_id=")
    if partner_id is not None:
        require_partner_access(caller, partner_id)
    return OrderScope(member_id=member_id, partner_id=partner_id)


def _require_reader(caller: Principal, order: dict[str, Any]) -> None:
    """403 unless the order is the member's own, was placed with the staff's partner, or the caller is ops."""
    if caller.role is Role.PARTNER:
        require_partner_access(caller, order["partner_id"])
    else:
        require_member_access(caller, order["member_id"])


def _shown_to(caller: Principal, order: dict[str, Any]) -> dict[str, Any]:
    """The order as the caller may see it: a voucher's code is the member's, never the partner staff's."""
    return {**order, "voucher_code": None} if caller.role is Role.PARTNER else order


def router(store: Callable[[], OrdersStore], saga: Saga, authenticate: Callable[..., Principal]) -> APIRouter:
    api = APIRouter(prefix="/v1/orders", tags=["orders"])
    Caller = Annotated[Principal, Depends(on_loop(authenticate))]
    Store = Annotated[OrdersStore, Depends(on_loop(store))]

    @api.post("", status_code=status.HTTP_202_ACCEPTED, response_model=OrderOut,
              responses={403: {"description": "Not a member's token."}})  # fmt: skip
    async def post_order(body: OrderIn, caller: Caller, orders: Store) -> Response:
        """Order a reward with points. The answer comes at once; follow the order's state with GET."""
        if caller.role is not Role.MEMBER:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "orders are placed by members with their own token")
        order, created = await place_order(
            orders, saga, uuid.UUID(caller.subject), body.partner_id, body.offer_id, body.quantity,
            body.idempotency_key, body.expected_unit_points,
        )  # fmt: skip
        voucher_code = voucher_to_show(order.state, order.voucher_code)
        shown = OrderOut(
            **{**order.__dict__, "points": order.points, "state": order.state.value, "voucher_code": voucher_code}
        )
        # Serialised here, once: FastAPI would validate the model again against response_model first.
        return Response(
            shown.model_dump_json(), status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK,
            media_type="application/json",
        )  # fmt: skip

    @api.get(
        "/{order_id}", response_model=OrderOut,
        responses={403: {"description": "Another member's order, or one placed with another partner."},
                   404: {"description": "No such order."}},
    )  # fmt: skip
    async def get_order(order_id: uuid.UUID, caller: Caller, orders: Store) -> dict[str, Any]:
        """One order: the member's own, or (partner staff) one placed with their partner, or (ops) any."""
        found = await order_view(orders, order_id)
        if found is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"order {order_id} does not exist")
        _require_reader(caller, found)
        return _shown_to(caller, found)

    @api.get(
        "", response_model=OrdersPage,
        responses={400: {"description": "A cursor this API did not return, or ops named neither member nor partner."},
                   403: {"description": "Another member's orders, or another partner's."}},
    )  # fmt: skip
    async def get_orders(
        caller: Caller,
        orders: Store,
        member_id: uuid.UUID | None = None,
        partner_id: Annotated[PartnerId | None, Query(description="Partner staff: their own (the default).")] = None,
        state: Annotated[StateFilter | None, Query(description=STATE_FILTER)] = None,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> dict[str, Any]:
        """Orders newest first: a member's own; partner staff their partner's; ops name a member or a partner."""
        scope = _scope(caller, member_id, partner_id)
        if state is not None:
            scope = OrderScope(scope.member_id, scope.partner_id, state.states)
        try:
            items, next_cursor = await list_orders(orders, scope, cursor, limit)
        except BadCursorError as error:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(error)) from error
        return {"items": [_shown_to(caller, i) for i in items], "next_cursor": next_cursor}

    return api
