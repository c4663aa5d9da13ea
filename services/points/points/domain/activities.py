"""Reward activities: what each kind grants, and a lifecycle kept as versions in time.

Every change (schedule, activate, pause, end, new rules) is a version that holds from a moment
on. An event is judged by the version in force when it *occurred*, whatever the order in which
events arrive: a purchase made during a double-points weekend earns the bonus even if it reaches
the ledger after ops ended the activity, and a purchase made while it was paused does not.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from points.domain.tiers import is_tier_code

MAX_RULE_TIERS = 10


class ActivityKind(StrEnum):
    MULTIPLIER = "multiplier"
    SPEND_THRESHOLD = "spend_threshold"
    FIRST_PURCHASE = "first_purchase"
    LIMITED_CLAIM = "limited_claim"
    REFERRAL = "referral"


class State(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    PAUSED = "paused"
    ENDED = "ended"


class ActivityRuleError(ValueError):
    """Rules or dates that do not make sense; the message says why and what to do."""


class LifecycleError(ActivityRuleError):
    """A change the activity's current state does not allow (pausing a draft, restarting an ended one)."""


@dataclass(frozen=True)
class Scope:
    """Which purchases a rule looks at: a channel, and optionally one partner, category or card MCC."""

    channel: str = "any"
    partner_id: str | None = None
    category: str | None = None
    mcc: str | None = None

    def matches(self, channel: str, partner_id: str | None, category: str | None, mcc: str | None) -> bool:
        return (
            self.channel in ("any", channel)
            and (self.partner_id is None or self.partner_id == partner_id)
            and (self.category is None or self.category == category)
            and (self.mcc is None or self.mcc == mcc)
        )


@dataclass(frozen=True)
class Rules:
    """The parameters of an activity; which ones matter depends on its kind (see `validate`)."""

    scope: Scope = field(default_factory=Scope)
    multiplier: Decimal | None = None
    threshold_minor: int | None = None
    currency: str | None = None
    bonus_points: int | None = None
    partner_id: str | None = None
    claim_points: int | None = None
    referrer_points: int | None = None
    referee_points: int = 0
    tiers: tuple[str, ...] | None = None
    """Only members at one of these tiers when they buy (or claim) earn it; None: every member (domain/tiers.py)."""

    def validate(self, kind: ActivityKind) -> None:
        needs: dict[ActivityKind, tuple[str, ...]] = {
            ActivityKind.MULTIPLIER: ("multiplier",),
            ActivityKind.SPEND_THRESHOLD: ("threshold_minor", "currency", "bonus_points"),
            ActivityKind.FIRST_PURCHASE: ("partner_id", "bonus_points"),
            ActivityKind.LIMITED_CLAIM: ("claim_points",),
            ActivityKind.REFERRAL: ("referrer_points",),
        }
        missing = [name for name in needs[kind] if getattr(self, name) is None]
        if missing:
            raise ActivityRuleError(f"a {kind} activity needs {', '.join(missing)} in its rules")
        if self.multiplier is not None and not Decimal(1) < self.multiplier <= Decimal(10):
            raise ActivityRuleError("multiplier must be above 1 and at most 10, e.g. 2 for double points")
        for name in ("threshold_minor", "bonus_points", "claim_points", "referrer_points"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ActivityRuleError(f"{name} must be positive")
        if self.referee_points < 0:
            raise ActivityRuleError("referee_points cannot be negative")
        if self.tiers is not None and not 1 <= len(self.tiers) <= MAX_RULE_TIERS:
            raise ActivityRuleError(f"tiers names 1 to {MAX_RULE_TIERS} tier codes; leave it out for every member")
        if self.tiers is not None and not all(is_tier_code(code) for code in self.tiers):
            raise ActivityRuleError("tiers are tier codes such as 'gold': lower-case letters, digits, '-' and '_'")

    def to_json(self) -> dict[str, Any]:
        scope = {k: v for k, v in vars(self.scope).items() if v is not None and not (k == "channel" and v == "any")}
        values = {k: v for k, v in vars(self).items() if k != "scope" and v is not None}
        if "multiplier" in values:
            values["multiplier"] = str(values["multiplier"])
        if "tiers" in values:
            values["tiers"] = list(values["tiers"])
        return {**values, **({"scope": scope} if scope else {})}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Rules:
        scope = Scope(**raw.get("scope", {}))
        values = {k: v for k, v in raw.items() if k != "scope"}
        if values.get("multiplier") is not None:
            values["multiplier"] = Decimal(str(values["multiplier"]))
        if values.get("tiers") is not None:
            values["tiers"] = tuple(values["tiers"])
        return cls(scope=scope, **values)


@dataclass(frozen=True)
class Version:
    version: int
    effective_from: datetime
    state: State
    rules: Rules
    window_start: datetime | None
    window_end: datetime | None
    changed_by: str

    def live_at(self, at: datetime) -> bool:
        """Whether this version grants for something that happened at `at` (windows are [start, end) in UTC)."""
        return (
            self.state is State.ACTIVE
            and self.window_start is not None
            and self.window_end is not None
            and self.window_start <= at < self.window_end
        )


@dataclass
class Activity:
    activity_id: uuid.UUID
    name: str
    kind: ActivityKind
    budget_points: int
    quantity_cap: int | None = None
    per_member_cap: int | None = None
    segment_id: uuid.UUID | None = None
    holdout_share: Decimal = Decimal(0)
    grants_count: int = 0
    points_granted: int = 0
    targets_frozen: bool = False
    points_reversed: int = 0
    """What refunds took back of its bonuses, into its budget (points/domain/rewards.py)."""
    packet_points: int = 0
    """What its budget put into red packets (points/domain/packets.py), and what they gave back below."""
    packet_points_returned: int = 0
    versions: list[Version] = field(default_factory=list)
    dropped_versions: list[int] = field(default_factory=list)
    """Scheduled versions a later change replaced before they took effect (nothing was judged by them)."""

    @property
    def budget_account(self) -> str:
        return budget_account(self.activity_id)

    def version_at(self, at: datetime) -> Version | None:
        found = [v for v in self.versions if v.effective_from <= at]
        return max(found, key=lambda v: (v.effective_from, v.version)) if found else None

    def live_version_at(self, at: datetime) -> Version | None:
        version = self.version_at(at)
        return version if version is not None and version.live_at(at) else None

    def status(self, now: datetime) -> str:
        """draft, scheduled, active, paused or ended, as seen at `now`."""
        current = self.version_at(now)
        if current is None or current.state is State.DRAFT:
            return "scheduled" if any(v.effective_from > now for v in self.versions) else "draft"
        if current.state is State.ACTIVE:
            if current.window_end is not None and now >= current.window_end:
                return "ended"
            return "active"
        return current.state.value

    # --- lifecycle: each returns the new version ----------------------------------------------

    def schedule(self, starts_at: datetime, ends_at: datetime, now: datetime, by: str) -> Version:
        self._require(now, {"draft"}, "scheduled")
        if starts_at <= now:
            raise ActivityRuleError("starts_at must be in the future; to start now, activate instead")
        self._require_window(starts_at, ends_at)
        return self._append(State.ACTIVE, starts_at, self._current_rules(now), starts_at, ends_at, by, now)

    def activate(self, now: datetime, by: str, ends_at: datetime | None = None) -> Version:
        status = self._require(now, {"draft", "scheduled", "paused"}, "activated")
        previous = self._latest_window()
        end = ends_at or (previous[1] if previous else None)
        if end is None:
            raise ActivityRuleError("say when the activity ends (ends_at) the first time it is activated")
        start = previous[0] if previous and status == "paused" and previous[0] <= now else now
        self._require_window(start, end)
        if end <= now:
            raise ActivityRuleError("ends_at must be in the future")
        return self._append(State.ACTIVE, now, self._current_rules(now), start, end, by, now)

    def pause(self, now: datetime, by: str) -> Version:
        self._require(now, {"active"}, "paused")
        start, end = self._latest_window() or (None, None)
        return self._append(State.PAUSED, now, self._current_rules(now), start, end, by, now)

    def end(self, now: datetime, by: str) -> Version:
        status = self._require(now, {"scheduled", "active", "paused"}, "ended")
        start, _ = self._latest_window() or (None, None)
        if status == "scheduled":  # it never started
            start = None
        return self._append(State.ENDED, now, self._current_rules(now), start, now if start else None, by, now)

    def revise(self, rules: Rules, now: datetime, by: str) -> Version:
        """New rules from now on (or from the scheduled start, for a scheduled activity)."""
        status = self._require(now, {"draft", "scheduled", "active", "paused"}, "revised")
        rules.validate(self.kind)
        if status == "scheduled":
            upcoming = min((v for v in self.versions if v.effective_from > now), key=lambda v: v.effective_from)
            return self._append(
                upcoming.state, upcoming.effective_from, rules, upcoming.window_start, upcoming.window_end, by, now
            )
        current = self.version_at(now)
        assert current is not None
        return self._append(current.state, now, rules, current.window_start, current.window_end, by, now)

    def _require(self, now: datetime, allowed: set[str], verb: str) -> str:
        status = self.status(now)
        if status not in allowed:
            raise LifecycleError(f"a {status} activity cannot be {verb}; allowed from: {', '.join(sorted(allowed))}")
        return status

    @staticmethod
    def _require_window(start: datetime, end: datetime) -> None:
        if end <= start:
            raise ActivityRuleError("ends_at must be after starts_at")

    def _latest_window(self) -> tuple[datetime, datetime] | None:
        windows = [(v.window_start, v.window_end) for v in self.versions if v.window_start and v.window_end]
        return max(windows, key=lambda w: w[1]) if windows else None

    def _current_rules(self, now: datetime) -> Rules:
        current = self.version_at(now) or self.versions[-1]
        return current.rules

    def _append(
        self,
        state: State,
        effective_from: datetime,
        rules: Rules,
        start: datetime | None,
        end: datetime | None,
        by: str,
        now: datetime,
    ) -> Version:
        # Versions that have not taken effect yet are replaced: nothing was ever judged by them.
        for upcoming in [v for v in self.versions if v.effective_from > now]:
            self.versions.remove(upcoming)
            self.dropped_versions.append(upcoming.version)
        number = max([v.version for v in self.versions] + self.dropped_versions) + 1
        made = Version(number, effective_from, state, rules, start, end, by)
        self.versions.append(made)
        return made


def budget_account(activity_id: uuid.UUID) -> str:
    return f"activity:{activity_id}:budget"


def new_activity(
    name: str,
    kind: ActivityKind,
    rules: Rules,
    budget_points: int,
    now: datetime,
    by: str,
    *,
    quantity_cap: int | None = None,
    per_member_cap: int | None = None,
    segment_id: uuid.UUID | None = None,
    holdout_share: Decimal = Decimal(0),
) -> Activity:
    """A draft activity with its first version."""
    rules.validate(kind)
    if kind is ActivityKind.LIMITED_CLAIM and quantity_cap is None:
        raise ActivityRuleError("a limited claim needs a quantity_cap (how many members may claim)")
    if not Decimal(0) <= holdout_share <= Decimal("0.5"):
        raise ActivityRuleError("holdout_share must be between 0 and 0.5")
    activity = Activity(
        uuid.uuid4(), name, kind, budget_points, quantity_cap, per_member_cap, segment_id, holdout_share
    )
    activity.versions.append(Version(1, now, State.DRAFT, rules, None, None, by))
    return activity
