"""Webhooks to partners, as Standard Webhooks (https://www.standardwebhooks.com) define them.

For the people who receive them. Each delivery is an HTTPS POST of a JSON body with three headers:

    webhook-id         the message id (`msg_...`): the same for every attempt and every replay of one
                       message, so a receiver that keeps the ids it processed acts once
    webhook-timestamp  when this attempt was signed, in whole seconds since the Unix epoch
    webhook-signature  `v1,<base64 of HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}")>`;
                       several, separated by spaces, while a secret is being rotated (old and new)

The key is the endpoint's secret `whsec_<base64>` without its prefix, base64-decoded. The secret is
shown once, when the endpoint is made or its secret rotated. A receiver verifies with `verify`:
it refuses a timestamp more than `TOLERANCE_SECONDS` from its own clock (a replayed capture), and
compares signatures in constant time. Answer 2xx once the message is stored; anything else is retried
(see partners.domain.webhooks for the schedule).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from datetime import datetime

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24
"""192 bits of key (the spec asks for 24 to 64 bytes)."""
TOLERANCE_SECONDS = 300
ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER = "webhook-id", "webhook-timestamp", "webhook-signature"


class WebhookVerificationError(Exception):
    """The message is not proven to come from the sender: refuse it (answer 400 or 401)."""


def new_secret() -> str:
    """A fresh endpoint secret, `whsec_` and base64 of random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def new_message_id() -> str:
    return "msg_" + secrets.token_urlsafe(18)


def _key(secret: str) -> bytes:
    raw = secret.removeprefix(SECRET_PREFIX)
    try:
        return base64.b64decode(raw, validate=True)
    except ValueError as error:
        raise WebhookVerificationError("the secret is not whsec_ followed by base64") from error


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 signature>` of one attempt."""
    content = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(secrets_: Iterable[str], message_id: str, at: datetime, body: bytes) -> dict[str, str]:
    """The three headers of an attempt at `at`, signed with each secret (the new one first while rotating)."""
    timestamp = int(at.timestamp())
    signatures = " ".join(sign(s, message_id, timestamp, body) for s in secrets_)
    return {ID_HEADER: message_id, TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: signatures}


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: datetime) -> str:
    """The message id when one of the signatures is `secret`'s and the timestamp is fresh; raises otherwise."""
    lowered = {k.lower(): v for k, v in headers.items()}
    message_id, stamp, signatures = (lowered.get(h) for h in (ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER))
    if not message_id or not stamp or not signatures:
        raise WebhookVerificationError(f"missing {ID_HEADER}, {TIMESTAMP_HEADER} or {SIGNATURE_HEADER}")
    try:
        timestamp = int(stamp)
    except ValueError as error:
        raise WebhookVerificationError(f"{TIMESTAMP_HEADER} is not a whole number of seconds") from error
    if abs(now.timestamp() - timestamp) > TOLERANCE_SECONDS:
        raise WebhookVerificationError(f"{TIMESTAMP_HEADER} is more than {TOLERANCE_SECONDS} s from now")
    expected = sign(secret, message_id, timestamp, body).encode()
    if not any(hmac.compare_digest(expected, s.encode()) for s in signatures.split(" ") if s.startswith("v1,")):
        raise WebhookVerificationError("no signature matches the secret")
    return message_id
