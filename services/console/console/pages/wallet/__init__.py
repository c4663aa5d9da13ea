"""The member wallet: one module per part, one router for the area (every page under /wallet)."""

from __future__ import annotations

from fastapi import APIRouter

from console.pages.wallet import home


def router() -> APIRouter:
    api = APIRouter(tags=["wallet"])
    api.include_router(home.router())
    return api
