"""Ops console: running the programme. Card earn rates, monthly settlement, dead letters, points expiry."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import HTMLResponse

from console.clients.base import ApiError
from console.clients.services import PartnersApi, PointsApi
from console.pages.ops.dashboard import SERVICES, ServiceName, ops_reads
from console.rendering import gettext
from console.web import OpsSession, Partners, Points, console_of, redirect

MONTH = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")
ANY_MCC = "*"
Filter = Annotated[str, Query(max_length=249)]


def router() -> APIRouter:
    api = APIRouter()
    card_rate_pages(api)
    settlement_pages(api)
    dead_letter_pages(api)
    expiry_pages(api)
    return api


# --- card earn rates -------------------------------------------------------------------------------------


def local_moment(text: str, timezone: str) -> str:
    """A datetime-local field's value, read in the console's display time zone, as an aware ISO time."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ApiError("console", 422, gettext("Valid from: choose a date and a time.")) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(timezone))
    return moment.isoformat()


def card_rate_pages(api: APIRouter) -> None:
    async def page(
        request: Request, points: PointsApi, status: int = 200, error: str = "", **form: str
    ) -> HTMLResponse:
        rates = await points.card_rates()
        values = {"mcc": "", "valid_from": "", "points_per_unit": "", **form}
        return console_of(request).pages.render(
            request,
            "ops/programme_card_rates.html",
            status,
            rates=rates,
            any_mcc=ANY_MCC,
            error=error,
            form=values,
            timezone=console_of(request).settings.display_timezone,
        )

    @api.get("/card-rates", response_class=HTMLResponse)
    async def card_rates(request: Request, session: OpsSession, points: Points) -> HTMLResponse:
        return await page(request, points)

    @api.post("/card-rates", response_model=None)
    async def add_card_rate(
        request: Request,
        session: OpsSession,
        points: Points,
        valid_from: Annotated[str, Form(max_length=40)] = "",
        points_per_unit: Annotated[str, Form(max_length=20)] = "",
        mcc: Annotated[str, Form(max_length=4)] = "",
    ) -> Response:
        try:
            body: dict[str, str] = {
                "valid_from": local_moment(valid_from, console_of(request).settings.display_timezone),
                "points_per_unit": points_per_unit.strip(),
            }
            if mcc.strip():
                body["mcc"] = mcc.strip()
            await points.add_card_rate(body)
        except ApiError as error:
            if not error.refused:
                raise
            return await page(
                request,
                points,
                error.status,
                error.detail,
                mcc=mcc,
                valid_from=valid_from,
                points_per_unit=points_per_unit,
            )
        return redirect(request, "/ops/card-rates", gettext("Card earn rate added."))


# --- settlement ------------------------------------------------------------------------------------------


def last_month(now: datetime) -> str:
    """The month before `now` (UTC): the one usually settled next."""
    first = now.astimezone(UTC).replace(day=1)
    return (first - timedelta(days=1)).strftime("%Y-%m")


async def settlement_page(
    request: Request, partners: PartnersApi, period: str, status: int = 200, error: str = "", force: bool = False
) -> HTMLResponse:
    """The month's statements (or why they cannot be computed), the CSV link and the finalise form."""
    try:
        statements, unpriced = await partners.statements(period), ""
    except ApiError as refusal:
        if not refusal.refused:
            raise
        statements, unpriced = None, refusal.detail
    return console_of(request).pages.render(
        request,
        "ops/programme_settlement.html",
        status,
        period=period,
        statements=statements,
        unpriced=unpriced,
        error=error,
        force=force,
    )


def settlement_pages(api: APIRouter) -> None:
    def month(request: Request, period: str) -> str:
        chosen = period.strip()
        return chosen if MONTH.match(chosen) else last_month(console_of(request).clock())

    @api.get("/settlement", response_class=HTMLResponse)
    async def settlement(
        request: Request, session: OpsSession, partners: Partners, period: Annotated[str, Query(max_length=7)] = ""
    ) -> HTMLResponse:
        return await settlement_page(request, partners, month(request, period))

    @api.get("/settlement.csv", response_model=None)
    async def settlement_csv(
        request: Request, session: OpsSession, partners: Partners, period: Annotated[str, Query(max_length=7)] = ""
    ) -> Response:
        chosen = month(request, period)
        text = await partners.statements_csv(chosen)
        disposition = f'attachment; filename="statements-{chosen}.csv"'
        return Response(text, media_type="text/csv; charset=utf-8", headers={"Content-Disposition": disposition})

    @api.post("/settlement/finalise", response_model=None)
    async def finalise(
        request: Request,
        session: OpsSession,
        partners: Partners,
        period: Annotated[str, Form(max_length=7)] = "",
        force: Annotated[bool, Form()] = False,
    ) -> Response:
        try:
            if not MONTH.match(period):
                raise ApiError("console", 422, gettext("Choose a month to finalise."))
            await partners.finalise({"period": period, "force": force})
        except ApiError as error:
            if not error.refused:
                raise
            shown = period if MONTH.match(period) else last_month(console_of(request).clock())
            return await settlement_page(request, partners, shown, error.status, error.detail, force)
        done = gettext("%(month)s is finalised: its statements will not change.") % {"month": period}
        return redirect(request, f"/ops/settlement?period={period}", done)


# --- dead letters ----------------------------------------------------------------------------------------


def service_of(text: str) -> ServiceName:
    for service in SERVICES:
        if service == text:
            return service
    raise ApiError("console", 404, gettext("There is no such service: choose points, partners or redemption."))


def readable(letter: dict[str, Any]) -> str:
    """The record's value, indented when it is JSON text, so that a person can read it."""
    value = str(letter["value"])
    if letter.get("value_encoding") != "utf-8":
        return value
    try:
        return json.dumps(json.loads(value), indent=2, ensure_ascii=False)
    except ValueError:
        return value


def letter_page(
    request: Request,
    service: ServiceName,
    letter: dict[str, Any],
    confirm: bool = False,
    status: int = 200,
    error: str = "",
) -> HTMLResponse:
    """One dead letter; with `confirm`, the question whether to replay it and the button that does."""
    context = {"service": service, "letter": letter, "value": readable(letter), "confirm": confirm, "error": error}
    return console_of(request).pages.render(request, "ops/programme_dead_letter.html", status, **context)


def dead_letter_pages(api: APIRouter) -> None:
    pages = "ops/programme_dead_letters.html"

    @api.get("/dead-letters", response_class=HTMLResponse)
    async def dead_letters(
        request: Request,
        session: OpsSession,
        service: Filter = "points",
        topic: Filter = "",
        reason: Filter = "",
        waiting: bool = False,
        before: Annotated[int | None, Query(ge=1)] = None,
    ) -> HTMLResponse:
        chosen = service_of(service)
        reads = ops_reads(request, session, chosen)
        summary, letters = await asyncio.gather(
            reads.dead_letter_summary(),
            reads.dead_letters(
                topic=topic.strip(), reason=reason.strip(), waiting="true" if waiting else None, before=before, limit=50
            ),
        )
        return console_of(request).pages.render(
            request,
            pages,
            service=chosen,
            services=SERVICES,
            summary=summary,
            letters=letters,
            topic=topic,
            reason=reason,
            waiting=waiting,
        )

    @api.get("/dead-letters/{service}/replay", response_class=HTMLResponse)
    async def confirm_topic(
        request: Request, service: str, session: OpsSession, topic: Annotated[str, Query(min_length=1, max_length=249)]
    ) -> HTMLResponse:
        return console_of(request).pages.render(
            request, "ops/programme_replay_topic.html", service=service_of(service), topic=topic, error=""
        )

    @api.post("/dead-letters/{service}/replay", response_model=None)
    async def replay_topic(
        request: Request, service: str, session: OpsSession, topic: Annotated[str, Form(min_length=1, max_length=249)]
    ) -> Response:
        chosen = service_of(service)
        try:
            done = await ops_reads(request, session, chosen).replay_topic(topic)
        except ApiError as error:
            if not error.refused:
                raise
            return console_of(request).pages.render(
                request,
                "ops/programme_replay_topic.html",
                error.status,
                service=chosen,
                topic=topic,
                error=error.detail,
            )
        note = gettext("%(n)s dead letters of %(topic)s written back to their topic.")
        note = note % {"n": len(done["replayed"]), "topic": topic}
        return redirect(request, f"/ops/dead-letters?service={chosen}", note)

    @api.get("/dead-letters/{service}/{number}", response_class=HTMLResponse)
    async def dead_letter(request: Request, service: str, number: int, session: OpsSession) -> HTMLResponse:
        chosen = service_of(service)
        return letter_page(request, chosen, await ops_reads(request, session, chosen).dead_letter(number))

    @api.get("/dead-letters/{service}/{number}/replay", response_class=HTMLResponse)
    async def confirm_one(request: Request, service: str, number: int, session: OpsSession) -> HTMLResponse:
        chosen = service_of(service)
        return letter_page(request, chosen, await ops_reads(request, session, chosen).dead_letter(number), confirm=True)

    @api.post("/dead-letters/{service}/{number}/replay", response_model=None)
    async def replay_one(request: Request, service: str, number: int, session: OpsSession) -> Response:
        chosen = service_of(service)
        reads = ops_reads(request, session, chosen)
        try:
            done = await reads.replay_dead_letter(number)
        except ApiError as error:
            if not error.refused:
                raise
            letter = await reads.dead_letter(number)
            return letter_page(request, chosen, letter, confirm=True, status=error.status, error=error.detail)
        note = gettext("Dead letter %(id)s written back to its topic.") % {"id": ", ".join(done["replayed"])}
        return redirect(request, f"/ops/dead-letters/{chosen}/{number}", note)


# --- expiry ----------------------------------------------------------------------------------------------


def expiry_pages(api: APIRouter) -> None:
    @api.get("/expiry", response_class=HTMLResponse)
    async def expiry(request: Request, session: OpsSession, points: Points) -> HTMLResponse:
        runs = await points.expiry_runs(limit=20)
        return console_of(request).pages.render(request, "ops/programme_expiry.html", runs=runs["items"])

    @api.post("/expiry", response_model=None)
    async def run_expiry(request: Request, session: OpsSession, points: Points) -> Response:
        outcome = await points.run_expiry()
        note = gettext("Expiry run done: %(lots)s lots expired, %(points)s points.") % {
            "lots": outcome["lots_expired"],
            "points": outcome["points_expired"],
        }
        return redirect(request, "/ops/expiry", note)
