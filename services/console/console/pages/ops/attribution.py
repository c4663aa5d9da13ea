"""Ops console: attribution by channel, branch or staff member, a chart of response by channel, the staff
leaderboard, the CSV; and a staff member's share link for an activity (made from the activity's page).

The figures are the points service's (GET /v1/ops/attribution, whose description says what each means); this page
only asks for a period and a grouping, and shows them. A share link is made as the signed-in staff member, with
the branch typed on the form; the form carries a link id chosen when it is rendered, so a double submit makes one.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import HTMLResponse

from console import charts, i18n
from console.clients.base import ApiError
from console.pages.wallet.share_links import channel_names, share_url
from console.rendering import gettext
from console.web import OpsSession, Points, console_of

Json = dict[str, Any]
GROUPS = ("channel", "branch", "staff")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
First = Annotated[str, Query(alias="from", max_length=10)]
Last = Annotated[str, Query(alias="to", max_length=10)]
Group = Annotated[str, Query(max_length=16)]
Short = Annotated[str, Form(max_length=64)]


def group_names() -> dict[str, str]:
    return {"channel": gettext("Channel"), "branch": gettext("Branch"), "staff": gettext("Staff member")}


def key_words(group: str, key: str | None) -> str:
    """A row's key as people read it: a channel by its name, a branch or staff id as it is, none in words."""
    if key is None:
        return {"channel": gettext("No channel"), "branch": gettext("No branch"), "staff": gettext("No staff member")}[
            group
        ]
    return channel_names().get(key, key) if group == "channel" else key


def period_query(first: str, last: str, group: str) -> dict[str, str]:
    """The points service's query: only dates that look like dates (it checks the rest and says why)."""
    query = {"group": group}
    if DATE.match(first):
        query["from"] = first
    if DATE.match(last):
        query["to"] = last
    return query


def response_chart(rows: list[Json], fmt: i18n.Formats) -> charts.BarChart:
    """Response rate by channel (the channel grouping's rows)."""
    rates = [Decimal(str(r["response_rate"])) for r in rows]
    return charts.bar_chart(
        [key_words("channel", r["key"]) for r in rows],
        [charts.Series(gettext("Response rate"), tuple(rates), tuple(fmt.percent(rate) for rate in rates))],
        tick_label=fmt.percent,
    )


def shown_rows(group: str, rows: list[Json]) -> list[Json]:
    return [{**row, "words": key_words(group, row["key"])} for row in rows]


def router() -> APIRouter:
    api = APIRouter()

    @api.get("/attribution", response_class=HTMLResponse)
    async def attribution(
        request: Request, session: OpsSession, points: Points, first: First = "", last: Last = "",
        group: Group = "channel",
    ) -> HTMLResponse:  # fmt: skip
        group = group if group in GROUPS else "channel"
        problem, status = "", 200
        try:
            chosen, by_channel, by_staff = await asyncio.gather(*(
                points.attribution(**period_query(first, last, g)) for g in (group, "channel", "staff")
            ))  # fmt: skip
        except ApiError as error:
            if not error.refused:
                raise
            problem, status = error.detail, error.status
            chosen = by_channel = by_staff = {"rows": [], "leaderboard": []}
        fmt = console_of(request).pages.formats(request)
        csv = "/ops/attribution.csv?" + urlencode(period_query(first, last, group))
        return console_of(request).pages.render(
            request, "ops/attribution.html", status, report=chosen, rows=shown_rows(group, chosen["rows"]),
            chart=response_chart(by_channel["rows"], fmt), leaderboard=by_staff["leaderboard"], group=group,
            groups=[(g, group_names()[g]) for g in GROUPS], group_name=group_names()[group],
            first=chosen.get("from", first), last=chosen.get("to", last), csv=csv, problem=problem,
        )  # fmt: skip

    @api.get("/attribution.csv")
    async def attribution_csv(
        session: OpsSession, points: Points, first: First = "", last: Last = "", group: Group = "channel"
    ) -> Response:
        group = group if group in GROUPS else "channel"
        body = await points.attribution_csv(**period_query(first, last, group))
        return Response(body, media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="attribution-{group}.csv"'})  # fmt: skip

    @api.post("/activities/{activity_id}/share-link", response_class=HTMLResponse)
    async def share_activity(
        request: Request, activity_id: uuid.UUID, session: OpsSession, points: Points,
        link_id: Short = "", channel: Annotated[str, Form(max_length=16)] = "", branch_id: Short = "",
        window_days: Annotated[str, Form(max_length=4)] = "7",
    ) -> HTMLResponse:  # fmt: skip
        body: Json = {"link_id": _uuid(link_id), "target": {"kind": "activity", "activity_id": str(activity_id)}}
        body |= {k: v for k, v in (("channel", channel), ("branch_id", branch_id.strip())) if v}
        body["window_days"] = int(window_days) if window_days.isdigit() else window_days
        try:
            made = await points.create_share_link(body)
        except ApiError as error:
            if not error.refused:
                raise
            return _made(request, activity_id, None, error.detail, error.status)
        return _made(request, activity_id, made)

    return api


def _uuid(text: str) -> str:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return str(uuid.uuid4())


def _made(
    request: Request, activity_id: uuid.UUID, made: Mapping[str, Any] | None, problem: str = "", status: int = 200
) -> HTMLResponse:
    shown = {**made, "url": share_url(request, str(made["code"]))} if made else None
    return console_of(request).pages.render(
        request, "ops/share_link.html", status, made=shown, problem=problem, activity_id=activity_id,
        channels=channel_names(),
    )  # fmt: skip
