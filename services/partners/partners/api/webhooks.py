"""Webhook endpoints and their delivery log: a partner's staff (bearer token) or ops; the webhooks themselves,
documented in this API's OpenAPI document under `webhooks`."""

import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response, status
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from contracts import webhooks as wire
from contracts.ids import PartnerId
from contracts.signing import KEY_HEADER
from loyalty_runtime.auth import Principal, ops_dependency
from partners.adapters.webhooks_store import WebhookStore
from partners.api.signed import SignatureNotEnoughError, staff_or_ops
from partners.domain.webhook_messages import BODIES
from partners.domain.webhooks import (
    EVENT_DESCRIPTIONS,
    MAX_URL_LENGTH,
    DeliveryNotFoundError,
    EndpointNotFoundError,
    EventType,
    WebhookError,
)
from partners.handlers import webhooks as handlers

_bearer = HTTPBearer(auto_error=False, description="JWT of ops, or of the staff of the partner in the path.")

SIGNING = f"""Every webhook is a POST of a JSON body signed as Standard Webhooks define it
(https://www.standardwebhooks.com), with the headers `{wire.ID_HEADER}` (the message id: the same for every
retry and replay, so keep it to act once), `{wire.TIMESTAMP_HEADER}` (seconds since the epoch) and
`{wire.SIGNATURE_HEADER}` (`v1,<base64 HMAC-SHA256 of "{{id}}.{{timestamp}}.{{body}}">` with the endpoint's
secret `whsec_...`; two signatures while a rotated secret overlaps). Refuse a timestamp more than
{wire.TOLERANCE_SECONDS} s from your clock. Answer 2xx once stored. Timeouts, connection errors, 5xx, 408, 425
and 429 (`Retry-After` honoured) are retried after about 5 s, 5 min, 30 min, 2 h, 5 h, then every 10 h, for 24 h
from the first attempt; other answers fail the delivery at once (replay it from the portal). An endpoint whose
deliveries failed for a day is disabled and its partner told."""


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=8, max_length=MAX_URL_LENGTH, description="https://... (http only to loopback "
                     "outside production); no private, loopback or link-local address in production.")  # fmt: skip
    event_types: list[EventType] = Field(min_length=1, max_length=len(EventType))
    description: str = Field(default="", max_length=200)
    endpoint_id: uuid.UUID | None = Field(
        default=None, description="Choose it to make a repeated request (a double submit) make one endpoint."
    )


class EndpointChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = None
    event_types: list[EventType] | None = Field(default=None, min_length=1, max_length=len(EventType))
    description: str | None = Field(default=None, max_length=200)


class EndpointOut(BaseModel):
    endpoint_id: uuid.UUID
    partner_id: str
    url: str
    description: str
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None
    disabled_by: str | None = Field(description="Who disabled it; `webhook-dispatcher` after a day of failures.")
    disabled_at: datetime | None
    failing: bool = Field(description="Disabled by the programme because its deliveries failed for a day.")
    last_success_at: datetime | None
    previous_secret_signs_until: datetime | None = Field(description="After a rotation, until when the old secret "
                                                         "still signs beside the new one.")  # fmt: skip
    created_at: datetime
    created_by: str

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> "EndpointOut":
        return cls(
            **{k: row[k] for k in ("endpoint_id", "partner_id", "url", "description", "enabled", "disabled_reason",
                                   "disabled_by", "disabled_at", "last_success_at", "created_at", "created_by")},
            event_types=list(row["event_types"]), failing=row["disabled_by"] == handlers.DISPATCHER,
            previous_secret_signs_until=row["previous_until"],
        )  # fmt: skip


class EndpointWithSecretOut(EndpointOut):
    secret: str | None = Field(description="whsec_...: shown this once; None when the request was a repeat.")


class SecretOut(BaseModel):
    endpoint_id: uuid.UUID
    secret: str = Field(description="The new whsec_... secret, shown this once.")
    previous_secret_signs_until: datetime | None


class AttemptOut(BaseModel):
    attempt: int
    started_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


DeliveryStatus = Literal["pending", "delivered", "failed"]


class DeliveryOut(BaseModel):
    delivery_id: uuid.UUID
    endpoint_id: uuid.UUID
    url: str
    message_id: str = Field(description="The webhook-id header, the same for every attempt and replay.")
    event_type: str
    status: DeliveryStatus
    created_at: datetime
    attempts: int
    last_status: int | None
    last_error: str | None
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None = Field(description="While pending: when it is attempted next.")
    delivered_at: datetime | None

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> "DeliveryOut":
        fields = {k: row[k] for k in cls.model_fields if k in row and k != "next_attempt_at"}
        return cls(**fields, next_attempt_at=row["next_attempt_at"] if row["status"] == "pending" else None)


class DeliveryDetailOut(DeliveryOut):
    body: str = Field(description="The exact body sent.")
    attempt_log: list[AttemptOut]


class DeliveriesOut(BaseModel):
    deliveries: list[DeliveryOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for older deliveries.")


def _cursor(row: Mapping[str, Any]) -> str:
    return f"{row['created_at'].isoformat()}_{row['delivery_id']}"


def _before(cursor: str | None) -> tuple[datetime, uuid.UUID]:
    if not cursor:
        return datetime.max.replace(tzinfo=UTC), uuid.UUID(int=(1 << 128) - 1)
    at, _, delivery = cursor.rpartition("_")
    try:
        return datetime.fromisoformat(at), uuid.UUID(delivery)
    except ValueError as error:
        raise WebhookError("the cursor is not one this API gave") from error


def router(
    store: WebhookStore, endpoints: handlers.Endpoints, current_principal: Callable[..., Principal]
) -> APIRouter:
    api = APIRouter(tags=["webhooks"])

    def staff(
        request: Request,
        partner_id: Annotated[PartnerId, Path()],
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        if credentials is None and request.headers.get(KEY_HEADER) is not None:
            raise SignatureNotEnoughError()
        return staff_or_ops(current_principal(credentials), partner_id)

    Staff = Annotated[Principal, Depends(staff)]
    Ops = Annotated[Principal, Depends(ops_dependency(current_principal))]
    refused: dict[int | str, dict[str, Any]] = {
        401: {"description": "No valid bearer token."},
        403: {"description": "A member token, or a staff token of another partner."},
        404: {"description": "No such endpoint or delivery for this partner."},
        422: {"description": "A rule the URL or the event types break, with the rule."},
    }
    base = "/v1/partners/{partner_id}"

    @api.get(f"{base}/webhook-endpoints", responses=refused)
    async def list_endpoints(partner_id: Annotated[PartnerId, Path()], _who: Staff) -> list[EndpointOut]:
        """The partner's endpoints, disabled ones with the reason (the portal shows a banner for a failing one)."""
        return [EndpointOut.of(r) for r in await store.endpoints(partner_id)]

    @api.post(f"{base}/webhook-endpoints", status_code=status.HTTP_201_CREATED, description=SIGNING,
              responses={**refused, 200: {"description": "A repeat of a request with this endpoint_id: no secret."},
                         409: {"description": "Too many endpoints, or the endpoint_id is taken."}})  # fmt: skip
    async def add_endpoint(
        partner_id: Annotated[PartnerId, Path()], body: EndpointIn, response: Response, who: Staff
    ) -> EndpointWithSecretOut:
        new = handlers.NewEndpoint(body.url, [t.value for t in body.event_types], body.description, body.endpoint_id)
        row, secret = await handlers.subscribe(endpoints, partner_id, new, who)
        if secret is None:
            response.status_code = status.HTTP_200_OK
        return EndpointWithSecretOut(**EndpointOut.of(row).model_dump(), secret=secret)

    @api.get(f"{base}/webhook-endpoints/{{endpoint_id}}", responses=refused)
    async def get_endpoint(
        partner_id: Annotated[PartnerId, Path()], endpoint_id: uuid.UUID, _who: Staff
    ) -> EndpointOut:
        row = await store.endpoint(partner_id, endpoint_id)
        if row is None:
            raise EndpointNotFoundError(partner_id, endpoint_id)
        return EndpointOut.of(row)

    @api.patch(f"{base}/webhook-endpoints/{{endpoint_id}}", responses=refused)
    async def change_endpoint(
        partner_id: Annotated[PartnerId, Path()], endpoint_id: uuid.UUID, body: EndpointChangeIn, who: Staff
    ) -> EndpointOut:
        """Enable or disable it, change its event types or description. Enabling a failing endpoint starts afresh;
        the deliveries it missed stay failed until replayed."""
        types = [t.value for t in body.event_types] if body.event_types is not None else None
        asked = handlers.EndpointChange(body.enabled, types, body.description)
        return EndpointOut.of(await handlers.change(endpoints, partner_id, endpoint_id, asked, who))

    @api.post(f"{base}/webhook-endpoints/{{endpoint_id}}/secret", responses=refused)
    async def rotate_secret(partner_id: Annotated[PartnerId, Path()], endpoint_id: uuid.UUID, who: Staff) -> SecretOut:
        """A new secret, shown once. For 24 h every attempt carries two signatures (new and old)."""
        row, secret = await handlers.rotate_secret(endpoints, partner_id, endpoint_id, who)
        return SecretOut(endpoint_id=endpoint_id, secret=secret, previous_secret_signs_until=row["previous_until"])

    @api.get(f"{base}/webhook-deliveries", responses=refused)
    async def list_deliveries(
        partner_id: Annotated[PartnerId, Path()],
        _who: Staff,
        endpoint_id: uuid.UUID | None = None,
        state: Annotated[DeliveryStatus | None, Query(alias="status")] = None,
        cursor: Annotated[str | None, Query(max_length=100)] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> DeliveriesOut:
        """The delivery log, newest first: status, attempts, last answer and when."""
        rows = await store.deliveries(partner_id, endpoint_id, state, _before(cursor), limit + 1)
        page = rows[:limit]
        return DeliveriesOut(deliveries=[DeliveryOut.of(r) for r in page],
                             next_cursor=_cursor(page[-1]) if len(rows) > limit else None)  # fmt: skip

    @api.get(f"{base}/webhook-deliveries/{{delivery_id}}", responses=refused)
    async def get_delivery(
        partner_id: Annotated[PartnerId, Path()], delivery_id: uuid.UUID, _who: Staff
    ) -> DeliveryDetailOut:
        row = await store.delivery(partner_id, delivery_id)
        if row is None:
            raise DeliveryNotFoundError(partner_id, delivery_id)
        return _detail(row)

    @api.post(f"{base}/webhook-deliveries/{{delivery_id}}/replay", status_code=status.HTTP_202_ACCEPTED,
              responses={**refused, 409: {"description": "The endpoint is disabled: enable it first."}})  # fmt: skip
    async def replay_delivery(
        partner_id: Annotated[PartnerId, Path()], delivery_id: uuid.UUID, who: Staff
    ) -> DeliveryDetailOut:
        """Attempt it again as soon as the dispatcher runs, with the same webhook-id, and a new day of retries."""
        return _detail(await handlers.replay(endpoints, partner_id, delivery_id, who))

    @api.get("/v1/ops/webhook-endpoints/disabled", responses=refused)
    async def disabled_endpoints(_ops: Ops, limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[EndpointOut]:
        """Every partner's disabled endpoints, most recently disabled first (ops follow up on failing ones)."""
        return [EndpointOut.of(r) for r in await store.disabled_endpoints(limit)]

    return api


def _detail(row: Mapping[str, Any]) -> DeliveryDetailOut:
    return DeliveryDetailOut(
        **DeliveryOut.of(row).model_dump(), body=bytes(row["body"]).decode(),
        attempt_log=[AttemptOut(**a) for a in row["attempt_log"]],
    )  # fmt: skip


def document(app: FastAPI) -> None:
    """One OpenAPI `webhooks` entry per event type, with its body, so integrators see what they will receive."""
    for event_type, body in BODIES.items():
        _document_one(app, event_type, body)


def _document_one(app: FastAPI, event_type: EventType, body: type[BaseModel]) -> None:
    async def receive(message: Any) -> None:
        """(documentation only)"""

    receive.__annotations__ = {"message": body, "return": None}  # the body model, for FastAPI's signature

    receive.__doc__ = f"{EVENT_DESCRIPTIONS[event_type]}\n\n{SIGNING}"
    app.webhooks.post(
        event_type.value,
        summary=EVENT_DESCRIPTIONS[event_type],
        operation_id=f"webhook_{event_type.value.replace('.', '_')}",
        tags=["webhooks"],
        responses={200: {"description": "Stored: the delivery is done (any 2xx)."}},
    )(receive)


async def _answer(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, WebhookError)
    return JSONResponse({"detail": error.message}, status_code=error.status)


def install(app: FastAPI) -> None:
    app.add_exception_handler(WebhookError, _answer)
    document(app)
