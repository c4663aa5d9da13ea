"""The programme's days: calendar days in its time zone (PROGRAMME_TIMEZONE), as daily earnings and tiers count them."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def day_of(instant: datetime, zone: ZoneInfo) -> date:
    """The programme day an instant falls on."""
    return instant.astimezone(zone).date()


def start_of(day: date, zone: ZoneInfo) -> datetime:
    """The first moment of `day` in the zone."""
    return datetime.combine(day, time(), tzinfo=zone)


def day_window(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of a day in UTC: its local midnight to the next (23 or 25 hours on a day clocks change)."""
    return start_of(day, zone).astimezone(UTC), start_of(day + timedelta(days=1), zone).astimezone(UTC)
