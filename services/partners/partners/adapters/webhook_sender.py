"""The HTTP side of webhooks: resolve and check the endpoint's host, POST the signed body, read the answer."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Mapping
from datetime import datetime
from urllib.parse import urlsplit

import httpx

from partners.domain.webhooks import AttemptResult, InvalidEndpointError, address_allowed, retry_after

USER_AGENT = "loyalty-alliance-webhooks/1"


async def resolved_addresses(host: str) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


async def check_host(host: str, *, production: bool) -> None:
    """Raises InvalidEndpointError when the host resolves to an address the programme may not call (SSRF)."""
    if not production:
        return
    try:
        addresses = await resolved_addresses(host)
    except OSError as error:
        raise InvalidEndpointError(f"the host {host!r} does not resolve: {error}") from error
    refused = [a for a in addresses if not address_allowed(a, production=True)]
    if refused or not addresses:
        raise InvalidEndpointError(f"the host {host!r} resolves to a private or reserved address {refused}")


class HttpSender:
    """One shared client: no redirects (a 3xx is an answer, not a new place to call), a timeout per attempt."""

    def __init__(self, *, production: bool, timeout: float, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._production = production
        self._timeout = timeout
        self._client = httpx.AsyncClient(
            follow_redirects=False, timeout=timeout, transport=transport, headers={"user-agent": USER_AGENT}
        )

    async def send(self, url: str, headers: Mapping[str, str], body: bytes, now: datetime) -> tuple[AttemptResult, int]:
        """The attempt's result and how long it took in milliseconds; never raises for the endpoint's faults."""
        started = time.monotonic()
        try:
            async with asyncio.timeout(self._timeout):  # the host's resolution included
                await check_host(urlsplit(url).hostname or "", production=self._production)
                answer = await self._client.post(
                    url, content=body, headers={**headers, "content-type": "application/json"}
                )
            result = AttemptResult(answer.status_code, None, retry_after(answer.headers.get("retry-after"), now))
        except InvalidEndpointError as refused:
            result = AttemptResult(None, refused.message)
        except (httpx.TimeoutException, TimeoutError):
            result = AttemptResult(None, f"no answer within {self._timeout:g} s")
        except httpx.HTTPError as error:
            result = AttemptResult(None, f"{type(error).__name__}: {error}"[:300])
        return result, int((time.monotonic() - started) * 1000)

    async def close(self) -> None:
        await self._client.aclose()
