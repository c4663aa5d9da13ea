"""The wallet's daily earnings: yesterday and today by source, the last days, the running totals, and share cards.

A share card's link is shown once, on the page that answers the form that made it: the points service keeps only
the link's hash, so the list of cards cannot show it again (a member who lost it makes another card). The form
carries a card id chosen when it is rendered, so a double submit makes one card.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request, Response
from fastapi.responses import HTMLResponse

from console import charts, i18n
from console.clients.base import ApiError
from console.clients.services import PointsApi
from console.rendering import gettext
from console.web import MemberSession, Points, console_of, redirect

Json = dict[str, Any]
DAYS = 7
SOURCES = ("partner", "card", "activity", "gift", "tier", "other")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
NAME_MOST = 40


def router() -> APIRouter:
    api = APIRouter(prefix="/wallet", tags=["wallet"])

    @api.get("/earnings", response_class=HTMLResponse)
    async def earnings(request: Request, session: MemberSession, points: Points) -> HTMLResponse:
        return await _page(request, points, CardForm(card_id=new_id()))

    @api.post("/earnings/share-cards", response_class=HTMLResponse)
    async def make_card(
        request: Request, session: MemberSession, points: Points,
        card_id: Annotated[str, Form(max_length=64)], day: Annotated[str, Form(max_length=10)] = "",
        display_name: Annotated[str, Form(max_length=200)] = "", show_sources: Annotated[str, Form(max_length=8)] = "",
    ) -> Response:  # fmt: skip
        form = CardForm(_uuid_or_new(card_id), day.strip(), display_name.strip(), bool(show_sources))
        if not DATE.match(form.day):
            form.problem = gettext("Choose the day to share.")
            return await _page(request, points, form, 422)
        body = {"card_id": form.card_id, "date": form.day, "display_name": form.display_name or None,
                "show_sources": form.show_sources}  # fmt: skip
        try:
            made = await points.make_share_card(body)
        except ApiError as error:
            if not error.refused:
                raise
            form.problem = error.detail
            if error.status == 409:  # at the limit, or the id names another card: the next one needs its own
                form.card_id = new_id()
            return await _page(request, points, form, error.status)
        return await _page(request, points, CardForm(card_id=new_id()), made=made)

    @api.post("/earnings/share-cards/{card_id}/revoke", response_class=HTMLResponse)
    async def revoke(
        request: Request, session: MemberSession, points: Points, card_id: Annotated[uuid.UUID, Path()]
    ) -> Response:
        try:
            await points.revoke_share_card(str(card_id))
        except ApiError as error:
            if not error.refused:
                raise
            return redirect(request, "/wallet/earnings", error.detail)
        return redirect(request, "/wallet/earnings", gettext("The card is revoked: its link shows nothing any more."))

    return api


def new_id() -> str:
    return str(uuid.uuid4())


def _uuid_or_new(text: str) -> str:
    try:
        return str(uuid.UUID(text.strip()))
    except ValueError:
        return new_id()


@dataclass
class CardForm:
    card_id: str
    day: str = ""
    display_name: str = ""
    show_sources: bool = False
    problem: str = ""


async def _page(
    request: Request, points: PointsApi, form: CardForm, status_code: int = 200, made: Json | None = None
) -> HTMLResponse:
    earnings, cards = await asyncio.gather(points.daily_earnings(days=DAYS), points.share_cards())
    fmt = console_of(request).pages.formats(request)
    days = earnings["days"]
    today, yesterday = days[0], days[1]
    if not form.day:
        form.day = today["date"] if today["net"] > 0 or yesterday["net"] <= 0 else yesterday["date"]
    link = None
    if made and made.get("url_token"):
        link = f"{console_of(request).settings.public_url.rstrip('/')}/share/{made['url_token']}"
    return console_of(request).pages.render(
        request, "wallet/earnings.html", status_code, today=today, yesterday=yesterday, days=days,
        totals=earnings["totals"], chart=sources_chart(yesterday, today, fmt), source_names=source_names(),
        cards=cards["items"], form=form, made=made, link=link, name_most=NAME_MOST,
    )  # fmt: skip


def source_names() -> dict[str, str]:
    return {
        "partner": gettext("Partners"), "card": gettext("Card"), "activity": gettext("Activities"),
        "gift": gettext("Gifts"), "tier": gettext("Tier"), "other": gettext("Other"),
    }  # fmt: skip


def sources_chart(yesterday: Mapping[str, Any], today: Mapping[str, Any], fmt: i18n.Formats) -> charts.BarChart:
    """Yesterday's and today's net points by source, for the sources that moved either day (a phone's width holds
    a few); a source that lost points that day draws no bar above 0, its label says how many."""
    names = source_names()
    moved = [s for s in SOURCES if yesterday["by_source"].get(s) or today["by_source"].get(s)]

    def series(name: str, day: Mapping[str, Any]) -> charts.Series:
        values = [int(day["by_source"].get(source, 0)) for source in moved]
        return charts.Series(name, tuple(max(v, 0) for v in values), tuple(fmt.points(v) for v in values))

    return charts.bar_chart(
        [names[source] for source in moved],
        [series(gettext("Yesterday"), yesterday), series(gettext("Today"), today)] if moved else [],
        tick_label=lambda value: fmt.rate(value),
    )
