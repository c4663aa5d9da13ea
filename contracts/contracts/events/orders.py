"""The steps of a redemption order, as the redemption service publishes them."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import Field

from contracts.envelope import Contract, Event
from contracts.ids import ExternalRef, PartnerId


class OrderPayload(Contract):
    order_id: uuid.UUID
    member_id: uuid.UUID
    partner_id: PartnerId
    offer_id: ExternalRef
    quantity: int = Field(gt=0)
    points: int = Field(gt=0, description="What the order costs in total.")


class CancelledPayload(OrderPayload):
    reason: str = Field(min_length=1, max_length=64)


class OrderPlaced(Event):
    type: Literal["OrderPlaced"] = "OrderPlaced"
    version: Literal[1] = 1
    payload: OrderPayload


class OrderFulfilled(Event):
    """The partner delivered and the points were captured."""

    type: Literal["OrderFulfilled"] = "OrderFulfilled"
    version: Literal[1] = 1
    payload: OrderPayload


class OrderCancelled(Event):
    """The order ended without delivery; its points were released and its stock returned."""

    type: Literal["OrderCancelled"] = "OrderCancelled"
    version: Literal[1] = 1
    payload: CancelledPayload


class PaymentFailedPayload(OrderPayload):
    reason: str = Field(min_length=1, max_length=64, description="Why the ledger refused the capture.")
    delivered: bool = Field(
        description="Whether the partner delivered before the capture was refused (a product); "
        "a voucher's code is never issued without its capture."
    )


class OrderPaymentFailed(Event):
    """The ledger refused to capture the order's points (its hold had expired or was released).

    No points were taken and the stock was returned; a product the partner delivered was not paid for.
    """

    type: Literal["OrderPaymentFailed"] = "OrderPaymentFailed"
    version: Literal[1] = 1
    payload: PaymentFailedPayload
