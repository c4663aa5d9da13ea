"""Ops console: the programme's liability. A month's statement by issuer (reconciled to the ledger), its CSV, a
chart of the points that expire in each of the next 24 months, a chart of the monthly breakage rate, and the issue
prices that value the points, with a form for the prices ops set (the card, activities, the programme, ...).

Every figure is the points service's (GET /v1/ops/liability/..., whose description says what each means); this
page only asks for a month and shows them. A price version is keyed by its issuer and first day, so a double
submit adds it once (the service answers the same version again).
"""

from __future__ import annotations

import asyncio
import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from babel import dates, numbers
from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import HTMLResponse

from console import charts, i18n
from console.clients.base import ApiError
from console.clients.services import PointsApi
from console.rendering import gettext
from console.web import OpsSession, Points, console_of, redirect

Json = dict[str, Any]
MONTH = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")
MonthQuery = Annotated[str, Query(max_length=7)]
Short = Annotated[str, Form(max_length=40)]
OPS_ISSUERS = ("card:issued", "activity:*", "programme", "migration", "card-points:exchange", "adjustments")
CURRENCIES = ("CNY", "HKD", "USD", "EUR", "SGD", "JPY")
WIDE = charts.Layout(width=720, height=240)


def issuer_names() -> dict[str, str]:
    return {
        "card:issued": gettext("The card"),
        "activity:*": gettext("Every reward activity"),
        "programme": gettext("The programme (tier bonuses)"),
        "migration": gettext("Migrated balances"),
        "card-points:exchange": gettext("Card points exchanged"),
        "adjustments": gettext("Ops adjustments"),
        "unknown": gettext("Unknown (older lots)"),
    }


def issuer_words(issuer: str) -> str:
    """An issuer as people read it: a partner by its id, an activity by its id, the rest by name."""
    if issuer.startswith("partner:") and issuer.endswith(":issued"):
        return gettext("Partner %(partner)s") % {"partner": issuer.split(":")[1]}
    if issuer.startswith("activity:") and issuer.endswith(":budget"):
        return gettext("Activity %(activity)s") % {"activity": issuer.split(":")[1][:8]}
    return issuer_names().get(issuer, issuer)


def short_month(label: str, fmt: i18n.Formats) -> str:
    year, month = (int(part) for part in label.split("-"))
    return dates.format_skeleton("yyMMM", date(year, month, 1), locale=fmt.locale)


def tiny_month(label: str, first: bool) -> str:
    """24 months share the chart's width: the month's number, with the year on the first one and on Januaries."""
    year, month = label.split("-")
    return f"{int(month)}/{year[2:]}" if first or month == "01" else str(int(month))


def forecast_chart(forecast: Json, fmt: i18n.Formats) -> charts.BarChart:
    """Points expiring per month (compact labels: 24 bars share the width); the exact figures are in a table."""
    months = forecast.get("months", [])
    values = tuple(int(m["points"]) for m in months)
    labels = tuple(numbers.format_compact_decimal(v, locale=fmt.locale) for v in values)
    return charts.bar_chart(
        [tiny_month(m["month"], i == 0) for i, m in enumerate(months)],
        [charts.Series(gettext("Points expiring"), values, labels)],
        tick_label=lambda v: numbers.format_compact_decimal(v, locale=fmt.locale),
        layout=WIDE,
    )


def rates_chart(rates: Json, fmt: i18n.Formats) -> charts.BarChart:
    """The breakage rate per month (the redemption rate is its complement: it is in the table)."""
    months = rates.get("months", [])
    values = tuple(None if m["breakage_rate"] is None else Decimal(str(m["breakage_rate"])) for m in months)
    labels = tuple(gettext("none") if v is None else fmt.percent(v) for v in values)
    return charts.bar_chart(
        [short_month(m["month"], fmt) for m in months],
        [charts.Series(gettext("Breakage rate"), values, labels)],
        tick_label=fmt.percent,
        layout=WIDE,
    )


def shown_lines(statement: Json) -> list[Json]:
    return [{**line, "words": issuer_words(line["issuer"])} for line in statement.get("lines", [])]


def shown_prices(prices: Json) -> list[Json]:
    return [{**p, "words": issuer_words(p["issuer"])} for p in prices.get("items", [])]


EMPTY_STATEMENT: Json = {"lines": [], "values": [], "unpriced": [], "totals": None, "reconciliation": None}


async def page(
    request: Request, points: PointsApi, month: str, status: int = 200, error: str = "", **form: str
) -> HTMLResponse:
    rates, forecast, prices = await asyncio.gather(points.liability_rates(), points.liability_forecast(),
                                                   points.issue_prices())  # fmt: skip
    this = rates["months"][-1]["month"] if rates.get("months") else ""
    chosen = month if MONTH.match(month) else this
    problem, statement = "", EMPTY_STATEMENT
    try:
        statement = await points.liability_statement(chosen) if chosen else EMPTY_STATEMENT
    except ApiError as refusal:
        if not refusal.refused:
            raise
        problem, status = refusal.detail, refusal.status if status == 200 else status
    fmt = console_of(request).pages.formats(request)
    values = {"issuer": "card:issued", "valid_from": "", "currency": "CNY", "price_minor_per_point": "", **form}
    return console_of(request).pages.render(
        request, "ops/liability.html", status, statement=statement, lines=shown_lines(statement), month=chosen,
        problem=problem, forecast=forecast, forecast_chart=forecast_chart(forecast, fmt), rates=rates,
        rates_chart=rates_chart(rates, fmt), prices=shown_prices(prices),
        issuers=[(i, issuer_names()[i]) for i in OPS_ISSUERS], currencies=[(c, c) for c in CURRENCIES],
        error=error, form=values, csv=f"/ops/liability/statements/{chosen}.csv" if chosen else "",
    )  # fmt: skip


def price_body(issuer: str, valid_from: str, currency: str, price: str) -> Json:
    """The form as the service takes it; a price that is not a number is refused here, with the reason."""
    try:
        amount = Decimal(price.strip().replace(",", ""))
    except InvalidOperation:
        raise ValueError(gettext("The price is a number of minor units per point, e.g. 0.5.")) from None
    return {"issuer": issuer.strip(), "valid_from": valid_from.strip(), "currency": currency.strip(),
            "price_minor_per_point": str(amount)}  # fmt: skip


def router() -> APIRouter:
    api = APIRouter()

    @api.get("/liability", response_class=HTMLResponse)
    async def liability(request: Request, session: OpsSession, points: Points, month: MonthQuery = "") -> HTMLResponse:
        return await page(request, points, month)

    @api.get("/liability/statements/{month}.csv")
    async def statement_csv(session: OpsSession, points: Points, month: str) -> Response:
        if not MONTH.match(month):
            return Response(gettext("Ask for a month as YYYY-MM."), status_code=422, media_type="text/plain")
        body = await points.liability_statement_csv(month)
        return Response(body, media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="liability-{month}.csv"'})  # fmt: skip

    @api.post("/liability/prices", response_model=None)
    async def set_price(
        request: Request, session: OpsSession, points: Points, issuer: Short = "", valid_from: Short = "",
        currency: Annotated[str, Form(max_length=3)] = "", price_minor_per_point: Short = "",
        month: Annotated[str, Form(max_length=7)] = "",
    ) -> Response:  # fmt: skip
        form = {"issuer": issuer, "valid_from": valid_from, "currency": currency,
                "price_minor_per_point": price_minor_per_point}  # fmt: skip
        try:
            await points.set_issue_price(price_body(issuer, valid_from, currency, price_minor_per_point))
        except ValueError as wrong:
            return await page(request, points, month, 422, str(wrong), **form)
        except ApiError as refusal:
            if not refusal.refused:
                raise
            return await page(request, points, month, refusal.status, refusal.detail, **form)
        back = f"/ops/liability?month={month}" if MONTH.match(month) else "/ops/liability"
        return redirect(request, back, gettext("Issue price added."))

    return api
