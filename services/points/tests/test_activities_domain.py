"""Reward activities without a database: lifecycle, versions judged by event time, caps."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from points.domain.activities import (
    Activity,
    ActivityKind,
    ActivityRuleError,
    LifecycleError,
    Rules,
    Scope,
    State,
    new_activity,
)
from points.domain.ledger import PROGRAMME, Account, AccountKind, Book, member_account
from points.domain.rewards import ClaimRefusedError, Purchase, Rewards

T0 = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
H = timedelta(hours=1)
ADA = uuid.UUID(int=1)
BOB = uuid.UUID(int=2)


def double_points(budget: int = 10_000, **caps: int) -> Activity:
    rules = Rules(scope=Scope(channel="partner", partner_id="skymall"), multiplier=Decimal(2))
    return new_activity("Double at SkyMall", ActivityKind.MULTIPLIER, rules, budget, T0 - H, "ops", **caps)


def purchase(
    at: datetime, points: int = 100, member: uuid.UUID = ADA, partner: str = "skymall", **flags: bool
) -> Purchase:
    return Purchase(
        uuid.uuid4(), member, at, "partner", partner, None, None, points * 100, "CNY", points,
        flags.get("first_at_partner", False), flags.get("first_ever", False),
    )  # fmt: skip


def rewards_for(activity: Activity, *members: uuid.UUID, funded: int | None = None) -> Rewards:
    budget = Account(
        activity.budget_account, AccountKind.ACTIVITY_BUDGET, credits_posted=funded or activity.budget_points
    )
    accounts = [budget, Account(PROGRAMME, AccountKind.PROGRAMME)] + [
        Account(member_account(m), AccountKind.MEMBER) for m in members or (ADA,)
    ]
    targeted = {(activity.activity_id, m) for m in members or (ADA,)}
    return Rewards(Book(accounts), {activity.activity_id: activity}, targeted, {}, {}, timedelta(days=730))


def test_events_are_judged_by_the_version_in_force_when_they_occurred():
    activity = double_points()
    activity.activate(T0, "ops", ends_at=T0 + 48 * H)
    activity.pause(T0 + 10 * H, "ops")
    activity.activate(T0 + 20 * H, "ops")
    activity.end(T0 + 30 * H, "ops")
    assert activity.live_version_at(T0 - H) is None, "before it started"
    assert activity.live_version_at(T0 + 5 * H) is not None
    assert activity.live_version_at(T0 + 15 * H) is None, "while paused"
    assert activity.live_version_at(T0 + 25 * H) is not None, "resumed"
    assert activity.live_version_at(T0 + 35 * H) is None, "after it ended"
    # A purchase made while it ran earns the bonus even if it arrives after the end.
    rewards = rewards_for(activity)
    [grant] = rewards.on_purchase(purchase(T0 + 25 * H))
    assert grant.points == 100


def test_window_edges_are_judged_in_utc_from_the_event_time():
    activity = double_points()
    start, end = T0 + 2 * H, T0 + 5 * H
    activity.schedule(start, end, T0, "ops")
    assert activity.live_version_at(start) is not None, "the start is inside"
    assert activity.live_version_at(end - timedelta(microseconds=1)) is not None
    assert activity.live_version_at(end) is None, "the end is outside"
    beijing = start.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Shanghai"))
    assert activity.live_version_at(beijing - timedelta(microseconds=1)) is None


@pytest.mark.parametrize(
    ("steps", "refused", "reason"),
    [
        ([], "pause", "a draft activity cannot be paused"),
        ([("end",)], "activate", "a ended activity cannot be activated"),
        ([("activate",)], "schedule", "a active activity cannot be scheduled"),
        ([("end",)], "revise", "a ended activity cannot be revised"),
    ],
)
def test_the_lifecycle_refuses_inconsistent_changes(steps, refused, reason):
    activity = double_points()
    now = T0
    for (step,) in steps:
        if step == "activate":
            activity.activate(now, "ops", ends_at=T0 + 48 * H)
        elif step == "end":
            activity.activate(now, "ops", ends_at=T0 + 48 * H)
            activity.end(now + H, "ops")
        now += 2 * H
    attempts = {
        "pause": lambda: activity.pause(now, "ops"),
        "activate": lambda: activity.activate(now, "ops"),
        "schedule": lambda: activity.schedule(now + H, now + 2 * H, now, "ops"),
        "revise": lambda: activity.revise(Rules(multiplier=Decimal(3)), now, "ops"),
    }
    with pytest.raises(LifecycleError, match=reason):
        attempts[refused]()


def test_scheduling_then_starting_early_replaces_the_upcoming_version():
    activity = double_points()
    activity.schedule(T0 + 10 * H, T0 + 20 * H, T0, "ops")
    assert activity.status(T0) == "scheduled"
    activity.activate(T0 + H, "ops")
    assert activity.status(T0 + H) == "active"
    assert activity.dropped_versions == [2]
    assert [v.state for v in activity.versions] == [State.DRAFT, State.ACTIVE]
    activity.pause(T0 + 2 * H, "ops")
    assert activity.live_version_at(T0 + 12 * H) is None, "the dropped schedule does not resume it"


def test_bad_rules_and_windows_are_refused_with_a_reason():
    with pytest.raises(ActivityRuleError, match="multiplier must be above 1"):
        new_activity("x", ActivityKind.MULTIPLIER, Rules(multiplier=Decimal(1)), 10, T0, "ops")
    with pytest.raises(ActivityRuleError, match="needs threshold_minor, currency, bonus_points"):
        new_activity("x", ActivityKind.SPEND_THRESHOLD, Rules(), 10, T0, "ops")
    with pytest.raises(ActivityRuleError, match="needs a quantity_cap"):
        new_activity("x", ActivityKind.LIMITED_CLAIM, Rules(claim_points=5), 10, T0, "ops")
    with pytest.raises(ActivityRuleError, match="starts_at must be in the future"):
        double_points().schedule(T0 - H, T0 + H, T0, "ops")
    with pytest.raises(ActivityRuleError, match="ends_at must be after starts_at"):
        double_points().schedule(T0 + 2 * H, T0 + H, T0, "ops")


def test_the_budget_per_member_cap_and_quantity_cap_are_never_exceeded():
    activity = double_points(budget=250, per_member_cap=120, quantity_cap=3)
    activity.activate(T0, "ops", ends_at=T0 + 48 * H)
    rewards = rewards_for(activity, ADA, BOB)
    grants = [rewards.on_purchase(purchase(T0 + H, 100, member=m)) for m in (ADA, ADA, BOB, BOB)]
    assert [[g.points for g in made] for made in grants] == [[100], [20], [100], []]
    assert activity.grants_count == 3
    assert activity.points_granted == 220
    assert rewards.book.account(activity.budget_account).available == 30


def test_a_multiplier_only_looks_at_its_scope():
    activity = double_points()
    activity.activate(T0, "ops", ends_at=T0 + 48 * H)
    rewards = rewards_for(activity)
    assert rewards.on_purchase(purchase(T0 + H, partner="skyair")) == []
    assert [g.points for g in rewards.on_purchase(purchase(T0 + H, 37))] == [37]


def test_a_spend_threshold_grants_once_when_crossed():
    rules = Rules(threshold_minor=50_000, currency="CNY", bonus_points=500)
    activity = new_activity("Spend 500", ActivityKind.SPEND_THRESHOLD, rules, 10_000, T0 - H, "ops")
    activity.activate(T0, "ops", ends_at=T0 + 48 * H)
    rewards = rewards_for(activity)
    results = [rewards.on_purchase(purchase(T0 + H, points)) for points in (200, 200, 200, 200)]
    assert [[g.points for g in r] for r in results] == [[], [], [500], []]


def test_a_limited_claim_is_granted_once_per_member_and_up_to_its_quantity():
    rules = Rules(claim_points=100)
    activity = new_activity("First 2", ActivityKind.LIMITED_CLAIM, rules, 10_000, T0 - H, "ops", quantity_cap=2)
    activity.activate(T0, "ops", ends_at=T0 + 48 * H)
    carol = uuid.UUID(int=3)
    rewards = rewards_for(activity, ADA, BOB, carol)
    assert rewards.claim(activity, ADA, uuid.uuid4(), T0 + H).points == 100
    with pytest.raises(ClaimRefusedError, match="already claimed"):
        rewards.claim(activity, ADA, uuid.uuid4(), T0 + H)
    rewards.claim(activity, BOB, uuid.uuid4(), T0 + H)
    with pytest.raises(ClaimRefusedError, match="all of this activity has been claimed"):
        rewards.claim(activity, carol, uuid.uuid4(), T0 + H)
    with pytest.raises(ClaimRefusedError, match="not open for claims"):
        rewards.claim(activity, carol, uuid.uuid4(), T0 + 49 * H)


def test_a_referral_rewards_the_referrer_at_the_invited_members_first_purchase():
    rules = Rules(referrer_points=300, referee_points=50)
    activity = new_activity("Invite a friend", ActivityKind.REFERRAL, rules, 10_000, T0 - H, "ops")
    activity.activate(T0, "ops", ends_at=T0 + 48 * H)
    rewards = rewards_for(activity, ADA, BOB)
    rewards.referrers[BOB] = ADA
    made = rewards.on_purchase(purchase(T0 + H, member=BOB, first_ever=True))
    assert sorted((g.member_id, g.points) for g in made) == [(ADA, 300), (BOB, 50)]
    assert rewards.on_purchase(purchase(T0 + 2 * H, member=BOB)) == []
    assert rewards.rewarded_referees == [BOB]
