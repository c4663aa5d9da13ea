"""Reward offers a partner publishes: each change is a new revision, recorded by the event that announces it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError

from contracts.events.offers import (
    OfferKind,
    OfferPayload,
    OfferPublished,
    OfferWithdrawn,
    OfferWithdrawnPayload,
    SegmentPrice,
    TierPrice,
)
from partners.domain.errors import PartnersError

SOURCE = "partners"

# Fixed forever: the same (partner, offer, revision) must always name the same event, so that a
# relayed copy of it is dropped by every consumer's inbox.
_OFFER_EVENT_IDS = uuid.UUID("9e3c1f4a-6b2d-4e8f-a7c5-0d1b2e3f4a5b")

OFFER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._~:-]{0,127}$"
"""Offer ids a partner may use in our URLs: a subset of contracts.ids.ExternalRef that needs no escaping."""

MAX_URL_LENGTH = 2048


@dataclass(frozen=True)
class OfferTerms:
    """What a partner says about an offer; everything but its identity and revision."""

    kind: OfferKind
    title: str
    description: str
    category: str
    price_points: int
    stock: int
    valid_from: datetime
    valid_until: datetime
    fulfilment_url: str | None = None
    tier_prices: tuple[tuple[str, int], ...] = ()
    """(tier, price in points) sorted by tier: what a member at that tier pays instead of price_points."""
    tiers_only: tuple[str, ...] = ()
    """Sorted; only members at one of these tiers may order the offer (empty: everyone)."""
    segment_prices: tuple[tuple[str, int], ...] = ()
    """(segment id, price in points) sorted by segment: what a member of that published segment pays, if lower."""


@dataclass(frozen=True)
class Offer:
    partner_id: str
    offer_id: str
    revision: int
    terms: OfferTerms
    updated_at: datetime
    withdrawn_at: datetime | None = None

    @property
    def withdrawn(self) -> bool:
        return self.withdrawn_at is not None


@dataclass(frozen=True)
class Change:
    """The offer after a request, and the event to publish; no event when nothing changed."""

    offer: Offer
    event: OfferPublished | OfferWithdrawn | None
    created: bool = False


class OfferNotFoundError(PartnersError):
    def __init__(self, partner_id: str, offer_id: str) -> None:
        super().__init__(
            f"partner {partner_id!r} has no offer {offer_id!r}; "
            f"publish it with PUT /v1/partners/{partner_id}/offers/{offer_id}"
        )


class InvalidOfferError(PartnersError):
    """The offer breaks a rule; `field` names the part to fix (`body` when it is a rule between fields)."""

    def __init__(self, message: str, field: str = "body") -> None:
        super().__init__(message)
        self.field = field


class OfferEndedError(InvalidOfferError):
    def __init__(self, valid_until: datetime, now: datetime) -> None:
        super().__init__(
            f"valid_until {valid_until.isoformat()} is not after our clock ({now.isoformat()}): "
            "an offer must end in the future; to take an offer off sale, DELETE it",
            "valid_until",
        )


class FulfilmentUrlTooLongError(InvalidOfferError):
    def __init__(self, length: int) -> None:
        super().__init__(
            f"fulfilment_url is {length} characters long once normalised; use at most {MAX_URL_LENGTH}",
            "fulfilment_url",
        )


def event_id_for(partner_id: str, offer_id: str, revision: int) -> uuid.UUID:
    return uuid.uuid5(_OFFER_EVENT_IDS, f"{partner_id}\x1f{offer_id}\x1f{revision}")


def publish(current: Offer | None, partner_id: str, offer_id: str, terms: OfferTerms, now: datetime) -> Change:
    """Create the offer, or revise it when its terms differ (or it was withdrawn); the same terms change nothing."""
    payload = _payload(partner_id, offer_id, (current.revision + 1) if current else 1, terms)
    if payload.valid_until <= now:
        raise OfferEndedError(payload.valid_until, now)
    normalised = _terms_of(payload)
    if current is not None and not current.withdrawn and current.terms == normalised:
        return Change(current, None)
    offer = Offer(partner_id, offer_id, payload.revision, normalised, updated_at=now)
    return Change(offer, _published(offer, payload, now), created=current is None)


def withdraw(current: Offer | None, partner_id: str, offer_id: str, now: datetime) -> Change:
    """Take the offer off sale with a new revision; withdrawing it again changes nothing."""
    if current is None:
        raise OfferNotFoundError(partner_id, offer_id)
    if current.withdrawn:
        return Change(current, None)
    revision = current.revision + 1
    offer = Offer(partner_id, offer_id, revision, current.terms, updated_at=now, withdrawn_at=now)
    return Change(offer, _withdrawn(offer, now))


def _payload(partner_id: str, offer_id: str, revision: int, terms: OfferTerms) -> OfferPayload:
    """The contract's own rules (window, fulfilment_url for products and discounts) decide what is valid."""
    try:
        payload = OfferPayload(
            partner_id=partner_id,
            offer_id=offer_id,
            revision=revision,
            kind=terms.kind,
            title=terms.title,
            description=terms.description,
            category=terms.category,
            price_points=terms.price_points,
            stock=terms.stock,
            valid_from=terms.valid_from,
            valid_until=terms.valid_until,
            fulfilment_url=terms.fulfilment_url,  # pydantic parses the string
            tier_prices=[TierPrice(tier=tier, price_points=points) for tier, points in terms.tier_prices],
            tiers_only=list(terms.tiers_only),
            segment_prices=[
                SegmentPrice(segment_id=segment, price_points=points) for segment, points in terms.segment_prices
            ],
        )
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        field = ".".join(str(part) for part in first["loc"]) or "body"
        raise InvalidOfferError(first["msg"].removeprefix("Value error, "), field) from error
    if payload.fulfilment_url is not None and len(str(payload.fulfilment_url)) > MAX_URL_LENGTH:
        raise FulfilmentUrlTooLongError(len(str(payload.fulfilment_url)))
    return payload


def _terms_of(payload: OfferPayload) -> OfferTerms:
    return OfferTerms(
        kind=payload.kind,
        title=payload.title,
        description=payload.description,
        category=payload.category,
        price_points=payload.price_points,
        stock=payload.stock,
        valid_from=payload.valid_from,
        valid_until=payload.valid_until,
        fulfilment_url=str(payload.fulfilment_url) if payload.fulfilment_url is not None else None,
        tier_prices=tuple(sorted((p.tier, p.price_points) for p in payload.tier_prices)),
        tiers_only=tuple(sorted(payload.tiers_only)),
        segment_prices=tuple(sorted((str(p.segment_id), p.price_points) for p in payload.segment_prices)),
    )


def _published(offer: Offer, payload: OfferPayload, now: datetime) -> OfferPublished:
    event_id = event_id_for(offer.partner_id, offer.offer_id, offer.revision)
    return OfferPublished(event_id=event_id, occurred_at=now, source=SOURCE, correlation_id=event_id, payload=payload)


def _withdrawn(offer: Offer, now: datetime) -> OfferWithdrawn:
    event_id = event_id_for(offer.partner_id, offer.offer_id, offer.revision)
    payload = OfferWithdrawnPayload(partner_id=offer.partner_id, offer_id=offer.offer_id, revision=offer.revision)
    return OfferWithdrawn(event_id=event_id, occurred_at=now, source=SOURCE, correlation_id=event_id, payload=payload)
