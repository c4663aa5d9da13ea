"""Who the benchmark acts as: ops and members with bearer tokens, a partner with its signing key."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from bench.httpclient import Pool
from contracts.signing import signed_headers
from loyalty_runtime.auth import Role, TokenAuthority
from loyalty_runtime.settings import LOCAL_JWT_SECRET

JSON = {"Content-Type": "application/json"}
CONTRACT: dict[str, Any] = {
    "valid_from": "2020-01-01",
    "currency": "CNY",
    "points_per_unit": "1",
    "category_rates": {},
    "issue_price_minor_per_point": "0.5",
    "redemption_price_minor_per_point": "0.4",
}


def authority() -> TokenAuthority:
    """The services verify tokens with JWT_SECRET (the local default unless the environment sets one)."""
    return TokenAuthority(os.environ.get("JWT_SECRET", LOCAL_JWT_SECRET))


def ops_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {authority().issue('bench-ops', Role.OPS)}", **JSON}


def member_headers(member_id: uuid.UUID) -> dict[str, str]:
    return {"Authorization": f"Bearer {authority().issue(str(member_id), Role.MEMBER)}", **JSON}


@dataclass(frozen=True)
class Partner:
    partner_id: str
    key_id: str
    secret: str

    def signed(self, path: str, body: bytes, method: str = "POST") -> dict[str, str]:
        stamp = int(datetime.now(UTC).timestamp())
        return {**JSON, **signed_headers(self.key_id, self.secret, method, path, body, stamp)}

    @property
    def purchases_path(self) -> str:
        return f"/v1/partners/{self.partner_id}/purchases"


async def register_partner(pool: Pool, partner_id: str) -> Partner:
    """POST /v1/partners as ops; the answer carries the partner's key and secret, once."""
    body = orjson.dumps({"partner_id": partner_id, "name": partner_id.title(), "contract": CONTRACT})
    answer = await pool.request("POST", "/v1/partners", body, ops_headers())
    if answer.status != 201:
        raise RuntimeError(f"registering {partner_id} answered {answer.status}: {answer.body[:300]!r}")
    made = orjson.loads(answer.body)
    return Partner(made["partner_id"], made["key_id"], made["secret"])


def purchase(key: str, customer_ref: str, amount_minor: int) -> dict[str, Any]:
    return {
        "idempotency_key": key,
        "customer_ref": customer_ref,
        "purchase_id": f"order-{key}",
        "amount_minor": amount_minor,
        "currency": "CNY",
        "occurred_at": datetime.now(UTC).isoformat(),
    }
