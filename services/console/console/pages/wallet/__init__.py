"""The member wallet: one module per part, one router for the area (every page under /wallet)."""

from __future__ import annotations

from fastapi import APIRouter

from console.pages.wallet import earnings, exchange, home, my_data, packets, preferences, share_links, tier


def router() -> APIRouter:
    api = APIRouter(tags=["wallet"])
    api.include_router(home.router())
    api.include_router(earnings.router())
    api.include_router(tier.router())
    api.include_router(packets.router())
    api.include_router(preferences.router())
    api.include_router(my_data.router())
    api.include_router(exchange.router())
    api.include_router(share_links.router())  # and the public /s/{code}
    return api
