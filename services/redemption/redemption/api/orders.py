"""Members order rewards and follow their orders; ops may read any order."""

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from contracts.ids import ExternalRef, PartnerId
from loyalty_runtime.auth import Principal, Role, require_member_access
from redemption.adapters.orders_store import OrdersStore
from redemption.domain.orders import voucher_to_show
from redemption.handlers.orders import Saga, place_order
from redemption.handlers.queries import BadCursorError, member_orders, order_view


class OrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    partner_id: PartnerId
    offer_id: ExternalRef
    quantity: int = Field(default=1, ge=1, le=100)
    idempotency_key: str = Field(min_length=1, max_length=128, description="Same key, same order: retry safely.")


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
    voucher_code: str | None = Field(default=None, description="A voucher's code, once the order is fulfilled.")
    partner_reference: str | None = None
    cancel_reason: str | None = Field(default=None, description="Why it was cancelled or its payment failed.")
    created_at: datetime | None = None
    updated_at: datetime | None = None


class OrdersPage(BaseModel):
    items: list[OrderOut]
    next_cursor: str | None


def router(store: Callable[[], OrdersStore], saga: Saga, authenticate: Callable[..., Principal]) -> APIRouter:
    api = APIRouter(prefix="/v1/orders", tags=["orders"])
    Caller = Annotated[Principal, Depends(authenticate)]
    Store = Annotated[OrdersStore, Depends(store)]

    @api.post("", status_code=status.HTTP_202_ACCEPTED, response_model=OrderOut)
    async def post_order(body: OrderIn, caller: Caller, orders: Store, response: Response) -> OrderOut:
        """Order a reward with points. The answer comes at once; follow the order's state with GET."""
        if caller.role is not Role.MEMBER:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "orders are placed by members with their own token")
        order, created = await place_order(
            orders, saga, uuid.UUID(caller.subject), body.partner_id, body.offer_id, body.quantity,
            body.idempotency_key,
        )  # fmt: skip
        if not created:
            response.status_code = status.HTTP_200_OK
        voucher_code = voucher_to_show(order.state, order.voucher_code)
        return OrderOut(
            **{**order.__dict__, "points": order.points, "state": order.state.value, "voucher_code": voucher_code}
        )

    @api.get("/{order_id}", response_model=OrderOut, responses={404: {"description": "No such order."}})
    async def get_order(order_id: uuid.UUID, caller: Caller, orders: Store) -> dict[str, Any]:
        found = await order_view(orders, order_id)
        if found is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"order {order_id} does not exist")
        require_member_access(caller, found["member_id"])
        return found

    @api.get("", response_model=OrdersPage)
    async def list_orders(
        caller: Caller,
        orders: Store,
        member_id: uuid.UUID | None = None,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> dict[str, Any]:
        """The caller's orders, newest first (ops: name the member)."""
        if member_id is None:
            if caller.role is not Role.MEMBER:
                raise HTTPException(status.HTTP_400_BAD_REQUEST, "ops must name the member: ?member_id=")
            member_id = uuid.UUID(caller.subject)
        require_member_access(caller, member_id)
        try:
            items, next_cursor = await member_orders(orders, member_id, cursor, limit)
        except BadCursorError as error:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(error)) from error
        return {"items": items, "next_cursor": next_cursor}

    return api
