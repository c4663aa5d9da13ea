"""Tiers without a database: qualifying windows, upgrades at once, reviews, progress and the tier bonus."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from points.domain.days import day_of
from points.domain.earning import Earn, EarnPlan, Reverse
from points.domain.ledger import (
    PROGRAMME,
    Account,
    AccountKind,
    Book,
    member_account,
    partner_issued_account,
    receivable_account,
    unclaimed_account,
)
from points.domain.tiers import (
    Direction,
    EarnTiers,
    Reason,
    TierChange,
    TierSet,
    TierSetError,
    TierSets,
    TierState,
    UnknownTierError,
    check_codes,
    implicit_state,
    new_tier_set,
    progress,
    review,
    review_due,
    tier_bonus,
    tier_bonus_transfer_id,
    upgrade,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
ADA = uuid.UUID(int=1)
ALICE = member_account(ADA)
SHOP = partner_issued_account("skymall")
IDENTIFIER = "partner:skymall:ada"
STRANGER = "partner:skymall:nobody"
VALIDITY = timedelta(days=730)
T0 = datetime(2026, 6, 1, 4, tzinfo=UTC)  # 12:00 in Shanghai
TODAY = date(2026, 6, 1)


def tiers(qualification: str = "rolling_12_months", policy: str = "one_tier_down", grace: int = 30) -> TierSet:
    made = new_tier_set(qualification, grace, policy, [
        {"code": "green", "name": "Green", "threshold_points": 0},
        {"code": "silver", "name": "Silver", "threshold_points": 2_000, "earn_multiplier": "1.25"},
        {"code": "gold", "name": "Gold", "threshold_points": 10_000, "earn_multiplier": "1.5",
         "benefits": ["Lounge access"]},
    ])  # fmt: skip
    return TierSet(made.qualification, made.grace_days, made.downgrade_policy, made.tiers, 1, T0 - timedelta(days=400))


def held(code: str, valid_until: date | None, since: datetime = T0) -> TierState:
    return TierState(code, since, valid_until, 1, since)


# --- the tier set -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tiers_given", "problem"),
    [
        ([], "1 to 10 tiers"),
        ([{"code": "a", "name": "A", "threshold_points": 0}, {"code": "b", "name": "B", "threshold_points": 0}],
         "thresholds must increase from tier to tier: b needs more than a's 0 points"),
        ([{"code": "gold", "name": "Gold", "threshold_points": 5},
          {"code": "gold", "name": "G", "threshold_points": 9}], "gold is used twice"),
        ([{"code": "Gold", "name": "Gold", "threshold_points": 0}], "a code is a lower-case letter"),
        ([{"code": "gold", "name": "", "threshold_points": 0}], "give it a name"),
        ([{"code": "gold", "name": "Gold", "threshold_points": 0, "earn_multiplier": "1.255"}], "at most 2 decimals"),
        ([{"code": "gold", "name": "Gold", "threshold_points": 0, "earn_multiplier": "0.5"}], "1 to 10"),
        ([{"code": "gold", "name": "Gold", "threshold_points": 0, "earn_multiplier": "11"}], "1 to 10"),
        ([{"code": "gold", "name": "Gold", "threshold_points": -1}], "threshold_points must be 0 to"),
    ],
)  # fmt: skip
def test_a_tier_set_that_cannot_work_is_refused_with_what_to_change(tiers_given: list, problem: str):
    with pytest.raises(TierSetError, match=problem):
        new_tier_set("rolling_12_months", 30, "one_tier_down", tiers_given)


def test_qualification_policy_and_grace_are_checked():
    with pytest.raises(TierSetError, match="'rolling_12_months' or 'calendar_year'"):
        new_tier_set("lifetime", 0, "one_tier_down", [{"code": "a", "name": "A", "threshold_points": 0}])
    with pytest.raises(TierSetError, match="'one_tier_down' or 'to_qualified'"):
        new_tier_set("calendar_year", 0, "never", [{"code": "a", "name": "A", "threshold_points": 0}])
    with pytest.raises(TierSetError, match="grace_days must be 0 to 366"):
        new_tier_set("calendar_year", 367, "to_qualified", [{"code": "a", "name": "A", "threshold_points": 0}])


def test_the_first_tier_at_zero_is_the_base_tier_held_without_qualifying():
    assert tiers().base_code == "green"
    assert implicit_state(tiers()).code == "green"
    vip = [{"code": "vip", "name": "VIP", "threshold_points": 50}]
    raised = new_tier_set("rolling_12_months", 0, "to_qualified", vip)
    assert raised.base is None
    assert implicit_state(raised).code is None


def test_activity_tiers_must_be_codes_of_the_tier_set():
    check_codes(tiers(), ["gold", "silver"])
    with pytest.raises(UnknownTierError, match="unknown tier platinum: the tier set has green, silver, gold"):
        check_codes(tiers(), ["gold", "platinum"])
    with pytest.raises(UnknownTierError, match="no tier set yet"):
        check_codes(None, ["gold"])


# --- windows and days -------------------------------------------------------------------------------------


def test_days_are_counted_in_the_programme_zone_at_midnight():
    assert day_of(datetime(2026, 12, 31, 15, 59, 59, tzinfo=UTC), SHANGHAI) == date(2026, 12, 31)
    assert day_of(datetime(2026, 12, 31, 16, 0, tzinfo=UTC), SHANGHAI) == date(2027, 1, 1)


def test_a_rolling_window_is_the_365_days_up_to_today_and_a_calendar_year_starts_on_1_january():
    assert tiers().window(date(2026, 6, 1)) == (date(2025, 6, 2), date(2026, 6, 1))
    assert tiers("calendar_year").window(date(2026, 6, 1)) == (date(2026, 1, 1), date(2026, 6, 1))
    assert tiers("calendar_year").window(date(2027, 1, 1)) == (date(2027, 1, 1), date(2027, 1, 1))


def test_validity_rolling_a_year_from_the_basis_calendar_to_the_end_of_next_year():
    gold = tiers().tier("gold")
    assert tiers().valid_until(gold, date(2026, 6, 1)) == date(2027, 6, 1)
    assert tiers().valid_until(gold, date(2028, 2, 29)) == date(2029, 2, 28)
    assert tiers("calendar_year").valid_until(gold, date(2026, 1, 1)) == date(2027, 12, 31)
    assert tiers("calendar_year").valid_until(gold, date(2026, 12, 31)) == date(2027, 12, 31)
    assert tiers().valid_until(tiers().tier("green"), TODAY) is None, "the base tier is never reviewed"


# --- upgrades at once -------------------------------------------------------------------------------------


def test_an_upgrade_moves_several_tiers_at_once_when_the_points_reach_them():
    made = upgrade(tiers(), ADA, implicit_state(tiers()), 12_000, TODAY, T0)
    assert made is not None
    assert (made.from_tier, made.to_tier, made.direction, made.reason) == ("green", "gold", Direction.UPGRADE,
                                                                           Reason.QUALIFIED)  # fmt: skip
    assert (made.qualifying_points, made.valid_until, made.at) == (12_000, date(2027, 6, 1), T0)


def test_points_that_reach_only_the_tier_held_change_nothing():
    assert upgrade(tiers(), ADA, held("silver", date(2027, 1, 1)), 9_999, TODAY, T0) is None
    assert upgrade(tiers(), ADA, held("gold", date(2027, 1, 1)), 50_000, TODAY, T0) is None


def test_a_change_never_goes_before_the_members_previous_one():
    later = T0 + timedelta(seconds=5)
    made = upgrade(tiers(), ADA, held("silver", date(2027, 1, 1), since=later), 10_000, TODAY, T0)
    assert made is not None
    assert made.at == later + timedelta(microseconds=1)


# --- reviews ----------------------------------------------------------------------------------------------


def test_the_review_waits_for_the_grace_days():
    state = held("gold", date(2027, 6, 1))
    assert not review_due(tiers(grace=30), state, date(2027, 7, 1))
    assert review_due(tiers(grace=30), state, date(2027, 7, 2))
    assert review_due(tiers(grace=0), state, date(2027, 6, 2))
    assert review(tiers(grace=30), ADA, state, 0, 0, date(2027, 7, 1), T0) is None


def test_a_review_that_misses_the_threshold_goes_one_tier_down_and_holds_it_another_period():
    made = review(tiers(), ADA, held("gold", date(2027, 6, 1)), 500, 500, date(2027, 7, 2), T0)
    assert made is not None
    assert (made.to_tier, made.direction, made.reason) == ("silver", Direction.DOWNGRADE, Reason.REVIEW_DOWNGRADED)
    assert made.valid_until == date(2028, 6, 1), "the next period follows the one judged"


def test_to_qualified_goes_down_to_what_the_points_reach():
    made = review(tiers(policy="to_qualified"), ADA, held("gold", date(2027, 6, 1)), 500, 500, date(2027, 7, 2), T0)
    assert made is not None
    assert (made.to_tier, made.valid_until) == ("green", None)
    silver = review(tiers(policy="to_qualified"), ADA, held("gold", date(2027, 6, 1)), 2_000, 0, date(2027, 7, 2), T0)
    assert silver is not None
    assert silver.to_tier == "silver"


def test_a_review_that_reaches_the_threshold_confirms_the_tier_for_the_next_period():
    made = review(tiers(), ADA, held("gold", date(2027, 6, 1)), 10_000, 0, date(2027, 7, 2), T0)
    assert made is not None
    assert (made.from_tier, made.to_tier, made.direction, made.reason) == ("gold", "gold", Direction.CONFIRMED,
                                                                           Reason.REVIEW_CONFIRMED)  # fmt: skip
    assert made.valid_until == date(2028, 6, 1)


def test_points_earned_in_the_grace_days_keep_the_tier_from_today():
    made = review(tiers(), ADA, held("gold", date(2027, 6, 1)), 0, 10_000, date(2027, 7, 2), T0)
    assert made is not None
    assert (made.to_tier, made.direction, made.valid_until) == ("gold", Direction.CONFIRMED, date(2028, 7, 2))


def test_a_calendar_year_tier_is_reviewed_once_the_next_years_grace_has_passed_in_shanghai():
    calendar = tiers("calendar_year", grace=0)
    state = held("silver", date(2027, 12, 31))
    before = datetime(2027, 12, 31, 15, 59, 59, tzinfo=UTC)  # 23:59:59 on 31 December in Shanghai
    at_midnight = datetime(2027, 12, 31, 16, 0, tzinfo=UTC)
    assert review(calendar, ADA, state, 0, 0, day_of(before, SHANGHAI), before) is None
    made = review(calendar, ADA, state, 2_000, 0, day_of(at_midnight, SHANGHAI), at_midnight)
    assert made is not None
    assert (made.to_tier, made.valid_until) == ("silver", date(2028, 12, 31))


# --- progress ---------------------------------------------------------------------------------------------


def test_points_to_keep_count_the_window_the_review_judges_and_points_to_reach_the_current_one():
    state = held("silver", date(2027, 6, 1))
    seen = progress(tiers(), state, current_points=7_000, judged_points=1_500, today=TODAY)
    assert (seen.points_to_keep, seen.next_tier and seen.next_tier.code, seen.points_to_reach) == (500, "gold", 3_000)
    assert seen.judged_window == (date(2026, 6, 2), date(2027, 6, 1))
    assert seen.review_day == date(2027, 7, 2)
    top = progress(tiers(), held("gold", date(2027, 6, 1)), 20_000, 12_000, TODAY)
    assert (top.points_to_keep, top.next_tier, top.points_to_reach) == (0, None, None)
    base = progress(tiers(), implicit_state(tiers()), 100, None, TODAY)
    assert (base.points_to_keep, base.points_to_reach, base.judged_window) == (None, 1_900, None)


# --- the earn batch ---------------------------------------------------------------------------------------


def test_the_bonus_is_the_floor_of_the_extra_points():
    assert tier_bonus(333, Decimal("1.25")) == 83
    assert tier_bonus(1, Decimal("1.5")) == 0
    assert tier_bonus(1_000, Decimal("1")) == 0
    assert tier_bonus(1_000, Decimal("10")) == 9_000


def batch(timeline: list[TierChange], window_points: int, now: datetime = T0 + timedelta(hours=1)) -> tuple:
    book = Book([
        Account(ALICE, AccountKind.MEMBER), Account(receivable_account(ADA), AccountKind.RECEIVABLE),
        Account(unclaimed_account(STRANGER), AccountKind.UNCLAIMED), Account(SHOP, AccountKind.PARTNER_ISSUED),
        Account(PROGRAMME, AccountKind.PROGRAMME),
    ])  # fmt: skip
    book.mark_lots_loaded([ALICE])
    earnings: dict = {}
    listener = EarnTiers(book, TierSets((tiers(),)), SHANGHAI, now, VALIDITY, earnings, {ADA: timeline},
                         {ADA: window_points})  # fmt: skip
    plan = EarnPlan(book, {IDENTIFIER: ALICE, STRANGER: unclaimed_account(STRANGER)}, earnings, {}, VALIDITY, listener)
    return plan, listener, book


def purchase(key: str, points: int, at: datetime = T0, identifier: str = IDENTIFIER) -> Earn:
    return Earn(uuid.uuid4(), f"partner:skymall:{key}", identifier, SHOP, points * 100, "CNY", points, at,
                "partner_purchase", {"partner_id": "skymall", "purchase_id": key})  # fmt: skip


def refund(key: str, amount_minor: int) -> Reverse:
    later = T0 + timedelta(days=3)
    return Reverse(uuid.uuid4(), f"partner:skymall:{key}", amount_minor, "CNY", later, "partner_refund")


def gold_since(at: datetime) -> TierChange:
    return TierChange(ADA, "green", "gold", Direction.UPGRADE, Reason.QUALIFIED, 10_000, at, date(2027, 6, 1), 1)


def test_a_purchase_earns_the_multiplier_of_the_tier_held_when_it_occurred():
    plan, listener, book = batch([gold_since(T0 - timedelta(days=1))], 10_000)
    before = purchase("before", 1_000, at=T0 - timedelta(days=2))
    after = purchase("after", 1_000, at=T0)
    plan.earn(before)
    plan.earn(after)
    bonuses = {t.cause_event_id: t for t in book.changes().transfers if t.reason == "tier_bonus"}
    assert list(bonuses) == [after.event_id], "a purchase made before the upgrade keeps the tier it was made at"
    bonus = bonuses[after.event_id]
    assert (bonus.debit_account, bonus.credit_account, bonus.amount) == (PROGRAMME, ALICE, 500)
    assert bonus.transfer_id == tier_bonus_transfer_id(after.event_id)
    assert bonus.expires_at == after.occurred_at + VALIDITY, "its lot expires with the purchase's"
    assert (plan.earnings[after.source_key].tier_code, plan.earnings[after.source_key].tier_bonus) == ("gold", 500)
    assert plan.earnings[before.source_key].tier_code == "green"
    assert listener.days == {(ADA, date(2026, 5, 30)): 1_000, (ADA, date(2026, 6, 1)): 1_000}


def test_points_of_an_unclaimed_identifier_neither_qualify_nor_earn_a_bonus():
    plan, listener, book = batch([gold_since(T0 - timedelta(days=1))], 10_000)
    plan.earn(purchase("anon", 1_000, identifier=STRANGER))
    assert [t.reason for t in book.changes().transfers] == ["partner_purchase"]
    assert listener.days == {}
    assert next(iter(plan.earnings.values())).qualifying_day is None


def test_an_upgrade_in_the_batch_happens_now_and_applies_only_to_purchases_made_after_it():
    now = T0 + timedelta(hours=1)
    plan, listener, book = batch([], 1_900, now=now)
    plan.earn(purchase("p1", 200, at=T0))
    plan.earn(purchase("p2", 400, at=T0 + timedelta(minutes=30)))  # before the upgrade, which happens at `now`
    plan.earn(purchase("p3", 400, at=now + timedelta(minutes=1)))  # a purchase dated after it
    changes = listener.finish()
    assert [(c.from_tier, c.to_tier, c.at, c.qualifying_points) for c in changes] == [("green", "silver", now, 2_100)]
    bonuses = [t.amount for t in book.changes().transfers if t.reason == "tier_bonus"]
    assert bonuses == [100], "p1 and p2 earn as green; p3, made after the upgrade, as silver (400 x 0.25)"
    assert listener.window_points[ADA] == 2_900


def test_a_refund_lowers_qualifying_points_and_takes_the_bonus_back_in_proportion_without_downgrading():
    plan, listener, book = batch([gold_since(T0 - timedelta(days=1))], 10_000)
    bought = purchase("big", 1_000)
    plan.earn(bought)
    plan.reverse(refund("big", 25_000))  # a quarter of 100,000
    plan.reverse(refund("big", 25_000))  # and another: half in all
    earning = plan.earnings[bought.source_key]
    assert (earning.points_reversed, earning.tier_bonus, earning.tier_bonus_reversed) == (500, 500, 250)
    taken = [(t.reason, t.amount, t.credit_account) for t in book.changes().transfers if t.credit_account == PROGRAMME]
    assert taken == [("tier_bonus_reversal", 125, PROGRAMME), ("tier_bonus_reversal", 125, PROGRAMME)]
    assert listener.days == {(ADA, date(2026, 6, 1)): 500}
    assert listener.window_points[ADA] == 10_500
    assert listener.finish() == [], "a refund never downgrades at once"
    assert book.account(ALICE).posted == 1_000 + 500 - 500 - 250


def test_a_refunded_bonus_already_spent_is_clawed_back():
    plan, _listener, book = batch([gold_since(T0 - timedelta(days=1))], 10_000)
    bought = purchase("spent", 1_000)
    plan.earn(bought)
    book.account(ALICE).debits_pending += 1_500  # a hold reserved everything
    plan.reverse(refund("spent", 100_000))
    clawed = [(t.reason, t.amount) for t in book.changes().transfers if t.debit_account == receivable_account(ADA)]
    assert ("clawback", 500) in clawed, "the bonus part of the clawback is owed to the programme"
    assert plan.earnings[bought.source_key].tier_bonus_reversed == 500


# --- what crosses to other services, and activities for some tiers ----------------------------------------


def test_a_change_leaves_as_a_tier_changed_event_the_contract_reads():
    from contracts.topics import MEMBER_TIERS
    from points.handlers.tiers import tier_messages

    change = gold_since(T0)
    [message] = tier_messages("t.loyalty.member-tiers.v1", [change], tiers(), SHANGHAI)
    event = MEMBER_TIERS.decode(message.payload)
    assert (message.key, event.event_id) == (str(ADA), change.event_id)
    p = event.payload  # type: ignore[attr-defined]
    assert (p.from_tier, p.to_tier, p.direction, p.reason, p.qualifying_points) == (
        "green", "gold", "upgrade", "qualified", 10_000,
    )  # fmt: skip
    assert p.valid_until == datetime(2027, 6, 1, 16, tzinfo=UTC), "the end of 1 June 2027 in Shanghai"
    assert p.review_at == datetime(2027, 7, 1, 16, tzinfo=UTC), "after 30 grace days"
    assert p.changed_at == T0


def test_an_activity_for_some_tiers_rewards_only_members_at_them_when_they_buy_or_claim():
    from points.domain.activities import ActivityKind, ActivityRuleError, Rules, new_activity
    from points.domain.rewards import ClaimRefusedError, Purchase, Rewards

    with pytest.raises(ActivityRuleError, match="tier codes such as 'gold'"):
        Rules(multiplier=Decimal(2), tiers=("Gold",)).validate(ActivityKind.MULTIPLIER)
    assert Rules.from_json(Rules(multiplier=Decimal(2), tiers=("gold",)).to_json()).tiers == ("gold",)
    double = new_activity("gold double", ActivityKind.MULTIPLIER, Rules(multiplier=Decimal(2), tiers=("gold",)),
                          10_000, T0 - timedelta(hours=1), "ops")  # fmt: skip
    double.activate(T0 - timedelta(hours=1), "ops", ends_at=T0 + timedelta(days=2))
    gift = new_activity("gold gift", ActivityKind.LIMITED_CLAIM, Rules(claim_points=100, tiers=("gold",)),
                        10_000, T0 - timedelta(hours=1), "ops", quantity_cap=10)  # fmt: skip
    gift.activate(T0 - timedelta(hours=1), "ops", ends_at=T0 + timedelta(days=2))
    book = Book([Account(ALICE, AccountKind.MEMBER),
                 Account(double.budget_account, AccountKind.ACTIVITY_BUDGET, credits_posted=10_000),
                 Account(gift.budget_account, AccountKind.ACTIVITY_BUDGET, credits_posted=10_000)])  # fmt: skip
    rewards = Rewards(book, {double.activity_id: double, gift.activity_id: gift},
                      {(double.activity_id, ADA), (gift.activity_id, ADA)}, {}, {}, VALIDITY)  # fmt: skip

    def bought(tier: str) -> Purchase:
        return Purchase(uuid.uuid4(), ADA, T0, "partner", "skymall", None, None, 10_000, "CNY", 100,
                        first_at_partner=False, first_ever=False, tier=tier)  # fmt: skip

    assert rewards.on_purchase(bought("silver")) == []
    assert [g.points for g in rewards.on_purchase(bought("gold"))] == [100]
    with pytest.raises(ClaimRefusedError, match="for members at tier gold only"):
        rewards.claim(gift, ADA, uuid.uuid4(), T0, "silver")
    assert rewards.claim(gift, ADA, uuid.uuid4(), T0, "gold").points == 100
