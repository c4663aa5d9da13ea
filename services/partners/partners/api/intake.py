"""Partners post their customers' purchases and refunds here, one at a time or in batches, signed.

A signed request that is refused (its body, the domain's rules, a conflict with what was accepted) is
kept with its reason for the partner's portal (partners.handlers.history); an unsigned one is not.
"""

import json
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.exceptions import RequestValidationError
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from contracts.events.attribution import AttributionId, Channel, ShareCode
from contracts.ids import Category, ExternalRef
from contracts.money import Currency
from partners.api.errors import MalformedBodyError, refused_items, status_of
from partners.api.signed import OPS_STAFF_OR_PARTNER, SignedCall, signed_partner
from partners.domain.intake import AttributionReport, BatchRefusedError, Kind, PurchaseReport, RefundReport
from partners.handlers.authentication import PartnerAuthenticator, SignatureClaim
from partners.handlers.history import IntakeHistory, ItemFacts, RefusedItem, keep_refusals, refusals_of
from partners.handlers.intake import (
    ContractLookup,
    Intake,
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
        pattern=r"^[^\x00-\x1f\x7f]+$",  # no control characters (PostgreSQL text cannot even hold NUL)
        description="Names this purchase or refund for good: resend the same body under it to retry safely; "
        "a new purchase or refund needs a new key. No control characters.",
    ),
]
AmountMinor = Annotated[
    int, Field(strict=True, gt=0, le=10**13, description="Amount in minor units of `currency`, an integer.")
]


class AttributionIn(BaseModel):
    """Where the purchase came from, each part optional: the channel (app, sms, wechat, branch, web, partner), the
    bank's branch and staff member, the campaign, and the code of the share link the customer followed."""

    model_config = ConfigDict(extra="forbid")

    channel: Channel | None = None
    branch_id: AttributionId | None = None
    staff_id: AttributionId | None = None
    campaign_ref: AttributionId | None = None
    share_code: ShareCode | None = None

    def report(self) -> AttributionReport | None:
        said = self.model_dump(exclude_none=True)
        return AttributionReport(**said) if said else None


class PurchaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    idempotency_key: IdempotencyKey
    customer_ref: ExternalRef
    purchase_id: ExternalRef
    amount_minor: AmountMinor
    currency: Currency
    category: Category | None = None
    occurred_at: AwareDatetime
    attribution: AttributionIn | None = Field(
        default=None, description="Where the purchase came from; part of the body a retry must send unchanged."
    )

    def report(self) -> PurchaseReport:
        attribution = self.attribution.report() if self.attribution is not None else None
        return PurchaseReport(**self.model_dump(exclude={"attribution"}), attribution=attribution)


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


PORTAL_RESPONSES: dict[int | str, dict[str, Any]] = {**SIGNED_RESPONSES, **OPS_STAFF_OR_PARTNER}


def refused_body(
    body: bytes, error: RequestValidationError | MalformedBodyError, items_field: str | None
) -> list[RefusedItem]:
    """What a signed body that did not validate said, item by item, each with the reasons it was refused."""
    if isinstance(error, MalformedBodyError):
        return refusals_of([], [(None, error.message)])
    return refusals_of(sniffed_items(body, items_field), [_problem(p, items_field) for p in error.errors()])


def sniffed_items(body: bytes, items_field: str | None) -> list[ItemFacts]:
    """The items of a body that failed validation, as far as they are JSON objects; [] when there is no such list."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return []
    if items_field is None:
        return [ItemFacts.sniff(document) if isinstance(document, dict) else ItemFacts()]
    items = document.get(items_field) if isinstance(document, dict) else None
    if not isinstance(items, list) or not 0 < len(items) <= MAX_BATCH:
        return []
    return [ItemFacts.sniff(item) if isinstance(item, dict) else ItemFacts() for item in items]


def _problem(problem: Mapping[str, Any], items_field: str | None) -> tuple[int | None, str]:
    """(the item it is about, None for the whole request; 'field: message')."""
    loc = list(problem.get("loc", ()))[1:]  # after "body"
    index: int | None = 0 if items_field is None else None
    if items_field is not None and len(loc) >= 2 and loc[0] == items_field and isinstance(loc[1], int):
        index, loc = loc[1], loc[2:]
    where = ".".join(str(part) for part in loc)
    message = str(problem.get("msg", "invalid"))
    return index, f"{where}: {message}" if where else message


def _problems(error: BatchRefusedError) -> list[tuple[int | None, str]]:
    return [(index, problem.message) for index, problem in error.problems]


def router(
    contracts: ContractLookup,
    log: IntakeLog,
    history: IntakeHistory,
    authenticator: PartnerAuthenticator,
    clock: Callable[[], datetime],
) -> APIRouter:
    """Signed requests only: a bearer token, whoever it belongs to, is no signature (401).

    The signature is checked before the body is read, and marked as used with the request's rows
    (record_purchases, record_refunds), or on its own before a refusal is answered.
    """
    api = APIRouter(prefix="/v1/partners/{partner_id}", tags=["intake"])
    Signed = Annotated[SignedCall, Depends(signed_partner(authenticator, claim=False))]
    intake = Intake(contracts, log, authenticator)

    def signature(call: SignedCall) -> SignatureClaim:
        assert call.unclaimed is not None, "signed_partner(claim=False) leaves the signature to the route"
        return call.unclaimed

    async def parsed(call: SignedCall, model: type[Model], kind: Kind, items_field: str | None) -> Model:
        """The signed body as `model`; one that does not validate is kept as refused, then answered."""
        try:
            return parse(model, call.body)
        except (RequestValidationError, MalformedBodyError) as error:
            await authenticator.claim_once(signature(call))
            await keep_refusals(history, call.partner_id, kind, refused_body(call.body, error, items_field))
            raise

    async def refused(call: SignedCall, kind: Kind, facts: list[ItemFacts], error: BatchRefusedError) -> None:
        await keep_refusals(history, call.partner_id, kind, refusals_of(facts, _problems(error)))

    async def purchases(call: SignedCall, items: list[PurchaseIn], items_field: str | None) -> list[Recorded]:
        reports = [item.report() for item in items]
        try:
            return await record_purchases(intake, call.partner_id, signature(call), reports, clock())
        except BatchRefusedError as error:
            await refused(call, "purchase", [ItemFacts.of_purchase(r) for r in reports], error)
            raise HTTPException(status_of(error), refused_items(error, items_field)) from error

    async def refunds(call: SignedCall, items: list[RefundIn], items_field: str | None) -> list[Recorded]:
        reports = [item.report() for item in items]
        try:
            return await record_refunds(intake, call.partner_id, signature(call), reports, clock())
        except BatchRefusedError as error:
            await refused(call, "refund", [ItemFacts.of_refund(r) for r in reports], error)
            raise HTTPException(status_of(error), refused_items(error, items_field)) from error

    @api.post(
        "/purchases",
        status_code=status.HTTP_202_ACCEPTED,
        responses=SIGNED_RESPONSES,
        openapi_extra=documented(PurchaseIn),
    )
    async def post_purchase(call: Signed) -> PurchaseAccepted:
        """Record one purchase with the points its contract earns. Answered once it is recorded with its event."""
        [done] = await purchases(call, [await parsed(call, PurchaseIn, "purchase", None)], None)
        return PurchaseAccepted(event_id=done.event_id, points=done.points)

    @api.post(
        "/purchases/batch",
        status_code=status.HTTP_202_ACCEPTED,
        responses=SIGNED_RESPONSES,
        openapi_extra=documented(PurchaseIn, "purchases"),
    )
    async def post_purchases(call: Signed) -> PurchasesAccepted:
        """Record 1 to 1000 purchases, all or none."""
        batch = await parsed(call, PurchaseBatchIn, "purchase", "purchases")
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
        [done] = await refunds(call, [await parsed(call, RefundIn, "refund", None)], None)
        return RefundAccepted(event_id=done.event_id)

    @api.post(
        "/refunds/batch",
        status_code=status.HTTP_202_ACCEPTED,
        responses=SIGNED_RESPONSES,
        openapi_extra=documented(RefundIn, "refunds"),
    )
    async def post_refunds(call: Signed) -> RefundsAccepted:
        """Record 1 to 1000 refunds, all or none."""
        batch = await parsed(call, RefundBatchIn, "refund", "refunds")
        done = await refunds(call, batch.refunds, "refunds")
        return RefundsAccepted(
            accepted=[AcceptedRefund(idempotency_key=d.idempotency_key, event_id=d.event_id) for d in done]
        )

    return api
