"""Share cards for anyone with the link: no sign-in, no session, no form, so no CSRF.

The page and its image ask the points service's public endpoint without anyone's token, and show only what the
card holds (its member chose it): a display name, a day's points and their sources. A link that is unknown or
revoked answers the same 404 page. Nothing is cached or indexed (the link is the only key to the card), no
referrer leaves the page, and the image is an SVG drawn here, its text escaped, without fonts or images from
elsewhere, under a CSP of its own that allows nothing.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import HTMLResponse

from console.clients.base import ApiError
from console.clients.services import PointsApi
from console.pages.wallet.earnings import SOURCES, source_names
from console.rendering import gettext
from console.web import console_of

TOKEN = re.compile(r"^[A-Za-z0-9_-]{32}$")
"""The shape of a card's token (secrets.token_urlsafe(24)); anything else is not asked for."""
PRIVATE = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex, nofollow", "Referrer-Policy": "no-referrer"}
SVG_POLICY = "default-src 'none'; frame-ancestors 'none'; sandbox"
Token = Annotated[str, Path(max_length=64)]


def router() -> APIRouter:
    api = APIRouter(tags=["share"])

    # The image first: "/share/{token}" would also match "<token>.svg".
    @api.get("/share/{token}.svg", response_model=None)
    async def card_image(request: Request, token: Token) -> Response:
        card = await _card(request, token)
        if card is None:
            return _missing(request)
        svg = console_of(request).pages.env.get_template("share/card.svg").render(card=_shown(request, card))
        headers = PRIVATE | {"Content-Security-Policy": SVG_POLICY}
        return Response(svg, media_type="image/svg+xml", headers=headers)

    @api.get("/share/{token}", response_class=HTMLResponse)
    async def card_page(request: Request, token: Token) -> Response:
        card = await _card(request, token)
        if card is None:
            return _missing(request)
        image = f"{console_of(request).settings.public_url.rstrip('/')}/share/{token}.svg"
        page = console_of(request).pages.render(
            request, "share/card.html", card=_shown(request, card), image=image, image_path=f"/share/{token}.svg"
        )
        page.headers.update(PRIVATE)
        return page

    return api


async def _card(request: Request, token: str) -> dict[str, Any] | None:
    """The card at this link, or None (unknown, revoked, or not a token at all)."""
    if not TOKEN.match(token):
        return None
    try:
        card: dict[str, Any] = await PointsApi(console_of(request).points, None).shared_card(token)
    except ApiError as error:
        if error.status == 404:
            return None
        raise
    return card


def _shown(request: Request, card: dict[str, Any]) -> dict[str, Any]:
    """The card in the reader's language: its figures formatted, its sources named, in the programme's order."""
    fmt = console_of(request).pages.formats(request)
    names = source_names()
    sources = card.get("sources") or {}
    return {
        "programme": card["programme"], "display_name": card.get("display_name"), "date": fmt.date(card["date"]),
        "points": fmt.points(card["points"]),
        "sources": [(names[s], fmt.points(sources[s])) for s in SOURCES if sources.get(s)],
    }  # fmt: skip


def _missing(request: Request) -> Response:
    message = gettext("This link shows no card: it may have been revoked by the person who shared it.")
    return not_found(request, gettext("No card here"), message)


def not_found(request: Request, title: str, message: str) -> Response:
    """The 404 page of a public link (a share card's, a share link's): private, never cached nor indexed."""
    page = console_of(request).pages.render(request, "error.html", 404, title=title, home="/", message=message)
    page.headers.update(PRIVATE)
    return page
