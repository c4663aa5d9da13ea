"""Partner API keys and the checks a signed request must pass (the scheme is in contracts.signing).

Secrets are never stored: each key's secret is derived from the service's master secret and
the key id, so a leaked database holds no credential.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from contracts.signing import KEY_HEADER, REPLAY_WINDOW_SECONDS, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from partners.domain.errors import PartnersError

KEY_ID_PATTERN = r"^pk_[A-Za-z0-9_-]{24}$"


def new_key_id() -> str:
    """'pk_' and 24 random URL-safe characters (18 random bytes)."""
    return "pk_" + secrets.token_urlsafe(18)


def derive_secret(master_secret: str, key_id: str) -> str:
    """base64url(HMAC-SHA256(master_secret, key_id)) without padding."""
    digest = hmac.new(master_secret.encode(), key_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    partner_id: str
    created_at: datetime
    revoked_at: datetime | None = None


@dataclass(frozen=True)
class SignedRequest:
    """What a partner sent: the three signature headers (None when absent), method, path and raw body."""

    key_id: str | None
    timestamp: str | None
    signature: str | None
    method: str
    path: str
    body: bytes


class AuthenticationError(PartnersError):
    """The request does not prove which partner sent it (HTTP 401)."""


class MissingSignatureError(AuthenticationError):
    def __init__(self, missing: list[str]) -> None:
        super().__init__(
            f"missing {', '.join(missing)}: sign every request with your API key "
            f"({KEY_HEADER}, {TIMESTAMP_HEADER} in unix seconds, {SIGNATURE_HEADER}); see contracts.signing"
        )


class StaleTimestampError(AuthenticationError):
    def __init__(self, timestamp: int, now: int) -> None:
        super().__init__(
            f"{TIMESTAMP_HEADER} {timestamp} is {abs(now - timestamp)} s away from our clock ({now}); "
            f"the replay window is ±{REPLAY_WINDOW_SECONDS} s: sign with the current time and check your clock"
        )


class MalformedTimestampError(AuthenticationError):
    def __init__(self, raw: str) -> None:
        super().__init__(f"{TIMESTAMP_HEADER} must be unix seconds (an integer), not {raw[:32]!r}")


class UnknownKeyError(AuthenticationError):
    def __init__(self, key_id: str) -> None:
        super().__init__(f"unknown API key {key_id[:64]!r}: use the key_id you were given when the key was made")


class RevokedKeyError(AuthenticationError):
    def __init__(self, key: ApiKey) -> None:
        revoked = key.revoked_at.isoformat() if key.revoked_at else "?"
        super().__init__(f"API key {key.key_id} was revoked at {revoked}; sign with your current key")


class BadSignatureError(AuthenticationError):
    def __init__(self) -> None:
        super().__init__(
            f"{SIGNATURE_HEADER} does not match: send the lowercase hex HMAC-SHA256(secret, "
            "'METHOD\\npath\\ntimestamp\\nhex sha256 of the exact body bytes sent') with the key's secret"
        )


class ForeignPartnerError(PartnersError):
    """A partner acts only as itself (HTTP 403)."""

    def __init__(self, key: ApiKey, partner_id: str) -> None:
        super().__init__(
            f"API key {key.key_id} belongs to partner {key.partner_id!r}, not {partner_id!r}: "
            "a partner may only act as itself"
        )


class ReplayedRequestError(PartnersError):
    """The same signature was already accepted within the replay window (HTTP 409)."""

    def __init__(self) -> None:
        super().__init__(
            "replayed request: this signature was already used; to retry, sign the request again "
            "with a later timestamp (the idempotency_key keeps a retry from counting twice)"
        )


def read_timestamp(request: SignedRequest) -> int:
    """The signing time, after checking that all three headers are there."""
    headers = {KEY_HEADER: request.key_id, TIMESTAMP_HEADER: request.timestamp, SIGNATURE_HEADER: request.signature}
    missing = [name for name, value in headers.items() if not value]
    if missing:
        raise MissingSignatureError(missing)
    raw = request.timestamp or ""
    if not raw.isascii() or not raw.isdigit() or len(raw) > 12:
        raise MalformedTimestampError(raw)
    return int(raw)


def check_fresh(timestamp: int, now: int) -> None:
    if abs(now - timestamp) > REPLAY_WINDOW_SECONDS:
        raise StaleTimestampError(timestamp, now)


def check_signed_by(
    key: ApiKey | None, key_id: str, master_secret: str, request: SignedRequest, timestamp: int
) -> ApiKey:
    """The key that signed the request, if it is known, not revoked, and its secret made the signature."""
    if key is None:
        raise UnknownKeyError(key_id)
    if key.revoked_at is not None:
        raise RevokedKeyError(key)
    secret = derive_secret(master_secret, key.key_id)
    if not verify(secret, request.method, request.path, timestamp, request.body, request.signature or ""):
        raise BadSignatureError()
    return key


def check_acts_as(key: ApiKey, partner_id: str) -> None:
    if key.partner_id != partner_id:
        raise ForeignPartnerError(key, partner_id)
