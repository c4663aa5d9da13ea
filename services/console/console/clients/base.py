"""One HTTP client per service; every call carries the caller's bearer token and nothing else of the console's."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

Json = Any
Query = Mapping[str, str | int | None]


@dataclass
class ApiError(Exception):
    """A service answered with an error, or could not be reached (status 503)."""

    service: str
    status: int
    detail: str
    retry_after: str | None = None

    def __str__(self) -> str:
        return f"{self.service} answered {self.status}: {self.detail}"

    @property
    def refused(self) -> bool:
        """A refusal the person can act on (a 4xx but 401), shown on the form; 401 and 5xx go to web.py's pages."""
        return 400 <= self.status < 500 and self.status != 401


def detail_of(answer: httpx.Response) -> str:
    """The service's own reason (FastAPI's `detail`, a string or a list of validation errors)."""
    try:
        body = answer.json()
    except ValueError:
        return answer.text[:500] or answer.reason_phrase
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(detail, list):
        return "; ".join(f"{'.'.join(str(p) for p in item.get('loc', [])[1:])}: {item.get('msg')}" for item in detail)
    return str(detail)


class ServiceClient:
    """A service's base URL and a pooled connection; `as_user(token)` gives the calls of one person.

    A call without a token (None) is anonymous: only for public reads (a share card's link), which need nobody's.
    """

    def __init__(self, name: str, base_url: str, timeout: float, transport: httpx.AsyncBaseTransport | None = None):
        self.name = name
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout, transport=transport)

    async def close(self) -> None:
        await self._http.aclose()

    async def call(
        self, method: str, path: str, token: str | None, *, query: Query | None = None, body: Json = None
    ) -> httpx.Response:
        params = {k: v for k, v in (query or {}).items() if v is not None and v != ""}
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        try:
            answer = await self._http.request(method, path, params=params, json=body, headers=headers)
        except httpx.HTTPError as error:
            raise ApiError(self.name, 503, f"{self.name} is not reachable ({type(error).__name__})", "5") from error
        if answer.status_code >= 400:
            raise ApiError(self.name, answer.status_code, detail_of(answer), answer.headers.get("retry-after"))
        return answer


class UserApi:
    """The calls one person makes to one service, with their token (None: anonymous, for public reads only)."""

    def __init__(self, client: ServiceClient, token: str | None) -> None:
        self._client = client
        self._token = token

    async def get(self, path: str, **query: str | int | None) -> Json:
        return (await self._client.call("GET", path, self._token, query=query)).json()

    async def get_text(self, path: str, **query: str | int | None) -> str:
        return (await self._client.call("GET", path, self._token, query=query)).text

    async def post(self, path: str, body: Json = None, **query: str | int | None) -> Json:
        answer = await self._client.call("POST", path, self._token, query=query, body=body)
        return answer.json() if answer.content else None

    async def put(self, path: str, body: Json = None) -> Json:
        answer = await self._client.call("PUT", path, self._token, body=body)
        return answer.json() if answer.content else None

    async def delete(self, path: str) -> Json:
        answer = await self._client.call("DELETE", path, self._token)
        return answer.json() if answer.content else None
