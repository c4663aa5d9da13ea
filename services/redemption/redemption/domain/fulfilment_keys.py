"""Each partner's keys for the fulfilment callbacks the service signs (contracts.signing).

A partner verifies our callbacks with a secret of its own, so that no partner can sign a
callback as if it came to another. A key is a version of a partner's secret; the key id
(`X-Loyalty-Key`) names the partner and the version: `fk_<partner_id>_v<version>`.

Secrets are never stored. A key's secret is HMAC-SHA256(FULFILMENT_SIGNING_SECRET, partner id
and version): the database holds no usable secret, any replica derives the same one without
sharing state, and nothing needs an encryption library. Changing FULFILMENT_SIGNING_SECRET
changes every partner's secret at once (every partner must be issued its key again).

A partner's current key is its highest version whose `active_from` has come. A rotation makes
the next version, active after a grace period during which the previous key goes on signing,
so the partner can install the new secret first (it verifies by the key id, so it may accept
both for a while). A key made on first use (no key was issued yet, and nothing may stop for
it) was never shown to anyone: a rotation after it takes effect at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

MAX_GRACE = timedelta(days=30)
"""The longest a rotation may wait before the new key signs."""


class BadGraceError(ValueError):
    def __init__(self) -> None:
        super().__init__(f"grace_seconds must be between 0 and {int(MAX_GRACE.total_seconds())} (30 days)")


class NoFulfilmentKeyError(LookupError):
    def __init__(self, partner_id: str) -> None:
        super().__init__(
            f"partner {partner_id!r} has no fulfilment key yet; one is made at its first callback, "
            f"or issue one with POST /v1/ops/fulfilment-keys/{partner_id}"
        )


@dataclass(frozen=True)
class FulfilmentKey:
    partner_id: str
    version: int
    issued: bool
    """Its secret was shown to ops (False: made on first use, shown to nobody)."""
    created_at: datetime
    active_from: datetime

    @property
    def key_id(self) -> str:
        return key_id_for(self.partner_id, self.version)


def key_id_for(partner_id: str, version: int) -> str:
    """Unambiguous: partner ids have no underscore."""
    return f"fk_{partner_id}_v{version}"


def derive_secret(master_secret: str, key: FulfilmentKey) -> str:
    """base64url(HMAC-SHA256(master, "fulfilment-key\\n<partner_id>\\n<version>")) without padding."""
    message = f"fulfilment-key\n{key.partner_id}\n{key.version}".encode()
    digest = hmac.new(master_secret.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def first_key(partner_id: str, now: datetime) -> FulfilmentKey:
    """The key a partner gets at its first callback when ops issued none: active at once, shown to nobody."""
    return FulfilmentKey(partner_id, 1, issued=False, created_at=now, active_from=now)


def current_key(keys: Sequence[FulfilmentKey], now: datetime) -> FulfilmentKey | None:
    """The key that signs now: the highest version already active; None when the partner has no key."""
    if not keys:
        return None
    active = [k for k in keys if k.active_from <= now]
    # None active yet happens only when replicas' clocks disagree: the first key signs.
    return max(active, key=lambda k: k.version) if active else min(keys, key=lambda k: k.version)


def next_key(keys: Sequence[FulfilmentKey], partner_id: str, now: datetime, grace: timedelta) -> FulfilmentKey:
    """The key an issue or rotation makes: after `grace`, unless no partner can be using the current key."""
    if not timedelta(0) <= grace <= MAX_GRACE:
        raise BadGraceError()
    current = current_key(keys, now)
    version = max((k.version for k in keys), default=0) + 1
    wait = grace if current is not None and current.issued else timedelta(0)
    return FulfilmentKey(partner_id, version, issued=True, created_at=now, active_from=now + wait)
