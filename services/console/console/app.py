"""Wiring only: settings, the session store, the API clients, the pages."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from console import auth, i18n
from console.clients.base import ServiceClient
from console.pages import ops, portal, portal_exchange, portal_webhooks, share, wallet
from console.rendering import STATIC, Pages
from console.sessions import SessionStore
from console.settings import Settings
from console.web import Console, install_error_pages, prepare_request, verify_csrf
from loyalty_runtime import db

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
DATABASE = "loyalty_console"
log = logging.getLogger(__name__)


def build(settings: Settings | None = None, *, transport: httpx.AsyncBaseTransport | None = None) -> FastAPI:
    settings = settings or Settings()
    timeout = settings.api_timeout_seconds
    console = Console(
        settings=settings,
        pages=Pages(i18n.load_catalogs(), settings.display_timezone),
        sessions=None,
        partners=ServiceClient("partners", settings.partners_url, timeout, transport),
        points=ServiceClient("points", settings.points_url, timeout, transport),
        redemption=ServiceClient("redemption", settings.redemption_url, timeout, transport),
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        pool = await db.create_pool(settings.dsn(DATABASE), min_size=1, max_size=settings.database_pool_max)
        console.sessions = SessionStore(pool)
        sweeper = asyncio.create_task(sweep_sessions(console))
        try:
            yield
        finally:
            sweeper.cancel()
            for client in (console.partners, console.points, console.redemption):
                await client.close()
            await pool.close()

    app = FastAPI(
        title="console", description="The member wallet, the partner portal and the ops console.",
        lifespan=lifespan, dependencies=[Depends(verify_csrf)], docs_url=None, redoc_url=None, openapi_url=None,
    )  # fmt: skip
    app.state.console = console
    app.middleware("http")(prepare_request)
    install_error_pages(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(health_router(console))
    app.include_router(auth.router(oidc_client(app, settings, transport)))
    for area in (wallet, portal, portal_webhooks, portal_exchange, ops, share):
        app.include_router(area.router())
    return app


def oidc_client(app: FastAPI, settings: Settings, transport: httpx.AsyncBaseTransport | None = None) -> Any | None:
    """Authlib's OpenID Connect client for the bank's identity provider, when one is configured."""
    if not settings.oidc_issuer:
        return None
    from authlib.integrations.starlette_client import OAuth
    from starlette.middleware.sessions import SessionMiddleware

    # Holds only the OpenID Connect state and nonce between the redirect and the callback.
    app.add_middleware(
        SessionMiddleware, secret_key=settings.session_secret, session_cookie="console_oidc", max_age=600,
        same_site="lax", https_only=settings.secure_cookies,
    )  # fmt: skip
    oauth = OAuth()
    oauth.register(
        "bank",
        client_id=settings.oidc_client_id,
        client_secret=settings.oidc_client_secret,
        server_metadata_url=settings.oidc_issuer.rstrip("/") + "/.well-known/openid-configuration",
        client_kwargs={
            "scope": settings.oidc_scopes,
            "code_challenge_method": "S256",
            **({"transport": transport} if transport else {}),
        },
    )
    return oauth.create_client("bank")


def health_router(console: Console) -> Any:
    from fastapi import APIRouter

    api = APIRouter(tags=["health"])

    @api.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok", "service": "console"}

    @api.get("/ready", response_model=None)
    async def ready() -> JSONResponse:
        try:
            async with asyncio.timeout(2):
                await console.store().reachable()  # a probe reads; the hourly sweeper deletes expired sessions
            return JSONResponse({"status": "ready", "checks": {"database": "ok"}})
        except Exception as error:  # a readiness probe reports any failure instead of raising
            return JSONResponse({"status": "not ready", "checks": {"database": f"failed: {error}"}}, status_code=503)

    return api


async def sweep_sessions(console: Console) -> None:
    """Expired sessions are deleted hourly; a failure is logged and tried again next hour."""
    while True:
        try:
            removed = await console.store().forget_expired(console.clock())
            if removed:
                log.info("expired sessions removed", extra={"count": removed})
        except Exception:
            log.exception("could not remove expired sessions; trying again in an hour")
        await asyncio.sleep(3600)
