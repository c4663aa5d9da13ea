"""Granting bonuses: the rules of each activity kind, with the caps applied exactly.

A bonus is a transfer from the activity's budget account to the member, made in the same
book (and so the same database transaction) as the purchase or claim that earned it. The
budget account cannot be overdrawn, the quantity cap and the per-member cap are checked
against counters loaded under the activity's lock, and the transfer id derives from the
cause, so a replayed event grants nothing twice.

A refund takes back what was granted for its purchase, from the member to the activity's budget
(the bonus's own lot first; a shortfall is a clawback, as for the purchase's own points), with
transfer ids derived from the refund and the grant, so a replayed refund moves nothing twice:
- multiplier, first-purchase and referral bonuses in the same proportion as the purchase's points,
  cumulatively (bonus * refunded so far // amount, minus what earlier refunds took back);
- a spend-threshold bonus follows the member's net spend: every refund of a purchase that counted
  lowers that spend, and a refund that takes it below the threshold takes the whole bonus back
  (what is left of it) and the member can reach the threshold again; while the spend stays at or
  above the threshold, the bonus stays whole.
What a refund takes back lowers the member's points in the activity (its per-member cap counts net
points); a grant still counts towards the quantity cap. A fully refunded purchase is no purchase
for the first-purchase and referral rules: the next one is the first again. A referral stays
rewarded once, its bonuses taken back in proportion.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal

from points.domain.activities import Activity, ActivityKind, Version
from points.domain.earning import Earning, Reverse, take_back
from points.domain.ledger import Book, member_account, transfer_id


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
    tier: str | None = None
    """The member's tier when it occurred (points/domain/tiers.py)."""


@dataclass
class Standing:
    """A member's standing in one activity."""

    grants: int = 0
    points: int = 0
    spend_minor: int = 0
    threshold_met: bool = False


@dataclass
class Grant:
    activity_id: uuid.UUID
    cause_id: uuid.UUID
    member_id: uuid.UUID
    points: int
    transfer_id: uuid.UUID
    """The transfer that granted it, and so the id of the lot it credited."""
    occurred_at: datetime
    purchase_id: uuid.UUID | None = None
    """The purchase (event id) it was granted for; None for a claim."""
    claim_id: uuid.UUID | None = None
    points_reversed: int = 0
    """What refunds of its purchase took back."""


@dataclass(frozen=True)
class SpendCounted:
    """A purchase that counted towards a member's spend in a spend-threshold activity."""

    purchase_id: uuid.UUID
    activity_id: uuid.UUID
    member_id: uuid.UUID
    amount_minor: int


def claim_cause(member_id: uuid.UUID, claim_id: uuid.UUID) -> uuid.UUID:
    """The cause of a claim's grant: a claim id is the member's own, another member's same id is another claim."""
    return uuid.uuid5(claim_id, f"claim:{member_id}")


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
    bonuses: dict[uuid.UUID, list[Grant]] = field(default_factory=dict)
    """Grants by the purchase they were granted for: those loaded for refunds, and this batch's."""
    threshold_bonuses: dict[tuple[uuid.UUID, uuid.UUID], Grant] = field(default_factory=dict)
    """Per (activity, member), the spend-threshold bonus a refund may still take back."""
    counted: dict[uuid.UUID, list[SpendCounted]] = field(default_factory=dict)
    """Per purchase, the threshold activities whose spend it counted towards: loaded, and this batch's."""
    grants: list[Grant] = field(default_factory=list)
    """Made in this transaction."""
    reversed_grants: dict[tuple[uuid.UUID, uuid.UUID], Grant] = field(default_factory=dict)
    """Grants made before this transaction that a refund took (some of) back, by (activity, cause)."""
    new_counted: list[SpendCounted] = field(default_factory=list)
    rewarded_referees: list[uuid.UUID] = field(default_factory=list)
    touched: set[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=set)

    def load(self, grants: Sequence[Grant], counted: Sequence[SpendCounted]) -> None:
        """What refunds in this transaction may take back: grants of their purchases, and threshold spend."""
        for grant in grants:
            if grant.purchase_id is not None:
                self.bonuses.setdefault(grant.purchase_id, []).append(grant)
            kind = self.activities[grant.activity_id].kind
            if kind is ActivityKind.SPEND_THRESHOLD and grant.points_reversed < grant.points:
                self.threshold_bonuses[(grant.activity_id, grant.member_id)] = grant
        for spend in counted:
            self.counted.setdefault(spend.purchase_id, []).append(spend)

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
        if rules.tiers is not None and p.tier not in rules.tiers:
            return []  # for members at other tiers only (for a referral: the buying member's tier)
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
            counted = SpendCounted(p.event_id, activity.activity_id, p.member_id, p.amount_minor)
            self.counted.setdefault(p.event_id, []).append(counted)
            self.new_counted.append(counted)
            assert rules.threshold_minor is not None
            assert rules.bonus_points is not None
            if standing.threshold_met or standing.spend_minor < rules.threshold_minor:
                return []
            standing.threshold_met = True
            made = self._grant(activity, p.member_id, p.event_id, rules.bonus_points, p.occurred_at, partial=True)
            for grant in made:
                self.threshold_bonuses[(activity.activity_id, p.member_id)] = grant
            return made
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
            made += self._grant(
                activity, p.member_id, cause, rules.referee_points, p.occurred_at, partial=True, purchase=p.event_id
            )
        if made:
            del self.referrers[p.member_id]
            self.rewarded_referees.append(p.member_id)
        return made

    def claim(
        self, activity: Activity, member_id: uuid.UUID, claim_id: uuid.UUID, now: datetime, tier: str | None = None
    ) -> Grant:
        """A member (at `tier` now) claims a limited give-away; refused with a reason unless every cap allows it."""
        if activity.kind is not ActivityKind.LIMITED_CLAIM:
            raise ClaimRefusedError("only limited-claim activities can be claimed")
        version = activity.live_version_at(now)
        if version is None:
            raise ClaimRefusedError(f"the activity is {activity.status(now)}, not open for claims")
        if (activity.activity_id, member_id) not in self.targeted:
            raise ClaimRefusedError("this activity is not offered to you")
        tiers = version.rules.tiers
        if tiers is not None and tier not in tiers:
            raise ClaimRefusedError(f"this activity is for members at tier {' or '.join(tiers)} only")
        if self._standing(activity, member_id).grants > 0:
            raise ClaimRefusedError("you have already claimed this activity")
        points = version.rules.claim_points
        assert points is not None
        made = self._grant(
            activity, member_id, claim_cause(member_id, claim_id), points, now, partial=False, claim_id=claim_id
        )
        if not made:
            raise ClaimRefusedError("all of this activity has been claimed")
        return made[0]

    def _standing(self, activity: Activity, member_id: uuid.UUID) -> Standing:
        key = (activity.activity_id, member_id)
        self.touched.add(key)
        return self.standings.setdefault(key, Standing())

    def _grant(
        self,
        activity: Activity,
        member_id: uuid.UUID,
        cause: uuid.UUID,
        points: int,
        at: datetime,
        *,
        partial: bool,
        purchase: uuid.UUID | None = None,
        claim_id: uuid.UUID | None = None,
    ) -> list[Grant]:
        """Grant up to `points`, within every cap; `partial` allows less than asked when a cap is near.

        `purchase` is the purchase it is granted for (the cause itself unless given; None for a claim).
        """
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
        if claim_id is None and purchase is None:
            purchase = cause
        grant = Grant(activity.activity_id, cause, member_id, allowed, made.transfer_id, at, purchase, claim_id)
        self.grants.append(grant)
        if purchase is not None:
            self.bonuses.setdefault(purchase, []).append(grant)
        return [grant]

    # --- refunds ------------------------------------------------------------------------------

    def on_refund(self, fact: Reverse, earning: Earning, refunded_before: int) -> None:
        """Take back what was granted for the refunded purchase, and lower the threshold spend it counted for."""
        for grant in self.bonuses.get(earning.event_id, []):
            activity = self.activities[grant.activity_id]
            if activity.kind is ActivityKind.SPEND_THRESHOLD:
                continue  # follows the member's net spend, below
            due = grant.points * earning.refunded_minor // earning.amount_minor - grant.points_reversed
            self._take_back(activity, grant, due, fact)
        refunded = earning.refunded_minor - refunded_before
        for counted in self.counted.get(earning.event_id, []):
            self._lower_spend(counted, refunded, fact)

    def _lower_spend(self, counted: SpendCounted, refunded: int, fact: Reverse) -> None:
        activity = self.activities[counted.activity_id]
        key = (activity.activity_id, counted.member_id)
        standing = self._standing(activity, counted.member_id)
        standing.spend_minor = max(standing.spend_minor - refunded, 0)
        grant = self.threshold_bonuses.get(key)
        version = activity.version_at(grant.occurred_at if grant else fact.occurred_at) or activity.versions[-1]
        threshold = version.rules.threshold_minor
        if not standing.threshold_met or threshold is None or standing.spend_minor >= threshold:
            return
        standing.threshold_met = False
        if grant is not None:
            del self.threshold_bonuses[key]
            self._take_back(activity, grant, grant.points - grant.points_reversed, fact)

    def _take_back(self, activity: Activity, grant: Grant, points: int, fact: Reverse) -> None:
        if points <= 0:
            return
        memo = {**fact.memo, "activity_id": str(activity.activity_id), "activity": activity.name,
                "grant_cause_id": str(grant.cause_id)}  # fmt: skip
        take_back(
            self.book, fact, holder=member_account(grant.member_id), credit=activity.budget_account, points=points,
            prefer_lot=grant.transfer_id, leg=f"bonus:{activity.activity_id}:{grant.cause_id}:",
            reasons=("bonus_reversal", "bonus_clawback"), memo=memo,
        )  # fmt: skip
        grant.points_reversed += points
        activity.points_reversed += points
        self._standing(activity, grant.member_id).points -= points
        if not any(g is grant for g in self.grants):
            self.reversed_grants[(grant.activity_id, grant.cause_id)] = grant
