"""Ops console: red packets from an activity's budget, for a segment or by link, and every packet's tally.

The budget bounds what its packets hold (the points service refuses beyond what is left, with the reason);
what nobody grabs by the deadline, or when ops close the packet, goes back to the budget.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request, Response
from fastapi.responses import HTMLResponse

from console.clients.base import ApiError
from console.clients.services import PointsApi
from console.pages.wallet.home import member_id_or_none, new_id, whole_number
from console.pages.wallet.packets import (
    DURATIONS,
    MAX_POINTS,
    MAX_SHARES,
    create_or_refuse,
    duration_choices,
    link_of,
    shown,
)
from console.rendering import gettext
from console.web import OpsSession, Points, console_of, redirect

Json = dict[str, Any]


@dataclass
class OpsPacketForm:
    activity_id: str = ""
    points: str = ""
    shares: str = ""
    audience: str = "link"
    segment_id: str = ""
    duration: str = str(24 * 60)
    message: str = ""
    packet_id: str = ""
    errors: dict[str, str] = field(default_factory=dict)
    problem: str = ""


def ops_packet_body(form: OpsPacketForm) -> Json | None:
    """The API's body for the form, or None with `form.errors` saying what to fix."""
    points, shares = whole_number(form.points, 1, MAX_POINTS), whole_number(form.shares, 1, MAX_SHARES)
    if member_id_or_none(form.activity_id) is None:
        form.errors["activity_id"] = gettext("Choose the activity whose budget pays for it.")
    if points is None:
        form.errors["points"] = gettext("Enter a whole number of points, from 1 to 1,000,000.")
    if shares is None:
        form.errors["shares"] = gettext("Enter how many members can grab it, from 1 to 1,000.")
    if form.duration not in {str(m) for m in DURATIONS}:
        form.errors["duration"] = gettext("Choose how long it stays open.")
    audience: Json = {"kind": "link"}
    if form.audience == "segment":
        if member_id_or_none(form.segment_id) is None:
            form.errors["segment_id"] = gettext("Choose the segment it is for.")
        audience = {"kind": "segment", "segment_id": form.segment_id}
    elif form.audience != "link":
        form.errors["audience"] = gettext("Choose who can grab it.")
    if form.errors:
        return None
    return {"packet_id": form.packet_id, "activity_id": form.activity_id, "points": points, "shares": shares,
            "audience": audience, "duration_minutes": int(form.duration), "message": form.message}  # fmt: skip


def router() -> APIRouter:
    api = APIRouter()

    @api.get("/red-packets", response_class=HTMLResponse)
    async def packets(request: Request, session: OpsSession, points: Points) -> HTMLResponse:
        return await _page(request, points, OpsPacketForm(packet_id=new_id()))

    @api.post("/red-packets", response_class=HTMLResponse)
    async def create(
        request: Request, session: OpsSession, points: Points,
        activity_id: Annotated[str, Form(max_length=64)] = "",
        amount: Annotated[str, Form(alias="points", max_length=16)] = "",
        shares: Annotated[str, Form(max_length=8)] = "", audience: Annotated[str, Form(max_length=16)] = "link",
        segment_id: Annotated[str, Form(max_length=64)] = "", duration: Annotated[str, Form(max_length=8)] = "",
        message: Annotated[str, Form(max_length=80)] = "", packet_id: Annotated[str, Form(max_length=64)] = "",
    ) -> Response:  # fmt: skip
        form = OpsPacketForm(activity_id, amount.strip(), shares.strip(), audience, segment_id, duration,
                             message.strip(), member_id_or_none(packet_id) or new_id())  # fmt: skip
        body = ops_packet_body(form)
        if body is None:
            return await _page(request, points, form, 422)
        made = await create_or_refuse(points, body, form, lambda status: _page(request, points, form, status))
        if isinstance(made, HTMLResponse):
            return made
        if made.get("link_token"):
            return console_of(request).pages.render(
                request, "ops/packets_created.html", 201, packet=shown(made), link=link_of(request, made["link_token"])
            )
        return redirect(request, "/ops/red-packets", gettext("Red packet created for the segment."))

    @api.post("/red-packets/{packet_id}/close", response_class=HTMLResponse)
    async def close(
        request: Request, session: OpsSession, points: Points, packet_id: Annotated[uuid.UUID, Path()]
    ) -> Response:
        try:
            closed = await points.close_red_packet(str(packet_id))
        except ApiError as error:
            if not error.refused:
                raise
            return await _page(request, points, OpsPacketForm(packet_id=new_id(), problem=error.detail), error.status)
        back = int(closed.get("returned_points") or 0)
        fmt = console_of(request).pages.formats(request)
        done = gettext("Closed. %(points)s points went back to the budget.") % {"points": fmt.points(back)}
        return redirect(request, "/ops/red-packets", done)

    return api


async def _page(request: Request, points: PointsApi, form: OpsPacketForm, status_code: int = 200) -> HTMLResponse:
    listed, activities, segments = await asyncio.gather(
        points.ops_red_packets(), points.activities(), points.segments()
    )
    funding = [a for a in activities if a.get("status") != "ended"]
    return console_of(request).pages.render(
        request, "ops/packets_list.html", status_code, form=form, packets=[shown(p) for p in listed],
        activity_choices=[("", gettext("Choose an activity"))] + [(a["activity_id"], a["name"]) for a in funding],
        segment_choices=[("", gettext("Choose a segment"))]
        + [(s["segment_id"], s["name"]) for s in segments["items"]],
        durations=duration_choices(),
    )  # fmt: skip
