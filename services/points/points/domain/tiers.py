"""Tiers: how a member earns a tier, keeps it and loses it, and what it earns with it (DESIGN.md, Growth).

- A tier is earned on *qualifying points*, never on the balance: a purchase's own points (partner purchases and
  card purchases) credited to a member, minus what refunds reversed of them. Activity bonuses, tier bonuses,
  gifts, claims and red packets do not qualify, nor do a purchase's points that waited for an unlinked
  identifier (they were nobody's when it was bought).
- Qualifying points are counted per member and per day of the programme's time zone, on the day the purchase
  occurred; a refund lowers the day of its purchase.
- The window ending on day E: `rolling_12_months`, the 365 days up to E; `calendar_year`, 1 January of E's year
  up to E. The *current* window ends today.
- Upgrade at once: when the current window's qualifying points reach a higher tier's threshold, the member moves
  there at once, several tiers at once if its points reach them.
- A tier reached or kept on the points of the window ending on day B (its basis) holds until `valid_until`:
  rolling, B plus one year; calendar year, 31 December of the year after B's. So the period a review judges
  follows the one the tier was earned in, and periods follow each other without gap or overlap.
- Review, on the first day after valid_until plus the grace days: if the qualifying points of the window ending on
  valid_until reach the tier's threshold, the tier is confirmed for the next period (basis valid_until). Otherwise
  it moves down: `one_tier_down`, one step (held for the next period), `to_qualified`, to the tier those points
  reach. A review never leaves a member below the tier its current window reaches (points earned during the grace
  period count): that tier holds with today as its basis.
- Refunds never downgrade at once: they lower qualifying points, which the next review judges.
- The base tier (the first one, when its threshold is 0) is held without review. A member whose tier never
  changed holds the base tier of the tier set, or no tier when the first threshold is above 0.
- Points to keep: the tier's threshold minus the qualifying points of the window the next review judges (at
  least 0); points to reach: the next tier's threshold minus the current window's qualifying points.
- A purchase earns with the tier its member held when it *occurred* (the tier history, so a redelivery or a late
  arrival never changes it) and that tier's multiplier in the tier set in force then: a tier bonus of
  floor(points x (multiplier - 1)), a transfer from the programme account to the member whose lot expires with
  the purchase's. A refund takes the bonus back in the same proportion as the purchase's points, cumulatively,
  by the refund policy of points/domain/earning.py (a shortfall is a clawback).
- A tier set is versioned: every change is a new version from its moment on.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import TypeAdapter, ValidationError

from contracts.ids import TierCode
from points.domain.days import day_of
from points.domain.earning import Earn, Earning, Reverse, take_back
from points.domain.ledger import PROGRAMME, AccountKind, Book, kind_of, member_of, transfer_id

MAX_TIERS = 10
MAX_NAME = 60
MAX_BENEFITS = 10
MAX_BENEFIT = 200
MAX_THRESHOLD = 10**12
MAX_GRACE_DAYS = 366
MAX_MULTIPLIER = Decimal(10)
ROLLING_DAYS = 365
TIER_BONUS = "tier_bonus"
TIER_BONUS_REVERSAL = "tier_bonus_reversal"
TIER_BONUS_OF = "tier_bonus_of"
"""The memo key that names, on a tier bonus and on what refunds take back of it, the purchase (event id)."""

_CODES: TypeAdapter[str] = TypeAdapter(TierCode)
_EVENT_IDS = uuid.UUID("6f1d4a8e-2b7c-4e59-9a30-5c8e7d1b2f46")


class Qualification(StrEnum):
    ROLLING_12_MONTHS = "rolling_12_months"
    CALENDAR_YEAR = "calendar_year"


class DowngradePolicy(StrEnum):
    ONE_TIER_DOWN = "one_tier_down"
    TO_QUALIFIED = "to_qualified"


class Direction(StrEnum):
    UPGRADE = "upgrade"
    DOWNGRADE = "downgrade"
    CONFIRMED = "confirmed"


class Reason(StrEnum):
    QUALIFIED = "qualified"
    REVIEW_CONFIRMED = "review_confirmed"
    REVIEW_DOWNGRADED = "review_downgraded"
    TIER_SET_CHANGED = "tier_set_changed"


class TierSetError(ValueError):
    """A tier set that cannot be used; the message says what to change."""


class UnknownTierError(ValueError):
    """Tier codes that the tier set does not have (in an activity's rules); the message names them."""


def is_tier_code(code: object) -> bool:
    """Whether `code` is written as a tier code (contracts.ids.TierCode: 'gold', 'silver-plus')."""
    try:
        _CODES.validate_python(code)
    except ValidationError:
        return False
    return True


# --- days and windows, in the programme's time zone -------------------------------------------------------


def one_year_after(day: date) -> date:
    """The same date a year later; 29 February gives 28 February."""
    try:
        return day.replace(year=day.year + 1)
    except ValueError:
        return day.replace(year=day.year + 1, day=28)


# --- the tier set -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tier:
    code: str
    name: str
    threshold_points: int
    """The qualifying points in a window that reach this tier."""
    earn_multiplier: Decimal = Decimal(1)
    benefits: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "name": self.name, "threshold_points": self.threshold_points,
                "earn_multiplier": str(self.earn_multiplier), "benefits": list(self.benefits)}  # fmt: skip

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Tier:
        return cls(
            str(raw["code"]), str(raw["name"]), int(raw["threshold_points"]), Decimal(str(raw["earn_multiplier"])),
            tuple(str(b) for b in raw.get("benefits", ())),
        )  # fmt: skip


@dataclass(frozen=True)
class TierSet:
    """The programme's tiers, lowest first, and how members qualify for them, keep them and lose them."""

    qualification: Qualification
    grace_days: int
    downgrade_policy: DowngradePolicy
    tiers: tuple[Tier, ...]
    version: int = 0
    """0 until it is stored; then 1, 2, ... one more with each change."""
    effective_from: datetime | None = None

    @property
    def base(self) -> Tier | None:
        """The tier members hold without qualifying: the first, when its threshold is 0."""
        return self.tiers[0] if self.tiers and self.tiers[0].threshold_points == 0 else None

    @property
    def base_code(self) -> str | None:
        return self.base.code if self.base else None

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(t.code for t in self.tiers)

    def tier(self, code: str | None) -> Tier | None:
        return next((t for t in self.tiers if t.code == code), None)

    def rank(self, code: str | None) -> int:
        """0 for the first tier, 1 for the next...; -1 for no tier (or a code this set does not have)."""
        return next((i for i, t in enumerate(self.tiers) if t.code == code), -1)

    def reached(self, points: int) -> Tier | None:
        """The highest tier whose threshold these qualifying points reach."""
        found = [t for t in self.tiers if t.threshold_points <= points]
        return found[-1] if found else None

    def above(self, code: str | None) -> Tier | None:
        rank = self.rank(code)
        return self.tiers[rank + 1] if rank + 1 < len(self.tiers) else None

    def below(self, code: str | None) -> Tier | None:
        rank = self.rank(code)
        return self.tiers[rank - 1] if rank > 0 else None

    def multiplier(self, code: str | None) -> Decimal:
        found = self.tier(code)
        return found.earn_multiplier if found else Decimal(1)

    def window(self, end: date) -> tuple[date, date]:
        """The first and last day of the window ending on `end`."""
        if self.qualification is Qualification.CALENDAR_YEAR:
            return date(end.year, 1, 1), end
        return end - timedelta(days=ROLLING_DAYS - 1), end

    def valid_until(self, tier: Tier | None, basis: date) -> date | None:
        """The last day a tier earned on the window ending on `basis` holds; None for the base tier and no tier."""
        if tier is None or tier.threshold_points == 0:
            return None
        if self.qualification is Qualification.CALENDAR_YEAR:
            return date(basis.year + 1, 12, 31)
        return one_year_after(basis)

    def review_day(self, valid_until: date) -> date:
        """The first day on which a tier valid until `valid_until` is reviewed: after its grace days."""
        return valid_until + timedelta(days=self.grace_days + 1)

    def validate(self) -> None:
        """Raises TierSetError with what to change."""
        if not 0 <= self.grace_days <= MAX_GRACE_DAYS:
            raise TierSetError(f"grace_days must be 0 to {MAX_GRACE_DAYS} days, not {self.grace_days}")
        if not 1 <= len(self.tiers) <= MAX_TIERS:
            raise TierSetError(f"a tier set has 1 to {MAX_TIERS} tiers, lowest first; this one has {len(self.tiers)}")
        for number, tier in enumerate(self.tiers, start=1):
            _validate_tier(number, tier)
        codes = self.codes
        twice = sorted({c for c in codes if codes.count(c) > 1})
        if twice:
            raise TierSetError(f"tier codes must differ: {', '.join(twice)} is used twice")
        if self.tiers[0].threshold_points < 0:
            raise TierSetError("threshold_points cannot be negative; give the first (base) tier 0")
        for lower, higher in zip(self.tiers, self.tiers[1:], strict=False):
            if higher.threshold_points <= lower.threshold_points:
                raise TierSetError(
                    f"thresholds must increase from tier to tier: {higher.code} needs more than {lower.code}'s "
                    f"{lower.threshold_points} points; list the tiers lowest first"
                )

    def to_json(self) -> dict[str, Any]:
        return {
            "qualification": self.qualification.value,
            "grace_days": self.grace_days,
            "downgrade_policy": self.downgrade_policy.value,
            "tiers": [t.to_json() for t in self.tiers],
        }


def _validate_tier(number: int, tier: Tier) -> None:
    where = f"tier {number} ({tier.code!r})"
    if not is_tier_code(tier.code):
        raise TierSetError(
            f"{where}: a code is a lower-case letter, then up to 31 letters, digits, '-' or '_', e.g. 'gold'"
        )
    if not tier.name.strip() or len(tier.name) > MAX_NAME:
        raise TierSetError(f"{where}: give it a name of 1 to {MAX_NAME} characters")
    if not 0 <= tier.threshold_points <= MAX_THRESHOLD:
        raise TierSetError(f"{where}: threshold_points must be 0 to {MAX_THRESHOLD:,} qualifying points")
    m = tier.earn_multiplier
    if not m.is_finite() or not Decimal(1) <= m <= MAX_MULTIPLIER:
        raise TierSetError(f"{where}: earn_multiplier must be 1 to {MAX_MULTIPLIER}, e.g. 1.25 for a quarter more")
    if m != m.quantize(Decimal("0.01"), rounding=ROUND_FLOOR):
        raise TierSetError(f"{where}: earn_multiplier has at most 2 decimals, e.g. 1.25, not {m}")
    if len(tier.benefits) > MAX_BENEFITS:
        raise TierSetError(f"{where}: at most {MAX_BENEFITS} benefits; keep the most important ones")
    for benefit in tier.benefits:
        if not benefit.strip() or len(benefit) > MAX_BENEFIT:
            raise TierSetError(f"{where}: each benefit is a text of 1 to {MAX_BENEFIT} characters")


def new_tier_set(
    qualification: str, grace_days: int, downgrade_policy: str, tiers: Iterable[Mapping[str, Any]]
) -> TierSet:
    """A tier set from what ops typed; raises TierSetError with what to change."""
    try:
        q = Qualification(qualification)
    except ValueError:
        raise TierSetError("qualification is 'rolling_12_months' or 'calendar_year'") from None
    try:
        policy = DowngradePolicy(downgrade_policy)
    except ValueError:
        raise TierSetError("downgrade_policy is 'one_tier_down' or 'to_qualified'") from None
    made: list[Tier] = []
    for number, raw in enumerate(tiers, start=1):
        try:
            multiplier = Decimal(str(raw.get("earn_multiplier", 1)))
        except InvalidOperation:
            raise TierSetError(f"tier {number}: earn_multiplier is a number such as 1.25") from None
        benefits = tuple(str(b) for b in raw.get("benefits", ()))
        made.append(Tier(str(raw["code"]), str(raw["name"]), int(raw["threshold_points"]), multiplier, benefits))
    tier_set = TierSet(q, grace_days, policy, tuple(made))
    tier_set.validate()
    cents = Decimal("0.01")  # one way to write a multiplier, so that the same tier set compares equal
    return replace(tier_set, tiers=tuple(replace(t, earn_multiplier=t.earn_multiplier.quantize(cents)) for t in made))


def tier_set_from_json(raw: Mapping[str, Any], version: int, effective_from: datetime) -> TierSet:
    """A stored version."""
    return TierSet(
        Qualification(raw["qualification"]), int(raw["grace_days"]), DowngradePolicy(raw["downgrade_policy"]),
        tuple(Tier.from_json(t) for t in raw["tiers"]), version, effective_from,
    )  # fmt: skip


def removed_codes(old: TierSet | None, new: TierSet) -> list[str]:
    """The codes of `old` that `new` no longer has: members holding them would hold nothing."""
    return sorted(set(old.codes) - set(new.codes)) if old else []


def check_codes(tier_set: TierSet | None, codes: Iterable[str]) -> None:
    """Raises UnknownTierError unless every code is one of the tier set's."""
    wanted = sorted(set(codes))
    if not wanted:
        return
    if tier_set is None:
        raise UnknownTierError("there is no tier set yet: ops put one (PUT /v1/ops/tier-set) before naming tiers")
    unknown = [c for c in wanted if c not in tier_set.codes]
    if unknown:
        raise UnknownTierError(f"unknown tier {', '.join(unknown)}: the tier set has {', '.join(tier_set.codes)}")


@dataclass(frozen=True)
class TierSets:
    """Versions of the tier set, oldest first: those in force from some moment on, and every later one."""

    versions: tuple[TierSet, ...] = ()

    @property
    def latest(self) -> TierSet | None:
        return self.versions[-1] if self.versions else None

    def at(self, moment: datetime) -> TierSet | None:
        """The version in force at `moment`."""
        found = None
        for version in self.versions:
            if version.effective_from is not None and version.effective_from <= moment:
                found = version
        return found


# --- a member's tier and its changes ------------------------------------------------------------------------


@dataclass(frozen=True)
class TierState:
    """A member's tier as its latest change left it (or as it is without any change)."""

    code: str | None
    since: datetime | None = None
    """When the member moved to this tier (a review that confirms it keeps it); None: it never changed (the base
    tier of the set, or no tier)."""
    valid_until: date | None = None
    tier_set_version: int | None = None
    changed_at: datetime | None = None
    """Its latest change (a confirmation too)."""


def implicit_state(tier_set: TierSet | None) -> TierState:
    """The tier of a member whose tier never changed."""
    return TierState(tier_set.base_code if tier_set else None)


@dataclass(frozen=True)
class TierChange:
    member_id: uuid.UUID
    from_tier: str | None
    to_tier: str | None
    direction: Direction
    reason: Reason
    qualifying_points: int
    at: datetime
    valid_until: date | None
    tier_set_version: int
    cause_event_id: uuid.UUID | None = None
    """The purchase that made the member qualify, for an upgrade in the earn batch."""

    @property
    def event_id(self) -> uuid.UUID:
        """The id of its TierChanged event, from what it is: the same change, the same id."""
        what = (self.member_id, self.at.isoformat(), self.from_tier, self.to_tier, self.reason, self.valid_until)
        return uuid.uuid5(_EVENT_IDS, "|".join(map(str, what)))

    @property
    def state(self) -> TierState:
        """The member's tier after this change (`since` is the change's moment, as for an upgrade)."""
        return TierState(self.to_tier, self.at, self.valid_until, self.tier_set_version, self.at)


def _change(
    tier_set: TierSet, member_id: uuid.UUID, state: TierState, target: Tier | None, points: int, basis: date,
    now: datetime, reason: Reason | None = None, cause: uuid.UUID | None = None,
) -> TierChange:  # fmt: skip
    """The change of `state` to `target`, held for the period after `basis`; the reason follows the direction.

    It happens at `now`, or just after the member's previous change if a clock behind made `now` earlier: a member's
    changes stay in the order they were made.
    """
    at = max(now, state.changed_at + timedelta(microseconds=1)) if state.changed_at is not None else now
    old, new = tier_set.rank(state.code), tier_set.rank(target.code if target else None)
    direction = Direction.UPGRADE if new > old else Direction.DOWNGRADE if new < old else Direction.CONFIRMED
    default = {Direction.UPGRADE: Reason.QUALIFIED, Direction.DOWNGRADE: Reason.REVIEW_DOWNGRADED,
               Direction.CONFIRMED: Reason.REVIEW_CONFIRMED}[direction]  # fmt: skip
    return TierChange(
        member_id, state.code, target.code if target else None, direction, reason or default, max(points, 0), at,
        tier_set.valid_until(target, basis), tier_set.version, cause,
    )  # fmt: skip


def upgrade(
    tier_set: TierSet, member_id: uuid.UUID, state: TierState, points: int, today: date, now: datetime,
    reason: Reason = Reason.QUALIFIED, cause: uuid.UUID | None = None,
) -> TierChange | None:  # fmt: skip
    """The move at once to the highest tier the current window's `points` reach, if it is above the member's."""
    reached = tier_set.reached(points)
    if reached is None or tier_set.rank(reached.code) <= tier_set.rank(state.code):
        return None
    return _change(tier_set, member_id, state, reached, points, today, now, reason, cause)


def review_due(tier_set: TierSet, state: TierState, today: date) -> bool:
    return state.valid_until is not None and today >= tier_set.review_day(state.valid_until)


def review(
    tier_set: TierSet, member_id: uuid.UUID, state: TierState, judged: int, current: int, today: date, now: datetime
) -> TierChange | None:
    """The review of a member's tier, once it is due (else None).

    `judged`: the qualifying points of the window ending on its valid_until; `current`: of the window ending today.
    """
    if not review_due(tier_set, state, today):
        return None
    assert state.valid_until is not None
    held = tier_set.tier(state.code)
    kept: Tier | None
    if held is not None and judged >= held.threshold_points:
        kept = held
    elif held is not None and tier_set.downgrade_policy is DowngradePolicy.ONE_TIER_DOWN:
        kept = tier_set.below(held.code)
    else:
        kept = tier_set.reached(judged)
    reached_now = tier_set.reached(current)
    if tier_set.rank(reached_now.code if reached_now else None) > tier_set.rank(kept.code if kept else None):
        return _change(tier_set, member_id, state, reached_now, current, today, now)
    return _change(tier_set, member_id, state, kept, judged, state.valid_until, now)


@dataclass(frozen=True)
class Progress:
    """Where a member stands: its tier, what it needs to keep it at the next review, and to reach the next."""

    tier: Tier | None
    state: TierState
    review_day: date | None
    current_window: tuple[date, date]
    current_points: int
    judged_window: tuple[date, date] | None
    """The window the next review judges (None: the tier is never reviewed)."""
    judged_points: int | None
    points_to_keep: int | None
    next_tier: Tier | None
    points_to_reach: int | None


def judged_window(tier_set: TierSet, state: TierState) -> tuple[date, date] | None:
    return tier_set.window(state.valid_until) if state.valid_until is not None else None


def progress(
    tier_set: TierSet, state: TierState, current_points: int, judged_points: int | None, today: date
) -> Progress:
    tier = tier_set.tier(state.code)
    judged = judged_window(tier_set, state)
    keep = None
    if tier is not None and judged is not None:
        keep = max(tier.threshold_points - (judged_points or 0), 0)
    following = tier_set.above(state.code)
    reach = max(following.threshold_points - current_points, 0) if following else None
    return Progress(
        tier, state, tier_set.review_day(state.valid_until) if state.valid_until else None,
        tier_set.window(today), current_points, judged, judged_points if judged else None, keep, following, reach,
    )  # fmt: skip


def tier_at(changes: Sequence[TierChange], moment: datetime, tier_set: TierSet | None) -> str | None:
    """A member's tier at `moment`: its latest change by then (`changes` oldest first), else the base tier then."""
    found: TierChange | None = None
    for change in changes:
        if change.at > moment:
            break
        found = change
    return found.to_tier if found else implicit_state(tier_set).code


# --- the earn batch -----------------------------------------------------------------------------------------


def tier_bonus(points: int, multiplier: Decimal) -> int:
    """floor(points x (multiplier - 1)): what a tier adds to a purchase's points."""
    if points <= 0 or multiplier <= 1:
        return 0
    return int((Decimal(points) * (multiplier - 1)).to_integral_value(rounding=ROUND_FLOOR))


def tier_bonus_transfer_id(purchase_event_id: uuid.UUID) -> uuid.UUID:
    return transfer_id(purchase_event_id, "tier")


_PURCHASE_MEMO = ("partner_id", "purchase_id", "transaction_id", "merchant_name")


@dataclass
class EarnTiers:
    """The tier part of an earn batch, told as its book moves (an EarnListener of points/domain/earning.py).

    A purchase adds to its member's qualifying points and earns the bonus of the tier held when it occurred; a
    refund lowers them and takes back its share of the bonus. Upgrades are decided at `now` with the latest tier
    set: before the member's next purchase in the batch, and at `finish`. So a purchase is judged by the tier
    history as the batch found it, plus this batch's upgrades if it occurred after them.
    """

    book: Book
    sets: TierSets
    zone: ZoneInfo
    now: datetime
    lot_validity: timedelta
    earnings: Mapping[str, Earning]
    """The batch's earnings by source key (the plan's own dictionary: new ones appear as the plan makes them)."""
    timelines: dict[uuid.UUID, list[TierChange]]
    """Per member with a purchase in the batch: its changes from before the earliest purchase on, oldest first."""
    window_points: dict[uuid.UUID, int]
    """Per member with a purchase in the batch: the current window's qualifying points as the batch found them."""
    days: dict[tuple[uuid.UUID, date], int] = field(default_factory=dict)
    """Qualifying points this batch adds (or takes away) per member and day."""
    changes: list[TierChange] = field(default_factory=list)
    _pending: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)

    @property
    def today(self) -> date:
        return day_of(self.now, self.zone)

    def earned(self, fact: Earn, holder: str) -> None:
        if kind_of(holder) is not AccountKind.MEMBER:
            return  # an unclaimed identifier's points qualify for nobody
        member = member_of(holder)
        self._settle(member)
        earning = self.earnings[fact.source_key]
        earning.qualifying_day = day_of(fact.occurred_at, self.zone)
        self._count(member, earning.qualifying_day, fact.points)
        tier_set = self.sets.at(fact.occurred_at)
        earning.tier_code = self.tier_of(member, fact.occurred_at)
        multiplier = tier_set.multiplier(earning.tier_code) if tier_set else Decimal(1)
        bonus = tier_bonus(fact.points, multiplier)
        if bonus and tier_set is not None:
            memo = {k: fact.memo[k] for k in _PURCHASE_MEMO if k in fact.memo}
            memo |= {"tier": earning.tier_code, "multiplier": str(multiplier), "tier_set_version": tier_set.version,
                     TIER_BONUS_OF: str(fact.event_id)}  # fmt: skip
            self.book.transfer(
                transfer_id=tier_bonus_transfer_id(fact.event_id),
                debit=PROGRAMME,
                credit=holder,
                amount=bonus,
                reason=TIER_BONUS,
                cause_event_id=fact.event_id,
                occurred_at=fact.occurred_at,
                memo=memo,
                lot_expires_at=fact.occurred_at + self.lot_validity,
                lot_issuer=PROGRAMME,
            )
            earning.tier_bonus = bonus
        self._pending[member] = fact.event_id

    def reversed(self, fact: Reverse, earning: Earning, refunded_before: int) -> None:
        if earning.qualifying_day is None or earning.holder_account is None:
            return
        member = member_of(earning.holder_account)
        before = earning.points * refunded_before // earning.amount_minor
        after = earning.points * earning.refunded_minor // earning.amount_minor
        self._count(member, earning.qualifying_day, before - after)
        due = earning.tier_bonus * earning.refunded_minor // earning.amount_minor - earning.tier_bonus_reversed
        if due <= 0:
            return
        memo = {**fact.memo, TIER_BONUS_OF: str(earning.event_id), "tier": earning.tier_code}
        take_back(
            self.book, fact, holder=earning.holder_account, credit=PROGRAMME, points=due,
            prefer_lot=tier_bonus_transfer_id(earning.event_id), leg="tier:", reasons=(TIER_BONUS_REVERSAL, "clawback"),
            memo=memo,
        )  # fmt: skip
        earning.tier_bonus_reversed += due

    def tier_of(self, member: uuid.UUID, moment: datetime) -> str | None:
        """The member's tier at `moment`, as this batch knows it (for members with a purchase in the batch)."""
        return tier_at(self.timelines.get(member, ()), moment, self.sets.at(moment))

    def finish(self) -> list[TierChange]:
        """Decide the upgrades still pending; returns every change of the batch."""
        for member in sorted(self._pending):
            self._settle(member)
        return self.changes

    def _count(self, member: uuid.UUID, day: date, points: int) -> None:
        if not points:
            return
        self.days[(member, day)] = self.days.get((member, day), 0) + points
        latest = self.sets.latest
        if member in self.window_points and latest is not None:
            start, end = latest.window(self.today)
            if start <= day <= end:
                self.window_points[member] += points

    def _settle(self, member: uuid.UUID) -> None:
        cause = self._pending.pop(member, None)
        latest = self.sets.latest
        if cause is None or latest is None:
            return
        timeline = self.timelines.setdefault(member, [])
        state = timeline[-1].state if timeline else implicit_state(latest)
        made = upgrade(latest, member, state, self.window_points.get(member, 0), self.today, self.now, cause=cause)
        if made is not None:
            timeline.append(made)
            self.changes.append(made)


def members_of(holders: Iterable[str]) -> list[uuid.UUID]:
    """The members among accounts (unclaimed identifiers have no tier)."""
    return sorted({member_of(h) for h in holders if kind_of(h) is AccountKind.MEMBER})
