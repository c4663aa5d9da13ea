"""Build the catalog from offer events, and answer members' catalog reads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from contracts.envelope import Event
from contracts.events.offers import OfferPublished, OfferWithdrawn
from loyalty_runtime.inbox import first_copies
from redemption.adapters.catalog_store import CatalogStore
from redemption.domain.catalog import (
    START,
    CatalogEntry,
    CatalogFilter,
    OfferChange,
    OfferNotFoundError,
    Position,
    PublishedOffer,
    Status,
    UnusableOfferError,
    WithdrawnOffer,
    check_callable,
    check_storable,
    latest_per_offer,
    status_of,
)
from redemption.domain.fulfilment_urls import UrlPolicy
from redemption.domain.prices import Reader, open_to


def to_change(event: Event, urls: UrlPolicy) -> OfferChange:
    """What an offer event means to the catalog; raises UnusableOfferError for what it cannot store or call."""
    if isinstance(event, OfferPublished):
        p = event.payload
        if p.fulfilment_url is not None:
            check_callable(str(p.fulfilment_url), urls)
        return check_storable(
            PublishedOffer(
                event_id=event.event_id,
                partner_id=p.partner_id,
                offer_id=p.offer_id,
                revision=p.revision,
                kind=p.kind,
                title=p.title,
                description=p.description,
                category=p.category,
                price_points=p.price_points,
                stock=p.stock,
                valid_from=p.valid_from,
                valid_until=p.valid_until,
                fulfilment_url=str(p.fulfilment_url) if p.fulfilment_url is not None else None,
                published_at=event.occurred_at,
                tier_prices={price.tier: price.price_points for price in p.tier_prices},
                tiers_only=tuple(p.tiers_only),
                segment_prices={str(price.segment_id): price.price_points for price in p.segment_prices},
            )
        )
    if isinstance(event, OfferWithdrawn):
        w = event.payload
        return check_storable(WithdrawnOffer(event.event_id, w.partner_id, w.offer_id, w.revision))
    raise UnusableOfferError(f"the catalog does not take {type(event).__name__} events")


@dataclass(frozen=True)
class BatchOutcome:
    duplicates: int
    superseded_in_batch: int
    published: int
    withdrawn: int

    @property
    def counts(self) -> dict[str, int]:
        return {
            "duplicate_delivery": self.duplicates,
            "superseded_in_batch": self.superseded_in_batch,
            "published": self.published,
            "withdrawn": self.withdrawn,
        }


async def apply_offer_batch(store: CatalogStore, topic: str, changes: Sequence[OfferChange]) -> BatchOutcome:
    """One transaction: the inbox claim, then each offer's highest revision; an older one changes nothing."""
    async with store.transaction() as tx:
        fresh = await tx.claim_inbox(topic, [c.event_id for c in changes])
        new = first_copies(changes, fresh, lambda c: c.event_id)
        latest = latest_per_offer(new)
        published = await tx.publish([c for c in latest if isinstance(c, PublishedOffer)])
        withdrawn = await tx.withdraw([c for c in latest if isinstance(c, WithdrawnOffer)])
    return BatchOutcome(len(changes) - len(new), len(new) - len(latest), published, withdrawn)


@dataclass(frozen=True)
class Listed:
    entry: CatalogEntry
    status: Status


@dataclass(frozen=True)
class Page:
    items: list[Listed]
    next_cursor: str | None


async def browse(
    store: CatalogStore, reader: Reader, where: CatalogFilter, cursor: str | None, limit: int, now: datetime
) -> Page:
    """Offers on sale now and open to the reader, cheapest for the reader first; a page continues at the cursor."""
    after = Position.decode(cursor) if cursor else START
    found = await store.on_sale(reader, where, after, limit + 1, now)
    items = [Listed(entry, "on_sale") for entry in found[:limit]]
    next_cursor = items[-1].entry.position.encode() if len(found) > limit and items else None
    return Page(items, next_cursor)


async def offer(store: CatalogStore, reader: Reader, partner_id: str, offer_id: str, now: datetime) -> Listed:
    """Any offer the catalog knows and the reader may see, with whether it is on sale, upcoming, ended or withdrawn."""
    entry = await store.find(reader, partner_id, offer_id)
    if entry is None or not open_to(entry.tiers_only, reader):
        raise OfferNotFoundError(partner_id, offer_id)
    return Listed(entry, status_of(entry.withdrawn, entry.valid_from, entry.valid_until, now))
