"""Partners post their customers' purchases here."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contracts.ids import Category, ExternalRef, PartnerId
from contracts.money import Currency
from partners.handlers.intake import EventPublisher, EventsUnavailableError, PurchaseReport, record_purchases

UNAVAILABLE = (
    "the event broker did not confirm the purchase, so it was not accepted; "
    "retry with the same idempotency_key (a retry is never counted twice)"
)


class PurchaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    idempotency_key: str = Field(min_length=1, max_length=128, description="Same key, same event: retry safely.")
    customer_ref: ExternalRef
    purchase_id: ExternalRef
    amount_minor: int = Field(gt=0, le=10**13, description="Amount in minor units of `currency`.")
    currency: Currency
    category: Category | None = None
    occurred_at: AwareDatetime


class Accepted(BaseModel):
    event_id: uuid.UUID
    status: str = "accepted"


def router(publisher: EventPublisher) -> APIRouter:
    api = APIRouter(prefix="/v1/partners/{partner_id}", tags=["intake"])

    def get_publisher() -> EventPublisher:
        return publisher

    Publisher = Annotated[EventPublisher, Depends(get_publisher)]

    @api.post(
        "/purchases",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=Accepted,
        responses={503: {"description": "Not accepted; retry with the same idempotency key."}},
    )
    async def post_purchase(
        partner_id: Annotated[PartnerId, Path()], purchase: PurchaseIn, events: Publisher
    ) -> Accepted:
        """Record one purchase. Answered once Kafka confirmed the event."""
        report = PurchaseReport(**purchase.model_dump())
        try:
            [event_id] = await record_purchases(events, partner_id, [report])
        except EventsUnavailableError as error:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, UNAVAILABLE, {"Retry-After": "1"}) from error
        return Accepted(event_id=event_id)

    return api
