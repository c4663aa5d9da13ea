"""How a partner signs its requests (DESIGN.md, Security), shared by the service, clients, tests and the demo.

A partner sends three headers with every request:

    X-Loyalty-Key:       its key id, e.g. "pk_3J9x..."
    X-Loyalty-Timestamp: the time of signing, in unix seconds
    X-Loyalty-Signature: lowercase hex HMAC-SHA256(secret, canonical_string(method, path, timestamp, body))

The secret is the string the partners service showed once when the key was made; its UTF-8
bytes are the HMAC key. A request is accepted within REPLAY_WINDOW_SECONDS of its timestamp,
and each signature only once, so a retry must be signed again with a later timestamp.
"""

from __future__ import annotations

import hashlib
import hmac

KEY_HEADER = "X-Loyalty-Key"
TIMESTAMP_HEADER = "X-Loyalty-Timestamp"
SIGNATURE_HEADER = "X-Loyalty-Signature"
REPLAY_WINDOW_SECONDS = 300
"""A request whose timestamp is further than this from the server's clock is refused."""


def canonical_string(method: str, path: str, timestamp: int, body: bytes) -> str:
    """What is signed: method, path (no query, no host), timestamp and the SHA-256 of the raw body."""
    return f"{method.upper()}\n{path}\n{timestamp}\n{hashlib.sha256(body).hexdigest()}"


def sign(secret: str, method: str, path: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 signature of one request."""
    message = canonical_string(method, path, timestamp, body).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify(secret: str, method: str, path: str, timestamp: int, body: bytes, signature: str) -> bool:
    """True when `signature` is the request's signature (lowercase hex) under `secret`; constant-time.

    Exactly one spelling is accepted, so that the replay log sees every copy of a signature as the same.
    """
    expected = sign(secret, method, path, timestamp, body)
    # Bytes, because compare_digest refuses str with non-ASCII characters and a header may carry any.
    return hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace"))


def signed_headers(key_id: str, secret: str, method: str, path: str, body: bytes, timestamp: int) -> dict[str, str]:
    """The three headers that authenticate one request."""
    return {
        KEY_HEADER: key_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, method, path, timestamp, body),
    }
