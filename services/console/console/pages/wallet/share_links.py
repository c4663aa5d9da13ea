"""Share links: a member shares an activity or a reward with its own link, and anyone may open one at /s/{code}.

Opening a link records the open with the points service (as the member, when a member is signed in), then goes on
to what the link is for in the wallet. Somebody not signed in is recorded anonymously and sent to sign in first;
coming back, the member claims that anonymous open as its own, so that what it does next counts for the link. A
form that makes a link carries a link id chosen when it is rendered, so a double submit makes one link.
"""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Path, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from console.clients.base import ApiError
from console.clients.services import PointsApi
from console.pages.share import PRIVATE, not_found
from console.pages.wallet.home import offer_href
from console.rendering import gettext
from console.web import MemberSession, Points, console_of
from loyalty_runtime.auth import Role

Json = dict[str, Any]
CODE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
"""The shape of a share link's code; anything else is not asked for."""
MEMBER_CHANNELS = ("wechat", "sms", "app", "web")
"""Where a member says it shares its link (the points service takes every attribution channel)."""
Text = Annotated[str, Form(max_length=128)]


def channel_names() -> dict[str, str]:
    return {
        "app": gettext("The bank's app"), "sms": gettext("SMS"), "wechat": gettext("WeChat"),
        "branch": gettext("A branch"), "web": gettext("The web"), "partner": gettext("A partner"),
    }  # fmt: skip


def share_url(request: Request, code: str) -> str:
    return f"{console_of(request).settings.public_url.rstrip('/')}/s/{code}"


def target_href(target: Json) -> str:
    """The wallet page of what a link is for."""
    if target.get("kind") == "offer" and target.get("partner_id") and target.get("offer_id"):
        return offer_href(str(target["partner_id"]), str(target["offer_id"]))
    return "/wallet/activities"


def uuid_or_none(text: str) -> str | None:
    try:
        return str(uuid.UUID(text.strip()))
    except ValueError:
        return None


def router() -> APIRouter:
    api = APIRouter(tags=["wallet"])

    @api.get("/wallet/share-links", response_class=HTMLResponse)
    async def share_links(request: Request, session: MemberSession, points: Points) -> HTMLResponse:
        return await _page(request, points)

    @api.post("/wallet/share-links", response_class=HTMLResponse)
    async def share(
        request: Request, session: MemberSession, points: Points, kind: Annotated[str, Form(max_length=16)],
        link_id: Annotated[str, Form(max_length=64)], activity_id: Text = "", partner_id: Text = "",
        offer_id: Text = "", channel: Annotated[str, Form(max_length=16)] = "",
    ) -> HTMLResponse:  # fmt: skip
        target: Json = {"kind": "offer", "partner_id": partner_id, "offer_id": offer_id}
        if kind == "activity":
            target = {"kind": "activity", "activity_id": activity_id}
        body: Json = {"link_id": uuid_or_none(link_id) or str(uuid.uuid4()), "target": target}
        if channel in MEMBER_CHANNELS:
            body["channel"] = channel
        try:
            made = await points.create_share_link(body)
        except ApiError as error:
            if not error.refused:
                raise
            return await _page(request, points, problem=error.detail, status_code=error.status)
        return await _page(request, points, made=made)

    @api.get("/s/{code}", response_model=None)
    async def opened(
        request: Request, code: Annotated[str, Path(max_length=64)], o: Annotated[str, Query(max_length=64)] = ""
    ) -> Response:
        """Record the open (the signed-in member's), then go to the link's target; sign in first when needed."""
        if not CODE.match(code):
            return _missing(request)
        session = request.state.session
        member = session is not None and session.identity.role is Role.MEMBER
        points = PointsApi(console_of(request).points, session.bearer if member else None)
        try:
            answer = await points.open_share_link(code, uuid_or_none(o) if member else None)
        except ApiError as error:
            if error.status == 404:
                return _missing(request)
            raise
        target = target_href(answer["target"])
        if session is None:
            back = f"/s/{code}" + (f"?o={answer['open_id']}" if answer.get("open_id") else "")
            target = f"/signin?next={quote(back, safe='')}"
        return RedirectResponse(target, status_code=303, headers=PRIVATE)

    return api


async def _page(
    request: Request, points: PointsApi, *, made: Json | None = None, problem: str = "", status_code: int = 200
) -> HTMLResponse:
    links = (await points.share_links())["items"]
    shown = [{**link, "url": share_url(request, link["code"]), "href": target_href(link["target"])} for link in links]
    return console_of(request).pages.render(
        request, "wallet/share_links.html", status_code, links=shown, problem=problem, channels=channel_names(),
        made={**made, "url": share_url(request, made["code"])} if made else None,
    )  # fmt: skip


def _missing(request: Request) -> Response:
    return not_found(request, gettext("No link here"),
                     gettext("This share link leads nowhere: check that it was copied whole."))  # fmt: skip
