"""Measuring a reward activity: who it reached, who responded, and what it changed in spend.

The comparison is intention-to-treat: every targeted member counts, whether it responded or not,
against the holdout (targeted members kept back at random, who got nothing). Responders chose to
respond, so comparing them with anybody says more about who they are than about the activity;
their average is shown for context only.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from fractions import Fraction


def rounded(value: Fraction, places: int) -> Decimal:
    """`value` to `places` decimals, half to even, computed exactly."""
    scaled = round(value * 10**places)  # round() of a Fraction is exact and rounds half to even
    return Decimal(scaled).scaleb(-places)


def response_rate(responded: int, targeted: int) -> Decimal:
    """Responders per targeted member, 4 decimals; 0 when nobody was targeted."""
    return rounded(Fraction(responded, targeted) if targeted else Fraction(0), 4)


@dataclass(frozen=True)
class VersionSpan:
    """What measuring needs of an activity version (see activity_versions)."""

    state: str
    effective_from: datetime
    window_start: datetime | None
    window_end: datetime | None


@dataclass(frozen=True)
class Window:
    """[start, end): the purchases whose spend is measured."""

    start: datetime
    end: datetime


def measurement_window(versions: Iterable[VersionSpan], now: datetime) -> Window | None:
    """From the earliest start of an active version to the earliest of: now, the latest end of an
    active version, the moment an 'ended' version took effect (an activity ended early). None when
    no version was ever active. A window that has not started yet is empty (end = start).
    """
    spans = list(versions)
    active = [v for v in spans if v.state == "active"]
    if not active:
        return None
    start = min(v.window_start or v.effective_from for v in active)
    ends = [v.window_end for v in active]
    end = now if any(e is None for e in ends) else min(now, max(e for e in ends if e is not None))
    ended = [v.effective_from for v in spans if v.state == "ended" and v.effective_from >= start]
    if ended:
        end = min(end, min(ended))
    return Window(start, max(start, end))


@dataclass(frozen=True)
class GroupSpend:
    members: int
    total_minor: int

    @property
    def average_minor(self) -> Decimal | None:
        """Total over every member of the group (those who spent nothing count), 2 decimals."""
        return rounded(Fraction(self.total_minor, self.members), 2) if self.members else None


@dataclass(frozen=True)
class CurrencySpend:
    """Net spend in one currency within the window, per group."""

    currency: str
    targeted: GroupSpend
    holdout: GroupSpend
    responders: GroupSpend

    def _lift(self) -> Fraction | None:
        if not self.targeted.members or not self.holdout.members:
            return None
        return Fraction(self.targeted.total_minor, self.targeted.members) - Fraction(
            self.holdout.total_minor, self.holdout.members
        )

    @property
    def lift_per_member_minor(self) -> Decimal | None:
        """avg(targeted) - avg(holdout), 2 decimals; None without a targeted or holdout member."""
        lift = self._lift()
        return None if lift is None else rounded(lift, 2)

    @property
    def incremental_spend_minor(self) -> int | None:
        """lift × targeted members (from the exact lift), rounded half to even to whole minor units."""
        lift = self._lift()
        return None if lift is None else round(lift * self.targeted.members)


@dataclass(frozen=True)
class ChannelResponse:
    """The members an activity messaged on one channel (channel None: its holdout, never messaged), and how many of
    them the messaging systems reported delivered, opened and clicked, and responded within the measurement window
    (a grant of the activity, or a purchase in its scope; the holdout can only buy)."""

    channel: str | None
    members: int
    delivered: int = 0
    opened: int = 0
    clicked: int = 0
    responders: int = 0

    @property
    def response_rate(self) -> Decimal:
        return response_rate(self.responders, self.members)


@dataclass(frozen=True)
class ActivityReport:
    activity_id: uuid.UUID
    name: str
    kind: str
    holdout_share: Decimal
    generated_at: datetime
    window: Window | None
    targeted: int
    holdout: int
    responded: int
    members_granted: int
    points_granted: int
    budget_points: int
    budget_left: int | None
    spend: list[CurrencySpend]
    points_reversed: int = 0
    """What refunds of the rewarded purchases took back, into the budget."""
    packet_points: int = 0
    """What the budget put into red packets; `packet_points_returned` of it came back (nobody grabbed it)."""
    packet_points_returned: int = 0
    channels: tuple[ChannelResponse, ...] = ()
    """The messaged members per channel, then the holdout (channel None), for response rates side by side."""

    @property
    def response_rate(self) -> Decimal:
        return response_rate(self.responded, self.targeted)

    @property
    def points_net(self) -> int:
        """What the activity's members hold of its bonuses: granted minus reversed."""
        return self.points_granted - self.points_reversed


def spend_by_currency(
    targeted: int, holdout: int, responded: int, totals: Iterable[tuple[str, int, int, int]]
) -> list[CurrencySpend]:
    """(currency, targeted total, holdout total, responders total) rows as figures, by currency."""
    return [
        CurrencySpend(
            currency, GroupSpend(targeted, t_total), GroupSpend(holdout, h_total), GroupSpend(responded, r_total)
        )
        for currency, t_total, h_total, r_total in sorted(totals)
    ]
