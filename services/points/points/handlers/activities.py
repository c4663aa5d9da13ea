"""Reward activities: ops run their lifecycle; purchases and claims earn their bonuses.

Lock order, the same everywhere so that concurrent work never deadlocks: (an earn batch's purchases,)
identifiers, then activities (by id), then accounts (by id).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from points.adapters.activities_store import ActivitiesSql, list_activities
from points.adapters.segments import freeze_targets
from points.adapters.store import PointsStore, Transaction
from points.domain.activities import Activity, ActivityKind, ActivityRuleError, Rules, new_activity
from points.domain.earning import Earn, Earning, Reverse
from points.domain.ledger import PROGRAMME, AccountKind, Book, kind_of, member_account, member_of, transfer_id
from points.domain.rewards import Grant, Purchase, Rewards, SpendCounted
from points.domain.segments import segment_rules_from_json
from points.handlers.ledger_events import LedgerEventWriter, post_changes
from points.handlers.members import MemberNotFoundError
from points.handlers.tiers import require_known_tiers, tier_now


class ActivityNotFoundError(LookupError):
    def __init__(self, activity_id: uuid.UUID) -> None:
        super().__init__(f"activity {activity_id} does not exist")


class ReferralRefusedError(ValueError):
    """A referral the rules do not allow; the message says why."""


# --- ops: the lifecycle ------------------------------------------------------------------------


async def create_activity(
    store: PointsStore,
    events: LedgerEventWriter,
    *,
    name: str,
    kind: ActivityKind,
    rules: Rules,
    budget_points: int,
    by: str,
    quantity_cap: int | None = None,
    per_member_cap: int | None = None,
    segment_id: uuid.UUID | None = None,
    holdout_share: Decimal = Decimal(0),
) -> Activity:
    """A draft activity, its budget funded from the programme account in the same transaction."""
    now = datetime.now(UTC)
    activity = new_activity(
        name, kind, rules, budget_points, now, by,
        quantity_cap=quantity_cap, per_member_cap=per_member_cap, segment_id=segment_id, holdout_share=holdout_share,
    )  # fmt: skip
    async with store.transaction() as tx:
        await require_known_tiers(tx, rules.tiers)
        await ActivitiesSql(tx.conn).insert(activity)
        await _fund(tx, events, activity, budget_points, now)
    return activity


async def add_budget(store: PointsStore, events: LedgerEventWriter, activity_id: uuid.UUID, points: int) -> Activity:
    now = datetime.now(UTC)
    async with store.transaction() as tx:
        sql = ActivitiesSql(tx.conn)
        activity = await _locked(sql, activity_id)
        if activity.status(now) == "ended":
            raise ActivityRuleError("an ended activity's budget cannot grow")
        await sql.add_budget(activity_id, points)
        activity.budget_points += points
        await _fund(tx, events, activity, points, now)
    return activity


async def _fund(tx: Transaction, events: LedgerEventWriter, activity: Activity, points: int, now: datetime) -> None:
    await tx.ensure_accounts([activity.budget_account])
    book = Book(await tx.lock_accounts([activity.budget_account, PROGRAMME]))
    book.transfer(
        transfer_id=transfer_id(activity.activity_id, f"funding:{activity.budget_points}"),
        debit=PROGRAMME,
        credit=activity.budget_account,
        amount=points,
        reason="activity_funding",
        cause_event_id=activity.activity_id,
        occurred_at=now,
        memo={"activity_id": str(activity.activity_id), "activity": activity.name},
    )
    await post_changes(tx, book, events)


async def change_lifecycle(
    store: PointsStore,
    activity_id: uuid.UUID,
    action: str,
    by: str,
    *,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    rules: Rules | None = None,
) -> Activity:
    """schedule, activate, pause, end or revise; refused with the reason when the lifecycle does not allow it."""
    now = datetime.now(UTC)
    async with store.transaction() as tx:
        sql = ActivitiesSql(tx.conn)
        activity = await _locked(sql, activity_id)
        if action == "schedule":
            if starts_at is None or ends_at is None:
                raise ActivityRuleError("scheduling needs starts_at and ends_at")
            activity.schedule(starts_at, ends_at, now, by)
        elif action == "activate":
            activity.activate(now, by, ends_at)
        elif action == "pause":
            activity.pause(now, by)
        elif action == "end":
            activity.end(now, by)
        elif action == "revise":
            if rules is None:
                raise ActivityRuleError("a revision needs rules")
            await require_known_tiers(tx, rules.tiers)
            activity.revise(rules, now, by)
        else:
            raise ActivityRuleError(f"unknown action {action!r}")
        await sql.save_versions(activity)
        if action in ("schedule", "activate") and not activity.targets_frozen:
            # Who is targeted is decided once, when the activity is set to run.
            segment = None
            if activity.segment_id is not None:
                raw = await tx.conn.fetchval("SELECT rules FROM segments WHERE segment_id = $1", activity.segment_id)
                segment = segment_rules_from_json(raw)
            await freeze_targets(tx.conn, activity.activity_id, segment, activity.holdout_share, now)
            await sql.mark_targets_frozen(activity.activity_id, now)
            activity.targets_frozen = True
    return activity


async def read_activities(store: PointsStore, activity_id: uuid.UUID | None = None, limit: int = 100) -> list[Activity]:
    return await list_activities(store.pool, activity_id, limit)  # reads need no transaction


async def _locked(sql: ActivitiesSql, activity_id: uuid.UUID) -> Activity:
    found = await sql.lock([activity_id])
    if activity_id not in found:
        raise ActivityNotFoundError(activity_id)
    return found[activity_id]


# --- members: claims and referrals -------------------------------------------------------------


async def claim(
    store: PointsStore,
    events: LedgerEventWriter,
    activity_id: uuid.UUID,
    member_id: uuid.UUID,
    claim_id: uuid.UUID,
    lot_validity: timedelta,
    attribution: Mapping[str, str] | None = None,
) -> tuple[int, bool]:
    """Grant a limited give-away, exactly within its caps. Returns (points, newly granted); the same
    member sending the same claim id again (at once or later) is answered the first grant. A claim id
    is the member's own: another member's same id is that member's own claim. `attribution` (channel,
    branch, staff, campaign, share code) is kept in the memo of the grant's transfer."""
    now = datetime.now(UTC)
    async with store.transaction() as tx:
        sql = ActivitiesSql(tx.conn)
        activity = await _locked(sql, activity_id)  # concurrent claims of one activity queue here
        already = await sql.claimed_points(activity_id, member_id, claim_id)
        if already is not None:
            return already, False
        if not await tx.member_exists(member_id):
            raise MemberNotFoundError(member_id)
        book = Book(await tx.lock_accounts([activity.budget_account, member_account(member_id)]))
        rewards = Rewards(
            book,
            {activity_id: activity},
            await sql.targeted([activity_id], [member_id]),
            await sql.standings([activity_id], [member_id]),
            {},
            lot_validity,
        )
        live = activity.live_version_at(now)
        tier = await tier_now(tx.conn, member_id) if live is not None and live.rules.tiers is not None else None
        grant = rewards.claim(activity, member_id, claim_id, now, tier)
        if attribution:
            book.add_memo(grant.transfer_id, {"attribution": dict(attribution)})
        await post_changes(tx, book, events)
        await _save(sql, rewards, now)
    return grant.points, True


async def set_referrer(store: PointsStore, referee: uuid.UUID, referrer: uuid.UUID) -> uuid.UUID:
    """Record who invited a member, once, before its first purchase."""
    if referee == referrer:
        raise ReferralRefusedError("a member cannot refer itself")
    async with store.transaction() as tx:
        known = await tx.existing_members([referee, referrer])
        for member in (referee, referrer):
            if member not in known:
                raise MemberNotFoundError(member)
        bought = await ActivitiesSql(tx.conn).earlier_partners([referee], [])
        if bought.get(referee):
            raise ReferralRefusedError("a referrer can only be named before the first purchase")
        recorded = await ActivitiesSql(tx.conn).add_referral(referee, referrer)
        if recorded != referrer:
            raise ReferralRefusedError("this member already named who invited it")
    return recorded


async def _save(sql: ActivitiesSql, rewards: Rewards, now: datetime) -> None:
    """Write standings, counters, referrals, grants and threshold spend; call after the book's transfers."""
    changed = {g.activity_id for g in rewards.grants} | {g.activity_id for g in rewards.reversed_grants.values()}
    await sql.save_standings({k: rewards.standings[k] for k in rewards.touched}, now)
    await sql.save_counters([a for a in rewards.activities.values() if a.activity_id in changed])
    await sql.mark_rewarded(rewards.rewarded_referees, now)
    await sql.save_grants(rewards.grants, list(rewards.reversed_grants.values()))
    await sql.save_spend_counted(rewards.new_counted)


# --- purchases: bonuses in the earn batch ------------------------------------------------------


@dataclass
class EarnRewards:
    """The activity part of an earn batch: prepared before the account locks, applied as the book moves.

    It is the batch's `EarnListener`: a purchase earns bonuses, a refund takes back what its purchase earned.
    """

    sql: ActivitiesSql
    lot_validity: timedelta
    activities: dict[uuid.UUID, Activity] = field(default_factory=dict)
    referrers: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)
    members: set[uuid.UUID] = field(default_factory=set)
    rewards: Rewards | None = None
    seen_partners: dict[uuid.UUID, dict[str | None, int]] = field(default_factory=dict)
    """Per member, its purchases (not refunded entirely) by partner (None: the card), this batch's included."""
    links: dict[str, uuid.UUID | None] = field(default_factory=dict)
    refunded: list[uuid.UUID] = field(default_factory=list)
    """Purchases (event ids) from before this batch that its refunds touch."""
    granted: list[Grant] = field(default_factory=list)
    counted: list[SpendCounted] = field(default_factory=list)
    tier_of: Callable[[uuid.UUID, datetime], str | None] = lambda _member, _at: None
    """A member's tier at a moment (the batch's EarnTiers.tier_of), for activities for some tiers only."""

    async def prepare(
        self, earns: Sequence[Earn], links: dict[str, uuid.UUID | None], refunded: Sequence[Earning]
    ) -> RewardAccounts:
        """Lock the activities the batch can be judged by, and those whose bonuses its refunds take back."""
        self.links = links
        self.members = {m for f in earns if (m := links.get(f.identifier)) is not None}
        self.refunded = [e.event_id for e in refunded]
        live: list[uuid.UUID] = []
        if self.members:
            times = [f.occurred_at for f in earns]
            live = await self.sql.live_between(min(times), max(times))
        touched = await self.sql.activities_of_purchases(self.refunded)
        self.activities = await self.sql.lock([*live, *touched])
        if not self.activities:
            return RewardAccounts()
        self.granted, self.counted = await self.sql.for_refunds(self.refunded)
        if any(a.kind is ActivityKind.REFERRAL for a in self.activities.values()) and self.members:
            self.referrers = await self.sql.referrers(self.members)
        if any(a.kind in (ActivityKind.FIRST_PURCHASE, ActivityKind.REFERRAL) for a in self.activities.values()):
            self.seen_partners = await self.sql.earlier_partners(self.members, [f.event_id for f in earns])
        takers = {g.member_id for g in self.granted}
        return RewardAccounts(
            {a.budget_account for a in self.activities.values()}
            | {member_account(m) for m in {*self.referrers.values(), *takers}},
            {member_account(m) for m in takers},
        )

    async def start(self, book: Book) -> None:
        if not self.activities:
            return
        people = self.members | set(self.referrers.values()) | {g.member_id for g in self.granted}
        people |= {c.member_id for c in self.counted}
        self.rewards = Rewards(
            book,
            self.activities,
            await self.sql.targeted(self.activities, people),
            await self.sql.standings(self.activities, people),
            self.referrers,
            self.lot_validity,
        )
        self.rewards.load(self.granted, self.counted)

    def earned(self, fact: Earn, holder: str) -> None:
        """A purchase was just credited to `holder`: grant what the activities in force then say."""
        if self.rewards is None or kind_of(holder) is not AccountKind.MEMBER:
            return
        member = member_of(holder)
        seen = self.seen_partners.setdefault(member, {})
        partner = fact.partner_id if fact.channel == "partner" else None
        purchase = Purchase(
            fact.event_id, member, fact.occurred_at, fact.channel, fact.partner_id, fact.category, fact.mcc,
            fact.amount_minor, fact.currency, fact.points, first_at_partner=not seen.get(partner),
            first_ever=not any(seen.values()), tier=self.tier_of(member, fact.occurred_at),
        )  # fmt: skip
        seen[partner] = seen.get(partner, 0) + 1
        self.rewards.on_purchase(purchase)

    def reversed(self, fact: Reverse, earning: Earning, refunded_before: int) -> None:
        """A refund just reversed the purchase's own points: take back its bonuses, lower its threshold spend."""
        if self.rewards is None:
            return
        member = self.links.get(earning.identifier)
        seen = self.seen_partners.get(member) if member is not None else None
        if seen and earning.fully_refunded and seen.get(earning.partner_id):
            seen[earning.partner_id] -= 1  # a purchase refunds took back entirely is no purchase
        self.rewards.on_refund(fact, earning, refunded_before)

    async def save(self, now: datetime) -> None:
        """After the book's transfers are written."""
        if self.rewards is not None:
            await _save(self.sql, self.rewards, now)


@dataclass(frozen=True)
class RewardAccounts:
    """The accounts an earn batch's rewards touch: to lock, and (members a refund debits) with their lots."""

    locked: set[str] = field(default_factory=set)
    debited: set[str] = field(default_factory=set)
