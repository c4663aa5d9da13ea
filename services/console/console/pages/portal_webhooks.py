"""The portal's webhooks: the partner's endpoints (add, enable or disable, rotate the secret) and the delivery log
with replay. Every call names the session's own partner (console.pages.portal.own_partner)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Path, Query, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from console.clients.base import ApiError, Json
from console.pages.portal import OwnPartner
from console.rendering import gettext
from console.web import Partners, console_of, redirect

EVENT_TYPES = ("statement.finalised", "order.placed", "order.settled", "purchase.refused", "offer.out_of_stock")
STATUSES = ("pending", "delivered", "failed")
ALL = "all"
PAGE = 50
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
EndpointId = Annotated[str, Path(pattern=UUID_PATTERN)]
DeliveryId = Annotated[str, Path(pattern=UUID_PATTERN)]


class EndpointFields(BaseModel):
    """The add form as typed; `endpoint_id` is chosen when the form is shown, so sending it twice adds one."""

    url: str = Field(default="", max_length=2048)
    description: str = Field(default="", max_length=200)
    event_types: list[str] = Field(default_factory=list, max_length=len(EVENT_TYPES))
    endpoint_id: str = Field(default="", pattern=r"^$|" + UUID_PATTERN[1:-1])


EndpointForm = Annotated[EndpointFields, Form()]


async def render_page(
    request: Request,
    partners: Partners,
    own: str,
    *,
    status: str = ALL,
    cursor: str | None = None,
    form: EndpointFields | None = None,
    problem: str = "",
    code: int = 200,
) -> HTMLResponse:
    endpoints: list[Json] = await partners.webhook_endpoints(own)
    query: dict[str, str | int | None] = {"limit": PAGE, "cursor": cursor, "status": None if status == ALL else status}
    deliveries = await partners.webhook_deliveries(own, **query)
    return console_of(request).pages.render(
        request, "portal/webhooks.html", code, endpoints=endpoints, failing=[e for e in endpoints if e["failing"]],
        deliveries=deliveries["deliveries"], next_cursor=deliveries["next_cursor"], status=status,
        form=form or EndpointFields(endpoint_id=str(uuid.uuid4())), event_types=EVENT_TYPES, problem=problem,
        here=f"/portal/webhooks?status={status}",
    )  # fmt: skip


def render_secret(request: Request, endpoint: Json, secret: str, rotated: bool) -> HTMLResponse:
    # Rendered here, never redirected: the secret must not travel in a cookie or a URL.
    return console_of(request).pages.render(
        request, "portal/webhook_secret.html", endpoint=endpoint, secret=secret, rotated=rotated
    )


def router() -> APIRouter:
    api = APIRouter(prefix="/portal", tags=["portal"])

    @api.get("/webhooks", response_class=HTMLResponse)
    async def webhooks(
        request: Request,
        own: OwnPartner,
        partners: Partners,
        status: Annotated[str, Query(max_length=20)] = ALL,
        cursor: Annotated[str | None, Query(max_length=100)] = None,
    ) -> HTMLResponse:
        status = status if status in STATUSES else ALL
        return await render_page(request, partners, own, status=status, cursor=cursor)

    @api.post("/webhooks/endpoints", response_model=None)
    async def add(request: Request, own: OwnPartner, partners: Partners, form: EndpointForm) -> Response:
        body = {"url": form.url.strip(), "event_types": form.event_types, "description": form.description.strip(),
                "endpoint_id": form.endpoint_id or None}  # fmt: skip
        if not form.event_types:
            problem = gettext("Choose at least one event to send to this endpoint.")
            return await render_page(request, partners, own, form=form, problem=problem, code=422)
        try:
            made = await partners.add_webhook_endpoint(own, body)
        except ApiError as error:
            if not error.refused:
                raise
            return await render_page(request, partners, own, form=form, problem=error.detail, code=error.status)
        if made.get("secret") is None:  # the form sent twice: the endpoint exists, its secret was shown the first time
            note = gettext("This endpoint was added already. Rotate its secret if you did not keep it.")
            return redirect(request, "/portal/webhooks", note)
        return render_secret(request, made, made["secret"], rotated=False)

    @api.post("/webhooks/endpoints/{endpoint_id}/enabled", response_model=None)
    async def switch(
        request: Request,
        endpoint_id: EndpointId,
        own: OwnPartner,
        partners: Partners,
        enabled: Annotated[str, Form(pattern="^(true|false)$")],
    ) -> Response:
        try:
            await partners.change_webhook_endpoint(own, endpoint_id, {"enabled": enabled == "true"})
        except ApiError as error:
            if not error.refused:
                raise
            return await render_page(request, partners, own, problem=error.detail, code=error.status)
        done = gettext("Endpoint enabled.") if enabled == "true" else gettext("Endpoint disabled.")
        return redirect(request, "/portal/webhooks", done)

    @api.post("/webhooks/endpoints/{endpoint_id}/secret", response_model=None)
    async def rotate(request: Request, endpoint_id: EndpointId, own: OwnPartner, partners: Partners) -> Response:
        try:
            rotated = await partners.rotate_webhook_secret(own, endpoint_id)
        except ApiError as error:
            if not error.refused:
                raise
            return await render_page(request, partners, own, problem=error.detail, code=error.status)
        return render_secret(request, rotated, rotated["secret"], rotated=True)

    @api.get("/webhooks/deliveries/{delivery_id}", response_class=HTMLResponse)
    async def delivery(request: Request, delivery_id: DeliveryId, own: OwnPartner, partners: Partners) -> HTMLResponse:
        found = await partners.webhook_delivery(own, delivery_id)
        return console_of(request).pages.render(request, "portal/webhook_delivery.html", delivery=found)

    @api.post("/webhooks/deliveries/{delivery_id}/replay", response_model=None)
    async def replay(request: Request, delivery_id: DeliveryId, own: OwnPartner, partners: Partners) -> Response:
        try:
            await partners.replay_webhook_delivery(own, delivery_id)
        except ApiError as error:
            if not error.refused:
                raise
            return await render_page(request, partners, own, problem=error.detail, code=error.status)
        note = gettext("Sent again with the same webhook-id; the log shows the answer within a minute.")
        return redirect(request, f"/portal/webhooks/deliveries/{delivery_id}", note)

    return api
