"""The bodies partners receive, one model per event type (documented in the partners API's OpenAPI `webhooks`).

Every body is `{"type": ..., "timestamp": ..., "data": {...}}`, as Standard Webhooks recommend; `data` holds
no member's personal data (no member ids, no names): what the partner needs to act, and ids to look it up.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from partners.domain.webhooks import EventType


class Data(BaseModel):
    model_config = ConfigDict(frozen=True)


class StatementTotals(Data):
    currency: str
    issue_amount_minor: int = Field(description="What the partner pays for the points it issued.")
    redemption_amount_minor: int = Field(description="What the partner is paid for points redeemed with it.")
    breakage_rebate_minor: int
    net_minor: int = Field(description="Positive: the programme pays the partner; negative: the partner pays.")


class StatementFinalised(Data):
    partner_id: str
    period: str = Field(description="The month, YYYY-MM.")
    period_start: datetime
    period_end: datetime = Field(description="Exclusive.")
    finalised_at: datetime
    points_issued: int
    points_redeemed: int
    breakage_points: int
    totals: list[StatementTotals] = Field(description="One per currency.")
    statement_path: str = Field(description="Where the full statement is read (GET, signed or with a staff token).")


class Order(Data):
    order_id: uuid.UUID
    partner_id: str
    offer_id: str
    quantity: int
    points: int = Field(description="What the order costs the member in total.")


class PurchaseRefused(Data):
    partner_id: str
    kind: Literal["purchase", "refund"]
    purchase_id: str
    refund_id: str | None
    customer_ref: str
    amount_minor: int
    currency: str
    reason: str = Field(description="Why the ledger refused it. Ops may apply it again once the cause is fixed.")


class OfferOutOfStock(Data):
    partner_id: str
    offer_id: str
    stock: int
    units_reserved: int
    units_sold: int


D = TypeVar("D", bound=Data)


class Body(BaseModel, Generic[D]):
    """The JSON body of a webhook; its `webhook-id` header is the message id (the same for retries and replays)."""

    type: str = Field(description="The event type, e.g. statement.finalised.")
    timestamp: datetime = Field(description="When the fact happened.")
    data: D


class StatementFinalisedBody(Body[StatementFinalised]):
    type: Literal["statement.finalised"] = "statement.finalised"


class OrderPlacedBody(Body[Order]):
    type: Literal["order.placed"] = "order.placed"


class OrderSettledBody(Body[Order]):
    type: Literal["order.settled"] = "order.settled"


class PurchaseRefusedBody(Body[PurchaseRefused]):
    type: Literal["purchase.refused"] = "purchase.refused"


class OfferOutOfStockBody(Body[OfferOutOfStock]):
    type: Literal["offer.out_of_stock"] = "offer.out_of_stock"


BODIES: dict[EventType, type[Body[D]]] = {  # type: ignore[valid-type]
    EventType.STATEMENT_FINALISED: StatementFinalisedBody,
    EventType.ORDER_PLACED: OrderPlacedBody,
    EventType.ORDER_SETTLED: OrderSettledBody,
    EventType.PURCHASE_REFUSED: PurchaseRefusedBody,
    EventType.OFFER_OUT_OF_STOCK: OfferOutOfStockBody,
}


def message_id(source: str) -> str:
    """The webhook-id of the message that tells the fact `source` (stable, so a repeated fact is one message)."""
    return "msg_" + uuid.uuid5(uuid.NAMESPACE_URL, f"loyalty-webhooks:{source}").hex
