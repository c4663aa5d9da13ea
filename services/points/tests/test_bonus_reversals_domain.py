"""Refunds take activity bonuses back into the activity's budget, without a database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from points.domain.activities import Activity, ActivityKind, Rules, Scope, new_activity
from points.domain.earning import Earn, Earning, EarnPlan, Reverse
from points.domain.ledger import (
    PROGRAMME,
    Account,
    AccountKind,
    Book,
    member_account,
    member_of,
    partner_issued_account,
    partner_redeemed_account,
    receivable_account,
    transfer_id,
)
from points.domain.rewards import Purchase, Rewards

T0 = datetime(2026, 11, 20, tzinfo=UTC)
H = timedelta(hours=1)
ADA = uuid.UUID(int=1)
ALICE = member_account(ADA)
SHOP = partner_issued_account("skymall")
SHOP_REDEEMED = partner_redeemed_account("skymall")
IDENTIFIER = "partner:skymall:ada"


class Bonuses:
    """The earn batch's listener, as the handler wires it: purchases earn bonuses, refunds take them back."""

    def __init__(self, rewards: Rewards) -> None:
        self.rewards = rewards

    def earned(self, fact: Earn, holder: str) -> None:
        self.rewards.on_purchase(
            Purchase(
                fact.event_id, member_of(holder), fact.occurred_at, fact.channel, fact.partner_id, fact.category,
                fact.mcc, fact.amount_minor, fact.currency, fact.points, first_at_partner=False, first_ever=False,
            )
        )  # fmt: skip

    def reversed(self, fact: Reverse, earning: Earning, refunded_before: int) -> None:
        self.rewards.on_refund(fact, earning, refunded_before)


def running(kind: ActivityKind, rules: Rules, budget: int = 10_000) -> Activity:
    activity = new_activity(f"{kind} test", kind, rules, budget, T0 - H, "ops")
    activity.activate(T0 - H, "ops", ends_at=T0 + 48 * H)
    return activity


def batch(activity: Activity, *, held: int = 0) -> tuple[EarnPlan, Rewards, Book]:
    book = Book([
        Account(ALICE, AccountKind.MEMBER, credits_posted=held),
        Account(receivable_account(ADA), AccountKind.RECEIVABLE),
        Account(SHOP, AccountKind.PARTNER_ISSUED),
        Account(SHOP_REDEEMED, AccountKind.PARTNER_REDEEMED),
        Account(activity.budget_account, AccountKind.ACTIVITY_BUDGET, credits_posted=activity.budget_points),
        Account(PROGRAMME, AccountKind.PROGRAMME),
    ])  # fmt: skip
    book.mark_lots_loaded([ALICE])
    rewards = Rewards(book, {activity.activity_id: activity}, {(activity.activity_id, ADA)}, {}, {}, 700 * 24 * H)
    plan = EarnPlan(book, {IDENTIFIER: ALICE}, {}, {}, 700 * 24 * H, Bonuses(rewards))
    return plan, rewards, book


def purchase(key: str, amount_minor: int, points: int, at: datetime = T0) -> Earn:
    return Earn(
        uuid.uuid4(), f"partner:skymall:{key}", IDENTIFIER, SHOP, amount_minor, "CNY", points, at,
        "partner_purchase", partner_id="skymall",
    )  # fmt: skip


def refund(key: str, amount_minor: int) -> Reverse:
    return Reverse(uuid.uuid4(), f"partner:skymall:{key}", amount_minor, "CNY", T0 + 2 * H, "partner_refund")


def budget_left(book: Book, activity: Activity) -> int:
    return book.account(activity.budget_account).posted


def test_refunds_in_parts_take_the_multiplier_bonus_back_in_proportion_until_all_of_it():
    double = running(ActivityKind.MULTIPLIER, Rules(scope=Scope(partner_id="skymall"), multiplier=Decimal(2)))
    plan, rewards, book = batch(double)
    plan.earn(purchase("o-1", 10_000, 101))
    assert (book.account(ALICE).posted, budget_left(book, double)) == (202, 10_000 - 101)

    taken = []
    for part in (2_500, 5_000, 2_500):
        plan.reverse(refund("o-1", part))
        [grant] = rewards.grants
        taken.append(grant.points_reversed)
    assert taken == [25, 75, 101], "cumulative, like the purchase's own points: the parts add up to the whole"
    assert book.account(ALICE).posted == 0
    assert budget_left(book, double) == 10_000
    assert (double.points_granted, double.points_reversed) == (101, 101)
    assert rewards.standings[(double.activity_id, ADA)].points == 0
    reasons = [t.reason for t in book.changes().transfers if t.credit_account == double.budget_account]
    assert reasons == ["bonus_reversal"] * 3


def test_a_refund_after_the_bonus_was_spent_claws_it_back_into_the_budget():
    double = running(ActivityKind.MULTIPLIER, Rules(multiplier=Decimal(2)))
    plan, rewards, book = batch(double)
    bought = purchase("o-1", 10_000, 100)
    plan.earn(bought)
    book.transfer(
        transfer_id=uuid.uuid4(), debit=ALICE, credit=SHOP_REDEEMED, amount=150, reason="redemption",
        cause_event_id=uuid.uuid4(), occurred_at=T0 + H,
    )  # fmt: skip

    gone = refund("o-1", 10_000)
    plan.reverse(gone)

    assert book.account(ALICE).posted == 0
    assert book.account(receivable_account(ADA)).posted == -150, "50 of the purchase's points, 100 of the bonus"
    assert budget_left(book, double) == 10_000
    [grant] = rewards.grants
    clawed = book.changes().transfers[-1]
    assert clawed.transfer_id == transfer_id(gone.event_id, f"bonus:{double.activity_id}:{grant.cause_id}:clawback")
    assert (clawed.debit_account, clawed.credit_account, clawed.amount, clawed.reason) == (
        receivable_account(ADA), double.budget_account, 100, "bonus_clawback",
    )  # fmt: skip


def test_a_refund_that_waited_for_its_purchase_takes_back_the_bonus_that_purchase_just_earned():
    double = running(ActivityKind.MULTIPLIER, Rules(multiplier=Decimal(2)))
    plan, rewards, book = batch(double)
    plan.reverse(refund("o-1", 5_000))
    plan.earn(purchase("o-1", 10_000, 100))
    [grant] = rewards.grants
    assert (grant.points, grant.points_reversed) == (100, 50)
    assert book.account(ALICE).posted == 100
    assert budget_left(book, double) == 10_000 - 50


def test_a_threshold_bonus_is_held_only_while_net_spend_reaches_the_threshold():
    spend = running(ActivityKind.SPEND_THRESHOLD, Rules(threshold_minor=1_000, currency="CNY", bonus_points=500))
    plan, rewards, book = batch(spend)
    plan.earn(purchase("a", 600, 6))
    plan.earn(purchase("b", 600, 6))
    [first] = rewards.grants
    standing = rewards.standings[(spend.activity_id, ADA)]

    plan.reverse(refund("b", 100))  # net spend 1,100: still above
    assert (first.points_reversed, standing.spend_minor, standing.threshold_met) == (0, 1_100, True)
    plan.reverse(refund("a", 300))  # net spend 800: below, the bonus goes back whole
    assert (first.points_reversed, standing.spend_minor, standing.threshold_met) == (500, 800, False)
    assert budget_left(book, spend) == 10_000

    plan.earn(purchase("c", 200, 2))  # 1,000 again: the threshold is reached again
    assert [g.points for g in rewards.grants] == [500, 500]
    assert budget_left(book, spend) == 9_500
    plan.reverse(refund("a", 300))  # a's rest: the second bonus goes back too
    assert [g.points_reversed for g in rewards.grants] == [500, 500]
    assert (spend.points_granted, spend.points_reversed, standing.points) == (1_000, 1_000, 0)
    assert book.account(ALICE).posted == 6 + 6 + 2 - 1 - 6


def test_a_per_member_cap_counts_the_points_a_member_holds_after_refunds():
    double = running(ActivityKind.MULTIPLIER, Rules(multiplier=Decimal(2)))
    double.per_member_cap = 100
    plan, rewards, _book = batch(double)
    plan.earn(purchase("o-1", 10_000, 100))
    plan.reverse(refund("o-1", 10_000))
    plan.earn(purchase("o-2", 10_000, 100))
    assert [(g.points, g.points_reversed) for g in rewards.grants] == [(100, 100), (100, 0)]
    assert rewards.standings[(double.activity_id, ADA)].points == 100
