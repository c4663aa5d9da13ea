"""Member prices ("one customer, one price"): what one unit of an offer costs the member who looks at it.

- An offer has a price for everyone (`price_points`) and may have prices for members of some tiers
  (`tier_prices`) and of some published segments (`segment_prices`). A member pays the lowest of the prices that
  apply to it (its tier's, its segments'); a member to whom none applies pays the price for everyone.
- A member is in a segment when the segment's latest complete publication (SegmentMembersListed, all its parts)
  lists it; ops publish a segment again to bring its members up to date.
- An offer may be open to some tiers only (`tiers_only`): other members neither see it nor may order it.
- A member's tier is the one the points service announced last (TierChanged, by `changed_at`); a member it
  never announced has no tier, and pays the price for everyone.
- An order is charged the price the member was shown: it stores the unit price when it is placed, and a member
  who says what it expects to pay (`expected_unit_points`) is refused, not charged, when the price moved since.
- Ops read the catalog as it is, every offer at its price for everyone.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Reader:
    """Who reads the catalog: a member at a tier (None: no tier) in some segments, or ops (`everything`)."""

    tier: str | None = None
    everything: bool = False
    segments: tuple[uuid.UUID, ...] = ()


EVERYTHING = Reader(everything=True)


class PriceChangedError(Exception):
    """The member expected another price than the one it would be charged; nothing was ordered."""

    def __init__(self, expected: int, now: int) -> None:
        super().__init__(
            f"one unit costs you {now} points now, not {expected}: look at the offer again and order at that price"
        )
        self.now = now


def unit_price(
    price_points: int,
    tier_prices: Mapping[str, int],
    tier: str | None,
    segment_prices: Mapping[str, int] | None = None,
    segments: Iterable[uuid.UUID] = (),
) -> int:
    """What one unit costs a member at `tier` in `segments`: the lowest price that applies, else price_points."""
    applying = [tier_prices[tier]] if tier is not None and tier in tier_prices else []
    prices = segment_prices or {}
    applying += [prices[str(s)] for s in segments if str(s) in prices]
    return min(applying, default=price_points)


def open_to(tiers_only: Sequence[str], reader: Reader) -> bool:
    """Whether the reader may see and order an offer open to `tiers_only` (empty: to everyone)."""
    return reader.everything or not tiers_only or reader.tier in tiers_only


def charge(
    price_points: int,
    tier_prices: Mapping[str, int],
    reader: Reader,
    expected: int | None,
    segment_prices: Mapping[str, int] | None = None,
) -> int:
    """The unit price an order is placed at; raises PriceChangedError if the member expected another one."""
    price = unit_price(price_points, tier_prices, reader.tier, segment_prices, reader.segments)
    if expected is not None and expected != price:
        raise PriceChangedError(expected, price)
    return price


@dataclass(frozen=True)
class TierNews:
    """A member's tier as one TierChanged event announced it."""

    event_id: uuid.UUID
    member_id: uuid.UUID
    tier: str | None
    changed_at: datetime


def latest_per_member(news: Iterable[TierNews]) -> list[TierNews]:
    """The latest change of each member (by `changed_at`), sorted by member: the order writers lock rows in."""
    latest: dict[uuid.UUID, TierNews] = {}
    for item in news:
        seen = latest.get(item.member_id)
        if seen is None or item.changed_at > seen.changed_at:
            latest[item.member_id] = item
    return [latest[member] for member in sorted(latest)]


@dataclass(frozen=True)
class SegmentPart:
    """A part of a segment's publication, as one SegmentMembersListed event carried it."""

    event_id: uuid.UUID
    segment_id: uuid.UUID
    publication_id: uuid.UUID
    as_of: datetime
    part: int
    parts: int
    member_ids: tuple[uuid.UUID, ...]
