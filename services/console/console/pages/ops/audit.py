"""Ops console: the audit log of the three services in one search, newest first, before and after as a diff.

Each service keeps its own log and pages it by its own entry numbers; the page asks all three for a page each,
merges them by time and keeps one cursor per service for "older", so that no entry is skipped nor shown twice.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from console.clients.base import ApiError
from console.clients.services import OpsReads
from console.rendering import gettext
from console.web import OpsSession, Partners, Points, Redemption, console_of

PAGE = 50
SERVICES = ("points", "partners", "redemption")
SHOWN_VALUE = 80


@dataclass(frozen=True)
class Change:
    field: str
    before: str
    after: str


def _text(value: Any) -> str:
    if value is None:
        return "—"
    shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    return shown if len(shown) <= SHOWN_VALUE else shown[: SHOWN_VALUE - 1] + "…"


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested objects as `a.b` keys (one level of lists stays a value)."""
    if not isinstance(value, dict):
        return {prefix or "value": value} if value is not None else {}
    found: dict[str, Any] = {}
    for key, inner in value.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        found.update(_flat(inner, name) if isinstance(inner, dict) else {name: inner})
    return found


def diff(before: Any, after: Any) -> list[Change]:
    """The fields that differ between before and after (every field of the one that exists, if only one does)."""
    old, new = _flat(before), _flat(after)
    return [
        Change(key, _text(old.get(key)), _text(new.get(key)))
        for key in sorted(old.keys() | new.keys())
        if old.get(key) != new.get(key)
    ]


def _moment(text: str, *, end: bool) -> str | None:
    """A date typed in the form as the API's moment (UTC): its start, or for `to` the start of the next day."""
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        return None
    return datetime.combine(day + timedelta(days=1 if end else 0), time(0)).isoformat() + "Z"


def _cursor(text: str) -> dict[str, int]:
    """`points:12,partners:4` -> the entry number to continue below, per service."""
    found = {}
    for part in text.split(","):
        name, _, number = part.partition(":")
        if name in SERVICES and number.isdigit():
            found[name] = int(number)
    return found


async def _search(api: OpsReads, query: dict[str, str | int | None]) -> dict[str, Any] | str:
    try:
        page: dict[str, Any] = await api.audit(**query)
    except ApiError as error:
        return error.detail
    return page


def merge(pages: dict[str, dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The newest PAGE entries of all services, and where each service continues (absent: nothing older)."""
    every = [{**entry, "service": name} for name, page in pages.items() for entry in page["items"]]
    every.sort(key=lambda e: (datetime.fromisoformat(e["at"]), e["seq"]), reverse=True)
    shown = every[:PAGE]
    after: dict[str, int] = {}
    for name, page in pages.items():
        mine = [e for e in shown if e["service"] == name]
        cut = len(mine) < len(page["items"])
        if cut and mine:
            after[name] = mine[-1]["seq"]
        elif cut:
            after[name] = page["items"][0]["seq"] + 1
        elif page.get("next_before") is not None:
            after[name] = page["next_before"]
    return shown, after


def router() -> APIRouter:
    api = APIRouter()

    @api.get("/audit", response_class=HTMLResponse)
    async def audit(
        request: Request, session: OpsSession, points: Points, partners: Partners, redemption: Redemption,
        actor: Annotated[str, Query(max_length=200)] = "", action: Annotated[str, Query(max_length=200)] = "",
        subject: Annotated[str, Query(max_length=300)] = "",
        since: Annotated[str, Query(alias="from", max_length=10)] = "",
        until: Annotated[str, Query(alias="to", max_length=10)] = "",
        before: Annotated[str, Query(max_length=200)] = "",
    ) -> HTMLResponse:  # fmt: skip
        apis: dict[str, OpsReads] = {"points": points, "partners": partners, "redemption": redemption}
        cursor = _cursor(before)
        asked = [name for name in SERVICES if not before or name in cursor]
        query: dict[str, str | int | None] = {
            "actor": actor.strip(), "action": action.strip(), "subject": subject.strip(), "limit": PAGE,
            "from": _moment(since, end=False), "to": _moment(until, end=True),
        }  # fmt: skip
        answers = await asyncio.gather(*(_search(apis[n], {**query, "before": cursor.get(n)}) for n in asked))
        pages = {n: a for n, a in zip(asked, answers, strict=True) if isinstance(a, dict)}
        problems = {n: a for n, a in zip(asked, answers, strict=True) if isinstance(a, str)}
        shown, after = merge(pages)
        older = ",".join(f"{name}:{seq}" for name, seq in after.items())
        filters = {"actor": actor, "action": action, "subject": subject, "from": since, "to": until}
        entries = [{**e, "changes": diff(e.get("before"), e.get("after"))} for e in shown]
        return console_of(request).pages.render(
            request, "ops/audit.html", entries=entries, filters=filters, older=older, problems=problems,
            older_query={**{k: v for k, v in filters.items() if v}, "before": older},
            service_names={"points": gettext("Points"), "partners": gettext("Partners"),
                           "redemption": gettext("Redemption")},
        )  # fmt: skip

    return api
