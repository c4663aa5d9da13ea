"""The member-facing catalog: which revision of an offer wins, whether it is on sale, where a page continues."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from redemption.domain.fulfilment_urls import RefusedUrlError, UrlPolicy, check_url

MAX_BIGINT = 2**63 - 1
"""The catalog stores revisions and prices as bigint."""

Status = Literal["on_sale", "upcoming", "ended", "withdrawn"]


@dataclass(frozen=True)
class PublishedOffer:
    """A revision of an offer, as OfferPublished carried it."""

    event_id: uuid.UUID
    partner_id: str
    offer_id: str
    revision: int
    kind: str
    title: str
    description: str
    category: str
    price_points: int
    stock: int
    valid_from: datetime
    valid_until: datetime
    fulfilment_url: str | None
    published_at: datetime
    tier_prices: Mapping[str, int] = field(default_factory=dict)
    """What a member at each of these tiers pays for a unit instead of price_points."""
    tiers_only: tuple[str, ...] = ()
    """Only members at one of these tiers see and order it; empty: everyone (domain/prices.py)."""
    segment_prices: Mapping[str, int] = field(default_factory=dict)
    """What a member of each of these published segments (by id) pays for a unit, if lower than its other prices."""


@dataclass(frozen=True)
class WithdrawnOffer:
    event_id: uuid.UUID
    partner_id: str
    offer_id: str
    revision: int


OfferChange = PublishedOffer | WithdrawnOffer


class UnusableOfferError(Exception):
    """A valid message that the catalog cannot store; it goes to the dead-letter topic with this reason."""


class OfferNotFoundError(LookupError):
    def __init__(self, partner_id: str, offer_id: str) -> None:
        super().__init__(f"the catalog has no offer {offer_id!r} of partner {partner_id!r}; browse GET /v1/catalog")


class BadCursorError(ValueError):
    def __init__(self) -> None:
        super().__init__("cursor is not one this API returned; start again without it")


def check_storable(change: OfferChange) -> OfferChange:
    """Refuse what PostgreSQL would refuse, so that one message cannot stop the whole batch for ever."""
    if change.revision > MAX_BIGINT:
        raise UnusableOfferError(f"payload.revision: {change.revision} is above {MAX_BIGINT}")
    if isinstance(change, PublishedOffer):
        texts = {"title": change.title, "description": change.description, "fulfilment_url": change.fulfilment_url}
        for name, text in texts.items():
            if text is not None and "\x00" in text:
                raise UnusableOfferError(f"payload.{name}: contains a NUL character")
    return change


def check_callable(fulfilment_url: str, urls: UrlPolicy) -> None:
    """Refuse an offer whose fulfilment URL the service would not call (domain/fulfilment_urls.py)."""
    try:
        check_url(fulfilment_url, urls)
    except RefusedUrlError as error:
        raise UnusableOfferError(f"payload.fulfilment_url: {error}") from error


def latest_per_offer(changes: Iterable[OfferChange]) -> list[OfferChange]:
    """The highest revision of each offer; at the same revision a withdrawal wins.

    Sorted by (partner_id, offer_id): every writer of the catalog locks its rows in that order.
    """
    latest: dict[tuple[str, str], OfferChange] = {}
    for change in changes:
        key = (change.partner_id, change.offer_id)
        seen = latest.get(key)
        if seen is None or _rank(change) > _rank(seen):
            latest[key] = change
    return [latest[key] for key in sorted(latest)]


def _rank(change: OfferChange) -> tuple[int, bool]:
    return change.revision, isinstance(change, WithdrawnOffer)


def status_of(withdrawn: bool, valid_from: datetime, valid_until: datetime, now: datetime) -> Status:
    if withdrawn:
        return "withdrawn"
    if now < valid_from:
        return "upcoming"
    if now >= valid_until:
        return "ended"
    return "on_sale"


@dataclass(frozen=True, order=True)
class Position:
    """Where a page of the catalog ends, in its order: the reader's price, then partner, then offer."""

    price_points: int
    partner_id: str
    offer_id: str

    def encode(self) -> str:
        raw = json.dumps([self.price_points, self.partner_id, self.offer_id], separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str) -> Position:
        try:
            raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        except (binascii.Error, ValueError) as error:
            raise BadCursorError() from error
        if not (
            isinstance(raw, list)
            and len(raw) == 3
            and type(raw[0]) is int
            and 0 <= raw[0] <= MAX_BIGINT
            and all(isinstance(part, str) and part.isprintable() for part in raw[1:])
        ):
            raise BadCursorError()
        return cls(raw[0], raw[1], raw[2])


START = Position(0, "", "")
"""Before every offer: prices are positive."""


@dataclass(frozen=True)
class CatalogFilter:
    """What a member narrows the catalog to; None matches everything."""

    partner_id: str | None = None
    category: str | None = None
    kind: str | None = None
    in_stock: bool = False


@dataclass(frozen=True)
class CatalogEntry:
    """An offer as the catalog holds it, with the units left to sell."""

    partner_id: str
    offer_id: str
    revision: int
    kind: str
    title: str
    description: str
    category: str
    price_points: int
    stock: int
    available: int
    """stock - units reserved - units sold, never below 0 (a partner may lower stock below what was sold)."""
    valid_from: datetime
    valid_until: datetime
    withdrawn: bool
    fulfilment_url: str | None
    """Where orders are fulfilled; for the programme, never shown to members."""
    tier_prices: Mapping[str, int] = field(default_factory=dict)
    tiers_only: tuple[str, ...] = ()
    segment_prices: Mapping[str, int] = field(default_factory=dict)
    unit_points: int = 0
    """What one unit costs the reader (domain/prices.py); the catalog is ordered by it."""

    @property
    def position(self) -> Position:
        return Position(self.unit_points, self.partner_id, self.offer_id)
