"""Server-drawn bar charts: scales, empty and zero data, and coordinates that are never floats."""

from __future__ import annotations

import re
from dataclasses import fields
from decimal import Decimal

import pytest

from console.charts import Bar, BarChart, Layout, Series, axis_scale, bar_chart, coordinate

TWO_DECIMALS = re.compile(r"^[0-9]+\.[0-9]{2}$")


def plain(value: Decimal) -> str:
    return f"{value:f}"


def two_series(targeted: Decimal | int | None, holdout: Decimal | int | None) -> BarChart:
    return bar_chart(
        ["Spend per member"],
        [Series("Targeted", (targeted,), ("t",)), Series("Holdout", (holdout,), ("h",))],
        tick_label=plain,
    )


@pytest.mark.parametrize(
    ("largest", "step", "top"),
    [
        (Decimal("0.1234"), Decimal("0.05"), Decimal("0.15")),
        (Decimal(4520), Decimal(2000), Decimal(6000)),
        (Decimal(100), Decimal(25), Decimal(100)),
        (Decimal(1), Decimal("0.25"), Decimal(1)),
        (Decimal("7"), Decimal(2), Decimal(8)),
        (Decimal("1999.99"), Decimal(500), Decimal(2000)),
    ],
)
def test_the_axis_ends_at_a_round_top_at_or_above_the_largest_value(
    largest: Decimal, step: Decimal, top: Decimal
) -> None:
    assert axis_scale(largest, 4) == (step, top)
    assert top >= largest
    assert top / step <= 4


def test_tick_values_read_as_people_write_them() -> None:
    step, top = axis_scale(Decimal(4520), 4)
    assert (str(step), str(top)) == ("2000", "6000")


def test_bars_are_as_tall_as_their_share_of_the_axis() -> None:
    chart = two_series(Decimal(4000), Decimal(2000))  # axis 0..4000
    targeted, holdout = chart.bars
    plot = Layout().plot_height
    assert Decimal(targeted.height) == plot
    assert Decimal(holdout.height) == plot / 2
    assert Decimal(targeted.y) + Decimal(targeted.height) == Decimal(chart.baseline)
    assert Decimal(holdout.x) > Decimal(targeted.x)  # side by side, targeted first
    assert [t.label for t in chart.ticks] == ["0", "1000", "2000", "3000", "4000"]
    assert chart.ticks[-1].y == coordinate(Decimal(Layout().top))


def test_every_coordinate_is_a_string_with_two_decimals() -> None:
    chart = bar_chart(
        ["CNY", "HKD", "USD"],
        [Series("Targeted", (Decimal("4520.37"), 3, 0), ("a", "b", "c")),
         Series("Holdout", (Decimal("1.005"), None, 7), ("d", "e", "f"))],
        tick_label=plain,
    )  # fmt: skip
    coordinates = [
        getattr(bar, f.name) for bar in chart.bars for f in fields(Bar) if f.name in ("x", "y", "width", "height")
    ]
    coordinates += [t.y for t in chart.ticks] + [g.x for g in chart.group_labels]
    coordinates += [chart.axis_left, chart.axis_right, chart.baseline, chart.tick_label_x]
    assert coordinates
    assert all(isinstance(c, str) and TWO_DECIMALS.match(c) for c in coordinates), coordinates
    assert not any(isinstance(getattr(chart, f.name), float) for f in fields(BarChart))


def test_rounding_is_half_to_even_and_never_negative_zero() -> None:
    assert coordinate(Decimal("1.005")) == "1.00"
    assert coordinate(Decimal("1.015")) == "1.02"
    assert coordinate(Decimal("-0.001")) == "0.00"


def test_all_zero_values_sit_on_the_baseline_with_one_tick() -> None:
    chart = two_series(0, Decimal(0))
    assert chart.top == 1
    assert [b.height for b in chart.bars] == ["0.00", "0.00"]
    assert all(b.drawn for b in chart.bars)
    assert [(t.label, t.y) for t in chart.ticks] == [("0", chart.baseline)]


def test_a_missing_value_draws_no_bar_but_keeps_its_label() -> None:
    chart = two_series(Decimal("0.12"), None)
    targeted, holdout = chart.bars
    assert targeted.drawn
    assert not holdout.drawn
    assert holdout.label == "h"
    assert holdout.y == chart.baseline
    assert chart.rows == [("Spend per member", ["t", "h"])]


def test_a_chart_without_groups_or_series_is_empty() -> None:
    assert bar_chart([], [], tick_label=plain).empty
    empty = bar_chart([], [Series("Targeted", (), ())], tick_label=plain)
    assert empty.empty
    assert empty.bars == ()
    assert empty.rows == []
    assert not two_series(1, 1).empty


@pytest.mark.parametrize(
    ("series", "error"),
    [
        ([Series("Targeted", (Decimal(1), Decimal(2)), ("a",))], ValueError),  # a label short
        ([Series("Targeted", (Decimal(-1),), ("a",))], ValueError),
        ([Series("Targeted", (0.5,), ("a",))], TypeError),  # type: ignore[arg-type]
        ([Series(str(n), (1,), ("a",)) for n in range(4)], ValueError),
    ],
)
def test_data_the_chart_cannot_draw_honestly_is_refused(series: list[Series], error: type[Exception]) -> None:
    with pytest.raises(error):
        bar_chart(["one"] if len(series[0].values) == 1 else ["one", "two"], series, tick_label=plain)
