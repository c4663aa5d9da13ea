"""Ops console: the points exchange's rates and programmes.

- Card points in: the dated versions of alliance points per card point, and a form for a new version.
- Partner programmes out: each programme's terms (units, minimum, step, daily limit, open or closed) and its dated
  rates (units per point); a form saves a programme's terms, another adds a rate version.

A version starts at a moment given with its offset (ISO 8601); what happened before keeps its rate. The points
service audits every change. A second submit of the same version is answered 409 and shown as such.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse

from console.clients.base import ApiError
from console.clients.services import PointsApi
from console.rendering import gettext
from console.web import OpsSession, Points, console_of, redirect

Json = dict[str, Any]
Text = Annotated[str, Form(max_length=64)]
"""A text input; an empty one arrives as "" (the page says what is missing), never as a 422 of the framework."""


def moment(text: str) -> str | None:
    """An ISO 8601 moment with its offset, normalised; None if it is not one."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return parsed.isoformat() if parsed.tzinfo is not None else None


def positive_decimal(text: str) -> str | None:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return None
    return str(value) if value.is_finite() and value > 0 else None


def whole(text: str) -> int | None:
    digits = text.strip().replace(",", "")
    return int(digits) if digits.isascii() and digits.isdigit() and 0 < len(digits) <= 11 and int(digits) > 0 else None


def rate_errors(valid_from: str | None, rate: str | None) -> dict[str, str]:
    errors = {}
    if valid_from is None:
        errors["valid_from"] = gettext("Enter a moment with its offset, e.g. 2026-12-01T00:00+08:00.")
    if rate is None:
        errors["rate"] = gettext("Enter a positive number, e.g. 0.25.")
    return errors


def router() -> APIRouter:
    api = APIRouter(tags=["ops"])

    @api.get("/exchange", response_class=HTMLResponse)
    async def exchange(request: Request, session: OpsSession, points: Points) -> HTMLResponse:
        return await render_page(request, points)

    @api.post("/exchange/card-points-rates", response_class=HTMLResponse)
    async def add_card_points_rate(
        request: Request, session: OpsSession, points: Points, valid_from: Text = "", rate: Text = ""
    ) -> Response:
        start, value = moment(valid_from), positive_decimal(rate)
        errors = rate_errors(start, value)
        if errors:
            return await render_page(request, points, errors={f"card_{k}": v for k, v in errors.items()}, code=422)
        try:
            await points.add_card_points_rate({"valid_from": start, "rate": value})
        except ApiError as error:
            if not error.refused:
                raise
            return await render_page(request, points, problem=error.detail, code=error.status)
        return redirect(request, "/ops/exchange", gettext("Card points rate added."))

    @api.post("/exchange/programmes", response_class=HTMLResponse)
    async def save_programme(
        request: Request, session: OpsSession, points: Points, partner_id: Text = "", units_name: Text = "",
        min_points: Text = "", step_points: Text = "", daily_limit_points: Text = "",
        active: Annotated[str, Form(max_length=5)] = "",
    ) -> Response:  # fmt: skip
        terms = {"units_name": units_name.strip(), "min_points": whole(min_points), "step_points": whole(step_points),
                 "daily_limit_points": whole(daily_limit_points), "active": active == "on"}  # fmt: skip
        errors = {k: gettext("Enter a whole number, at least 1.") for k, v in terms.items() if v is None}
        if not partner_id.strip():
            errors["partner_id"] = gettext("Enter the partner's id.")
        if not terms["units_name"]:
            errors["units_name"] = gettext("Enter what the partner calls its units, e.g. miles.")
        if errors:
            return await render_page(request, points, errors=errors, code=422)
        try:
            await points.save_exchange_programme(partner_id.strip(), terms)
        except ApiError as error:
            if not error.refused:
                raise
            return await render_page(request, points, problem=error.detail, code=error.status)
        return redirect(request, "/ops/exchange", gettext("Exchange programme saved."))

    @api.post("/exchange/rates", response_class=HTMLResponse)
    async def add_exchange_rate(
        request: Request,
        session: OpsSession,
        points: Points,
        partner_id: Text = "",
        valid_from: Text = "",
        rate: Text = "",
    ) -> Response:
        start, value = moment(valid_from), positive_decimal(rate)
        errors = rate_errors(start, value)
        if errors:
            return await render_page(request, points, errors={f"units_{k}": v for k, v in errors.items()}, code=422)
        try:
            await points.add_exchange_rate(partner_id.strip(), {"valid_from": start, "rate": value})
        except ApiError as error:
            if not error.refused:
                raise
            return await render_page(request, points, problem=error.detail, code=error.status)
        return redirect(request, "/ops/exchange", gettext("Exchange rate added."))

    return api


async def render_page(
    request: Request, points: PointsApi, *, errors: dict[str, str] | None = None, problem: str = "", code: int = 200
) -> HTMLResponse:
    card_rates, programmes = await asyncio.gather(points.card_points_rates(), points.exchange_programmes())
    return console_of(request).pages.render(
        request, "ops/exchange.html", code, card_rates=card_rates, programmes=programmes, errors=errors or {},
        problem=problem,
    )  # fmt: skip
