"""The wallet's tier: the member's tier and its benefits, how far the next tier is, what keeps the tier at its
review, the programme's tiers, and the member's tier history (the rules: services/points/points/domain/tiers.py).

Dates of windows and periods are the programme's days, as the points service counts them; they are shown as dates.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from console.clients.base import ApiError
from console.rendering import gettext
from console.web import MemberSession, Points, console_of

Json = dict[str, Any]
HISTORY = 20


@dataclass(frozen=True)
class Change:
    """One line of the member's tier history, in words."""

    at: str
    words: str
    why: str
    qualifying_points: int
    valid_until: str | None


def change_words(change: Mapping[str, Any], names: Mapping[str, str]) -> Change:
    to = names.get(change["to_tier"] or "", change["to_tier"] or gettext("no tier"))
    words = {
        "upgrade": gettext("Up to %(tier)s"),
        "downgrade": gettext("Down to %(tier)s"),
        "confirmed": gettext("%(tier)s kept for another period"),
    }.get(change["direction"], "%(tier)s") % {"tier": to}
    why = {
        "qualified": gettext("Your qualifying points reached it"),
        "review_confirmed": gettext("Review: you earned enough to keep it"),
        "review_downgraded": gettext("Review: fewer qualifying points than it needs"),
        "tier_set_changed": gettext("The programme's tiers changed"),
    }.get(change["reason"], change["reason"])
    return Change(change["at"], words, why, int(change["qualifying_points"]), change.get("valid_until"))


def window_words(qualification: str) -> str:
    if qualification == "calendar_year":
        return gettext("this calendar year")
    return gettext("the last 12 months")


def router() -> APIRouter:
    api = APIRouter(prefix="/wallet", tags=["wallet"])

    @api.get("/tier", response_class=HTMLResponse)
    async def tier(request: Request, session: MemberSession, points: Points) -> HTMLResponse:
        try:
            mine, tier_set = await asyncio.gather(points.member_tier(limit=HISTORY), points.tier_set())
        except ApiError as error:
            if error.status != 404:  # the programme has no tier set yet
                raise
            return console_of(request).pages.render(request, "wallet/tier.html", mine=None, tier_set=None)
        names = {t["code"]: t["name"] for t in tier_set["tiers"]}
        return console_of(request).pages.render(
            request, "wallet/tier.html", mine=mine, tier_set=tier_set, window=window_words(tier_set["qualification"]),
            history=[change_words(c, names) for c in mine["history"]],
        )  # fmt: skip

    return api
