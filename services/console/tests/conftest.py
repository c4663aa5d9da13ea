"""A console on a real database, in front of fake services that answer what each test says (and record calls)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from console.app import build
from console.settings import Settings
from loyalty_runtime.auth import Role, TokenAuthority

Answer = Callable[[httpx.Request], httpx.Response]
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class FakeServices:
    """Routes by (service port's name, method, path); anything unrouted answers 404 like a real service."""

    routes: dict[tuple[str, str], Answer] = field(default_factory=dict)
    calls: list[httpx.Request] = field(default_factory=list)

    def answer(
        self, method: str, url: str, body: Any = None, status: int = 200, headers: dict[str, str] | None = None
    ) -> None:
        self.routes[(method, url)] = lambda _r: httpx.Response(status, json=body, headers=headers)

    def on(self, method: str, url: str, answer: Answer) -> None:
        self.routes[(method, url)] = answer

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request)
        url = f"{request.url.scheme}://{request.url.host}{request.url.path}"
        route = self.routes.get((request.method, url))
        if route is None:
            return httpx.Response(404, json={"detail": "Not Found"})
        return route(request)

    def bearer_subjects(self) -> list[tuple[str, str]]:
        """(role, subject) of the token each call carried."""
        found = []
        for call in self.calls:
            token = call.headers["authorization"].removeprefix("Bearer ")
            claims = TokenAuthority(SECRET).verify(token)
            found.append((claims.role.value, claims.subject))
        return found


SECRET = "test-console-secret-with-thirty-two-plus-characters"
POINTS = "http://points.test"
PARTNERS = "http://partners.test"
REDEMPTION = "http://redemption.test"


@dataclass
class Browser:
    """An httpx client that keeps cookies, plus the CSRF token of the current session."""

    client: httpx.AsyncClient
    csrf: str = ""

    async def sign_in(self, role: Role, subject: str, partner_id: str = "", display: str = "") -> httpx.Response:
        page = await self.client.get("/signin")
        token = CSRF.search(page.text)
        assert token, page.text[:500]
        answer = await self.client.post(
            "/signin/local",
            data={
                "csrf_token": token.group(1),
                "role": role.value,
                "subject": subject,
                "partner_id": partner_id,
                "display": display,
            },
        )
        home = await self.client.get(answer.headers["location"])
        found = CSRF.search(home.text)
        self.csrf = found.group(1) if found else ""
        return answer

    async def submit(self, path: str, data: dict[str, str]) -> httpx.Response:
        return await self.client.post(path, data={"csrf_token": self.csrf, **data})


@pytest.fixture
def services() -> FakeServices:
    fake = FakeServices()
    fake.answer("GET", f"{PARTNERS}/v1/partners", [])
    fake.answer("GET", f"{POINTS}/v1/ops/members", {"items": []})
    return fake


@pytest.fixture
async def console_app(database, services: FakeServices) -> AsyncIterator[FastAPI]:
    settings = Settings(
        environment="test", database_url=await database("console"), jwt_secret=SECRET,
        points_url=POINTS, partners_url=PARTNERS, redemption_url=REDEMPTION, display_timezone="UTC",
    )  # fmt: skip
    app = build(settings, transport=httpx.MockTransport(services.handle))
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def browser(console_app: FastAPI) -> AsyncIterator[Browser]:
    transport = httpx.ASGITransport(app=console_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as client:
        yield Browser(client)


def json_of(request: httpx.Request) -> Any:
    return json.loads(request.content)
