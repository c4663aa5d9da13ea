"""The chaos checker's accounting: a lost, a doubled, a wrong and a ghost request are each caught; no processes."""

from __future__ import annotations

import uuid

import pytest

from tools.chaos.api import Answer
from tools.chaos.check import Proof, still_pending, stock_problems, tally
from tools.chaos.evidence import Earning, Evidence, Gift, Grant, Order, Stock
from tools.chaos.load import Kind, Ledger, Outcome, Request, Verdict, verdict
from tools.chaos.watch import StallMeter

ADA, BO = uuid.uuid4(), uuid.uuid4()


def purchase(n: int, outcome: Outcome = Outcome.ACCEPTED, points: int = 120) -> Request:
    item = {"purchase_id": f"p-{n}", "amount_minor": points * 100}
    answer = {"event_id": f"e-{n}", "points": points} if outcome is Outcome.ACCEPTED else {"detail": "refused"}
    status = 202 if outcome is Outcome.ACCEPTED else 422
    return Request(Kind.PURCHASE, f"p-{n}", {"partner_id": "mall", "item": item}, outcome=outcome, status=status,
                   answer=answer)  # fmt: skip


def earning(n: int, points: int = 120, transfers: int = 1) -> tuple[str, Earning]:
    return f"partner:mall:p-{n}", Earning(f"e-{n}", points, 0, transfers, points * transfers)


def gift(gift_id: str, amount: int = 30) -> Request:
    body = {"gift_id": gift_id, "to_member_id": str(BO), "amount": amount}
    return Request(Kind.GIFT, gift_id, {"sender": ADA, "body": body}, outcome=Outcome.ACCEPTED, status=201)


def ledger_of(*requests: Request) -> Ledger:
    ledger = Ledger()
    for request in requests:
        ledger.add(request)
    return ledger


def test_every_request_applied_once_as_answered_passes():
    ledger = ledger_of(purchase(1), purchase(2), purchase(3, Outcome.REFUSED), gift("g-1"))
    evidence = Evidence(
        earnings=dict([earning(1), earning(2)]), gifts={"g-1": Gift(str(ADA), str(BO), 30)}, gift_moved={"g-1": 30}
    )

    tallies = tally(ledger, evidence)

    purchases = tallies[Kind.PURCHASE]
    assert (purchases.accepted, purchases.applied, purchases.refused) == (2, 2, 1)
    assert tallies[Kind.GIFT].applied == 1
    assert Proof(tallies).failures() == []


def test_an_accepted_purchase_the_ledger_never_applied_is_lost_and_fails_the_run():
    ledger = ledger_of(purchase(1), purchase(2))

    tallies = tally(ledger, Evidence(earnings=dict([earning(1)])))

    assert tallies[Kind.PURCHASE].lost == 1
    assert tallies[Kind.PURCHASE].problems == ["purchase p-2 was accepted (202) but never applied"]
    assert Proof(tallies).failures() == ["1 purchase request(s) accepted but never applied"]


def test_a_purchase_credited_twice_is_doubled_and_fails_the_run():
    tallies = tally(ledger_of(purchase(1)), Evidence(earnings=dict([earning(1, transfers=2)])))

    assert (tallies[Kind.PURCHASE].doubled, tallies[Kind.PURCHASE].applied) == (1, 0)
    assert Proof(tallies).failures() == ["1 purchase request(s) applied more than once"]


def test_a_gift_that_moved_its_points_twice_is_doubled():
    evidence = Evidence(gifts={"g-1": Gift(str(ADA), str(BO), 30)}, gift_moved={"g-1": 60})

    assert tally(ledger_of(gift("g-1")), evidence)[Kind.GIFT].doubled == 1


def test_a_purchase_earning_other_points_than_answered_is_wrong():
    tallies = tally(ledger_of(purchase(1, points=120)), Evidence(earnings=dict([earning(1, points=119)])))

    assert tallies[Kind.PURCHASE].wrong == 1
    assert "earned 119 points, the answer said 120" in tallies[Kind.PURCHASE].problems[0]


def test_a_refused_purchase_that_was_applied_anyway_is_a_ghost():
    tallies = tally(ledger_of(purchase(1, Outcome.REFUSED)), Evidence(earnings=dict([earning(1)])))

    assert tallies[Kind.PURCHASE].ghosts == 1
    assert Proof(tallies).failures() == ["1 purchase request(s) refused, yet applied"]


def test_a_request_that_never_got_a_definite_answer_fails_the_run():
    tallies = tally(ledger_of(purchase(1, Outcome.UNANSWERED)), Evidence())

    assert tallies[Kind.PURCHASE].unanswered == 1
    assert Proof(tallies).failures() == ["1 purchase request(s) never got a definite answer"]


def order(key: str, state: str, hold: str | None, *, outcome: Outcome = Outcome.ACCEPTED) -> tuple[Request, Order]:
    body = {"partner_id": "mall", "offer_id": "voucher-1", "idempotency_key": key}
    request = Request(Kind.ORDER, key, {"member": ADA, "body": body}, outcome=outcome, status=202,
                      answer={"order_id": f"order-{key}"})  # fmt: skip
    return request, Order(f"order-{key}", state, "mall", "voucher-1", 1, 150, hold, 150 if hold else None)


def test_orders_must_end_with_points_captured_only_when_fulfilled():
    cases = {
        "fine-1": order("fine-1", "fulfilled", "posted"),
        "fine-2": order("fine-2", "cancelled", "voided"),
        "unpaid": order("unpaid", "fulfilled", "voided"),
        "taken": order("taken", "cancelled", "posted"),
        "stuck": order("stuck", "awaiting_hold", "pending"),
    }
    ledger = ledger_of(*(request for request, _ in cases.values()))
    evidence = Evidence(orders={(str(ADA), key): stored for key, (_, stored) in cases.items()})

    orders = tally(ledger, evidence)[Kind.ORDER]

    assert (orders.applied, orders.wrong) == (2, 3)
    assert any("fulfilled but its hold is voided" in p for p in orders.problems)
    assert any("cancelled but its 150 points were captured" in p for p in orders.problems)
    assert still_pending(ledger, evidence) == ["order stuck"]


def test_stock_must_match_the_fulfilled_orders():
    _, sold = order("a", "fulfilled", "posted")
    evidence = Evidence(orders={("m", "a"): sold}, stock={("mall", "voucher-1"): Stock(stock=10, reserved=1, sold=2)})

    assert stock_problems(evidence) == [
        "mall/voucher-1: 1 units still reserved",
        "mall/voucher-1: 2 units sold, 1 in fulfilled orders",
    ]


def test_a_claim_granted_twice_is_doubled():
    request = Request(Kind.CLAIM, "c-1", {"member": ADA}, outcome=Outcome.ACCEPTED, status=201, answer={"points": 50})

    assert tally(ledger_of(request), Evidence(grants={(str(ADA), "c-1"): Grant(2, 100)}))[Kind.CLAIM].doubled == 1


@pytest.mark.parametrize(
    ("kind", "status", "expected"),
    [
        (Kind.PURCHASE, 202, Verdict.ACCEPTED),
        (Kind.PURCHASE, 503, Verdict.RETRY),
        (Kind.PURCHASE, 500, Verdict.SERVER_ERROR),
        (Kind.PURCHASE, 409, Verdict.REFUSED),
        (Kind.GIFT, 201, Verdict.ACCEPTED),
        (Kind.ORDER, 200, Verdict.ACCEPTED),
        (Kind.ORDER, 429, Verdict.RETRY),
    ],
)
def test_answers_are_judged_as_a_partner_or_an_app_would(kind: Kind, status: int, expected: Verdict):
    assert verdict(kind, status) is expected


def test_a_500_is_recorded_as_a_finding_and_the_request_sent_again():
    ledger = Ledger()
    request = ledger.add(purchase(1, Outcome.PENDING))

    assert ledger.settle(request, Answer(500, {"detail": "boom"}), at=1.0) is False
    assert request.outcome is Outcome.PENDING
    assert ledger.server_errors == ['500 on purchase p-1: "boom"']
    assert Proof({}, server_errors=ledger.server_errors).failures() == ["1 server errors (500)"]


def test_the_stall_meter_measures_waiting_without_progress_and_counts_an_unreadable_ledger_as_none():
    meter = StallMeter()
    meter.sample(0.0, total=5, done=5)
    meter.sample(1.0, total=8, done=5)  # three wait from here
    meter.sample(2.0, total=9, done=None)  # the database does not answer
    meter.sample(4.5, total=9, done=5)
    meter.sample(5.0, total=9, done=9)  # caught up
    meter.sample(6.0, total=10, done=9)

    assert (meter.longest.seconds, meter.longest.started) == (3.5, 1.0)
