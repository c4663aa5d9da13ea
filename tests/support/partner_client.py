"""A partner's side of the API for tests: register through the ops API, then send signed requests.

    token = ops_token()
    credentials = await register_partner(api, token, "skymall")
    partner = SignedPartnerClient(api, credentials)
    answer = await partner.purchase(purchase_item("k-1"))

Works with an in-process client (`tests.support.services.http`) and with one on a real URL.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from contracts.signing import REPLAY_WINDOW_SECONDS, signed_headers
from loyalty_runtime.auth import Role, TokenAuthority
from loyalty_runtime.settings import LOCAL_JWT_SECRET

DEFAULT_CONTRACT: dict[str, Any] = {
    "valid_from": "2020-01-01",
    "currency": "CNY",
    "points_per_unit": "1",
    "category_rates": {},
    "issue_price_minor_per_point": "0.5",
    "redemption_price_minor_per_point": "0.4",
}


def ops_token(jwt_secret: str = LOCAL_JWT_SECRET, subject: str = "ops-test") -> str:
    return TokenAuthority(jwt_secret).issue(subject, Role.OPS)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass(frozen=True)
class PartnerCredentials:
    partner_id: str
    key_id: str
    secret: str


async def register_partner(
    client: httpx.AsyncClient, token: str, partner_id: str, *, name: str | None = None, **contract: Any
) -> PartnerCredentials:
    """Register through POST /v1/partners; `contract` overrides fields of DEFAULT_CONTRACT."""
    body = {"partner_id": partner_id, "name": name or partner_id.title(), "contract": {**DEFAULT_CONTRACT, **contract}}
    answer = await client.post("/v1/partners", json=body, headers=bearer(token))
    assert answer.status_code == 201, answer.text
    made = answer.json()
    return PartnerCredentials(made["partner_id"], made["key_id"], made["secret"])


def purchase_item(key: str, amount_minor: int = 12_999, **overrides: object) -> dict[str, object]:
    item: dict[str, object] = {
        "idempotency_key": key,
        "customer_ref": "cust-1",
        "purchase_id": f"order-{key}",
        "amount_minor": amount_minor,
        "currency": "CNY",
        "occurred_at": "2026-11-20T09:30:00+08:00",
    }
    item.update(overrides)
    return item


def refund_item(key: str, purchase_id: str, amount_minor: int = 1_000, **overrides: object) -> dict[str, object]:
    item: dict[str, object] = {
        "idempotency_key": key,
        "customer_ref": "cust-1",
        "refund_id": f"refund-{key}",
        "purchase_id": purchase_id,
        "amount_minor": amount_minor,
        "currency": "CNY",
        "occurred_at": "2026-11-21T10:00:00+08:00",
    }
    item.update(overrides)
    return item


class SignedPartnerClient:
    """Signs each request as contracts.signing describes, with the partner's key.

    The server accepts each signature once. Two identical requests within one second would carry
    the same signature, so a repeated request (a retry) is signed with a later timestamp.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        credentials: PartnerCredentials,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.credentials = credentials
        self._clock = clock
        self._used: dict[str, int] = {}

    @property
    def partner_id(self) -> str:
        return self.credentials.partner_id

    async def send(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        *,
        timestamp: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Sign and send raw bytes; `path` is relative to /v1/partners/{partner_id}."""
        request = self.client.build_request(
            method,
            f"/v1/partners/{self.partner_id}{path}",
            content=body,
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        signed_path = request.url.path
        stamp = timestamp if timestamp is not None else self._fresh_timestamp(method, signed_path, body)
        request.headers.update(
            signed_headers(self.credentials.key_id, self.credentials.secret, method, signed_path, body, stamp)
        )
        return await self.client.send(request)

    async def post(self, path: str, payload: object) -> httpx.Response:
        return await self.send("POST", path, json.dumps(payload).encode())

    async def purchase(self, item: Mapping[str, object]) -> httpx.Response:
        return await self.post("/purchases", item)

    async def purchases_batch(self, items: Sequence[Mapping[str, object]]) -> httpx.Response:
        return await self.post("/purchases/batch", {"purchases": list(items)})

    async def refund(self, item: Mapping[str, object]) -> httpx.Response:
        return await self.post("/refunds", item)

    async def refunds_batch(self, items: Sequence[Mapping[str, object]]) -> httpx.Response:
        return await self.post("/refunds/batch", {"refunds": list(items)})

    async def link_code(self, customer_ref: str) -> httpx.Response:
        """Issue a one-time link code for one of the partner's customers."""
        return await self.post("/link-codes", {"customer_ref": customer_ref})

    async def contracts(self) -> httpx.Response:
        return await self.send("GET", "/contracts")

    async def put_offer(self, offer_id: str, offer: Mapping[str, object]) -> httpx.Response:
        """Publish or change an offer (tests.support.offers.offer_body builds one)."""
        return await self.send("PUT", f"/offers/{offer_id}", json.dumps(offer).encode())

    async def withdraw_offer(self, offer_id: str) -> httpx.Response:
        return await self.send("DELETE", f"/offers/{offer_id}")

    async def offer(self, offer_id: str) -> httpx.Response:
        return await self.send("GET", f"/offers/{offer_id}")

    async def offers(self, cursor: str | None = None, limit: int | None = None) -> httpx.Response:
        query = httpx.QueryParams({k: v for k, v in {"cursor": cursor, "limit": limit}.items() if v is not None})
        return await self.send("GET", f"/offers?{query}" if query else "/offers")

    def _fresh_timestamp(self, method: str, path: str, body: bytes) -> int:
        now = int(self._clock())
        self._used = {k: t for k, t in self._used.items() if t > now - REPLAY_WINDOW_SECONDS}
        request = f"{method}\n{path}\n{hashlib.sha256(body).hexdigest()}"
        stamp = max(now, self._used.get(request, now - 1) + 1)
        self._used[request] = stamp
        return stamp
