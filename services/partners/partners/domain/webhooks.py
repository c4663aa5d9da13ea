"""Webhooks to partners: which endpoints may be called, what an answer means, when to try again.

Rules, in plain words (the wire format is contracts.webhooks, Standard Webhooks):

- An endpoint is an HTTPS URL. Outside production, plain http is allowed to loopback only (a
  receiver on the developer's machine). In production a URL may not name, or resolve to, a private,
  loopback, link-local, multicast or reserved address: a partner must not make the programme call
  into its own network (SSRF). Redirects are never followed, for the same reason.
- An attempt is delivered when the endpoint answers 2xx. Timeouts, connection errors, 5xx, 408, 425
  and 429 are retried; a `Retry-After` the endpoint sent is honoured (never sooner than the schedule,
  never past the day). Any other answer (3xx, other 4xx) fails the delivery at once: the receiver
  refused this very message, and the same bytes would be refused again; its staff replay it once
  they fixed their side.
- Retries follow `SCHEDULE` with +-10 % jitter, for at most `RETRY_WINDOW` after the first attempt;
  the last attempt is at the end of the window. A delivery still failing then has failed, and when
  its endpoint has delivered nothing since that delivery's first attempt, the endpoint is disabled
  and its partner told.
- A replay is a new attempt of the same message (same `webhook-id`) with a new day of retries.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Final
from urllib.parse import urlsplit

from partners.domain.errors import PartnersError


class EventType(StrEnum):
    STATEMENT_FINALISED = "statement.finalised"
    ORDER_PLACED = "order.placed"
    ORDER_SETTLED = "order.settled"
    PURCHASE_REFUSED = "purchase.refused"
    OFFER_OUT_OF_STOCK = "offer.out_of_stock"


EVENT_DESCRIPTIONS: Final[dict[EventType, str]] = {
    EventType.STATEMENT_FINALISED: "Ops finalised a month's settlement: the partner's statement is final.",
    EventType.ORDER_PLACED: "A member placed a redemption order for one of the partner's offers.",
    EventType.ORDER_SETTLED: "An order for the partner was fulfilled and its points captured (the partner is "
    "paid for them in its statement).",
    EventType.PURCHASE_REFUSED: "The ledger refused a purchase or refund the partner reported: no points moved.",
    EventType.OFFER_OUT_OF_STOCK: "An order reserved the last unit of one of the partner's offers.",
}

SCHEDULE: Final[tuple[timedelta, ...]] = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
)
"""The wait after the 1st, 2nd, ... failed attempt; the last one repeats until the window closes."""
RETRY_WINDOW: Final = timedelta(hours=24)
JITTER: Final = 0.1
MAX_ENDPOINTS_PER_PARTNER: Final = 10
MAX_URL_LENGTH: Final = 2048
RETRIED_STATUSES: Final = frozenset({408, 425, 429})


class WebhookError(PartnersError):
    status = 400


class InvalidEndpointError(WebhookError):
    """The URL or the event types cannot be subscribed; the message says which rule."""

    status = 422


class EndpointNotFoundError(WebhookError):
    status = 404

    def __init__(self, partner_id: str, endpoint_id: object) -> None:
        super().__init__(f"partner {partner_id!r} has no webhook endpoint {endpoint_id}")


class DeliveryNotFoundError(WebhookError):
    status = 404

    def __init__(self, partner_id: str, delivery_id: object) -> None:
        super().__init__(f"partner {partner_id!r} has no webhook delivery {delivery_id}")


class EndpointDisabledError(WebhookError):
    status = 409

    def __init__(self) -> None:
        super().__init__("the endpoint is disabled: enable it first, then replay")


class TooManyEndpointsError(WebhookError):
    status = 409

    def __init__(self) -> None:
        super().__init__(f"a partner has at most {MAX_ENDPOINTS_PER_PARTNER} webhook endpoints; disable or reuse one")


class EndpointIdTakenError(WebhookError):
    status = 409

    def __init__(self) -> None:
        super().__init__("this endpoint_id exists with another URL: choose a new id")


def event_types_of(names: Sequence[str]) -> tuple[EventType, ...]:
    """The distinct, known event types, in a stable order; raises InvalidEndpointError for none or unknown."""
    known = {t.value for t in EventType}
    unknown = sorted(set(names) - known)
    if unknown:
        raise InvalidEndpointError(f"unknown event types {unknown}; subscribe to some of {sorted(known)}")
    if not names:
        raise InvalidEndpointError("subscribe the endpoint to at least one event type")
    return tuple(t for t in EventType if t.value in set(names))


def address_allowed(address: str, *, production: bool) -> bool:
    """Whether the programme may connect to this IP address (SSRF): any outside production; public ones in it."""
    ip = ipaddress.ip_address(address)
    if not production:
        return True
    return not (
        ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved or ip.is_unspecified
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def checked_url(url: str, *, production: bool) -> tuple[str, str]:
    """The URL and its host when it may be subscribed; raises InvalidEndpointError with the rule it breaks.

    A host name is checked again once resolved (`address_allowed`), at subscription and at every attempt.
    """
    if len(url) > MAX_URL_LENGTH:
        raise InvalidEndpointError(f"the URL is longer than {MAX_URL_LENGTH} characters")
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("https", "http") or not host:
        raise InvalidEndpointError("the URL must be https://<host>/...")
    if parts.username is not None or parts.password is not None:
        raise InvalidEndpointError("the URL may not carry a user name or password; the signature authenticates us")
    if parts.fragment:
        raise InvalidEndpointError("the URL may not have a #fragment")
    if parts.scheme == "http" and (production or not _is_loopback(host)):
        raise InvalidEndpointError("the URL must use https (plain http only to loopback, outside production)")
    if production and host == "localhost":
        raise InvalidEndpointError("the URL may not name this machine")
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        return url, host
    if not address_allowed(str(literal), production=production):
        raise InvalidEndpointError(f"the URL may not name a private, loopback or link-local address ({host})")
    return url, host


class Verdict(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    FAILED = "failed"


@dataclass(frozen=True)
class AttemptResult:
    """What one attempt got: an HTTP status, or an error (timeout, refused connection) and no status."""

    status: int | None
    error: str | None = None
    retry_after: timedelta | None = None

    @property
    def verdict(self) -> Verdict:
        if self.status is None:
            return Verdict.RETRY
        if 200 <= self.status < 300:
            return Verdict.DELIVERED
        if self.status >= 500 or self.status in RETRIED_STATUSES:
            return Verdict.RETRY
        return Verdict.FAILED


def retry_after(header: str | None, now: datetime) -> timedelta | None:
    """A Retry-After header (seconds, or an HTTP date) as a wait; None when absent or unreadable."""
    if not header:
        return None
    text = header.strip()
    if text.isdigit():
        return timedelta(seconds=int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(when - now, timedelta(0))


Jitter = Callable[[], float]
"""A number in [-1, 1]; the wait moves by that share of JITTER (tests pass a constant)."""


def random_jitter() -> float:
    return random.uniform(-1.0, 1.0)  # spreading retries, not a secret


def next_attempt_at(
    window_start: datetime,
    attempts: int,
    now: datetime,
    *,
    wait_at_least: timedelta | None = None,
    jitter: Jitter = random_jitter,
) -> datetime | None:
    """When to try again after `attempts` failed attempts, the last one at `now`; None when the day is over."""
    deadline = window_start + RETRY_WINDOW
    if attempts < 1 or now >= deadline:
        return None
    base = SCHEDULE[min(attempts, len(SCHEDULE)) - 1]
    wait = base * (1 + JITTER * max(-1.0, min(1.0, jitter())))
    if wait_at_least is not None:
        wait = max(wait, wait_at_least)
    return min(now + wait, deadline)


def signing_secrets(current: str, previous: str | None, previous_until: datetime | None, now: datetime) -> list[str]:
    """Sign with the current secret, and with the previous one for a while after a rotation (both signatures)."""
    if previous is not None and previous_until is not None and now < previous_until:
        return [current, previous]
    return [current]


ROTATION_OVERLAP: Final = timedelta(hours=24)
"""After a rotation, the old secret still signs (as a second signature) this long, so receivers can switch."""
