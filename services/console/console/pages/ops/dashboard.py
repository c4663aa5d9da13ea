"""Ops console: the dashboard. Members and points from the ledger, dead letters and consumer lag of each service.

Each service is read on its own: one that is down shows as unavailable and the rest of the page still renders.
`read`, `refused` and `ops_reads` serve the other ops pages too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from console.clients.base import ApiError, Json
from console.clients.services import OpsReads
from console.sessions import Session
from console.web import OpsSession, Points, console_of

ServiceName = Literal["points", "partners", "redemption"]
SERVICES: tuple[ServiceName, ...] = ("points", "partners", "redemption")
REFRESH_SECONDS = 10


@dataclass(frozen=True)
class Reading:
    """A service's answer, or why it could not be read (`status` of the refusal, 503 when unreachable)."""

    value: Any = None
    problem: str = ""
    status: int = 200

    @property
    def ok(self) -> bool:
        return not self.problem


async def read(call: Awaitable[Json]) -> Reading:
    """The answer, or the refusal as a Reading; an expired session (401) still sends the person to sign in."""
    try:
        return Reading(await call)
    except ApiError as error:
        if error.status == 401:
            raise
        return Reading(problem=str(error), status=error.status)


def ops_reads(request: Request, session: Session, service: ServiceName) -> OpsReads:
    """The ops reads every service offers, with the signed-in person's token."""
    console = console_of(request)
    client = {"points": console.points, "partners": console.partners, "redemption": console.redemption}[service]
    return OpsReads(client, session.bearer)


@dataclass(frozen=True)
class ServiceTile:
    service: ServiceName
    dead_letters: Reading
    consumers: Reading

    @property
    def waiting(self) -> int:
        return sum(int(t["waiting"]) for t in self.dead_letters.value["topics"]) if self.dead_letters.ok else 0

    @property
    def lag(self) -> int:
        return sum(int(g["lag"]) for g in self.consumers.value["groups"]) if self.consumers.ok else 0


async def service_tile(request: Request, session: Session, service: ServiceName) -> ServiceTile:
    reads = ops_reads(request, session, service)
    dead_letters, consumers = await asyncio.gather(read(reads.dead_letter_summary()), read(reads.consumers()))
    return ServiceTile(service, dead_letters, consumers)


async def dashboard_context(request: Request, session: Session, points: Points) -> dict[str, Any]:
    summary, *tiles = await asyncio.gather(
        read(points.summary()), *(service_tile(request, session, s) for s in SERVICES)
    )
    return {"summary": summary, "tiles": tiles, "refresh_seconds": REFRESH_SECONDS}


def router() -> APIRouter:
    api = APIRouter()

    @api.get("", response_class=HTMLResponse)
    async def home(request: Request, session: OpsSession, points: Points) -> HTMLResponse:
        context = await dashboard_context(request, session, points)
        return console_of(request).pages.render(request, "ops/home.html", **context)

    @api.get("/dashboard", response_class=HTMLResponse)
    async def tiles(request: Request, session: OpsSession, points: Points) -> HTMLResponse:
        """The dashboard's figures alone, for htmx to swap in every REFRESH_SECONDS."""
        context = await dashboard_context(request, session, points)
        return console_of(request).pages.fragment(request, "ops/dashboard_tiles.html", **context)

    return api
