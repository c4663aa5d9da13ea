"""Asking a partner to fulfil an order: an HTTP callback to the offer's fulfilment URL, signed by the programme."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

import httpx
import orjson

from contracts.signing import signed_headers
from redemption.domain.orders import Order

PROGRAMME_KEY_ID = "loyalty-redemption"
RETRYABLE = {408, 425, 429}


@dataclass(frozen=True)
class Fulfilment:
    outcome: Literal["delivered", "declined", "retry"]
    reference: str | None = None
    reason: str = ""
    in_doubt: bool = False
    """For a retry: the call may have reached the partner (no answer), so it may have delivered."""


class PartnerFulfilment:
    """POSTs the order to the partner. 2xx: delivered; another 4xx: declined; 5xx, 408, 429, no answer: retry.

    The partner must treat a repeated order id as the same order (it is sent again after a timeout).
    The request is signed like a partner's own requests (contracts.signing) with the programme's key.
    """

    def __init__(self, secret: str, transport: httpx.AsyncBaseTransport | None = None, timeout: float = 5.0) -> None:
        self._secret = secret
        self._client = httpx.AsyncClient(transport=transport, timeout=timeout)

    async def fulfil(self, order: Order, url: str) -> Fulfilment:
        body = orjson.dumps(
            {"order_id": str(order.order_id), "member_id": str(order.member_id), "partner_id": order.partner_id,
             "offer_id": order.offer_id, "quantity": order.quantity, "points": order.points}
        )  # fmt: skip
        headers = signed_headers(PROGRAMME_KEY_ID, self._secret, "POST", urlsplit(url).path, body, int(time.time()))
        headers |= {"Content-Type": "application/json", "Idempotency-Key": str(order.order_id)}
        try:
            answer = await self._client.post(url, content=body, headers=headers)
        except httpx.HTTPError as error:
            # Refused before sending: the partner surely saw nothing. Anything later: it may have.
            sent = not isinstance(error, httpx.ConnectError | httpx.ConnectTimeout)
            return Fulfilment("retry", reason=f"{type(error).__name__}: {error}"[:200], in_doubt=sent)
        if answer.is_success:
            try:
                reference = answer.json().get("reference")
            except ValueError:
                reference = None
            return Fulfilment("delivered", reference=str(reference)[:200] if reference else None)
        if 400 <= answer.status_code < 500 and answer.status_code not in RETRYABLE:
            return Fulfilment("declined", reason=f"partner_declined_{answer.status_code}")
        return Fulfilment("retry", reason=f"partner answered {answer.status_code}")

    async def close(self) -> None:
        await self._client.aclose()
