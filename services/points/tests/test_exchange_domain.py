"""Points exchange rules (domain/exchange.py): rates by date, rounding down, minimum, step, daily limit, status."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from points.domain import holds as two_phase
from points.domain.exchange import (
    DatedRate,
    Decision,
    ExchangeProgramme,
    ExchangeRefusedError,
    ExchangeStatus,
    convert_in,
    quote,
    rate_at,
    settle,
    status_of,
)
from points.domain.holds import Hold, HoldStatus
from points.domain.ledger import (
    CARD_POINTS_EXCHANGE,
    Account,
    AccountKind,
    Book,
    Lot,
    kind_of,
    member_account,
    partner_redeemed_account,
)

T0 = datetime(2026, 11, 1, tzinfo=UTC)
RATES = (DatedRate(T0, Decimal("0.25")), DatedRate(T0 + timedelta(days=10), Decimal("0.3")))


def programme(**changes: object) -> ExchangeProgramme:
    terms: dict[str, object] = {
        "partner_id": "skyair", "units_name": "miles", "min_points": 500, "step_points": 100,
        "daily_limit_points": 2000, "rates": (DatedRate(T0, Decimal("0.8")),),
    }  # fmt: skip
    return ExchangeProgramme(**{**terms, **changes})  # type: ignore[arg-type]


def test_the_rate_in_force_is_the_latest_version_started_at_that_moment() -> None:
    assert rate_at(RATES, T0 - timedelta(seconds=1)) is None
    assert rate_at(RATES, T0) == RATES[0]
    assert rate_at(RATES, T0 + timedelta(days=10) - timedelta(microseconds=1)) == RATES[0]
    assert rate_at(reversed(RATES), T0 + timedelta(days=10)) == RATES[1]


def test_card_points_convert_at_the_rate_of_their_moment_rounded_down_with_the_remainder_stated() -> None:
    early = convert_in(1003, RATES, T0 + timedelta(days=1))
    assert (early.points, early.remainder, early.rate.rate) == (250, Decimal("0.75"), Decimal("0.25"))
    late = convert_in(1003, RATES, T0 + timedelta(days=11))
    assert (late.points, late.remainder) == (300, Decimal("0.9"))
    assert convert_in(4, RATES, T0).remainder == 0


@pytest.mark.parametrize(
    ("card_points", "at", "reason"),
    [(1000, T0 - timedelta(days=1), "no_rate"), (3, T0, "below_one_point"), (0, T0, "not_positive")],
)
def test_a_conversion_without_a_rate_or_worth_under_a_point_is_refused(
    card_points: int, at: datetime, reason: str
) -> None:
    with pytest.raises(ExchangeRefusedError) as refused:
        convert_in(card_points, RATES, at)
    assert refused.value.reason == reason


def test_an_exchange_is_quoted_in_whole_units_rounded_down() -> None:
    q = quote(programme(rates=(DatedRate(T0, Decimal("0.333")),)), 700, T0, exchanged_today=0)
    assert (q.points, q.units, q.rate.rate) == (700, 233, Decimal("0.333"))


@pytest.mark.parametrize(
    ("points", "today", "reason"),
    [
        (400, 0, "below_minimum"),
        (550, 0, "not_a_step"),
        (1100, 1000, "daily_limit"),
        (600, 1500, "daily_limit"),
    ],
)
def test_minimum_step_and_daily_limit_refuse_with_their_reason(points: int, today: int, reason: str) -> None:
    with pytest.raises(ExchangeRefusedError) as refused:
        quote(programme(), points, T0, exchanged_today=today)
    assert refused.value.reason == reason


def test_the_daily_limit_may_be_reached_exactly() -> None:
    assert quote(programme(), 1000, T0, exchanged_today=1000).points == 1000


def test_no_rate_yet_or_a_closed_programme_refuses() -> None:
    with pytest.raises(ExchangeRefusedError, match="no exchange rate"):
        quote(programme(), 500, T0 - timedelta(seconds=1), exchanged_today=0)
    with pytest.raises(ExchangeRefusedError, match="closed"):
        quote(programme(active=False), 500, T0, exchanged_today=0)


def test_a_programme_needs_a_minimum_within_its_daily_limit_and_a_positive_step() -> None:
    with pytest.raises(ExchangeRefusedError):
        programme(min_points=3000)
    with pytest.raises(ExchangeRefusedError):
        programme(step_points=0)


def test_status_follows_the_hold_and_a_decision_settles_only_a_pending_exchange() -> None:
    assert status_of("pending", None) is ExchangeStatus.PENDING
    assert status_of("posted", None) is ExchangeStatus.CAPTURED
    assert status_of("voided", "expired") is ExchangeStatus.EXPIRED
    assert status_of("voided", "refused_by_partner") is ExchangeStatus.REFUSED
    assert settle(ExchangeStatus.PENDING, Decision.CONFIRM) is ExchangeStatus.CAPTURED
    assert settle(ExchangeStatus.PENDING, Decision.REFUSE) is ExchangeStatus.REFUSED
    for decided in (ExchangeStatus.CAPTURED, ExchangeStatus.REFUSED, ExchangeStatus.EXPIRED):
        assert settle(decided, Decision.CONFIRM) is None
        assert settle(decided, Decision.REFUSE) is None


def test_the_card_points_issuer_is_an_account_of_its_own_kind() -> None:
    assert kind_of(CARD_POINTS_EXCHANGE) is AccountKind.CARD_EXCHANGE
    assert not AccountKind.CARD_EXCHANGE.holds_lots
    assert not AccountKind.CARD_EXCHANGE.must_not_overdraw


def test_an_exchange_hold_captures_with_its_own_reason_and_takes_lots() -> None:
    member, redeemed = member_account(uuid.UUID(int=1)), partner_redeemed_account("skyair")
    lot = Lot(uuid.uuid4(), member, 800, 800, T0, T0 + timedelta(days=700))
    book = Book([Account(member, AccountKind.MEMBER, credits_posted=800),
                 Account(redeemed, AccountKind.PARTNER_REDEEMED)], [lot])  # fmt: skip
    book.mark_lots_loaded([member])
    hold = Hold(uuid.uuid4(), uuid.UUID(int=1), uuid.uuid4(), member, redeemed, 600, T0 + timedelta(days=3))
    assert two_phase.place(book, hold)
    assert book.account(member).available == 200
    made = two_phase.capture(book, hold, T0, uuid.uuid4(), reason="exchange_out", memo={"exchange_id": "x"})
    assert (made.reason, made.memo, made.amount) == ("exchange_out", {"exchange_id": "x"}, 600)
    assert hold.status is HoldStatus.POSTED
    assert book.account(member).posted == 200
    assert lot.remaining == 200
