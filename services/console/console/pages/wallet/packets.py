"""The wallet's red packets: send one from your points to friends or by link, open one, see who grabbed what.

A packet's id is chosen when the form is rendered, so a double submit creates it once (the points service
answers the same id and body with the first packet). A link packet's link is shown once, on the page that
answers its creation: the points service keeps only its hash.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Form, Path, Request, Response
from fastapi.responses import HTMLResponse

from console.clients.base import ApiError
from console.clients.services import PointsApi
from console.pages.wallet.home import formats, member_id_or_none, new_id, render, whole_number
from console.rendering import gettext
from console.web import MemberSession, Points, console_of, redirect

Json = dict[str, Any]
PacketRef = Annotated[uuid.UUID, Path()]
LinkToken = Annotated[str, Path(min_length=16, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
MAX_POINTS = 1_000_000
MAX_SHARES = 1_000
MAX_FRIENDS = 200
DURATIONS = (10, 60, 24 * 60, 7 * 24 * 60)
"""The deadlines offered, in minutes (the points service takes 1 minute to 7 days)."""
BADGES = {"open": "active", "exhausted": "final", "expired": "ended", "closed": "ended"}
"""The badge colour of a packet's state (console.css's existing classes)."""


def state_words(state: str) -> str:
    words = {
        "open": gettext("Open"),
        "exhausted": gettext("All grabbed"),
        "expired": gettext("Expired: the rest went back"),
        "closed": gettext("Closed: the rest went back"),
    }
    return words.get(state, state)


def duration_choices() -> list[tuple[str, str]]:
    words = {10: gettext("10 minutes"), 60: gettext("1 hour"), 24 * 60: gettext("24 hours"),
             7 * 24 * 60: gettext("7 days")}  # fmt: skip
    return [(str(minutes), words[minutes]) for minutes in DURATIONS]


def shown(packet: Json) -> Json:
    """The packet with its state in words and its badge."""
    state = str(packet["state"])
    return {**packet, "state_words": state_words(state), "badge": BADGES.get(state, "pending")}


def link_of(request: Request, token: str) -> str:
    return f"{console_of(request).settings.public_url.rstrip('/')}/wallet/red-packets/link/{token}"


@dataclass
class PacketForm:
    points: str = ""
    shares: str = ""
    audience: str = "circle"
    friends: str = ""
    duration: str = str(24 * 60)
    message: str = ""
    packet_id: str = ""
    errors: dict[str, str] = field(default_factory=dict)
    problem: str = ""


def friend_ids(text: str) -> tuple[list[str], list[str]]:
    """Member ids typed one per line (or separated by commas or spaces): (the ids, what is not an id)."""
    found, wrong = [], []
    for word in (w for w in re.split(r"[\s,;]+", text) if w):
        member = member_id_or_none(word)
        if member is None:
            wrong.append(word)
        elif member not in found:
            found.append(member)
    return found, wrong


def packet_body(form: PacketForm) -> Json | None:
    """The API's body for the form, or None with `form.errors` saying what to fix."""
    points, shares = whole_number(form.points, 1, MAX_POINTS), whole_number(form.shares, 1, MAX_SHARES)
    if points is None:
        form.errors["points"] = gettext("Enter a whole number of points, from 1 to 1,000,000.")
    if shares is None:
        form.errors["shares"] = gettext("Enter how many friends can grab it, from 1 to 1,000.")
    if form.duration not in {str(m) for m in DURATIONS}:
        form.errors["duration"] = gettext("Choose how long it stays open.")
    audience: Json = {"kind": "link"}
    if form.audience == "circle":  # the friends the ledger knows: gifts and invitations, either way
        audience = {"kind": "friends"}
    elif form.audience == "friends":
        friends, wrong = friend_ids(form.friends)
        if wrong or not 1 <= len(friends) <= MAX_FRIENDS:
            form.errors["friends"] = gettext(
                "Enter 1 to 200 member ids, one per line, as your friends' Invite pages show them."
            )
        audience = {"kind": "friends", "member_ids": friends}
    elif form.audience != "link":
        form.errors["audience"] = gettext("Choose who can grab it.")
    if form.errors:
        return None
    return {"packet_id": form.packet_id, "points": points, "shares": shares, "audience": audience,
            "duration_minutes": int(form.duration), "message": form.message}  # fmt: skip


class PacketFormLike(Protocol):
    problem: str
    packet_id: str


async def create_or_refuse(
    points: PointsApi, body: Json, form: PacketFormLike, again: Callable[[int], Awaitable[HTMLResponse]]
) -> Json | HTMLResponse:
    """The packet the points service made, or the form `again` with its refusal; a 409 means the form's id names
    another packet, so the form gets an id of its own. Members' and ops' forms alike."""
    try:
        made: Json = await points.create_red_packet(body)
    except ApiError as error:
        if not error.refused:
            raise
        form.problem = error.detail
        if error.status == 409:
            form.packet_id = new_id()
        return await again(error.status)
    return made


def router() -> APIRouter:
    api = APIRouter(prefix="/wallet", tags=["wallet"])

    # The link routes come first: a token is never a packet id.
    @api.get("/red-packets/link/{token}", response_class=HTMLResponse)
    async def link_landing(request: Request, session: MemberSession, points: Points, token: LinkToken) -> Response:
        return await _landing(request, points, token)

    @api.post("/red-packets/link/{token}", response_class=HTMLResponse)
    async def grab_by_link(request: Request, session: MemberSession, points: Points, token: LinkToken) -> Response:
        try:
            got = await points.grab_red_packet_by_link(token)
        except ApiError as error:
            if not error.refused:
                raise
            return await _landing(request, points, token, error.detail, error.status)
        return redirect(request, f"/wallet/red-packets/{got['packet_id']}", grabbed_words(request, got))

    @api.get("/red-packets", response_class=HTMLResponse)
    async def packets(request: Request, session: MemberSession, points: Points) -> HTMLResponse:
        return await _home(request, points, PacketForm(packet_id=new_id()))

    @api.post("/red-packets", response_class=HTMLResponse)
    async def create(
        request: Request, session: MemberSession, points: Points,
        amount: Annotated[str, Form(alias="points", max_length=16)], shares: Annotated[str, Form(max_length=8)],
        packet_id: Annotated[str, Form(max_length=64)], audience: Annotated[str, Form(max_length=16)] = "circle",
        friends: Annotated[str, Form(max_length=10_000)] = "", duration: Annotated[str, Form(max_length=8)] = "",
        message: Annotated[str, Form(max_length=80)] = "",
    ) -> Response:  # fmt: skip
        form = PacketForm(amount.strip(), shares.strip(), audience, friends.strip(), duration, message.strip(),
                          member_id_or_none(packet_id) or new_id())  # fmt: skip
        body = packet_body(form)
        if body is None:
            return await _home(request, points, form, 422)
        made = await create_or_refuse(points, body, form, lambda status: _home(request, points, form, status))
        if isinstance(made, HTMLResponse):
            return made
        if made.get("link_token"):
            return render(request, "wallet/packets_created.html", 201, packet=shown(made),
                          link=link_of(request, made["link_token"]))  # fmt: skip
        done = gettext("Your red packet of %(points)s points is on its way.")
        return redirect(request, f"/wallet/red-packets/{made['packet_id']}",
                        done % {"points": formats(request).points(made["points"])})  # fmt: skip

    @api.get("/red-packets/{packet_id}", response_class=HTMLResponse)
    async def packet(request: Request, session: MemberSession, points: Points, packet_id: PacketRef) -> HTMLResponse:
        return await _packet(request, points, str(packet_id))

    @api.post("/red-packets/{packet_id}/grab", response_class=HTMLResponse)
    async def grab(request: Request, session: MemberSession, points: Points, packet_id: PacketRef) -> Response:
        try:
            got = await points.grab_red_packet(str(packet_id))
        except ApiError as error:
            if not error.refused:
                raise
            return await _packet(request, points, str(packet_id), error.detail, error.status)
        return redirect(request, f"/wallet/red-packets/{packet_id}", grabbed_words(request, got))

    @api.post("/red-packets/{packet_id}/close", response_class=HTMLResponse)
    async def close(request: Request, session: MemberSession, points: Points, packet_id: PacketRef) -> Response:
        try:
            closed = await points.close_red_packet(str(packet_id))
        except ApiError as error:
            if not error.refused:
                raise
            return await _packet(request, points, str(packet_id), error.detail, error.status)
        back = int(closed.get("returned_points") or 0)
        done = gettext("Closed. %(points)s points came back to you.") % {"points": formats(request).points(back)}
        return redirect(request, f"/wallet/red-packets/{packet_id}", done)

    return api


def grabbed_words(request: Request, got: Json) -> str:
    return gettext("You grabbed %(points)s points!") % {"points": formats(request).points(int(got["points"]))}


async def _home(request: Request, points: PointsApi, form: PacketForm, status_code: int = 200) -> HTMLResponse:
    mine, balance = await asyncio.gather(points.member_red_packets(), points.balance())
    return render(
        request, "wallet/packets_list.html", status_code, form=form, balance=balance, durations=duration_choices(),
        created=[shown(p) for p in mine["created"]], grabbed=[shown(p) for p in mine["grabbed"]],
    )  # fmt: skip


async def _packet(
    request: Request, points: PointsApi, packet_id: str, problem: str = "", status_code: int = 200
) -> HTMLResponse:
    """The packet, what you may do with it, and who grabbed what; a refusal is shown above it."""
    try:
        found = await points.red_packet(packet_id)
    except ApiError as error:
        if not (error.refused and problem):
            raise
        raise ApiError(error.service, status_code, problem) from None  # not for you: the grab's reason, as a page
    can_grab = found["state"] == "open" and not found["sent_by_you"] and found["your_points"] is None
    can_grab = can_grab and found["audience"] != "link"
    can_close = found["sent_by_you"] and found["state"] == "open"
    return render(request, "wallet/packets_detail.html", status_code, packet=shown(found), problem=problem,
                  can_grab=can_grab, can_close=can_close)  # fmt: skip


async def _landing(
    request: Request, points: PointsApi, token: str, problem: str = "", status_code: int = 200
) -> Response:
    """Who sent it, its message and what is left, with the button that opens it; yours or opened: its page."""
    found = await points.red_packet_by_link(token)
    if found["your_points"] is not None or found["sent_by_you"]:
        return redirect(request, f"/wallet/red-packets/{found['packet_id']}")
    return render(request, "wallet/packets_link.html", status_code, packet=shown(found), token=token,
                  problem=problem, can_grab=found["state"] == "open")  # fmt: skip
