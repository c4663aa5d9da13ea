"""Endpoint secrets at rest: sealed with AES-GCM under a key derived from PARTNER_KEY_SECRET.

They must be readable (every attempt is signed with them), so they cannot be hashed like API keys;
a copy of the database alone does not reveal them.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12


class SecretBox:
    def __init__(self, master_secret: str) -> None:
        key = hmac.new(master_secret.encode(), b"webhook-endpoint-secrets", hashlib.sha256).digest()
        self._aead = AESGCM(key)

    def seal(self, secret: str, endpoint_id: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, secret.encode(), endpoint_id.encode())

    def open(self, sealed: bytes, endpoint_id: str) -> str:
        """Raises cryptography's InvalidTag when the master secret changed or the row was moved to another id."""
        return self._aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], endpoint_id.encode()).decode()
