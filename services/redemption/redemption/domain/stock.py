"""Offer stock within one transaction: the counters of the offers it touches, and what it changed.

An offer has `stock` units; orders reserve units when their points are held (`units_reserved`), and a
reserved unit is either sold (its points captured) or given back. Units available to reserve are
`stock - units_reserved - units_sold`, never fewer than an order asks for: a reservation that does not
fit is refused, so stock never goes negative. The counters are read under the rows' locks at the start
of the transaction and every change is added to them in order, as the orders come, so that one
statement writes a whole batch's changes (a hot offer's row is written once per batch, not once per order).
"""

from __future__ import annotations

from dataclasses import dataclass, field

OfferKey = tuple[str, str]
"""(partner_id, offer_id)"""


@dataclass
class Counters:
    stock: int
    units_reserved: int
    units_sold: int

    @property
    def available(self) -> int:
        return self.stock - self.units_reserved - self.units_sold


@dataclass
class StockBook:
    """The locked counters of a transaction's offers and the changes made to them (reserved, sold) per offer."""

    counters: dict[OfferKey, Counters] = field(default_factory=dict)
    """Of the locked offers that exist."""
    locked: set[OfferKey] = field(default_factory=set)
    changes: dict[OfferKey, tuple[int, int]] = field(default_factory=dict)

    def _change(self, offer: OfferKey, reserved: int, sold: int) -> None:
        was_reserved, was_sold = self.changes.get(offer, (0, 0))
        self.changes[offer] = (was_reserved + reserved, was_sold + sold)
        counters = self.counters.get(offer)
        if counters is not None:
            counters.units_reserved += reserved
            counters.units_sold += sold

    def reserve(self, offer: OfferKey, units: int) -> Counters | None:
        """Reserve `units` if that many are available: the counters after it, or None (refused, nothing changed).

        The offer's counters must have been loaded: an offer the catalog does not know has none to reserve."""
        counters = self.counters.get(offer)
        if counters is None or counters.available < units:
            return None
        self._change(offer, units, 0)
        return counters

    def give_back(self, offer: OfferKey, units: int) -> None:
        self._change(offer, -units, 0)

    def sell(self, offer: OfferKey, units: int) -> None:
        self._change(offer, -units, units)
