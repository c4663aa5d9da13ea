"""The programme's liability: the points members hold, by the issuer they came from, valued at issue prices.

- **Outstanding** points are what every lot-holding account (members, unclaimed identifiers, red packets, and any
  kind whose `AccountKind.holds_lots`) holds. Each lot keeps the issuer it came from (`partner:<id>:issued`,
  `card:issued`, `activity:<id>:budget`, `programme`, `migration`, ...; `unknown` for lots older than issuers),
  through claims, gifts and red packets, so every outstanding point has one issuer.
- **Received as gifts**: points that reached their member from another member (a gift, or a red packet a member
  funded) are a column of their issuer's line, not a line of their own: gifts create no liability, they move it.
- A **month** is a calendar month in the programme's time zone; its movements are those of transfers posted in
  [start, end). For each issuer: closing = opening + issued - redeemed - expired + moved + other, where each
  movement is classified by the account on the other side of the transfer (`classify`): issued from issuers (net
  of refunds and reversals back to them), redeemed with partners (net), expired to breakage (net), moved between
  lot-holding accounts (gifts, packets, claims: zero over all issuers) and other (clawback repayments,
  adjustments, exchanges, anything else), all signed as they change what members hold.
- A statement **reconciles** when its closing total equals the sum of the lot-holding accounts' balances at its
  end, summed from the transfers independently of the lots.
- **Value**: points x the issue price in force on the UTC day of the instant valued (a statement: its last
  instant), in integer minor units of the price's currency, rounded once per line half to even (as settlement).
- **Rates** of a month: breakage rate = points expired / (points expired + points redeemed); redemption rate =
  points redeemed / (points expired + points redeemed); gross points that left members in that month, 4 decimals
  half to even; none when nothing left.
"""

from __future__ import annotations

import bisect
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal
from zoneinfo import ZoneInfo

from points.domain.ledger import AccountKind

UNKNOWN_ISSUER = "unknown"
"""The issuer of lots written before lots kept theirs."""
FORECAST_MONTHS = 24
MAX_RATE_MONTHS = 36
HOLDER_KINDS: tuple[str, ...] = tuple(kind.value for kind in AccountKind if kind.holds_lots)
"""Every account kind that holds lots: what is outstanding, whatever kinds are added later."""
ISSUING_KINDS = frozenset({"partner_issued", "card_issued", "activity_budget", "programme", "migration",
                           "card_exchange", "review"})  # fmt: skip
"""Accounts that create points: a credit from one is issued, a debit back to one (a refund) un-issues. Earnings held
for review (`review`) are issued when ops release them."""

_EXACT = Context(prec=60)
_WHOLE = Decimal(1)
_RATE = Decimal("0.0001")
_MONTH = re.compile(r"^(?P<year>[0-9]{4})-(?P<month>0[1-9]|1[0-2])$")
_OPS_PRICED = re.compile(
    r"^(card:issued|programme|migration|card-points:exchange|adjustments|activity:\*"
    r"|activity:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}:budget)$"
)
_PARTNER_ISSUER = re.compile(r"^partner:(?P<partner>[a-z0-9][a-z0-9-]{1,62}):issued$")
ALL_ACTIVITIES = "activity:*"


class LiabilityError(Exception):
    """A request the liability reports refuse, with what to ask instead."""


class InvalidMonthError(LiabilityError):
    def __init__(self, text: str) -> None:
        super().__init__(f"{text[:20]!r} is not a month; ask for one as YYYY-MM (e.g. 2026-11)")


class FutureMonthError(LiabilityError):
    def __init__(self, month: Month, now_month: Month) -> None:
        super().__init__(
            f"month {month.label} has not started (this is {now_month.label} in the programme's time zone); "
            "ask for this month (to date) or an earlier one"
        )


class InvalidRangeError(LiabilityError):
    pass


class PriceRefusedError(LiabilityError):
    pass


class PriceVersionExistsError(LiabilityError):
    def __init__(self, issuer: str, valid_from: date) -> None:
        super().__init__(
            f"{issuer} already has an issue price from {valid_from.isoformat()}; a version never changes: "
            "add one from a later day"
        )


# --- months -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        found = _MONTH.match(text)
        if found is None:
            raise InvalidMonthError(text)
        return cls(int(found["year"]), int(found["month"]))

    @classmethod
    def of(cls, instant: datetime, zone: ZoneInfo) -> Month:
        local = instant.astimezone(zone)
        return cls(local.year, local.month)

    @property
    def label(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def shifted(self, months: int) -> Month:
        index = self.year * 12 + self.month - 1 + months
        return Month(index // 12, index % 12 + 1)

    def start(self, zone: ZoneInfo) -> datetime:
        """The first instant of the month in `zone`, in UTC."""
        return datetime(self.year, self.month, 1, tzinfo=zone).astimezone(UTC)

    def end(self, zone: ZoneInfo) -> datetime:
        return self.shifted(1).start(zone)


def month_starts(first: Month, count: int, zone: ZoneInfo) -> list[datetime]:
    """The UTC starts of `count` consecutive months from `first`."""
    return [first.shifted(i).start(zone) for i in range(count)]


def value_day(instant: datetime) -> date:
    """The UTC day whose prices value a position at `instant` (a month's end: its last microsecond's day)."""
    return (instant.astimezone(UTC) - timedelta(microseconds=1)).date()


# --- prices ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuePrice:
    issuer: str
    valid_from: date
    currency: str
    price_minor_per_point: Decimal
    source: str = "ops"
    set_by: str = ""


def partner_of_issuer(issuer: str) -> str | None:
    found = _PARTNER_ISSUER.match(issuer)
    return found["partner"] if found else None


def check_ops_price(price: IssuePrice, today: date) -> None:
    """Ops price the issuers that are not partners (partners' prices come from their contracts), from today on."""
    if partner_of_issuer(price.issuer) is not None:
        raise PriceRefusedError(
            f"{price.issuer} is priced by its partner's earn contract (partners service); change the contract instead"
        )
    if _OPS_PRICED.match(price.issuer) is None:
        raise PriceRefusedError(
            f"{price.issuer[:100]!r} is not an issuer ops price; use card:issued, programme, migration, "
            "card-points:exchange, adjustments, activity:* (every activity) or activity:<id>:budget"
        )
    if price.valid_from < today:
        raise PriceRefusedError(
            f"an issue price cannot start in the past ({price.valid_from.isoformat()} is before {today.isoformat()}, "
            "UTC): statements already read keep their values; start it today or later"
        )
    if not (Decimal(0) < price.price_minor_per_point < Decimal(10**10)) or _scale(price.price_minor_per_point) > 4:
        raise PriceRefusedError("a price per point is above 0, below 10^10 minor units, with at most 4 decimals")


def _scale(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def price_keys(issuer: str) -> tuple[str, ...]:
    """Where an issuer's price is looked for, most specific first (one activity, then every activity)."""
    if issuer.startswith("activity:") and issuer.endswith(":budget"):
        return (issuer, ALL_ACTIVITIES)
    return (issuer,)


class PriceBook:
    """Every issue price version, for the prices in force on a day."""

    def __init__(self, prices: Iterable[IssuePrice]) -> None:
        self._by_issuer: dict[str, list[IssuePrice]] = defaultdict(list)
        for price in prices:
            self._by_issuer[price.issuer].append(price)
        for versions in self._by_issuer.values():
            versions.sort(key=lambda p: p.valid_from)

    def in_force(self, issuer: str, day: date) -> IssuePrice | None:
        for key in price_keys(issuer):
            versions = self._by_issuer.get(key, [])
            index = bisect.bisect_right([v.valid_from for v in versions], day)
            if index:
                return versions[index - 1]
        return None


def value_of(points: int, price: IssuePrice | None) -> int | None:
    """points x price in minor units, rounded once half to even; None without a price."""
    if price is None:
        return None
    exact = _EXACT.multiply(Decimal(points), price.price_minor_per_point)
    return int(exact.quantize(_WHOLE, rounding=ROUND_HALF_EVEN))


# --- movements and statements ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Flow:
    """Points that changed what lot-holding accounts hold, summed by the adapter."""

    issuer: str
    gift: bool
    """Whether the lot concerned reached its member as a gift (or from a member's red packet)."""
    counterparty_kind: str
    """The kind of the account on the other side of the transfers."""
    points: int
    """Signed: credits to lot-holding accounts are positive, debits from them negative."""


@dataclass(frozen=True)
class Movements:
    issued: int = 0
    redeemed: int = 0
    expired: int = 0
    moved: int = 0
    other: int = 0
    redeemed_out: int = 0
    """Gross points that left for partners' redeemed accounts (the rates count these)."""
    expired_out: int = 0

    @property
    def net(self) -> int:
        return self.issued - self.redeemed - self.expired + self.moved + self.other

    def __add__(self, other: Movements) -> Movements:
        return Movements(*(a + b for a, b in zip(_fields(self), _fields(other), strict=True)))


def _fields(m: Movements) -> tuple[int, ...]:
    return (m.issued, m.redeemed, m.expired, m.moved, m.other, m.redeemed_out, m.expired_out)


def classify(flow: Flow) -> Movements:
    """What a flow is in a statement, by the account on its other side."""
    kind, points = flow.counterparty_kind, flow.points
    if kind in HOLDER_KINDS:
        return Movements(moved=points)
    if kind in ISSUING_KINDS:
        return Movements(issued=points)
    if kind == AccountKind.PARTNER_REDEEMED.value:
        return Movements(redeemed=-points, redeemed_out=max(-points, 0))
    if kind == AccountKind.BREAKAGE.value:
        return Movements(expired=-points, expired_out=max(-points, 0))
    return Movements(other=points)


Key = tuple[str, bool]
"""(issuer, received as gift)."""


@dataclass(frozen=True)
class Line:
    issuer: str
    gift: bool
    opening: int
    movements: Movements

    @property
    def closing(self) -> int:
        return self.opening + self.movements.net

    @property
    def empty(self) -> bool:
        return self.opening == 0 and self.movements == Movements()


def lines_of(opening: Mapping[Key, int], flows: Iterable[Flow]) -> list[Line]:
    """The lines of a period: each (issuer, gift) that held points or moved, sorted; empty ones left out."""
    moved: dict[Key, Movements] = defaultdict(Movements)
    for flow in flows:
        moved[(flow.issuer, flow.gift)] += classify(flow)
    keys = sorted(set(opening) | set(moved))
    lines = [Line(issuer, gift, opening.get((issuer, gift), 0), moved.get((issuer, gift), Movements()))
             for issuer, gift in keys]  # fmt: skip
    return [line for line in lines if not line.empty]


def closing_of(lines: Iterable[Line]) -> dict[Key, int]:
    return {(line.issuer, line.gift): line.closing for line in lines if line.closing != 0}


@dataclass(frozen=True)
class Statement:
    """A period's statement: [starts_at, ends_at) of posting time; `closed` once it can no longer change."""

    month: Month
    starts_at: datetime
    ends_at: datetime
    lines: tuple[Line, ...]
    ledger_closing: int
    """The lot-holding accounts' balances at `ends_at`, summed from the transfers."""
    closed: bool

    @property
    def closing_total(self) -> int:
        return sum(line.closing for line in self.lines)

    @property
    def opening_total(self) -> int:
        return sum(line.opening for line in self.lines)

    @property
    def difference(self) -> int:
        """Statement minus ledger: zero when it reconciles."""
        return self.closing_total - self.ledger_closing

    @property
    def totals(self) -> Movements:
        total = Movements()
        for line in self.lines:
            total += line.movements
        return total


def statement_of(
    month: Month,
    starts_at: datetime,
    ends_at: datetime,
    opening: Mapping[Key, int],
    flows: Iterable[Flow],
    ledger_closing: int,
    closed: bool,
) -> Statement:
    return Statement(month, starts_at, ends_at, tuple(lines_of(opening, flows)), ledger_closing, closed)


# --- what the reports show ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuerLine:
    """One issuer's line: its gift and non-gift lines summed, valued at its price in force."""

    issuer: str
    opening: int
    movements: Movements
    closing: int
    received_as_gifts: int
    price: IssuePrice | None
    closing_value_minor: int | None
    received_as_gifts_value_minor: int | None


@dataclass(frozen=True)
class CurrencyTotal:
    currency: str
    value_minor: int


@dataclass(frozen=True)
class Valued:
    lines: tuple[IssuerLine, ...]
    totals: tuple[CurrencyTotal, ...]
    unpriced: tuple[str, ...]
    """Issuers holding points with no issue price in force: their points are not in `totals`."""


def by_issuer(lines: Iterable[Line], prices: PriceBook, day: date) -> Valued:
    grouped: dict[str, list[Line]] = defaultdict(list)
    for line in lines:
        grouped[line.issuer].append(line)
    out: list[IssuerLine] = []
    totals: dict[str, int] = defaultdict(int)
    unpriced: list[str] = []
    for issuer in sorted(grouped):
        group = grouped[issuer]
        movements = Movements()
        for line in group:
            movements += line.movements
        closing = sum(line.closing for line in group)
        gifts = sum(line.closing for line in group if line.gift)
        price = prices.in_force(issuer, day)
        value = value_of(closing, price)
        if price is not None and value is not None:
            totals[price.currency] += value
        elif closing:
            unpriced.append(issuer)
        opening = sum(line.opening for line in group)
        out.append(IssuerLine(issuer, opening, movements, closing, gifts, price, value, value_of(gifts, price)))
    return Valued(tuple(out), tuple(CurrencyTotal(c, v) for c, v in sorted(totals.items())), tuple(unpriced))


@dataclass(frozen=True)
class MonthRates:
    month: Month
    redeemed: int
    expired: int
    issued: int
    breakage_rate: Decimal | None
    redemption_rate: Decimal | None


def _share(part: int, whole: int) -> Decimal | None:
    if whole <= 0:
        return None
    return (Decimal(part) / Decimal(whole)).quantize(_RATE, rounding=ROUND_HALF_EVEN)


def rates_of(statement: Statement) -> MonthRates:
    t = statement.totals
    left = t.redeemed_out + t.expired_out
    return MonthRates(statement.month, t.redeemed_out, t.expired_out, t.issued,
                      _share(t.expired_out, left), _share(t.redeemed_out, left))  # fmt: skip


def month_range(first: Month, last: Month, now_month: Month) -> list[Month]:
    """Months from `first` to `last` inclusive, none in the future, at most MAX_RATE_MONTHS."""
    if last < first:
        raise InvalidRangeError(f"from {first.label} is after to {last.label}; ask for from <= to")
    if last > now_month:
        raise FutureMonthError(last, now_month)
    count = (last.year - first.year) * 12 + last.month - first.month + 1
    if count > MAX_RATE_MONTHS:
        raise InvalidRangeError(f"{count} months asked; ask for at most {MAX_RATE_MONTHS} at a time")
    return [first.shifted(i) for i in range(count)]


# --- expiry forecast ------------------------------------------------------------------------------------------


def forecast_bounds(now: datetime, zone: ZoneInfo, months: int = FORECAST_MONTHS) -> tuple[Month, list[datetime]]:
    """The first month (this one) and the UTC starts of the `months` that follow it: bucket i holds the lots that
    expire before bound i (bucket 0: this month, overdue lots included); bucket `months` is later."""
    first = Month.of(now, zone)
    return first, month_starts(first.shifted(1), months, zone)


def bucket_of(expires_at: datetime, bounds: Sequence[datetime]) -> int:
    """Which forecast month a lot that expires at `expires_at` falls in (as SQL's width_bucket does)."""
    return bisect.bisect_right(bounds, expires_at)


@dataclass(frozen=True)
class ForecastRow:
    issuer: str
    bucket: int
    points: int


@dataclass(frozen=True)
class ForecastMonth:
    month: Month
    points: int
    values: tuple[CurrencyTotal, ...]


@dataclass(frozen=True)
class Forecast:
    months: tuple[ForecastMonth, ...]
    later_points: int
    """Points that expire after the last month of the forecast."""
    unpriced: tuple[str, ...] = field(default=())


def forecast_of(rows: Iterable[ForecastRow], first: Month, months: int, prices: PriceBook, day: date) -> Forecast:
    """Points expiring per month, valued per issuer and month (rounded once each) at today's prices."""
    points = [0] * months
    values: list[dict[str, int]] = [defaultdict(int) for _ in range(months)]
    later, unpriced = 0, set()
    for row in rows:
        if row.bucket >= months:
            later += row.points
            continue
        points[row.bucket] += row.points
        price = prices.in_force(row.issuer, day)
        value = value_of(row.points, price)
        if price is None or value is None:
            unpriced.add(row.issuer)
        else:
            values[row.bucket][price.currency] += value
    out = tuple(
        ForecastMonth(first.shifted(i), points[i], tuple(CurrencyTotal(c, v) for c, v in sorted(values[i].items())))
        for i in range(months)
    )
    return Forecast(out, later, tuple(sorted(unpriced)))
