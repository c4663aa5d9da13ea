"""The ledger's rules, without a database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from points.domain.card_rates import ANY_MCC, CardRate, CardRates, points_for
from points.domain.earning import Earn, Earning, EarnPlan, Outcome, Reverse, points_to_reverse
from points.domain.ledger import (
    BREAKAGE,
    Account,
    AccountKind,
    Book,
    InsufficientPointsError,
    LedgerError,
    Lot,
    member_account,
    partner_issued_account,
    receivable_account,
    transfer_id,
    unclaimed_account,
)
from points.domain.lifecycle import claim, expire

T0 = datetime(2026, 1, 10, 12, tzinfo=UTC)
YEAR = timedelta(days=365)
MEMBER = uuid.UUID("00000000-0000-4000-8000-000000000001")
ALICE = member_account(MEMBER)
SHOP = partner_issued_account("skymall")


def account(account_id: str, kind: AccountKind, credits: int = 0, debits: int = 0) -> Account:
    return Account(account_id, kind, debits_posted=debits, credits_posted=credits)


def lot(amount: int, expires_in_days: int, remaining: int | None = None, account_id: str = ALICE) -> Lot:
    return Lot(
        uuid.uuid4(),
        account_id,
        amount,
        amount if remaining is None else remaining,
        T0,
        T0 + timedelta(days=expires_in_days),
    )


def book_with(*lots: Lot, extra: tuple[Account, ...] = ()) -> Book:
    balance = sum(x.remaining for x in lots)
    book = Book(
        [account(ALICE, AccountKind.MEMBER, credits=balance), account(SHOP, AccountKind.PARTNER_ISSUED), *extra], lots
    )
    book.mark_lots_loaded([ALICE])
    return book


def plan(book: Book, earnings: dict[str, Earning] | None = None, holder: str = ALICE) -> EarnPlan:
    return EarnPlan(book, {"partner:skymall:c-1": holder}, earnings or {}, {}, lot_validity=2 * YEAR)


def purchase(points: int, key: str = "partner:skymall:o-1", amount_minor: int = 10_000) -> Earn:
    return Earn(uuid.uuid4(), key, "partner:skymall:c-1", SHOP, amount_minor, "CNY", points, T0, "partner_purchase")


def refund(amount_minor: int, key: str = "partner:skymall:o-1") -> Reverse:
    return Reverse(uuid.uuid4(), key, amount_minor, "CNY", T0 + timedelta(days=3), "partner_refund")


def test_a_transfer_balances_and_creates_a_lot_that_expires():
    book = book_with()
    made = book.transfer(
        transfer_id=transfer_id("e-1", "earn"), debit=SHOP, credit=ALICE, amount=250, reason="partner_purchase",
        cause_event_id=uuid.uuid4(), occurred_at=T0, lot_expires_at=T0 + 2 * YEAR,
    )  # fmt: skip
    assert book.account(ALICE).posted == 250
    assert book.account(SHOP).posted == -250
    [new_lot] = book.changes().new_lots
    assert (new_lot.lot_id, new_lot.remaining, new_lot.expires_at) == (made.transfer_id, 250, T0 + 2 * YEAR)
    assert book.changes().deltas == {SHOP: (250, 0, 0, 0), ALICE: (0, 250, 0, 0)}


def test_transfer_ids_derive_from_their_cause():
    assert transfer_id("e-1", "earn") == transfer_id("e-1", "earn")
    assert transfer_id("e-1", "earn") != transfer_id("e-1", "reverse")


def test_a_member_cannot_overdraw():
    book = book_with(lot(100, 30))
    with pytest.raises(InsufficientPointsError, match="100 points available, 101 needed"):
        book.transfer(
            transfer_id=uuid.uuid4(), debit=ALICE, credit=SHOP, amount=101, reason="x",
            cause_event_id=uuid.uuid4(), occurred_at=T0,
        )  # fmt: skip
    assert book.account(ALICE).posted == 100


def test_debits_take_the_lots_that_expire_first():
    late, soon, middle = lot(100, 300), lot(100, 10), lot(100, 100)
    book = book_with(late, soon, middle)
    book.transfer(
        transfer_id=uuid.uuid4(), debit=ALICE, credit=SHOP, amount=150, reason="x",
        cause_event_id=uuid.uuid4(), occurred_at=T0,
    )  # fmt: skip
    assert (soon.remaining, middle.remaining, late.remaining) == (0, 50, 100)
    assert book.changes().lot_remaining == {soon.lot_id: 0, middle.lot_id: 50}


def test_a_zero_or_negative_transfer_is_refused():
    book = book_with()
    with pytest.raises(LedgerError, match="positive amount"):
        book.transfer(
            transfer_id=uuid.uuid4(), debit=SHOP, credit=ALICE, amount=0, reason="x",
            cause_event_id=uuid.uuid4(), occurred_at=T0, lot_expires_at=T0,
        )  # fmt: skip


@pytest.mark.parametrize(
    ("points", "amount", "refunds", "expected"),
    [
        (100, 10_000, [10_000], [100]),
        (100, 10_000, [5_000], [50]),
        (101, 10_000, [5_000, 5_000], [50, 51]),  # parts add up to the whole
        (100, 3, [1, 1, 1], [33, 33, 34]),
        (100, 10_000, [8_000, 8_000], [80, 20]),  # refunds beyond the price reverse no more than it earned
        (7, 10_000, [1], [0]),
    ],
)
def test_refunds_reverse_in_proportion_and_add_up_exactly(points, amount, refunds, expected):
    earning = Earning("k", uuid.uuid4(), "i", SHOP, amount, "CNY", points)
    got = []
    for part in refunds:
        earning.refunded_minor, reversed_now = points_to_reverse(earning, part)
        earning.points_reversed += reversed_now
        got.append(reversed_now)
    assert got == expected


def test_a_partial_refund_takes_the_purchase_own_lot_first():
    older = lot(500, 10)
    book = book_with(older)
    work = plan(book)
    assert work.earn(purchase(200)) is Outcome.APPLIED
    work.reverse(refund(5_000))
    own_lot = transfer_id(work.earnings["partner:skymall:o-1"].event_id, "earn")
    [new_lot] = book.changes().new_lots
    assert new_lot.lot_id == own_lot
    assert new_lot.remaining == 100
    assert older.remaining == 500
    assert book.account(ALICE).posted == 600


def test_refund_after_points_spent_creates_clawback_repaid_by_later_earnings():
    receivable = account(receivable_account(MEMBER), AccountKind.RECEIVABLE)
    book = book_with(lot(30, 10), extra=(receivable,))
    earnings = {
        "partner:skymall:o-1": Earning(
            "partner:skymall:o-1", uuid.uuid4(), "partner:skymall:c-1", SHOP, 10_000, "CNY", 100
        )
    }
    work = plan(book, earnings)

    work.reverse(refund(10_000))

    assert book.account(ALICE).posted == 0, "the member keeps no points it was refunded for"
    assert book.account(receivable.account_id).posted == -70, "and owes the 70 it had already spent"
    assert book.account(SHOP).posted == 100, "the partner gets back every point it issued"

    work.earn(purchase(50, key="partner:skymall:o-2"))
    assert book.account(receivable.account_id).posted == -20
    assert book.account(ALICE).posted == 0
    work.earn(purchase(50, key="partner:skymall:o-3"))
    assert book.account(receivable.account_id).posted == 0
    assert book.account(ALICE).posted == 30
    assert sum(d - c for d, c, _, _ in book.changes().deltas.values()) == 0


def test_refund_of_unclaimed_points_that_expired_comes_back_from_breakage():
    identifier = "partner:skymall:c-1"
    holder = unclaimed_account(identifier)
    book = Book(
        [
            account(holder, AccountKind.UNCLAIMED),
            account(SHOP, AccountKind.PARTNER_ISSUED),
            account(BREAKAGE, AccountKind.BREAKAGE, credits=100),
        ]
    )
    book.mark_lots_loaded([holder])
    earnings = {
        "partner:skymall:o-1": Earning("partner:skymall:o-1", uuid.uuid4(), identifier, SHOP, 10_000, "CNY", 100)
    }
    plan(book, earnings, holder=holder).reverse(refund(10_000))
    assert book.account(BREAKAGE).posted == 0
    assert book.account(SHOP).posted == 100


def test_a_refund_before_its_purchase_waits_and_applies_with_it():
    book = book_with()
    work = plan(book)
    early = refund(2_500)
    assert work.reverse(early) is Outcome.PARKED
    assert book.changes().transfers == []
    work.earn(purchase(100))
    assert work.unparked == [early.event_id]
    assert book.account(ALICE).posted == 75


def test_the_same_purchase_reported_twice_earns_once():
    work = plan(book_with())
    assert work.earn(purchase(100)) is Outcome.APPLIED
    assert work.earn(purchase(100)) is Outcome.DUPLICATE_PURCHASE
    assert work.book.account(ALICE).posted == 100


def test_claim_moves_each_lot_with_its_dates_to_the_member():
    identifier = "card:tok_abcdefgh"
    holder = unclaimed_account(identifier)
    lots = [lot(40, 20, account_id=holder), lot(60, 200, account_id=holder)]
    book = Book([account(holder, AccountKind.UNCLAIMED, credits=100), account(ALICE, AccountKind.MEMBER)], lots)
    book.mark_lots_loaded([holder, ALICE])
    moved = claim(book, identifier, ALICE, T0 + YEAR)
    assert [t.amount for t in moved] == [40, 60]
    assert book.account(ALICE).posted == 100
    assert book.account(holder).posted == 0
    assert sorted((x.amount, x.expires_at, x.earned_at) for x in book.changes().new_lots) == sorted(
        (x.amount, x.expires_at, x.earned_at) for x in lots
    )
    assert (
        claim(Book([account(holder, AccountKind.UNCLAIMED), account(ALICE, AccountKind.MEMBER)]), identifier, ALICE, T0)
        == []
    )


def test_expiry_moves_only_what_is_due_and_not_reserved_to_breakage():
    due, later = lot(100, 5), lot(100, 500)
    book = book_with(due, later, extra=(account(BREAKAGE, AccountKind.BREAKAGE),))
    book.account(ALICE).debits_pending = 130  # a hold reserves 130 of the 200
    moved = expire(book, [ALICE], as_of=T0 + timedelta(days=6))
    assert [t.amount for t in moved] == [70]
    assert (due.remaining, later.remaining) == (30, 100)
    again = expire(book, [ALICE], as_of=T0 + timedelta(days=6))
    assert again == []


def test_card_rates_follow_mcc_and_time():
    rates = CardRates(
        [
            CardRate(ANY_MCC, T0 - YEAR, Decimal(1)),
            CardRate("5411", T0 - YEAR, Decimal(2)),
            CardRate("5411", T0 + YEAR, Decimal(3)),
        ]
    )
    assert rates.rate_for("5411", T0) == Decimal(2)
    assert rates.rate_for("5411", T0 + 2 * YEAR) == Decimal(3)
    assert rates.rate_for("4511", T0) == Decimal(1)
    assert CardRates([]).rate_for("4511", T0) == Decimal(0)


@pytest.mark.parametrize(
    ("amount", "currency", "rate", "points"),
    [
        (2_580, "CNY", Decimal(2), 51),
        (99, "CNY", Decimal(1), 0),
        (1_500, "JPY", Decimal("0.1"), 150),
        (1_999, "USD", Decimal("1.5"), 29),
    ],
)
def test_card_points_round_down(amount, currency, rate, points):
    assert points_for(amount, currency, rate) == points
