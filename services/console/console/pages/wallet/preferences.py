"""The member's preferences: the channel on which it wants to hear of activities aimed at it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse

from console.clients.base import ApiError
from console.clients.services import PointsApi
from console.pages.wallet.share_links import channel_names
from console.rendering import gettext
from console.web import MemberSession, Points, console_of, redirect

MESSAGE_CHANNELS = ("app", "sms", "wechat", "branch")
"""The channels the bank's messaging systems deliver on."""


def choices() -> list[tuple[str, str]]:
    names = channel_names()
    return [("", gettext("Let the programme choose"))] + [(c, names[c]) for c in MESSAGE_CHANNELS]


def router() -> APIRouter:
    api = APIRouter(prefix="/wallet", tags=["wallet"])

    @api.get("/preferences", response_class=HTMLResponse)
    async def preferences(request: Request, session: MemberSession, points: Points) -> HTMLResponse:
        return await _page(request, points)

    @api.post("/preferences", response_class=HTMLResponse)
    async def save(
        request: Request, session: MemberSession, points: Points, channel: Annotated[str, Form(max_length=16)] = ""
    ) -> Response:
        if channel and channel not in MESSAGE_CHANNELS:
            return await _page(request, points, gettext("Choose one of the channels listed."), 422)
        try:
            await points.set_preferences(channel or None)
        except ApiError as error:
            if not error.refused:
                raise
            return await _page(request, points, error.detail, error.status)
        return redirect(request, "/wallet/preferences", gettext("Your preference is saved."))

    return api


async def _page(request: Request, points: PointsApi, problem: str = "", status_code: int = 200) -> HTMLResponse:
    current = (await points.preferences()).get("channel") or ""
    return console_of(request).pages.render(
        request, "wallet/preferences.html", status_code, current=current, choices=choices(), problem=problem,
        names=channel_names(),
    )  # fmt: skip
