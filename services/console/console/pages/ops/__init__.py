"""The ops console: one module per part, one router for the area."""

from __future__ import annotations

from fastapi import APIRouter

from console.pages.ops import activities, dashboard, members, partners, programme, segments


def router() -> APIRouter:
    api = APIRouter(tags=["ops"])
    for part in (dashboard, members, partners, programme, segments, activities):
        api.include_router(part.router(), prefix="/ops")
    return api
