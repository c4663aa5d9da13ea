"""Velocity rules, without a database: each rule holds what it should and nothing else; the plan moves held points
to the suspense account, and a refund of a held purchase takes them back from there."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from points.domain.earning import Earn, EarnPlan, Outcome, Reverse
from points.domain.ledger import REVIEW_PENDING, Account, AccountKind, Book, member_account, partner_issued_account
from points.domain.velocity import (
    DAY,
    Count,
    Limits,
    RulesError,
    VelocityRules,
    VelocityScreen,
    day_bucket,
    refusal,
)

T0 = datetime(2026, 3, 10, 12, 30, tzinfo=UTC)
MEMBER = uuid.UUID("00000000-0000-0000-0000-0000000000a1")
HOLDER = member_account(MEMBER)
ISSUER = partner_issued_account("skymall")


def bought(points: int, *, amount: int = 10_000, at: datetime = T0, customer: str = "c1", partner: str = "skymall",
           order: str | None = None) -> Earn:  # fmt: skip
    return Earn(
        uuid.uuid4(), f"partner:{partner}:{order or uuid.uuid4().hex}", f"partner:{partner}:{customer}",
        partner_issued_account(partner), amount, "CNY", points, at, "partner_purchase", {}, "partner", partner,
    )  # fmt: skip


def screen(rules: VelocityRules, **loaded: object) -> VelocityScreen:
    return VelocityScreen(rules, **loaded)  # type: ignore[arg-type]


def judged(s: VelocityScreen, *facts: Earn) -> list[str | None]:
    """Each purchase checked then counted, as the plan does; the rule that held it, or None."""
    found = []
    for f in facts:
        finding = s.check(f, HOLDER)
        s.record(f, HOLDER, credited=finding is None)
        found.append(finding.rule if finding else None)
    return found


def test_no_rule_holds_nothing_and_reads_nothing():
    rules = VelocityRules()
    assert not rules.screens_earnings
    assert judged(screen(rules), bought(10**9)) == [None]


def test_member_points_per_day_holds_the_purchase_that_goes_over_and_counts_only_credited_points():
    s = screen(VelocityRules(member=Limits(points_per_day=1000)))
    assert judged(s, bought(600), bought(500), bought(400)) == [None, "member_points_per_day", None]
    assert s.added[(f"member:{MEMBER}", DAY, day_bucket(T0))].points == 1000


def test_points_already_earned_today_count_and_yesterday_does_not():
    today = (f"member:{MEMBER}", DAY, day_bucket(T0))
    s = screen(VelocityRules(member=Limits(points_per_day=1000)), counts={today: Count(points=900)})
    assert judged(s, bought(200, at=T0 + timedelta(days=1)), bought(200)) == [None, "member_points_per_day"]


def test_identifier_and_partner_limits_are_their_own_scopes():
    s = screen(VelocityRules(identifier=Limits(points_per_day=100)))
    assert judged(s, bought(80, customer="a"), bought(80, customer="b"), bought(30, customer="a")) == [
        None, None, "identifier_points_per_day"
    ]  # fmt: skip
    s = screen(VelocityRules(partner=Limits(points_per_day=100)))
    assert judged(s, bought(80), bought(80, partner="other"), bought(30)) == [None, None, "partner_points_per_day"]


def test_purchases_per_hour_count_held_purchases_too_and_a_new_hour_starts_again():
    s = screen(VelocityRules(member=Limits(purchases_per_hour=2)))
    later = T0 + timedelta(hours=1)
    assert judged(s, bought(1), bought(1), bought(1), bought(1, at=later)) == [
        None, None, "member_purchases_per_hour", None
    ]  # fmt: skip


def test_cool_off_holds_big_earnings_of_a_new_member_only():
    rules = VelocityRules(new_member_days=7, new_member_points=500)
    s = screen(rules, joined={MEMBER: T0 - timedelta(days=2)})
    assert judged(s, bought(500), bought(501)) == [None, "new_member_cool_off"]
    s = screen(rules, joined={MEMBER: T0 - timedelta(days=7)})
    assert judged(s, bought(10_000)) == [None]


def test_cool_off_needs_both_its_numbers():
    with pytest.raises(RulesError):
        VelocityRules(new_member_days=7).validate()


def test_an_amount_far_above_the_members_usual_is_held_once_it_has_enough_history():
    rules = VelocityRules(unusual_factor=Decimal("3.5"), unusual_min_purchases=5)
    usual = {f"amount:{MEMBER}:CNY": Count(purchases=5, amount_minor=50_000)}  # an average of 10,000
    s = screen(rules, trailing=usual)
    assert judged(s, bought(10, amount=35_000), bought(10, amount=35_001)) == [None, "unusual_amount"]
    few = {f"amount:{MEMBER}:CNY": Count(purchases=4, amount_minor=40_000)}
    assert judged(screen(rules, trailing=few), bought(10, amount=10**8)) == [None]


def test_unusual_factor_must_be_above_one():
    with pytest.raises(RulesError):
        VelocityRules(unusual_factor=Decimal("0.5")).validate()


def test_rules_survive_their_json_with_decimal_factor():
    rules = VelocityRules(member=Limits(1000, 3), unusual_factor=Decimal("2.25"), gifts_per_day=2)
    assert VelocityRules.from_json(rules.to_json(), 4) == VelocityRules(
        member=Limits(1000, 3), unusual_factor=Decimal("2.25"), gifts_per_day=2, version=4
    )


def test_gifts_and_redemptions_per_day_refuse_beyond_the_count():
    assert refusal("gifts", 1, 2) is None
    assert refusal("gifts", 2, None) is None
    assert "at most 2 gifts per day" in (refusal("gifts", 2, 2) or "")


def _plan(rules: VelocityRules) -> EarnPlan:
    accounts = [Account(HOLDER, AccountKind.MEMBER), Account(ISSUER, AccountKind.PARTNER_ISSUED),
                Account(REVIEW_PENDING, AccountKind.REVIEW)]  # fmt: skip
    book = Book(accounts)
    book.mark_lots_loaded([HOLDER])
    return EarnPlan(book, {"partner:skymall:c1": HOLDER}, {}, {}, timedelta(days=365), screen=screen(rules))


def test_a_held_purchase_credits_the_suspense_account_not_the_member():
    plan = _plan(VelocityRules(member=Limits(points_per_day=100)))
    assert plan.earn(bought(100, order="o1")) is Outcome.APPLIED
    assert plan.earn(bought(50, order="o2")) is Outcome.HELD
    assert plan.book.account(HOLDER).posted == 100
    assert plan.book.account(REVIEW_PENDING).posted == 50
    assert [h.fact.points for h in plan.held] == [50]
    assert plan.earnings["partner:skymall:o2"].holder_account == REVIEW_PENDING


def test_refunding_a_held_purchase_takes_its_points_back_from_suspense_and_cancels_it_in_full_only():
    plan = _plan(VelocityRules(member=Limits(points_per_day=0)))
    plan.earn(bought(100, amount=10_000, order="o1"))
    plan.reverse(Reverse(uuid.uuid4(), "partner:skymall:o1", 5_000, "CNY", T0, "partner_refund"))
    assert (plan.book.account(REVIEW_PENDING).posted, plan.cancelled) == (50, [])
    plan.reverse(Reverse(uuid.uuid4(), "partner:skymall:o1", 5_000, "CNY", T0, "partner_refund"))
    assert plan.book.account(REVIEW_PENDING).posted == 0
    assert [e.source_key for e in plan.cancelled] == ["partner:skymall:o1"]
    assert plan.book.account(ISSUER).posted == 0
    assert plan.book.account(HOLDER).posted == 0


def test_a_refund_after_a_rejection_moves_nothing():
    plan = _plan(VelocityRules())
    plan.earn(bought(100, order="o1"))
    plan.earnings["partner:skymall:o1"].holder_account = ISSUER  # what a rejection leaves
    plan.reverse(Reverse(uuid.uuid4(), "partner:skymall:o1", 10_000, "CNY", T0, "partner_refund"))
    assert plan.book.account(HOLDER).posted == 100  # the member's points of the credit are untouched
    assert len(plan.book.changes().transfers) == 1
