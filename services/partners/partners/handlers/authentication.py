"""Check that a signed request comes from the partner it claims to act as, once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from contracts.signing import REPLAY_WINDOW_SECONDS
from partners.domain.credentials import (
    ApiKey,
    ReplayedRequestError,
    SignedRequest,
    check_acts_as,
    check_fresh,
    check_signed_by,
    read_timestamp,
)

Clock = Callable[[], datetime]

FORGET_MARGIN = timedelta(seconds=60)
"""Kept past the window, for replicas whose clocks differ a little."""


class KeyLookup(Protocol):
    async def find_key(self, key_id: str) -> ApiKey | None: ...


class SignatureLog(Protocol):
    async def claim(self, signature: str, signed_at: datetime) -> bool:
        """True the first time a signature is claimed, False when it was already seen."""

    async def forget_signed_before(self, moment: datetime) -> int: ...


@dataclass(frozen=True)
class SignatureClaim:
    """A checked signature not yet marked as used: intake marks it in the transaction that records the request."""

    signature: str
    signed_at: datetime


class PartnerAuthenticator:
    def __init__(self, keys: KeyLookup, signatures: SignatureLog, master_secret: str, clock: Clock) -> None:
        self._keys = keys
        self._signatures = signatures
        self._master_secret = master_secret
        self._clock = clock

    async def authenticate_as(self, request: SignedRequest, partner_id: str) -> ApiKey:
        """The key of `partner_id` that signed this request; each signature is accepted once."""
        key, claim = await self.verify_as(request, partner_id)
        await self.claim_once(claim)
        return key

    async def verify_as(self, request: SignedRequest, partner_id: str) -> tuple[ApiKey, SignatureClaim]:
        """The key of `partner_id` that signed this request, and its signature, which the caller must claim once.

        Intake claims it in the same database call that records the purchases (one round trip, not two).
        """
        timestamp = read_timestamp(request)
        check_fresh(timestamp, int(self._clock().timestamp()))
        key_id = request.key_id or ""
        key = check_signed_by(await self._keys.find_key(key_id), key_id, self._master_secret, request, timestamp)
        check_acts_as(key, partner_id)
        return key, SignatureClaim(request.signature or "", datetime.fromtimestamp(timestamp, UTC))

    async def claim_once(self, claim: SignatureClaim) -> None:
        """Mark the signature as used; ReplayedRequestError if it already was."""
        if not await self._signatures.claim(claim.signature, claim.signed_at):
            raise ReplayedRequestError()


async def forget_expired_signatures(signatures: SignatureLog, clock: Clock, every: float = 30.0) -> None:
    """Runs for the life of the service: a signature older than the replay window can never be accepted again."""
    while True:
        await signatures.forget_signed_before(clock() - timedelta(seconds=REPLAY_WINDOW_SECONDS) - FORGET_MARGIN)
        await asyncio.sleep(every)
