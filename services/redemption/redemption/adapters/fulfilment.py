"""Asking a partner to fulfil an order: an HTTP callback to the offer's fulfilment URL, signed with its own key."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
import orjson

from contracts.signing import signed_headers
from redemption.domain.fulfilment_keys import FulfilmentKey, derive_secret
from redemption.domain.fulfilment_urls import (
    PERMISSIVE,
    Address,
    RefusedUrlError,
    UrlPolicy,
    check_addresses,
    check_url,
)
from redemption.domain.orders import Order

log = logging.getLogger(__name__)

RETRYABLE = {408, 425, 429}
URL_REFUSED = "fulfilment_url_refused"

Resolver = Callable[[str, int], Awaitable[list[Address]]]


async def resolve(host: str, port: int) -> list[Address]:
    """Every address `host` resolves to now (IPv4 and IPv6); raises OSError when it resolves to none."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(info[4][0]) for info in infos]


@dataclass(frozen=True)
class Fulfilment:
    outcome: Literal["delivered", "declined", "retry"]
    reference: str | None = None
    reason: str = ""
    in_doubt: bool = False
    """For a retry: the call may have reached the partner (no answer), so it may have delivered."""


@dataclass(frozen=True)
class Destination:
    """Where a request really goes: in production the address that was checked, with the URL's host kept for TLS."""

    url: httpx.URL
    path: str
    """As the URL spells it, for the signature."""
    headers: dict[str, str]
    extensions: dict[str, Any]


class PartnerFulfilment:
    """POSTs the order to the partner. 2xx: delivered; another 4xx: declined; 5xx, 408, 429, no answer: retry.

    The partner must treat a repeated order id as the same order (it is sent again after a timeout).
    The request is signed like a partner's own requests (contracts.signing) with the partner's own
    fulfilment key. In production the URL's host is resolved right before each call, refused if
    any of its addresses is internal (domain/fulfilment_urls.py), and the connection goes to the
    address that was checked, so a DNS answer that changes in between cannot redirect it.
    """

    def __init__(
        self,
        master_secret: str,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 5.0,
        *,
        urls: UrlPolicy = PERMISSIVE,
        resolver: Resolver = resolve,
    ) -> None:
        self._master_secret = master_secret
        self._urls = urls
        self._resolve = resolver
        # Pinned connections are pooled by address: without keep-alive, a connection checked for one
        # partner's host name never carries another partner's request.
        limits = httpx.Limits(max_keepalive_connections=0) if urls.strict else httpx.Limits()
        self._client = httpx.AsyncClient(transport=transport, timeout=timeout, limits=limits)

    async def fulfil(self, order: Order, url: str | None, key: FulfilmentKey) -> Fulfilment:
        try:
            destination = await self._destination(url)
        except RefusedUrlError as error:
            return _refused(order, str(error))
        except OSError as error:
            return Fulfilment("retry", reason=f"cannot resolve the fulfilment host: {error}"[:200])
        body = orjson.dumps(
            {"order_id": str(order.order_id), "member_id": str(order.member_id), "partner_id": order.partner_id,
             "offer_id": order.offer_id, "quantity": order.quantity, "points": order.points}
        )  # fmt: skip
        secret = derive_secret(self._master_secret, key)
        headers = signed_headers(key.key_id, secret, "POST", destination.path, body, int(time.time()))
        headers |= {"Content-Type": "application/json", "Idempotency-Key": str(order.order_id)}
        try:
            answer = await self._client.post(
                destination.url, content=body, headers=headers | destination.headers, extensions=destination.extensions
            )
        except httpx.HTTPError as error:
            # Refused before sending: the partner surely saw nothing. Anything later: it may have.
            sent = not isinstance(error, httpx.ConnectError | httpx.ConnectTimeout)
            return Fulfilment("retry", reason=f"{type(error).__name__}: {error}"[:200], in_doubt=sent)
        return _outcome(answer)

    async def _destination(self, url: str | None) -> Destination:
        """The checked URL; raises RefusedUrlError, or OSError when its host does not resolve."""
        if url is None:
            raise RefusedUrlError("the offer has no fulfilment_url")
        target = check_url(url, self._urls)
        parsed, path = httpx.URL(url), urlsplit(url).path
        if not self._urls.strict or target.address is not None:
            return Destination(parsed, path, {}, {})
        addresses = await self._resolve(target.host, target.port)
        if not addresses:
            raise OSError(f"{target.host} has no address")
        check_addresses(target, addresses, self._urls)
        pinned = parsed.copy_with(host=str(addresses[0]))
        return Destination(pinned, path, {"Host": parsed.netloc.decode("ascii")}, {"sni_hostname": target.host})

    async def close(self) -> None:
        await self._client.aclose()


def _refused(order: Order, why: str) -> Fulfilment:
    """Nothing was sent: decline (the member gets the points back now), unless an earlier call may have delivered."""
    log.warning("fulfilment URL refused", extra={"order_id": str(order.order_id), "why": why})
    if order.in_doubt:
        return Fulfilment("retry", reason=f"{URL_REFUSED}: {why}"[:200], in_doubt=True)
    return Fulfilment("declined", reason=URL_REFUSED)


def _outcome(answer: httpx.Response) -> Fulfilment:
    if answer.is_success:
        try:
            reference = answer.json().get("reference")
        except ValueError:
            reference = None
        return Fulfilment("delivered", reference=str(reference)[:200] if reference else None)
    if 400 <= answer.status_code < 500 and answer.status_code not in RETRYABLE:
        return Fulfilment("declined", reason=f"partner_declined_{answer.status_code}")
    return Fulfilment("retry", reason=f"partner answered {answer.status_code}")
