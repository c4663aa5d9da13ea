"""Card earn rates: ops set them per merchant category code, from a moment on."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from points.adapters.store import PointsStore
from points.domain.card_rates import ANY_MCC, CardRate


async def list_card_rates(store: PointsStore) -> list[CardRate]:
    async with store.transaction() as tx:
        rates = await tx.card_rates()
    return sorted(rates, key=lambda r: (r.mcc, r.valid_from))


async def add_card_rate(store: PointsStore, mcc: str | None, valid_from: datetime, rate: Decimal) -> CardRate | None:
    """The new rate, or None when one already starts at that moment for that code."""
    added = CardRate(mcc or ANY_MCC, valid_from, rate)
    async with store.transaction() as tx:
        return added if await tx.add_card_rate(added) else None
