"""Liability without a database: statement arithmetic, classification, rounding, rates, months and the forecast."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from points.domain.liability import (
    ALL_ACTIVITIES,
    HOLDER_KINDS,
    Flow,
    ForecastRow,
    FutureMonthError,
    InvalidMonthError,
    InvalidRangeError,
    IssuePrice,
    Month,
    Movements,
    PriceBook,
    PriceRefusedError,
    bucket_of,
    by_issuer,
    check_ops_price,
    classify,
    closing_of,
    forecast_bounds,
    forecast_of,
    lines_of,
    month_range,
    rates_of,
    statement_of,
    value_day,
    value_of,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")
SKY = "partner:skymall:issued"
CARD = "card:issued"


def price(issuer: str, price_minor: str, day: date = date(2026, 1, 1), currency: str = "CNY") -> IssuePrice:
    return IssuePrice(issuer, day, currency, Decimal(price_minor))


def test_every_lot_holding_kind_counts_as_outstanding() -> None:
    assert {"member", "unclaimed", "packet"} <= set(HOLDER_KINDS)


@pytest.mark.parametrize(
    ("kind", "points", "expected"),
    [
        ("partner_issued", 100, Movements(issued=100)),
        ("partner_issued", -30, Movements(issued=-30)),  # a refund gives points back to their issuer
        ("activity_budget", 5, Movements(issued=5)),
        ("migration", 7, Movements(issued=7)),
        ("partner_redeemed", -40, Movements(redeemed=40, redeemed_out=40)),
        ("breakage", -9, Movements(expired=9, expired_out=9)),
        ("breakage", 3, Movements(expired=-3)),  # a refund after expiry takes points back out of breakage
        ("member", -25, Movements(moved=-25)),
        ("packet", 25, Movements(moved=25)),
        ("receivable", -4, Movements(other=-4)),  # a clawback repayment
        ("adjustment", 6, Movements(other=6)),
    ],
)
def test_flows_are_classified_by_the_account_on_the_other_side(kind: str, points: int, expected: Movements) -> None:
    assert classify(Flow(SKY, False, kind, points)) == expected


def test_statement_closing_is_opening_plus_issued_minus_redeemed_minus_expired_plus_moved_and_other() -> None:
    opening = {(SKY, False): 1_000, (CARD, False): 50}
    flows = [
        Flow(SKY, False, "partner_issued", 300),
        Flow(SKY, False, "partner_redeemed", -120),
        Flow(SKY, False, "breakage", -80),
        Flow(SKY, False, "member", -60),  # a gift leaves the sender...
        Flow(SKY, True, "member", 60),  # ...and reaches its recipient, same issuer
        Flow(CARD, False, "receivable", -5),
    ]
    statement = statement_of(Month(2026, 3), datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC),
                             opening, flows, ledger_closing=1_145, closed=True)  # fmt: skip
    closing = closing_of(statement.lines)
    assert closing == {(SKY, False): 1_040, (SKY, True): 60, (CARD, False): 45}
    assert statement.closing_total == 1_145
    assert statement.difference == 0
    totals = statement.totals
    assert (totals.issued, totals.redeemed, totals.expired, totals.moved, totals.other) == (300, 120, 80, 0, -5)
    assert statement.opening_total + totals.net == statement.closing_total


def test_a_statement_that_does_not_match_the_ledger_shows_its_difference() -> None:
    statement = statement_of(Month(2026, 3), datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC),
                             {}, [Flow(SKY, False, "partner_issued", 10)], ledger_closing=9, closed=True)  # fmt: skip
    assert statement.difference == 1


def test_issuers_without_points_or_movements_have_no_line() -> None:
    lines = lines_of({(SKY, False): 0}, [Flow(CARD, False, "card_issued", 1)])
    assert [(line.issuer, line.closing) for line in lines] == [(CARD, 1)]


def test_issuer_lines_sum_gifts_apart_and_value_each_once_half_to_even() -> None:
    lines = lines_of({(SKY, False): 5, (SKY, True): 3}, [])
    prices = PriceBook([price(SKY, "0.5")])
    valued = by_issuer(lines, prices, date(2026, 3, 31))
    [line] = valued.lines
    assert (line.closing, line.received_as_gifts) == (8, 3)
    assert line.closing_value_minor == 4  # 8 x 0.5
    assert line.received_as_gifts_value_minor == 2  # 1.5 rounds half to even
    assert [(t.currency, t.value_minor) for t in valued.totals] == [("CNY", 4)]


@pytest.mark.parametrize(("points", "price_minor", "expected"), [(5, "0.5", 2), (7, "0.5", 4), (3, "0.3333", 1),
                                                                 (10**15, "0.0001", 10**11)])  # fmt: skip
def test_values_round_once_half_to_even(points: int, price_minor: str, expected: int) -> None:
    assert value_of(points, price(SKY, price_minor)) == expected


def test_unpriced_issuers_are_named_and_left_out_of_the_totals() -> None:
    lines = lines_of({(SKY, False): 10, (CARD, False): 4}, [])
    valued = by_issuer(lines, PriceBook([price(CARD, "1")]), date(2026, 3, 1))
    assert valued.unpriced == (SKY,)
    assert [(t.currency, t.value_minor) for t in valued.totals] == [("CNY", 4)]


def test_the_price_in_force_is_the_latest_version_not_after_the_day_and_activities_fall_back_to_all() -> None:
    book = PriceBook([price(SKY, "1", date(2026, 1, 1)), price(SKY, "2", date(2026, 3, 1)),
                      price(ALL_ACTIVITIES, "0.8", date(2026, 1, 1))])  # fmt: skip
    assert book.in_force(SKY, date(2025, 12, 31)) is None
    assert book.in_force(SKY, date(2026, 2, 28)).price_minor_per_point == Decimal("1")  # type: ignore[union-attr]
    assert book.in_force(SKY, date(2026, 3, 1)).price_minor_per_point == Decimal("2")  # type: ignore[union-attr]
    activity = "activity:0b8e6a1e-2f4e-4c1a-9d8b-1c2d3e4f5a6b:budget"
    assert book.in_force(activity, date(2026, 2, 1)).issuer == ALL_ACTIVITIES  # type: ignore[union-attr]


def test_ops_price_only_non_partner_issuers_from_today_on() -> None:
    today = date(2026, 3, 10)
    check_ops_price(price(CARD, "1.25", today), today)
    check_ops_price(price(ALL_ACTIVITIES, "1", today), today)
    with pytest.raises(PriceRefusedError, match="earn contract"):
        check_ops_price(price(SKY, "1", today), today)
    with pytest.raises(PriceRefusedError, match="not an issuer"):
        check_ops_price(price("=HYPERLINK()", "1", today), today)
    with pytest.raises(PriceRefusedError, match="past"):
        check_ops_price(price(CARD, "1", date(2026, 3, 9)), today)
    with pytest.raises(PriceRefusedError, match="4 decimals"):
        check_ops_price(price(CARD, "0.00001", today), today)


def test_rates_are_shares_of_what_left_members_in_the_month() -> None:
    statement = statement_of(Month(2026, 3), datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC), {},
                             [Flow(SKY, False, "partner_issued", 1000), Flow(SKY, False, "partner_redeemed", -200),
                              Flow(SKY, False, "breakage", -100), Flow(SKY, False, "breakage", 1)],
                             ledger_closing=701, closed=True)  # fmt: skip
    rates = rates_of(statement)
    assert (rates.redeemed, rates.expired, rates.issued) == (200, 100, 1000)
    assert rates.breakage_rate == Decimal("0.3333")
    assert rates.redemption_rate == Decimal("0.6667")


def test_a_month_where_nothing_left_has_no_rates() -> None:
    statement = statement_of(Month(2026, 3), datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC), {},
                             [Flow(SKY, False, "partner_issued", 10)], ledger_closing=10, closed=True)  # fmt: skip
    rates = rates_of(statement)
    assert rates.breakage_rate is None
    assert rates.redemption_rate is None


def test_months_start_at_local_midnight_of_the_programme_zone() -> None:
    assert Month(2026, 3).start(SHANGHAI) == datetime(2026, 2, 28, 16, tzinfo=UTC)
    assert Month(2026, 12).end(SHANGHAI) == datetime(2026, 12, 31, 16, tzinfo=UTC)
    # Daylight saving: New York's March starts at UTC-5, its April at UTC-4.
    assert Month(2026, 3).start(NEW_YORK) == datetime(2026, 3, 1, 5, tzinfo=UTC)
    assert Month(2026, 3).end(NEW_YORK) == datetime(2026, 4, 1, 4, tzinfo=UTC)
    assert Month.of(datetime(2026, 2, 28, 16, tzinfo=UTC), SHANGHAI) == Month(2026, 3)
    assert Month.of(datetime(2026, 2, 28, 15, 59, 59, tzinfo=UTC), SHANGHAI) == Month(2026, 2)
    assert Month(2026, 12).shifted(1) == Month(2027, 1)
    assert Month(2026, 1).shifted(-1) == Month(2025, 12)


@pytest.mark.parametrize("text", ["2026-13", "2026-1", "26-01", "2026-00", "abcd-ef", "2026-01.csv"])
def test_a_month_is_yyyy_mm(text: str) -> None:
    with pytest.raises(InvalidMonthError):
        Month.parse(text)


def test_a_month_is_valued_on_its_last_utc_day() -> None:
    assert value_day(datetime(2026, 4, 1, tzinfo=UTC)) == date(2026, 3, 31)
    assert value_day(datetime(2026, 3, 31, 16, tzinfo=UTC)) == date(2026, 3, 31)


def test_month_ranges_refuse_the_future_reversed_and_too_long() -> None:
    now = Month(2026, 3)
    assert month_range(Month(2026, 1), now, now) == [Month(2026, 1), Month(2026, 2), Month(2026, 3)]
    with pytest.raises(FutureMonthError):
        month_range(Month(2026, 1), Month(2026, 4), now)
    with pytest.raises(InvalidRangeError):
        month_range(Month(2026, 3), Month(2026, 1), now)
    with pytest.raises(InvalidRangeError, match="at most"):
        month_range(Month(2020, 1), now, now)


def test_forecast_buckets_follow_the_zone_month_boundaries() -> None:
    now = datetime(2026, 3, 15, tzinfo=UTC)
    first, bounds = forecast_bounds(now, SHANGHAI, 24)
    assert first == Month(2026, 3)
    assert len(bounds) == 24
    assert bucket_of(datetime(2026, 1, 1, tzinfo=UTC), bounds) == 0  # overdue: this month
    assert bucket_of(datetime(2026, 3, 31, 15, 59, tzinfo=UTC), bounds) == 0  # 23:59 on 31 March in Shanghai
    assert bucket_of(datetime(2026, 3, 31, 16, 0, tzinfo=UTC), bounds) == 1  # 00:00 on 1 April in Shanghai
    assert bucket_of(datetime(2028, 2, 29, 15, 59, tzinfo=UTC), bounds) == 23
    assert bucket_of(datetime(2028, 2, 29, 16, 0, tzinfo=UTC), bounds) == 24  # after the forecast: later


def test_forecast_of_sums_points_and_values_by_month() -> None:
    rows = [ForecastRow(SKY, 0, 10), ForecastRow(CARD, 0, 3), ForecastRow(SKY, 2, 5), ForecastRow(SKY, 24, 7),
            ForecastRow("unknown", 1, 2)]  # fmt: skip
    prices = PriceBook([price(SKY, "0.5"), price(CARD, "2", currency="USD")])
    found = forecast_of(rows, Month(2026, 3), 24, prices, date(2026, 3, 15))
    assert len(found.months) == 24
    assert found.later_points == 7
    march, april, may = found.months[:3]
    assert (march.month, march.points) == (Month(2026, 3), 13)
    assert [(v.currency, v.value_minor) for v in march.values] == [("CNY", 5), ("USD", 6)]
    assert (april.points, april.values) == (2, ())
    assert (may.points, [(v.currency, v.value_minor) for v in may.values]) == (5, [("CNY", 2)])  # 2.5 -> 2
    assert found.unpriced == ("unknown",)
