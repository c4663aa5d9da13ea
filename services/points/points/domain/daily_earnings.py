"""Daily earnings: what a member earned on each day of the programme's calendar, by source, and in total.

The rules, in plain words:

- **A day** is a calendar day in the programme's zone (settings.programme_zone): from its local midnight to the next.
- **Earned on a day** are the credits posted to the member's account that day: counted when the points reached the
  member, not when the purchase happened, so a purchase that arrives late counts on the day it arrived and a day
  once summarised never changes. Every credit to a member is an earning (a purchase, a bonus, a gift received, the
  points a link brought, a red packet's share) except its own points coming back (`NOT_EARNED`).
- **Taken back on a day** are the reversals of earnings posted that day: refunds, card reversals, bonus reversals,
  and the part of them clawed back because the member had spent the points already (a debit of its receivable).
  Repaying a clawback later takes nothing back again: it settles what was counted. **Net** is earned minus taken
  back; it is negative on a day when refunds of earlier days outweigh that day's earnings.
- **Sources.** Each movement's reason names its source (partner, card, activity, gift, tier); a reason this module
  does not know is `other`. What a link claims counts for the source that issued it, a take-back for the source it
  returns to; partner movements are also counted per partner.
- **Running totals.** Month to date: the net of the programme month that holds the day, up to the day's end.
  Lifetime: the net since the member joined.
- **Finished days.** A transfer is stamped with its posting time just before its transaction commits, so a day is
  summarised only `SETTLE_AFTER` past its end: by then every transfer of the day is visible. The job summarises
  every finished day not summarised yet since summaries began, at most `MOST_DAYS_BEHIND` days back; on a new
  ledger it starts with yesterday, never with a backlog of years.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from points.domain.days import day_of
from points.domain.ledger import PROGRAMME

SETTLE_AFTER = timedelta(minutes=5)
MOST_DAYS_BEHIND = 31
"""After a long stop the job summarises at most this many days back: never a backlog of years."""
WINDOW_DAYS = 31
"""The most days a member reads at once, and how far back a share card may go (today included)."""

_SUMMARIES = uuid.UUID("3f2b7c1e-8d54-4a6f-9e0b-5c7d1a2e4f68")


class Source(StrEnum):
    PARTNER = "partner"
    CARD = "card"
    ACTIVITY = "activity"
    GIFT = "gift"
    TIER = "tier"
    OTHER = "other"


class Direction(StrEnum):
    EARNED = "earned"
    TAKEN_BACK = "taken_back"


EARNED_REASONS: Mapping[str, Source] = {
    "partner_purchase": Source.PARTNER,
    "card_purchase": Source.CARD,
    "gift": Source.GIFT,
    "tier_bonus": Source.TIER,
    "red_packet_grab": Source.OTHER,
}
"""Credits whose reason names their source; besides these, `bonus_*` are activities' and `claim` is by identifier."""

NOT_EARNED = frozenset({"red_packet_return", "migration"})
"""Credits that are the member's own points coming back (what nobody grabbed of its red packet), or that it held
in the old programme already (a migrated balance, domain/imports.py): not earned the day they arrive."""

TAKEN_BACK_REASONS: Mapping[str, Source | None] = {
    "partner_refund": Source.PARTNER,
    "card_reversal": Source.CARD,
    "bonus_reversal": Source.ACTIVITY,
    "bonus_clawback": Source.ACTIVITY,
    "tier_bonus_reversal": Source.TIER,
    "clawback": None,
}
"""Debits of a member (or its receivable) that take earnings back; None: the source they return to says which.
Besides these, any reason ending in `_reversal` or `_clawback` (the ledger's convention) is a take-back."""

TAKEN_BACK_SUFFIXES = ("_reversal", "_clawback")


def is_earned(reason: str) -> bool:
    """Whether a credit to a member with this reason is an earning."""
    return reason not in NOT_EARNED


def is_taken_back(reason: str) -> bool:
    """Whether a debit of a member or its receivable with this reason takes earnings back."""
    return reason in TAKEN_BACK_REASONS or reason.endswith(TAKEN_BACK_SUFFIXES)


# --- days in the programme's zone ----------------------------------------------------------------------------


def month_start(day: date) -> date:
    return day.replace(day=1)


def latest_finished_day(now: datetime, zone: ZoneInfo) -> date:
    """The newest day that may be summarised at `now`: it ended at least SETTLE_AFTER ago."""
    return day_of(now - SETTLE_AFTER, zone) - timedelta(days=1)


def is_finished(day: date, now: datetime, zone: ZoneInfo) -> bool:
    return day <= latest_finished_day(now, zone)


def days_to_summarise(now: datetime, zone: ZoneInfo, first_done: date | None, done: Collection[date]) -> list[date]:
    """The finished days not in `done` since summaries began (`first_done`, the first day ever summarised), at
    most MOST_DAYS_BEHIND back, oldest first; only yesterday when nothing was summarised yet."""
    latest = latest_finished_day(now, zone)
    if first_done is None:
        return [latest]
    first = max(first_done, latest - timedelta(days=MOST_DAYS_BEHIND - 1))
    days = (first + timedelta(days=n) for n in range((latest - first).days + 1))
    return [day for day in days if day not in done]


def recent_days(today: date, count: int) -> list[date]:
    """`count` days up to today, newest first."""
    return [today - timedelta(days=n) for n in range(count)]


# --- movements and their sources -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Movement:
    """A transfer that changes what a member earned: a credit to its account, or a take-back from it."""

    direction: Direction
    amount: int
    reason: str
    counterparty: str
    """The other account: the issuer a credit came from (or the unclaimed identifier a link claimed), the account
    a take-back returned points to."""
    posted_at: datetime


def source_of(movement: Movement) -> tuple[Source, str | None]:
    """The movement's source, and its partner's id when the source is a partner."""
    reason, other = movement.reason, movement.counterparty
    if movement.direction is Direction.TAKEN_BACK:
        known = TAKEN_BACK_REASONS.get(reason)
        if known is not None:
            return known, _partner_of(other) if known is Source.PARTNER else None
        if reason.startswith("tier_"):
            return Source.TIER, None
        return _source_of_account(other)
    if reason in EARNED_REASONS:
        source = EARNED_REASONS[reason]
        return source, _partner_of(other) if source is Source.PARTNER else None
    if reason.startswith("bonus_"):
        return Source.ACTIVITY, None
    if reason.startswith("tier_"):
        return Source.TIER, None
    if reason == "claim":
        return _source_of_account(other.removeprefix("unclaimed:"))
    return Source.OTHER, None


def _source_of_account(account: str) -> tuple[Source, str | None]:
    """The source an account stands for: a partner (its issued account or a customer reference), the card, an
    activity's budget."""
    parts = account.split(":")
    if parts[0] == "partner" and len(parts) >= 3:
        return Source.PARTNER, parts[1]
    if parts[0] == "card":
        return Source.CARD, None
    if parts[0] == "activity":
        return Source.ACTIVITY, None
    if account == PROGRAMME:  # issues tier bonuses (domain/tiers.py); a clawback of one returns there
        return Source.TIER, None
    return Source.OTHER, None


def _partner_of(account: str) -> str | None:
    parts = account.split(":")
    return parts[1] if parts[0] == "partner" and len(parts) >= 3 else None


# --- summing -------------------------------------------------------------------------------------------------


def no_sources() -> dict[Source, int]:
    return dict.fromkeys(Source, 0)


@dataclass(frozen=True)
class DayEarnings:
    """One member's day: earned, taken back, and the net by source (every source) and by partner."""

    day: date
    earned: int = 0
    taken_back: int = 0
    by_source: Mapping[Source, int] = field(default_factory=no_sources)
    by_partner: Mapping[str, int] = field(default_factory=dict)

    @property
    def net(self) -> int:
        return self.earned - self.taken_back

    @property
    def any(self) -> bool:
        """Whether anything moved that day (a net of 0 may still be 50 earned and 50 taken back)."""
        return self.earned > 0 or self.taken_back > 0

    @property
    def sources_earned(self) -> dict[Source, int]:
        """The sources that brought points that day (net above 0), as a share card shows them."""
        return {source: points for source, points in self.by_source.items() if points > 0}


def tally(day: date, movements: Iterable[Movement]) -> DayEarnings:
    """Sum one day's movements (the caller picks those posted that day)."""
    earned = taken_back = 0
    by_source = no_sources()
    by_partner: dict[str, int] = {}
    for movement in movements:
        if movement.amount <= 0:
            raise ValueError(f"a movement moves a positive number of points, not {movement.amount}")
        signed = movement.amount if movement.direction is Direction.EARNED else -movement.amount
        if movement.direction is Direction.EARNED:
            earned += movement.amount
        else:
            taken_back += movement.amount
        source, partner = source_of(movement)
        by_source[source] += signed
        if partner is not None:
            by_partner[partner] = by_partner.get(partner, 0) + signed
    return DayEarnings(day, earned, taken_back, by_source, dict(sorted(by_partner.items())))


def by_day(movements: Iterable[Movement], days: Iterable[date], zone: ZoneInfo) -> list[DayEarnings]:
    """Each of `days` (in the order given) with the movements posted on it; other movements are ignored."""
    wanted = list(days)
    grouped: dict[date, list[Movement]] = {day: [] for day in wanted}
    for movement in movements:
        day = day_of(movement.posted_at, zone)
        if day in grouped:
            grouped[day].append(movement)
    return [tally(day, grouped[day]) for day in wanted]


@dataclass(frozen=True)
class Sums:
    """Earned and taken back over a range of time."""

    earned: int = 0
    taken_back: int = 0

    @property
    def net(self) -> int:
        return self.earned - self.taken_back


@dataclass(frozen=True)
class Baseline:
    """Where a lifetime total continues from: a member's lifetime as of `as_of` (an earlier summary's day end)."""

    lifetime: int
    as_of: datetime


@dataclass(frozen=True)
class Totals:
    month_to_date: int
    lifetime: int


def totals(baseline: Baseline | None, since_baseline: Sums, month: Sums) -> Totals:
    """The running totals: the month's net, and the baseline's lifetime plus the net since (all of it if none)."""
    return Totals(month.net, (baseline.lifetime if baseline else 0) + since_baseline.net)


# --- the summary of a finished day ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DaySummary:
    """What DailyEarningsSummarised says of one member's finished day."""

    member_id: uuid.UUID
    earnings: DayEarnings
    totals: Totals
    starts_at: datetime
    ends_at: datetime

    @property
    def event_id(self) -> uuid.UUID:
        return summary_event_id(self.earnings.day, self.member_id)


def summary_event_id(day: date, member_id: uuid.UUID) -> uuid.UUID:
    """One id per member and day, whoever summarises it and however often: consumers drop a copy by it."""
    return uuid.uuid5(_SUMMARIES, f"{day.isoformat()}\x1f{member_id}")
