"""The wallet's exchange: the partner programmes that take points (units, rate in force, minimum, step, daily
limit), a form to exchange points into one of them, and the member's exchanges with their status.

The form carries an exchange id chosen when it is rendered, so a double submit asks once (the points service
answers a repeated id with the first exchange). A refusal (below the minimum, off the step, over the daily
limit, not enough points) is shown on the form with the service's reason.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse

from console.clients.base import ApiError
from console.clients.services import PointsApi
from console.pages.wallet.home import formats, new_id, whole_number
from console.rendering import gettext
from console.web import MemberSession, Points, console_of, redirect

Json = dict[str, Any]
MAX_POINTS = 10**10
BADGES = {"pending": "pending", "captured": "captured", "refused": "refused", "expired": "ended"}
"""The badge colour (console.css) of an exchange's status."""


@dataclass
class ExchangeForm:
    partner_id: str = ""
    points: str = ""
    membership_number: str = ""
    exchange_id: str = ""
    errors: dict[str, str] = field(default_factory=dict)
    problem: str = ""


def status_words(status: str) -> str:
    return {
        "pending": gettext("Waiting for the partner"),
        "captured": gettext("Credited by the partner"),
        "refused": gettext("Refused: points returned"),
        "expired": gettext("Expired: points returned"),
    }.get(status, status)


def form_errors(form: ExchangeForm, programmes: list[Json], count: int | None) -> dict[str, str]:
    errors = {}
    if form.partner_id not in {p["partner_id"] for p in programmes}:
        errors["partner_id"] = gettext("Choose a programme from the list.")
    if count is None:
        errors["points"] = gettext("Enter a whole number of points, at least 1.")
    if not form.membership_number or len(form.membership_number) > 128 or not form.membership_number.isprintable():
        errors["membership_number"] = gettext("Enter your membership number in the partner's programme.")
    return errors


def router() -> APIRouter:
    api = APIRouter(prefix="/wallet", tags=["wallet"])

    @api.get("/exchange", response_class=HTMLResponse)
    async def exchange(request: Request, session: MemberSession, points: Points) -> HTMLResponse:
        return await render_page(request, points, ExchangeForm(exchange_id=new_id()))

    @api.post("/exchange", response_class=HTMLResponse)
    async def exchange_points(
        request: Request, session: MemberSession, points: Points,
        partner_id: Annotated[str, Form(max_length=63)] = "",
        amount: Annotated[str, Form(alias="points", max_length=16)] = "",
        membership_number: Annotated[str, Form(max_length=128)] = "",
        exchange_id: Annotated[str, Form(max_length=64)] = "",
    ) -> Response:  # fmt: skip
        form = ExchangeForm(partner_id.strip(), amount, membership_number.strip(), _uuid_or_new(exchange_id))
        programmes = await points.exchange_programmes()
        count = whole_number(amount, 1, MAX_POINTS)
        form.errors = form_errors(form, programmes, count)
        if form.errors or count is None:
            return await render_page(request, points, form, 422)
        body = {"exchange_id": form.exchange_id, "partner_id": form.partner_id, "points": count,
                "membership_number": form.membership_number}  # fmt: skip
        try:
            made = await points.exchange(body)
        except ApiError as error:
            if not error.refused:
                raise
            form.problem = error.detail
            if error.status == 409:  # the id names another exchange: this one needs its own
                form.exchange_id = new_id()
            return await render_page(request, points, form, error.status)
        done = gettext("%(points)s points are held for %(units)s %(units_name)s; the partner confirms the credit.")
        words = {"points": formats(request).points(count), "units": made["units"], "units_name": made["units_name"]}
        return redirect(request, "/wallet/exchange", done % words)

    return api


def _uuid_or_new(text: str) -> str:
    try:
        return str(uuid.UUID(text.strip()))
    except ValueError:
        return new_id()


async def render_page(request: Request, points: PointsApi, form: ExchangeForm, status_code: int = 200) -> HTMLResponse:
    programmes, exchanges, balance = await asyncio.gather(
        points.exchange_programmes(), points.exchanges(), points.balance()
    )
    open_ = [p for p in programmes if p["active"] and p["rate_in_force"]]
    return console_of(request).pages.render(
        request, "wallet/exchange.html", status_code, programmes=open_, exchanges=exchanges["items"], form=form,
        errors=form.errors, balance=balance, status_words=status_words, badges=BADGES,
    )  # fmt: skip
