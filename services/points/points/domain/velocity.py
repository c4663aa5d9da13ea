"""Fraud and velocity controls: rules ops set that hold suspicious earnings for review, or refuse gifts and holds.

- **Scopes.** An earning counts for its member (when its identifier is linked), its identifier, and its partner.
  Each scope has the same two limits: points earned per (UTC) day and purchases per hour.
- **An earning is held** (its points pending review, not spendable) when, with it, a scope would earn more points
  today than its limit, or make more purchases this hour than its limit; when its member joined less than
  `new_member_days` ago and it earns more than `new_member_points`; or when its amount is above `unusual_factor`
  times its member's (else its identifier's) average purchase in the same currency over the last
  `unusual_days` days before today, once there were at least `unusual_min_purchases` of them.
- **What counts.** Every purchase counts towards purchases per hour; only points that were credited (not held)
  count towards points per day and towards the usual amount. Refunds do not lower the counts. Counting starts when a
  rule that reads it is on.
- **Gifts and redemptions** per member and day are counts, and a gift or hold beyond them is refused with
  the reason: they are the member's own acts, asked for now, never held.
- Every limit is off (None) by default: the programme behaves as if no rule existed.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from points.domain.earning import Earn
from points.domain.ledger import AccountKind, kind_of, member_of

DAY = "day"
HOUR = "hour"
TRAILING = "trailing"


class RulesError(ValueError):
    """Rules that cannot work together; the message says which and why."""


@dataclass(frozen=True)
class Limits:
    points_per_day: int | None = None
    purchases_per_hour: int | None = None

    @property
    def active(self) -> bool:
        return self.points_per_day is not None or self.purchases_per_hour is not None


@dataclass(frozen=True)
class VelocityRules:
    """One version of the rules; `version` 0 is the default (every rule off)."""

    member: Limits = field(default_factory=Limits)
    identifier: Limits = field(default_factory=Limits)
    partner: Limits = field(default_factory=Limits)
    new_member_days: int | None = None
    new_member_points: int | None = None
    unusual_factor: Decimal | None = None
    unusual_min_purchases: int = 5
    unusual_days: int = 90
    gifts_per_day: int | None = None
    redemptions_per_day: int | None = None
    version: int = 0

    def validate(self) -> None:
        if (self.new_member_days is None) != (self.new_member_points is None):
            raise RulesError("the cool-off for new members needs both new_member_days and new_member_points")
        if self.unusual_factor is not None and self.unusual_factor <= 1:
            raise RulesError("unusual_factor must be above 1 (an amount above k times the member's average)")

    @property
    def screens_earnings(self) -> bool:
        """Whether the earn batch reads counts at all: with every earning rule off it costs nothing."""
        scopes = self.member.active or self.identifier.active or self.partner.active
        return scopes or self.new_member_days is not None or self.unusual_factor is not None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Limits):
                out[f.name] = {"points_per_day": value.points_per_day, "purchases_per_hour": value.purchases_per_hour}
            elif f.name != "version":
                out[f.name] = str(value) if isinstance(value, Decimal) else value
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any], version: int = 0) -> VelocityRules:
        def limits(scope: str) -> Limits:
            return Limits(**data.get(scope, {}))

        factor = data.get("unusual_factor")
        rest = {k: v for k, v in data.items() if k not in ("member", "identifier", "partner", "unusual_factor")}
        return cls(
            limits("member"), limits("identifier"), limits("partner"), **rest,
            unusual_factor=None if factor is None else Decimal(str(factor)), version=version,
        )  # fmt: skip


@dataclass(frozen=True)
class Finding:
    """Why an earning is held: the rule that fired (a stable code) and what it saw, in words."""

    rule: str
    detail: str


@dataclass
class Count:
    points: int = 0
    purchases: int = 0
    amount_minor: int = 0


def day_bucket(at: datetime) -> datetime:
    return at.replace(hour=0, minute=0, second=0, microsecond=0)


def hour_bucket(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def scopes_of(fact: Earn, holder: str) -> list[tuple[str, str]]:
    """(rule scope, count scope) of an earning: its member's (if linked), its identifier's, its partner's."""
    found = []
    if kind_of(holder) is AccountKind.MEMBER:
        found.append(("member", f"member:{member_of(holder)}"))
    found.append(("identifier", f"identifier:{fact.identifier}"))
    if fact.partner_id is not None:
        found.append(("partner", f"partner:{fact.partner_id}"))
    return found


def amount_scope(fact: Earn, holder: str) -> str:
    """Whose usual amount a purchase is compared with: its member's, else its identifier's, in its currency."""
    who = str(member_of(holder)) if kind_of(holder) is AccountKind.MEMBER else fact.identifier
    return f"amount:{who}:{fact.currency}"


@dataclass
class VelocityScreen:
    """Judges a batch's purchases in order, with the counts it found plus what the batch added so far."""

    rules: VelocityRules
    counts: dict[tuple[str, str, datetime], Count] = field(default_factory=dict)
    """(count scope, DAY or HOUR, bucket) -> counts, as loaded and as the batch adds to them."""
    trailing: dict[str, Count] = field(default_factory=dict)
    """Amount scope -> purchases and amount of its last `unusual_days` days before today."""
    joined: dict[uuid.UUID, datetime] = field(default_factory=dict)
    added: dict[tuple[str, str, datetime], Count] = field(default_factory=dict)
    """What this batch adds, to be written."""

    def check(self, fact: Earn, holder: str) -> Finding | None:
        """The first rule that holds this purchase, or None to credit it."""
        return self._cool_off(fact, holder) or self._unusual(fact, holder) or self._limits(fact, holder)

    def record(self, fact: Earn, holder: str, credited: bool) -> None:
        """Count the purchase (and, if `credited`, its points and amount) in every scope a rule reads."""
        points = fact.points if credited else 0
        for rule_scope, scope in scopes_of(fact, holder):
            if getattr(self.rules, rule_scope).active:
                self._add((scope, DAY, day_bucket(fact.occurred_at)), points, 1, 0)
                self._add((scope, HOUR, hour_bucket(fact.occurred_at)), 0, 1, 0)
        if self.rules.unusual_factor is not None and credited:
            self._add((amount_scope(fact, holder), DAY, day_bucket(fact.occurred_at)), 0, 1, fact.amount_minor)

    def _add(self, key: tuple[str, str, datetime], points: int, purchases: int, amount: int) -> None:
        for book in (self.counts, self.added):
            count = book.setdefault(key, Count())
            count.points += points
            count.purchases += purchases
            count.amount_minor += amount

    def _cool_off(self, fact: Earn, holder: str) -> Finding | None:
        days, most = self.rules.new_member_days, self.rules.new_member_points
        if days is None or most is None or kind_of(holder) is not AccountKind.MEMBER:
            return None
        joined = self.joined.get(member_of(holder))
        if joined is None or fact.occurred_at - joined >= timedelta(days=days) or fact.points <= most:
            return None
        return Finding("new_member_cool_off", f"member joined {joined.date()}, less than {days} days before; "
                       f"{fact.points} points is above the {most} allowed meanwhile")  # fmt: skip

    def _unusual(self, fact: Earn, holder: str) -> Finding | None:
        factor = self.rules.unusual_factor
        usual = self.trailing.get(amount_scope(fact, holder))
        if factor is None or usual is None or usual.purchases < self.rules.unusual_min_purchases:
            return None
        if Decimal(fact.amount_minor) * usual.purchases <= factor * usual.amount_minor:
            return None
        average = usual.amount_minor // usual.purchases
        detail = f"amount {fact.amount_minor} {fact.currency} is above {factor} x the average {average}"
        return Finding("unusual_amount", f"{detail} of {usual.purchases} purchases in {self.rules.unusual_days} days")

    def _limits(self, fact: Earn, holder: str) -> Finding | None:
        for rule_scope, scope in scopes_of(fact, holder):
            limits: Limits = getattr(self.rules, rule_scope)
            most = limits.points_per_day
            today = self.counts.get((scope, DAY, day_bucket(fact.occurred_at)), Count()).points
            if most is not None and today + fact.points > most:
                return Finding(f"{rule_scope}_points_per_day", f"{scope} earned {today} points today (UTC); "
                               f"{fact.points} more is above its limit of {most}")  # fmt: skip
            most = limits.purchases_per_hour
            hour = self.counts.get((scope, HOUR, hour_bucket(fact.occurred_at)), Count()).purchases
            if most is not None and hour + 1 > most:
                return Finding(f"{rule_scope}_purchases_per_hour",
                               f"{scope} made {hour} purchases this hour; its limit is {most}")  # fmt: skip
        return None


def refusal(kind: str, done_today: int, limit: int | None) -> str | None:
    """Why a member's gift or redemption is refused by the per-day count, or None when it may go ahead."""
    if limit is None or done_today < limit:
        return None
    return f"at most {limit} {kind} per day (UTC); this member made {done_today} today, try again tomorrow"
