"""Attribution: which channel, branch, staff member, campaign and share link brought a member to respond.

Rules in plain words:
- A purchase (partner API, card) or a claim may carry an attribution: a channel, a branch, a staff member, a
  campaign and a share link's code, each optional. It is kept in the memo of the transfer that credited the
  member, so it stays with the points it brought and is never a second record to keep in step.
- A share link is made by a member (for itself) or by a staff member (its own id, and its branch if it names
  one), for an offer or an activity, with a response window of 1 to 30 days. Its code is unguessable.
- A touch is a message sent to a member about an activity, or a signed-in member's first open of a link (a
  member who signed in right after opening claims that open). Within the touch's window (a message: until the
  activity ends as planned when it was sent; a link: `window_days` from the first open), the member *responds*
  by getting a grant of the activity, or by a purchase in the activity's scope (multiplier and spend-threshold
  activities: their scope; first-purchase: its partner), or, for an offer, by a purchase or a redemption at the
  offer's partner. A purchase or a claim that carries an attribution is a response in itself, of the member that
  made it, counted for its own channel, branch and staff member, else its share link's.
- A response counts for every touch whose window holds it (several pushes and links may share the credit): the
  report answers "what followed each touch", not "which one alone caused it".
- Incremental spend is measured only against a randomised holdout: for the channel rows, the messaged members of
  each activity with a holdout on that channel against the activity's held-out members, by the intention-to-treat
  maths of points/domain/reports.py (every member of each group counts, responders or not), summed over the
  activities messaged in the period. Links and attributed purchases have no holdout: no incremental figure.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from points.domain.reports import CurrencySpend, GroupSpend, response_rate

CHANNELS = ("app", "sms", "wechat", "branch", "web", "partner")
"""Where a member was reached or acted (contracts.events.attribution.Channel)."""
FIELDS = ("channel", "branch_id", "staff_id", "campaign_ref", "share_code")
MIN_WINDOW_DAYS, MAX_WINDOW_DAYS = 1, 30
MAX_REPORT_DAYS = 366
LEADERBOARD_SIZE = 10


class AttributionRuleError(ValueError):
    """A share link or a report the rules do not allow; the message says what to change."""


class Grouping(StrEnum):
    CHANNEL = "channel"
    BRANCH = "branch"
    STAFF = "staff"


@dataclass(frozen=True)
class Attribution:
    channel: str | None = None
    branch_id: str | None = None
    staff_id: str | None = None
    campaign_ref: str | None = None
    share_code: str | None = None

    def __post_init__(self) -> None:
        if self.channel is not None and self.channel not in CHANNELS:
            raise AttributionRuleError(f"channel {self.channel!r} is not one of {', '.join(CHANNELS)}")

    @property
    def empty(self) -> bool:
        return all(getattr(self, name) is None for name in FIELDS)

    def to_memo(self) -> dict[str, str]:
        """As kept in a transfer's memo under "attribution": only the fields it has."""
        return {name: value for name in FIELDS if (value := getattr(self, name)) is not None}

    @classmethod
    def from_memo(cls, memo: Mapping[str, Any] | None) -> Attribution:
        raw = memo or {}
        return cls(**{name: str(raw[name]) for name in FIELDS if raw.get(name) is not None})


# --- share links ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShareTarget:
    """An offer (partner_id, offer_id) or an activity (activity_id)."""

    kind: str
    activity_id: uuid.UUID | None = None
    partner_id: str | None = None
    offer_id: str | None = None

    def __post_init__(self) -> None:
        if self.kind == "activity" and (self.activity_id is None or self.partner_id or self.offer_id):
            raise AttributionRuleError("an activity target names activity_id only")
        if self.kind == "offer" and (self.activity_id is not None or not self.partner_id or not self.offer_id):
            raise AttributionRuleError("an offer target names partner_id and offer_id only")
        if self.kind not in ("activity", "offer"):
            raise AttributionRuleError(f"a share link is for an offer or an activity, not {self.kind!r}")


@dataclass(frozen=True)
class Sharer:
    """Who makes a link: a member for itself, or a staff member (its id) at a branch it may name."""

    created_by: str
    member_id: uuid.UUID | None = None
    staff_id: str | None = None
    branch_id: str | None = None

    def __post_init__(self) -> None:
        if (self.member_id is None) == (self.staff_id is None):
            raise AttributionRuleError("a share link is a member's or a staff member's")
        if self.member_id is not None and self.branch_id is not None:
            raise AttributionRuleError("branch_id is for the links of staff at a branch, not of members")


@dataclass(frozen=True)
class ShareLink:
    link_id: uuid.UUID
    code: str
    sharer: Sharer
    target: ShareTarget
    channel: str | None
    campaign_ref: str | None
    window_days: int
    created_at: datetime

    @property
    def window(self) -> timedelta:
        return timedelta(days=self.window_days)

    @property
    def request_sha256(self) -> str:
        return share_request_sha256(self.sharer, self.target, self.channel, self.campaign_ref, self.window_days)


def share_request_sha256(
    sharer: Sharer, target: ShareTarget, channel: str | None, campaign_ref: str | None, window_days: int
) -> str:
    """What a create request asked, so that the same link id with another body is refused, not silently merged."""
    fields = (sharer.created_by, sharer.member_id, sharer.staff_id, sharer.branch_id, target.kind, target.activity_id,
              target.partner_id, target.offer_id, channel, campaign_ref, window_days)  # fmt: skip
    canonical = "".join("-" if f is None else f"{len(str(f))}:{f}" for f in fields)
    return hashlib.sha256(canonical.encode()).hexdigest()


def new_share_link(
    link_id: uuid.UUID, code: str, sharer: Sharer, target: ShareTarget, channel: str | None,
    campaign_ref: str | None, window_days: int, now: datetime,
) -> ShareLink:  # fmt: skip
    if not MIN_WINDOW_DAYS <= window_days <= MAX_WINDOW_DAYS:
        raise AttributionRuleError(
            f"window_days must be {MIN_WINDOW_DAYS} to {MAX_WINDOW_DAYS}: how long after an open a response counts"
        )
    if channel is not None and channel not in CHANNELS:
        raise AttributionRuleError(f"channel {channel!r} is not one of {', '.join(CHANNELS)}")
    return ShareLink(link_id, code, sharer, target, channel, campaign_ref, window_days, now)


def open_day(at: datetime, zone: ZoneInfo) -> date:
    """The programme day an open counts on: a member's opens of one link count once a day."""
    return at.astimezone(zone).date()


def open_minute(at: datetime) -> datetime:
    """The minute whose opens a flood limit counts."""
    return at.replace(second=0, microsecond=0)


# --- the report -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """[start, end): the touches (messages sent, opens, attributed purchases and claims) a report counts."""

    first_day: date
    last_day: date
    start: datetime
    end: datetime


def report_period(first_day: date, last_day: date, zone: ZoneInfo) -> Period:
    """Programme days from `first_day` to `last_day`, both included, in the programme's zone."""
    if last_day < first_day:
        raise AttributionRuleError(f"to ({last_day}) is before from ({first_day})")
    if (last_day - first_day).days + 1 > MAX_REPORT_DAYS:
        raise AttributionRuleError(f"a report covers at most {MAX_REPORT_DAYS} days; narrow from and to")
    start = datetime.combine(first_day, datetime.min.time(), zone)
    end = datetime.combine(last_day + timedelta(days=1), datetime.min.time(), zone)
    return Period(first_day, last_day, start, end)


@dataclass
class Spend:
    currency: str
    spend_minor: int = 0
    incremental_spend_minor: int | None = None


@dataclass
class AttributionRow:
    """One channel, branch or staff member (key None: touches that name none)."""

    key: str | None
    reach: int = 0
    opens: int = 0
    responders: int = 0
    points_granted: int = 0
    spend: dict[str, Spend] = field(default_factory=dict)

    @property
    def response_rate(self) -> Decimal:
        """Responders per member reached, 4 decimals, half to even (points/domain/reports.py)."""
        return response_rate(self.responders, self.reach)

    def spend_in(self, currency: str) -> Spend:
        return self.spend.setdefault(currency, Spend(currency))


@dataclass(frozen=True)
class Figure:
    """One number the report query counted: `name` is reach, opens, responders, points or spend."""

    name: str
    key: str | None
    value: int
    currency: str | None = None


@dataclass(frozen=True)
class ChannelCohort:
    """One activity's messaged members on one channel (channel None: its holdout), and their spend by currency."""

    activity_id: uuid.UUID
    channel: str | None
    members: int
    spend_minor: Mapping[str, int]


def incremental_by_channel(cohorts: Iterable[ChannelCohort]) -> dict[tuple[str, str], int]:
    """(channel, currency) -> incremental spend in minor units, summed over the activities.

    Each activity's messaged members on a channel against its own holdout, intention-to-treat; an activity
    without a held-out member gives nothing (no comparison), nor a currency neither group spent in.
    """
    by_activity: dict[uuid.UUID, list[ChannelCohort]] = {}
    for cohort in cohorts:
        by_activity.setdefault(cohort.activity_id, []).append(cohort)
    found: dict[tuple[str, str], int] = {}
    for groups in by_activity.values():
        holdout = next((g for g in groups if g.channel is None), None)
        if holdout is None or not holdout.members:
            continue
        for group in groups:
            if group.channel is None:
                continue
            for currency in sorted(set(group.spend_minor) | set(holdout.spend_minor)):
                spend = CurrencySpend(
                    currency, GroupSpend(group.members, group.spend_minor.get(currency, 0)),
                    GroupSpend(holdout.members, holdout.spend_minor.get(currency, 0)), GroupSpend(0, 0),
                )  # fmt: skip
                extra = spend.incremental_spend_minor
                if extra is not None:
                    found[(group.channel, currency)] = found.get((group.channel, currency), 0) + extra
    return found


def attribution_rows(figures: Iterable[Figure], incremental: Mapping[tuple[str, str], int]) -> list[AttributionRow]:
    """The report's rows from the query's figures: most responders first, then most reach, then by key (None last)."""
    rows: dict[str | None, AttributionRow] = {}
    for figure in figures:
        row = rows.setdefault(figure.key, AttributionRow(figure.key))
        if figure.name == "spend":
            assert figure.currency is not None
            row.spend_in(figure.currency).spend_minor += figure.value
        elif figure.name == "points":
            row.points_granted += figure.value
        elif figure.name in ("reach", "opens", "responders"):
            setattr(row, figure.name, getattr(row, figure.name) + figure.value)
        else:
            raise ValueError(f"unknown figure {figure.name!r}")
    for (channel, currency), extra in incremental.items():
        row = rows.setdefault(channel, AttributionRow(channel))
        row.spend_in(currency).incremental_spend_minor = extra
    return sorted(rows.values(), key=_rank)


def _rank(row: AttributionRow) -> tuple[int, int, int, bool, str]:
    return (-row.responders, -row.reach, -row.points_granted, row.key is None, row.key or "")


def leaderboard(rows: Sequence[AttributionRow], size: int = LEADERBOARD_SIZE) -> list[AttributionRow]:
    """The first `size` named rows by responders (then reach, points, key): the staff leaderboard for staff rows."""
    return sorted((r for r in rows if r.key is not None), key=_rank)[:size]


@dataclass(frozen=True)
class AttributionReport:
    grouping: Grouping
    period: Period
    generated_at: datetime
    rows: list[AttributionRow]

    @property
    def leaderboard(self) -> list[AttributionRow]:
        return leaderboard(self.rows)
