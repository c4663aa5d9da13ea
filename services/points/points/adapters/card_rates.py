"""Card earn rates, read from the database and kept for a few seconds."""

from __future__ import annotations

import time
from collections.abc import Callable

from points.adapters.store import PointsStore
from points.domain.card_rates import CardRates


class CardRatesCache:
    def __init__(self, store: Callable[[], PointsStore], ttl_seconds: float = 5.0) -> None:
        self._store = store
        self._ttl = ttl_seconds
        self._rates: CardRates | None = None
        self._loaded_at = 0.0

    async def get(self) -> CardRates:
        if self._rates is None or time.monotonic() - self._loaded_at > self._ttl:
            async with self._store().transaction() as tx:
                self._rates = CardRates(await tx.card_rates())
            self._loaded_at = time.monotonic()
        return self._rates

    def invalidate(self) -> None:
        self._rates = None
