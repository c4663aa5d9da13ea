"""Granting bonuses: the rules of each activity kind, with the caps applied exactly.

A bonus is a transfer from the activity's budget account to the member, made in the same
book (and so the same database transaction) as the purchase or claim that earned it. The
budget account cannot be overdrawn, the quantity cap and the per-member cap are checked
against counters loaded under the activity's lock, and the transfer id derives from the
cause, so a replayed event grants nothing twice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal

from points.domain.activities import Activity, ActivityKind, Version
from points.domain.ledger import Book, Transfer, member_account, transfer_id


@dataclass(frozen=True)
class Purchase:
    """A member's purchase as reward rules see it."""

    event_id: uuid.UUID
    member_id: uuid.UUID
    occurred_at: datetime
    channel: str
    partner_id: str | None
    category: str | None
    mcc: str | None
    amount_minor: int
    currency: str
    points: int
    first_at_partner: bool
    """No earlier purchase of this member at this partner."""
    first_ever: bool
    """No earlier purchase of this member anywhere."""


@dataclass
class Standing:
    """A member's standing in one activity."""

    grants: int = 0
    points: int = 0
    spend_minor: int = 0
    threshold_met: bool = False


@dataclass(frozen=True)
class Grant:
    activity_id: uuid.UUID
    cause_id: uuid.UUID
    member_id: uuid.UUID
    points: int
    transfer: Transfer
    occurred_at: datetime


class ClaimRefusedError(ValueError):
    """A claim that cannot be granted; the message says why."""


@dataclass
class Rewards:
    book: Book
    activities: dict[uuid.UUID, Activity]
    targeted: set[tuple[uuid.UUID, uuid.UUID]]
    """(activity, member) pairs the activity targets (not held out)."""
    standings: dict[tuple[uuid.UUID, uuid.UUID], Standing]
    referrers: dict[uuid.UUID, uuid.UUID]
    """Invited member -> who invited it, for invitations not rewarded yet."""
    lot_validity: timedelta
    grants: list[Grant] = field(default_factory=list)
    rewarded_referees: list[uuid.UUID] = field(default_factory=list)
    touched: set[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=set)

    def on_purchase(self, purchase: Purchase) -> list[Grant]:
        made: list[Grant] = []
        for activity in self.activities.values():
            version = activity.live_version_at(purchase.occurred_at)
            if version is None:
                continue
            made += self._for_purchase(activity, version, purchase)
        return made

    def _for_purchase(self, activity: Activity, version: Version, p: Purchase) -> list[Grant]:
        rules = version.rules
        kind = activity.kind
        if kind is ActivityKind.REFERRAL:
            return self._referral(activity, version, p)
        if (activity.activity_id, p.member_id) not in self.targeted:
            return []
        if kind is ActivityKind.MULTIPLIER:
            if not rules.scope.matches(p.channel, p.partner_id, p.category, p.mcc) or rules.multiplier is None:
                return []
            extra = (Decimal(p.points) * (rules.multiplier - 1)).to_integral_value(rounding=ROUND_FLOOR)
            return self._grant(activity, p.member_id, p.event_id, int(extra), p.occurred_at, partial=True)
        if kind is ActivityKind.SPEND_THRESHOLD:
            if not rules.scope.matches(p.channel, p.partner_id, p.category, p.mcc) or p.currency != rules.currency:
                return []
            standing = self._standing(activity, p.member_id)
            standing.spend_minor += p.amount_minor
            assert rules.threshold_minor is not None
            assert rules.bonus_points is not None
            if standing.threshold_met or standing.spend_minor < rules.threshold_minor:
                return []
            standing.threshold_met = True
            return self._grant(activity, p.member_id, p.event_id, rules.bonus_points, p.occurred_at, partial=True)
        if kind is ActivityKind.FIRST_PURCHASE:
            if p.partner_id != rules.partner_id or not p.first_at_partner or rules.bonus_points is None:
                return []
            return self._grant(activity, p.member_id, p.event_id, rules.bonus_points, p.occurred_at, partial=True)
        return []  # limited claims are granted on claim, not on purchase

    def _referral(self, activity: Activity, version: Version, p: Purchase) -> list[Grant]:
        referrer = self.referrers.get(p.member_id)
        if referrer is None or not p.first_ever:
            return []
        rules = version.rules
        made: list[Grant] = []
        if (activity.activity_id, referrer) in self.targeted and rules.referrer_points:
            made += self._grant(activity, referrer, p.event_id, rules.referrer_points, p.occurred_at, partial=True)
        if rules.referee_points and made:
            cause = uuid.uuid5(p.event_id, "referee")
            made += self._grant(activity, p.member_id, cause, rules.referee_points, p.occurred_at, partial=True)
        if made:
            del self.referrers[p.member_id]
            self.rewarded_referees.append(p.member_id)
        return made

    def claim(self, activity: Activity, member_id: uuid.UUID, claim_id: uuid.UUID, now: datetime) -> Grant:
        """A member claims a limited give-away; refused with a reason unless every cap allows it in full."""
        if activity.kind is not ActivityKind.LIMITED_CLAIM:
            raise ClaimRefusedError("only limited-claim activities can be claimed")
        version = activity.live_version_at(now)
        if version is None:
            raise ClaimRefusedError(f"the activity is {activity.status(now)}, not open for claims")
        if (activity.activity_id, member_id) not in self.targeted:
            raise ClaimRefusedError("this activity is not offered to you")
        if self._standing(activity, member_id).grants > 0:
            raise ClaimRefusedError("you have already claimed this activity")
        points = version.rules.claim_points
        assert points is not None
        made = self._grant(activity, member_id, claim_id, points, now, partial=False)
        if not made:
            raise ClaimRefusedError("all of this activity has been claimed")
        return made[0]

    def _standing(self, activity: Activity, member_id: uuid.UUID) -> Standing:
        key = (activity.activity_id, member_id)
        self.touched.add(key)
        return self.standings.setdefault(key, Standing())

    def _grant(
        self, activity: Activity, member_id: uuid.UUID, cause: uuid.UUID, points: int, at: datetime, *, partial: bool
    ) -> list[Grant]:
        """Grant up to `points`, within every cap; `partial` allows less than asked when a cap is near."""
        standing = self._standing(activity, member_id)
        if activity.quantity_cap is not None and activity.grants_count >= activity.quantity_cap:
            return []
        allowed = points
        if activity.per_member_cap is not None:
            allowed = min(allowed, activity.per_member_cap - standing.points)
        allowed = min(allowed, self.book.account(activity.budget_account).available)
        if allowed <= 0 or (allowed < points and not partial):
            return []
        made = self.book.transfer(
            transfer_id=transfer_id(cause, f"bonus:{activity.activity_id}"),
            debit=activity.budget_account,
            credit=member_account(member_id),
            amount=allowed,
            reason=f"bonus_{activity.kind.value}",
            cause_event_id=cause,
            occurred_at=at,
            memo={"activity_id": str(activity.activity_id), "activity": activity.name},
            lot_expires_at=at + self.lot_validity,
            lot_issuer=activity.budget_account,
        )
        activity.grants_count += 1
        activity.points_granted += allowed
        standing.grants += 1
        standing.points += allowed
        grant = Grant(activity.activity_id, cause, member_id, allowed, made, at)
        self.grants.append(grant)
        return [grant]
