"""Small numeric helpers: percentiles and rates. Pure, so they can be tested without a clock."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile (`share` in 0..1) of `values`; NaN when there are none.

    Nearest rank (not interpolation) so that a p99 is a latency some request really had.
    """
    if not values:
        return math.nan
    if not 0 <= share <= 1:
        raise ValueError(f"share must be within 0..1, not {share}")
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


def summary(values: Sequence[float], shares: Sequence[float] = (0.5, 0.95, 0.99)) -> dict[str, float]:
    """{'p50': ..., 'p95': ..., 'p99': ...} of `values`, sorting once."""
    ordered = sorted(values)
    return {f"p{round(share * 100):d}": percentile(ordered, share) for share in shares}


def rate(count: float, seconds: float) -> float:
    """Events per second; 0 for an empty interval rather than a division error."""
    return count / seconds if seconds > 0 else 0.0
