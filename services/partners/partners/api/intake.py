"""Partners post their customers' purchases and refunds here, one at a time or in batches, signed."""

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.exceptions import RequestValidationError
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from contracts.ids import Category, ExternalRef
from contracts.money import Currency
from partners.api.errors import MalformedBodyError, refused_items, status_of
from partners.api.signed import SignedCall, signed_partner
from partners.domain.intake import BatchRefusedError, PurchaseReport, RefundReport
from partners.handlers.authentication import PartnerAuthenticator
from partners.handlers.intake import (
    ContractLookup,
    EventPublisher,
    IntakeLog,
    Recorded,
    record_purchases,
    record_refunds,
)

MAX_BATCH = 1000
Model = TypeVar("Model", bound=BaseModel)

IdempotencyKey = Annotated[
    str,
    Field(
        min_length=1,
        max_length=128,
        description="Names this purchase or refund for good: resend the same body under it to retry safely; "
        "a new purchase or refund needs a new key.",
    ),
]
AmountMinor = Annotated[
    int, Field(strict=True, gt=0, le=10**13, description="Amount in minor units of `currency`, an integer.")
]


class PurchaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    idempotency_key: IdempotencyKey
    customer_ref: ExternalRef
    purchase_id: ExternalRef
    amount_minor: AmountMinor
    currency: Currency
    category: Category | None = None
    occurred_at: AwareDatetime

    def report(self) -> PurchaseReport:
        return PurchaseReport(**self.model_dump())


class RefundIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    idempotency_key: IdempotencyKey
    customer_ref: ExternalRef
    refund_id: ExternalRef
    purchase_id: ExternalRef = Field(description="The purchase this refund reverses, in part or in full.")
    amount_minor: AmountMinor
    currency: Currency
    occurred_at: AwareDatetime

    def report(self) -> RefundReport:
        return RefundReport(**self.model_dump())


class PurchaseBatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    purchases: list[PurchaseIn] = Field(min_length=1, max_length=MAX_BATCH)


class RefundBatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refunds: list[RefundIn] = Field(min_length=1, max_length=MAX_BATCH)


class PurchaseAccepted(BaseModel):
    event_id: uuid.UUID
    points: int
    status: str = "accepted"


class RefundAccepted(BaseModel):
    event_id: uuid.UUID
    status: str = "accepted"


class AcceptedPurchase(BaseModel):
    idempotency_key: str
    event_id: uuid.UUID
    points: int


class AcceptedRefund(BaseModel):
    idempotency_key: str
    event_id: uuid.UUID


class PurchasesAccepted(BaseModel):
    accepted: list[AcceptedPurchase]


class RefundsAccepted(BaseModel):
    accepted: list[AcceptedRefund]


_ADAPTERS: dict[type[BaseModel], TypeAdapter[Any]] = {}


def parse(model: type[Model], body: bytes) -> Model:
    """Validate the signed bytes themselves (the body was read once, to check its signature)."""
    adapter = _ADAPTERS.setdefault(model, TypeAdapter(model))
    try:
        parsed: Model = adapter.validate_json(body)
    except ValidationError as error:
        problems = error.errors(include_url=False)
        if any(p["type"] == "json_invalid" for p in problems):
            raise MalformedBodyError(str(problems[0].get("ctx", {}).get("error", "invalid JSON"))) from error
        raise RequestValidationError([{**p, "loc": ("body", *p["loc"])} for p in problems]) from error
    return parsed


def documented(item: type[BaseModel], items_field: str | None = None) -> dict[str, Any]:
    """The body is read by hand (its signature is checked first), so its schema is declared here for /docs."""
    schema = item.model_json_schema()
    if items_field is not None:
        schema = {
            "type": "object",
            "properties": {items_field: {"type": "array", "items": schema, "minItems": 1, "maxItems": MAX_BATCH}},
            "required": [items_field],
            "additionalProperties": False,
        }
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


SIGNED_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "The body is not JSON."},
    401: {"description": "Missing, unknown, revoked or wrong signature, or a timestamp outside the window."},
    403: {"description": "The key belongs to another partner."},
    409: {
        "description": "This signature was already used (replayed request), or an idempotency_key, purchase_id or "
        "refund_id was already accepted with another body or key; in a batch, nothing was accepted."
    },
    413: {"description": "The body is larger than 1 MiB."},
    422: {"description": "Refused with the reason; in a batch, nothing was accepted."},
    503: {"description": "Not accepted; retry with the same idempotency keys and bodies."},
}


def router(
    publisher: EventPublisher,
    contracts: ContractLookup,
    log: IntakeLog,
    authenticator: PartnerAuthenticator,
    clock: Callable[[], datetime],
) -> APIRouter:
    api = APIRouter(prefix="/v1/partners/{partner_id}", tags=["intake"])
    Signed = Annotated[SignedCall, Depends(signed_partner(authenticator))]

    async def purchases(call: SignedCall, items: list[PurchaseIn], items_field: str | None) -> list[Recorded]:
        reports = [item.report() for item in items]
        try:
            return await record_purchases(publisher, contracts, log, call.partner_id, reports, clock())
        except BatchRefusedError as error:
            raise HTTPException(status_of(error), refused_items(error, items_field)) from error

    async def refunds(call: SignedCall, items: list[RefundIn], items_field: str | None) -> list[Recorded]:
        reports = [item.report() for item in items]
        try:
            return await record_refunds(publisher, contracts, log, call.partner_id, reports, clock())
        except BatchRefusedError as error:
            raise HTTPException(status_of(error), refused_items(error, items_field)) from error

    @api.post(
        "/purchases",
        status_code=status.HTTP_202_ACCEPTED,
        responses=SIGNED_RESPONSES,
        openapi_extra=documented(PurchaseIn),
    )
    async def post_purchase(call: Signed) -> PurchaseAccepted:
        """Record one purchase with the points its contract earns. Answered once Kafka confirmed the event."""
        [done] = await purchases(call, [parse(PurchaseIn, call.body)], None)
        return PurchaseAccepted(event_id=done.event_id, points=done.points)

    @api.post(
        "/purchases/batch",
        status_code=status.HTTP_202_ACCEPTED,
        responses=SIGNED_RESPONSES,
        openapi_extra=documented(PurchaseIn, "purchases"),
    )
    async def post_purchases(call: Signed) -> PurchasesAccepted:
        """Record 1 to 1000 purchases, all or none."""
        batch = parse(PurchaseBatchIn, call.body)
        done = await purchases(call, batch.purchases, "purchases")
        return PurchasesAccepted(
            accepted=[
                AcceptedPurchase(idempotency_key=d.idempotency_key, event_id=d.event_id, points=d.points) for d in done
            ]
        )

    @api.post(
        "/refunds", status_code=status.HTTP_202_ACCEPTED, responses=SIGNED_RESPONSES, openapi_extra=documented(RefundIn)
    )
    async def post_refund(call: Signed) -> RefundAccepted:
        """Record one refund; the ledger reverses the purchase's points in proportion to the amount."""
        [done] = await refunds(call, [parse(RefundIn, call.body)], None)
        return RefundAccepted(event_id=done.event_id)

    @api.post(
        "/refunds/batch",
        status_code=status.HTTP_202_ACCEPTED,
        responses=SIGNED_RESPONSES,
        openapi_extra=documented(RefundIn, "refunds"),
    )
    async def post_refunds(call: Signed) -> RefundsAccepted:
        """Record 1 to 1000 refunds, all or none."""
        batch = parse(RefundBatchIn, call.body)
        done = await refunds(call, batch.refunds, "refunds")
        return RefundsAccepted(
            accepted=[AcceptedRefund(idempotency_key=d.idempotency_key, event_id=d.event_id) for d in done]
        )

    return api
