"""Adjustments' rules, without a database: the threshold, four eyes, lots, debits beyond the balance."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from points.domain import adjustments as rules
from points.domain.adjustments import Direction, Reason, Request, Status
from points.domain.ledger import ADJUSTMENTS, Account, AccountKind, Book, Lot, kind_of, member_account, transfer_id

T0 = datetime(2026, 3, 1, 9, tzinfo=UTC)
VALID = timedelta(days=730)
MEMBER = uuid.UUID("00000000-0000-4000-8000-0000000000a1")
ALICE = member_account(MEMBER)


def ask(points: int, direction: Direction = Direction.CREDIT, note: str = "lost purchase, receipt checked") -> Request:
    return Request(uuid.uuid4(), MEMBER, direction, points, Reason.SERVICE_RECOVERY, note)


def book(*lots: tuple[int, int]) -> Book:
    """A book with the member holding these lots (remaining, expires in days) and the adjustments account."""
    held = [Lot(uuid.uuid4(), ALICE, n, n, T0 - timedelta(days=30), T0 + timedelta(days=d)) for n, d in lots]
    total = sum(n for n, _ in lots)
    accounts = [Account(ALICE, AccountKind.MEMBER, credits_posted=total), Account(ADJUSTMENTS, AccountKind.ADJUSTMENT)]
    made = Book(accounts, held)
    made.mark_lots_loaded([ALICE])
    return made


def test_the_adjustments_account_is_its_own_kind_that_may_go_below_zero_and_holds_no_lots():
    assert kind_of(ADJUSTMENTS) is AccountKind.ADJUSTMENT
    assert not AccountKind.ADJUSTMENT.holds_lots
    assert not AccountKind.ADJUSTMENT.must_not_overdraw
    assert not AccountKind.ADJUSTMENT.balance_decides


def test_at_the_threshold_it_posts_at_once_and_one_point_above_it_waits_for_approval():
    assert not rules.open_request(ask(500), "ops-a", T0, 500).needs_approval
    above = rules.open_request(ask(501), "ops-a", T0, 500)
    assert above.needs_approval
    assert above.status is Status.PENDING
    with pytest.raises(rules.SameOpsUserError):
        rules.post(book(), above, T0, VALID)


def test_a_credit_is_a_new_lot_with_the_programmes_validity_from_the_adjustments_account():
    ledger = book()
    adjustment = rules.open_request(ask(300), "ops-a", T0, 1_000)
    posted, made = rules.post(ledger, adjustment, T0, VALID)
    assert (made.debit_account, made.credit_account, made.amount) == (ADJUSTMENTS, ALICE, 300)
    assert made.transfer_id == transfer_id(adjustment.adjustment_id, "credit")
    assert [(lot.remaining, lot.expires_at, lot.issuer) for lot in ledger.live_lots(ALICE)] == [
        (300, T0 + VALID, ADJUSTMENTS)
    ]
    assert ledger.account(ADJUSTMENTS).posted == -300
    assert (posted.status, posted.transfer_id, posted.signed_points) == (Status.POSTED, made.transfer_id, 300)


def test_a_debit_takes_the_lots_that_expire_first_back_to_the_adjustments_account():
    ledger = book((100, 300), (50, 10), (80, 60))
    rules.post(ledger, rules.open_request(ask(120, Direction.DEBIT), "ops-a", T0, 1_000), T0, VALID)
    assert sorted(lot.remaining for lot in ledger.live_lots(ALICE)) == [10, 100]
    assert ledger.account(ADJUSTMENTS).posted == 120


def test_a_debit_beyond_the_available_points_is_refused_with_the_figure_and_moves_nothing():
    ledger = book((70, 30))
    adjustment = rules.open_request(ask(71, Direction.DEBIT), "ops-a", T0, 1_000)
    with pytest.raises(rules.NotEnoughPointsError, match="has 70 points available") as refused:
        rules.check_debit(adjustment, 70)
    assert refused.value.available == 70
    with pytest.raises(rules.NotEnoughPointsError):
        rules.post(ledger, adjustment, T0, VALID)
    assert ledger.changes().transfers == []


def test_four_eyes_the_requester_can_neither_approve_nor_reject_and_a_decision_is_made_once():
    pending = rules.open_request(ask(5_000), "ops-a", T0, 1_000)
    with pytest.raises(rules.SameOpsUserError, match="second ops user"):
        rules.approve(pending, "ops-a", T0)
    with pytest.raises(rules.SameOpsUserError):
        rules.reject(pending, "ops-a", T0)
    approved = rules.approve(pending, "ops-b", T0, "receipt seen")
    assert approved.summary()["status"] == "approved"
    posted, _ = rules.post(book(), approved, T0, VALID)
    assert (posted.status, posted.decided_by) == (Status.POSTED, "ops-b")
    with pytest.raises(rules.AlreadyDecidedError, match="posted already"):
        rules.approve(posted, "ops-c", T0)
    with pytest.raises(rules.AlreadyDecidedError):
        rules.reject(posted, "ops-c", T0)
    rejected = rules.reject(pending, "ops-c", T0)
    with pytest.raises(rules.AlreadyDecidedError):
        rules.post(book(), rejected, T0, VALID)


@pytest.mark.parametrize(
    ("points", "note", "refusal"),
    [
        (0, "x", "1 to"),
        (rules.MAX_POINTS + 1, "x", "1 to"),
        (10, "   ", "note is required"),
        (10, "x" * 1_001, "at most"),
    ],
)
def test_a_request_without_a_note_or_with_points_out_of_range_is_refused(points, note, refusal):
    with pytest.raises(rules.AdjustmentRuleError, match=refusal):
        rules.open_request(ask(points, note=note), "ops-a", T0, 1_000)


def test_a_retry_is_the_same_request_and_any_other_detail_or_requester_is_not():
    first = ask(10)
    assert first.fingerprint("ops-a") == replace(first).fingerprint("ops-a")
    assert first.fingerprint("ops-a") != replace(first, points=11).fingerprint("ops-a")
    assert first.fingerprint("ops-a") != first.fingerprint("ops-b")
