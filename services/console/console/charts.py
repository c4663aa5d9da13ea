"""Bar charts drawn on the server: the geometry of an SVG, in exact arithmetic, with no I/O.

The rules of a chart:

- values are non-negative whole numbers or Decimals, or None for "no value" (no bar is drawn, the
  label still is, at the baseline); each series has a formatted label for every value;
- groups sit side by side along the x axis, the series' bars side by side inside each group;
- the value axis starts at 0 and ends at a round top: a whole number of steps of 1, 2, 2.5 or 5
  times a power of ten, at or above the largest value, at most `ticks` steps; when every value is
  0 or missing, the axis is the baseline alone and bars stay flat on it;
- every coordinate is a string with exactly 2 decimals (rounded half to even), so a template
  never prints a float and the same data always draws the same picture.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal

Value = Decimal | int | None
MAX_SERIES = 3  # the stylesheet colours series-0 to series-2
NICE_STEPS = (Decimal(1), Decimal(2), Decimal("2.5"), Decimal(5), Decimal(10))
CENT = Decimal("0.01")


def coordinate(value: Decimal) -> str:
    """A coordinate as the SVG gets it: 2 decimals, half to even, never '-0.00'."""
    rounded = value.quantize(CENT, rounding=ROUND_HALF_EVEN)
    return f"{rounded.copy_abs() if rounded.is_zero() else rounded:f}"


@dataclass(frozen=True)
class Series:
    """One set of bars: its name for the legend, a value per group, and how each value reads."""

    name: str
    values: tuple[Value, ...]
    labels: tuple[str, ...]


@dataclass(frozen=True)
class Layout:
    """The drawing's size in SVG units and the margins that hold the axis and group labels."""

    width: int = 360  # about a phone's width, so the stylesheet's 11px labels stay legible there
    height: int = 220
    left: int = 60
    right: int = 8
    top: int = 20
    bottom: int = 32
    ticks: int = 4
    group_share: Decimal = Decimal("0.7")  # of each group's width, the part its bars take

    @property
    def plot_width(self) -> Decimal:
        return Decimal(self.width - self.left - self.right)

    @property
    def plot_height(self) -> Decimal:
        return Decimal(self.height - self.top - self.bottom)

    @property
    def baseline(self) -> Decimal:
        return Decimal(self.height - self.bottom)


@dataclass(frozen=True)
class Bar:
    series: int
    group: int
    drawn: bool  # False for a missing value: only its label shows
    x: str
    y: str
    width: str
    height: str
    label: str
    label_x: str
    label_y: str


@dataclass(frozen=True)
class Tick:
    value: Decimal
    y: str
    label: str


@dataclass(frozen=True)
class GroupLabel:
    label: str
    x: str
    y: str


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    groups: tuple[str, ...]
    series: tuple[Series, ...]
    top: Decimal
    bars: tuple[Bar, ...]
    ticks: tuple[Tick, ...]
    group_labels: tuple[GroupLabel, ...]
    axis_left: str
    axis_right: str
    baseline: str
    tick_label_x: str

    @property
    def empty(self) -> bool:
        return not self.groups or not self.series

    @property
    def rows(self) -> list[tuple[str, list[str]]]:
        """The figures as a table: each group with its series' labels, for the text fallback."""
        return [(group, [s.labels[g] for s in self.series]) for g, group in enumerate(self.groups)]


def axis_scale(largest: Decimal, ticks: int) -> tuple[Decimal, Decimal]:
    """(step, top) of a value axis from 0 that holds `largest`; (0, 1) when there is nothing above 0."""
    if ticks < 1:
        raise ValueError("a value axis needs at least one tick step")
    if largest <= 0:
        return Decimal(0), Decimal(1)
    raw = largest / ticks
    magnitude = Decimal(1).scaleb(raw.adjusted())
    step = next(magnitude * nice for nice in NICE_STEPS if magnitude * nice >= raw)
    count = (largest / step).to_integral_value(rounding=ROUND_CEILING)
    return _plain(step), _plain(step * count)


def _plain(value: Decimal) -> Decimal:
    """2E+3 as 2000, 0.050 as 0.05: how a person writes the number."""
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value.normalize()


def bar_chart(
    groups: Sequence[str],
    series: Sequence[Series],
    tick_label: Callable[[Decimal], str],
    layout: Layout = Layout(),
) -> BarChart:
    """The chart of `series` over `groups`; `tick_label` says how a value on the axis reads."""
    _check(groups, series)
    largest = max((Decimal(v) for s in series for v in s.values if v is not None), default=Decimal(0))
    step, top = axis_scale(largest, layout.ticks)
    return BarChart(
        width=layout.width,
        height=layout.height,
        groups=tuple(groups),
        series=tuple(series),
        top=top,
        bars=tuple(_bars(len(groups), series, top, layout)),
        ticks=tuple(_ticks(step, top, tick_label, layout)),
        group_labels=tuple(_group_labels(groups, layout)),
        axis_left=coordinate(Decimal(layout.left)),
        axis_right=coordinate(Decimal(layout.width - layout.right)),
        baseline=coordinate(layout.baseline),
        tick_label_x=coordinate(Decimal(layout.left - 6)),
    )


def _check(groups: Sequence[str], series: Sequence[Series]) -> None:
    if len(series) > MAX_SERIES:
        raise ValueError(f"a chart draws at most {MAX_SERIES} series, not {len(series)}")
    for one in series:
        if len(one.values) != len(groups) or len(one.labels) != len(groups):
            raise ValueError(f"series {one.name!r} needs one value and one label for each of {len(groups)} groups")
        if any(isinstance(v, float) for v in one.values):
            raise TypeError(f"series {one.name!r} has a float; give whole numbers or Decimals")
        if any(v is not None and Decimal(v) < 0 for v in one.values):
            raise ValueError(f"series {one.name!r} has a negative value; these bars start at 0")


def _y_of(value: Decimal, top: Decimal, layout: Layout) -> Decimal:
    return layout.baseline - value / top * layout.plot_height


def _bars(groups: int, series: Sequence[Series], top: Decimal, layout: Layout) -> list[Bar]:
    if not groups or not series:
        return []
    group_width = layout.plot_width / groups
    slot = group_width * layout.group_share / len(series)
    gap = slot / 10  # a sliver between neighbouring bars
    first = Decimal(layout.left) + (group_width - slot * len(series)) / 2
    bars = []
    for g in range(groups):
        for s, one in enumerate(series):
            x = first + g * group_width + s * slot + gap / 2
            value = one.values[g]
            y = layout.baseline if value is None else _y_of(Decimal(value), top, layout)
            bars.append(
                Bar(
                    series=s,
                    group=g,
                    drawn=value is not None,
                    x=coordinate(x),
                    y=coordinate(y),
                    width=coordinate(slot - gap),
                    height=coordinate(layout.baseline - y),
                    label=one.labels[g],
                    label_x=coordinate(x + (slot - gap) / 2),
                    label_y=coordinate(y - 6),
                )
            )
    return bars


def _ticks(step: Decimal, top: Decimal, tick_label: Callable[[Decimal], str], layout: Layout) -> list[Tick]:
    if step.is_zero():
        return [Tick(Decimal(0), coordinate(layout.baseline), tick_label(Decimal(0)))]
    count = int(top / step)
    return [Tick(step * i, coordinate(_y_of(step * i, top, layout)), tick_label(step * i)) for i in range(count + 1)]


def _group_labels(groups: Sequence[str], layout: Layout) -> list[GroupLabel]:
    if not groups:
        return []
    group_width = layout.plot_width / len(groups)
    y = coordinate(layout.baseline + 18)
    return [
        GroupLabel(label, coordinate(Decimal(layout.left) + group_width * g + group_width / 2), y)
        for g, label in enumerate(groups)
    ]
