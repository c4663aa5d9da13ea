"""The ops console: one module per part, one router for the area."""

from __future__ import annotations

from fastapi import APIRouter

from console.pages.ops import (
    activities,
    adjustments,
    attribution,
    audit,
    dashboard,
    exchange,
    imports,
    liability,
    member_data,
    members,
    packets,
    partners,
    programme,
    reviews,
    segments,
    tiers,
)


def router() -> APIRouter:
    api = APIRouter(tags=["ops"])
    for part in (
        dashboard,
        members,
        partners,
        programme,
        segments,
        activities,
        packets,
        tiers,
        attribution,
        adjustments,
        audit,
        liability,
        reviews,
        imports,
        member_data,
        exchange,
    ):
        api.include_router(part.router(), prefix="/ops")
    return api
