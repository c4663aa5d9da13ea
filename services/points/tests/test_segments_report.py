"""The arithmetic of activity reports: rates, averages, lift, incremental spend, the measured window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest

from points.domain.reports import (
    CurrencySpend,
    GroupSpend,
    VersionSpan,
    Window,
    measurement_window,
    response_rate,
    rounded,
    spend_by_currency,
)

T0 = datetime(2026, 5, 1, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.mark.parametrize(
    ("responded", "targeted", "rate"),
    [(2, 3, "0.6667"), (1, 3, "0.3333"), (1, 32, "0.0312"), (3, 32, "0.0938"), (5, 5, "1.0000"), (0, 0, "0.0000")],
)
def test_response_rate_has_four_places_rounded_half_to_even(responded, targeted, rate):
    assert str(response_rate(responded, targeted)) == rate


def test_rounding_is_exact_and_half_to_even():
    assert str(rounded(Fraction(1, 8), 2)) == "0.12"
    assert str(rounded(Fraction(3, 8), 2)) == "0.38"
    assert str(rounded(Fraction(-2, 3), 2)) == "-0.67"
    assert str(rounded(Fraction(10**15, 3), 2)) == "333333333333333.33"


def test_averages_count_every_member_of_the_group_even_those_who_spent_nothing():
    assert GroupSpend(members=3, total_minor=17_000).average_minor == Decimal("5666.67")
    assert GroupSpend(members=4, total_minor=0).average_minor == Decimal("0.00")
    assert GroupSpend(members=0, total_minor=0).average_minor is None


def test_lift_and_incremental_spend_compare_all_targeted_members_with_the_holdout():
    spend = CurrencySpend("CNY", GroupSpend(3, 17_000), GroupSpend(2, 7_000), GroupSpend(2, 17_000))

    assert str(spend.lift_per_member_minor) == "2166.67"  # 5666.666... - 3500
    assert spend.incremental_spend_minor == 6_500  # 17000 - 3 × 3500, from the exact lift


def test_incremental_spend_is_computed_from_the_exact_lift_not_the_rounded_one():
    spend = CurrencySpend("CNY", GroupSpend(300, 100), GroupSpend(7, 0), GroupSpend(0, 0))

    assert str(spend.lift_per_member_minor) == "0.33"
    assert spend.incremental_spend_minor == 100  # 0.33 × 300 would say 99


def test_a_negative_lift_is_reported_as_it_is():
    spend = CurrencySpend("USD", GroupSpend(2, 100), GroupSpend(1, 300), GroupSpend(1, 100))

    assert str(spend.lift_per_member_minor) == "-250.00"
    assert spend.incremental_spend_minor == -500


def test_without_a_holdout_or_targeted_member_there_is_no_lift():
    assert CurrencySpend("CNY", GroupSpend(3, 900), GroupSpend(0, 0), GroupSpend(1, 0)).lift_per_member_minor is None
    assert CurrencySpend("CNY", GroupSpend(0, 0), GroupSpend(2, 10), GroupSpend(0, 0)).incremental_spend_minor is None


def test_spend_rows_become_figures_sorted_by_currency():
    figures = spend_by_currency(3, 2, 1, [("USD", 999, 0, 0), ("CNY", 17_000, 7_000, 9_000)])

    assert [f.currency for f in figures] == ["CNY", "USD"]
    assert figures[0].responders == GroupSpend(1, 9_000)
    assert figures[1].holdout == GroupSpend(2, 0)


def span(state: str, effective: datetime, start: datetime | None = None, end: datetime | None = None) -> VersionSpan:
    return VersionSpan(state, effective, start, end)


def test_the_window_runs_from_the_first_active_start_to_the_last_active_end():
    versions = [
        span("draft", T0 - 9 * DAY),
        span("active", T0, T0, T0 + 7 * DAY),
        span("paused", T0 + 2 * DAY, T0, T0 + 7 * DAY),
        span("active", T0 + 3 * DAY, T0, T0 + 10 * DAY),
    ]

    assert measurement_window(versions, now=T0 + 30 * DAY) == Window(T0, T0 + 10 * DAY)


def test_a_running_activity_is_measured_until_now():
    versions = [span("active", T0, T0, T0 + 7 * DAY)]

    assert measurement_window(versions, now=T0 + 2 * DAY) == Window(T0, T0 + 2 * DAY)


def test_an_activity_ended_early_is_measured_until_it_ended():
    versions = [span("active", T0, T0, T0 + 7 * DAY), span("ended", T0 + 3 * DAY, T0, T0 + 3 * DAY)]

    assert measurement_window(versions, now=T0 + 30 * DAY) == Window(T0, T0 + 3 * DAY)


def test_an_active_version_without_a_window_counts_from_when_it_took_effect_until_now():
    assert measurement_window([span("active", T0)], now=T0 + DAY) == Window(T0, T0 + DAY)


def test_a_scheduled_activity_has_an_empty_window_and_a_draft_none():
    scheduled = [span("active", T0 + 5 * DAY, T0 + 5 * DAY, T0 + 9 * DAY)]

    assert measurement_window(scheduled, now=T0) == Window(T0 + 5 * DAY, T0 + 5 * DAY)
    assert measurement_window([span("draft", T0)], now=T0) is None
    assert measurement_window([], now=T0) is None
