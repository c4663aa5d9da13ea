"""Which give-aways a member's list offers: exactly those the domain's claim rule would grant now."""

import uuid
from datetime import UTC, datetime, timedelta

from points.adapters.reads import ClaimedGrant, ClaimView
from points.domain.activities import Activity, ActivityKind, Rules, new_activity
from points.domain.ledger import Account, AccountKind, member_account
from points.domain.rewards import Standing
from points.handlers.queries import claimable, claimed_activities

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)
MEMBER = uuid.uuid4()
VALIDITY = timedelta(days=730)


def give_away(points: int = 25, *, budget: int = 100, quantity: int = 10, ends: timedelta = timedelta(hours=1)):
    activity = new_activity(
        "Give-away", ActivityKind.LIMITED_CLAIM, Rules(claim_points=points), budget, NOW - timedelta(hours=2), "ops",
        quantity_cap=quantity,
    )  # fmt: skip
    activity.activate(NOW - timedelta(hours=1), "ops", ends_at=NOW + ends)
    return activity


def view(*activities: Activity, budget_left: int = 100, targeted: bool = True, standing: Standing | None = None,
         claimed: list[ClaimedGrant] | None = None) -> ClaimView:  # fmt: skip
    accounts = [Account(member_account(MEMBER), AccountKind.MEMBER)] + [
        Account(a.budget_account, AccountKind.ACTIVITY_BUDGET, credits_posted=budget_left) for a in activities
    ]
    return ClaimView(
        {a.activity_id: a for a in activities},
        [a.activity_id for a in activities],
        {(a.activity_id, MEMBER) for a in activities} if targeted else set(),
        {(a.activity_id, MEMBER): standing for a in activities} if standing else {},
        accounts,
        claimed or [],
    )


def offered(claim_view: ClaimView) -> list[tuple[uuid.UUID, int]]:
    return [(o["activity_id"], o["points"]) for o in claimable(claim_view, MEMBER, NOW, VALIDITY)]


def test_an_open_give_away_for_a_targeted_member_is_offered_soonest_end_first_and_nothing_changes():
    later, sooner = give_away(30, ends=timedelta(hours=3)), give_away(25)
    state = view(later, sooner)
    assert offered(state) == [(sooner.activity_id, 25), (later.activity_id, 30)]
    assert offered(state) == offered(view(later, sooner)), "asking does not use up the state it asks about"
    assert (later.grants_count, state.accounts[1].debits_posted) == (0, 0)


def test_not_offered_outside_the_targets_or_once_claimed_or_without_enough_left():
    activity = give_away(25)
    assert offered(view(activity, targeted=False)) == [], "held out, or not among the frozen targets"
    assert offered(view(activity, standing=Standing(grants=1, points=25))) == []
    assert offered(view(activity, budget_left=24)) == [], "a claim is granted whole or not at all"
    sold_out = give_away(25, quantity=1)
    sold_out.grants_count = 1
    assert offered(view(sold_out)) == []
    paused = give_away(25)
    paused.pause(NOW - timedelta(minutes=1), "ops")
    assert offered(view(paused)) == []


def test_claimed_give_aways_are_listed_with_what_they_granted():
    activity = give_away(25)
    state = view(activity, claimed=[ClaimedGrant(activity.activity_id, 25, NOW - timedelta(minutes=5))])
    assert claimed_activities(state, NOW) == [
        {"activity_id": activity.activity_id, "name": "Give-away", "points": 25, "ends_at": NOW + timedelta(hours=1),
         "claimed": True},
    ]  # fmt: skip
