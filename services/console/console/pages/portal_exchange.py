"""The portal's exchanges: alliance points members exchange into the partner's programme (its miles).

Pending exchanges wait for the partner's decision: confirm with the partner's own reference of the credit (the
member's points are captured), or refuse with a reason (they go back to the member). A decision is final: a
second one is answered 409 by the partners service, whose reason the page shows. Every call names the session's
own partner (console.pages.portal.own_partner).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Form, Path, Request, Response
from fastapi.responses import HTMLResponse

from console.clients.base import ApiError
from console.pages.portal import OwnPartner
from console.rendering import gettext
from console.web import Partners, console_of, redirect

UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
ExchangeId = Annotated[str, Path(pattern=UUID_PATTERN)]
BADGES = {"pending": "pending", "confirmed": "accepted", "refused": "refused", "expired": "ended"}


def status_words(status: str) -> str:
    return {
        "pending": gettext("Waiting for your decision"),
        "confirmed": gettext("Confirmed"),
        "refused": gettext("Refused"),
        "expired": gettext("Expired: points returned"),
    }.get(status, status)


async def render_page(
    request: Request, partners: Partners, own: str, *, problem: str = "", code: int = 200
) -> HTMLResponse:
    pending, every = await asyncio.gather(
        partners.partner_exchanges(own, "pending"), partners.partner_exchanges(own, "all")
    )
    decided = [e for e in every["items"] if e["status"] != "pending"]
    return console_of(request).pages.render(
        request, "portal/exchanges.html", code, pending=pending["items"], decided=decided, problem=problem,
        badges=BADGES, status_words=status_words,
    )  # fmt: skip


def router() -> APIRouter:
    api = APIRouter(prefix="/portal", tags=["portal"])

    @api.get("/exchanges", response_class=HTMLResponse)
    async def exchanges(request: Request, own: OwnPartner, partners: Partners) -> HTMLResponse:
        return await render_page(request, partners, own)

    @api.post("/exchanges/{exchange_id}/confirm", response_class=HTMLResponse)
    async def confirm(
        request: Request, own: OwnPartner, partners: Partners, exchange_id: ExchangeId,
        partner_reference: Annotated[str, Form(max_length=128)] = "",
    ) -> Response:  # fmt: skip
        reference = partner_reference.strip()
        if not reference:
            return await render_page(request, partners, own, problem=gettext("Enter your reference of the credit."),
                                     code=422)  # fmt: skip
        try:
            await partners.confirm_exchange(own, exchange_id, reference)
        except ApiError as error:
            if not error.refused:
                raise
            return await render_page(request, partners, own, problem=error.detail, code=error.status)
        return redirect(request, "/portal/exchanges", gettext("Exchange confirmed: the member's points are captured."))

    @api.post("/exchanges/{exchange_id}/refuse", response_class=HTMLResponse)
    async def refuse(
        request: Request, own: OwnPartner, partners: Partners, exchange_id: ExchangeId,
        reason: Annotated[str, Form(max_length=200)] = "",
    ) -> Response:  # fmt: skip
        if not reason.strip():
            return await render_page(request, partners, own, problem=gettext("Enter why you refuse it."), code=422)
        try:
            await partners.refuse_exchange(own, exchange_id, reason.strip())
        except ApiError as error:
            if not error.refused:
                raise
            return await render_page(request, partners, own, problem=error.detail, code=error.status)
        return redirect(request, "/portal/exchanges", gettext("Exchange refused: the points go back to the member."))

    return api
