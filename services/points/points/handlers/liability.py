"""Liability reports (ops): positions, month-end statements, rates and the expiry forecast; issue prices.

A month's statement opens with the previous month's closing. Closed months (ended more than `margin` ago, so no
transfer posted before their end can still commit) are kept once computed; a read then walks forward from the
latest kept month, never over the whole history again.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from contracts.events.liability import EarnContractVersionAdded
from loyalty_runtime import audit
from loyalty_runtime.auth import Principal
from points.adapters.liability_store import LiabilityReader, LiabilityStore
from points.domain.liability import (
    FORECAST_MONTHS,
    Forecast,
    FutureMonthError,
    InvalidRangeError,
    IssuePrice,
    Key,
    LiabilityError,
    Month,
    MonthRates,
    PriceBook,
    PriceVersionExistsError,
    Statement,
    Valued,
    by_issuer,
    check_ops_price,
    closing_of,
    forecast_bounds,
    forecast_of,
    month_range,
    rates_of,
    statement_of,
    value_day,
)


@dataclass(frozen=True)
class Clock:
    """What every read needs: the programme's zone, now, and how long after a month's end it is closed."""

    zone: ZoneInfo
    now: datetime
    margin: timedelta

    @property
    def zone_name(self) -> str:
        return self.zone.key


@dataclass(frozen=True)
class ValuedStatement:
    statement: Statement
    valued: Valued
    valued_on: date


class _Walk:
    """Statements of consecutive months, each opening with the one before's closing."""

    def __init__(self, reader: LiabilityReader, clock: Clock) -> None:
        self.reader, self.clock = reader, clock
        self.to_keep: list[Statement] = []

    async def over(self, first: Month, last: Month, until: datetime) -> list[Statement]:
        """Every month's statement from `first` (or the ledger's first month, if later) to `last`, the last one
        ending at `until` at most; the walk starts after the latest month kept before `first`."""
        cursor, opening, ledger = await self._start(first)
        out: list[Statement] = []
        while cursor <= last:
            statement = await self._month(cursor, opening, ledger, until)
            out.append(statement)
            opening, ledger = closing_of(statement.lines), statement.ledger_closing
            cursor = cursor.shifted(1)
        return out

    async def _start(self, first: Month) -> tuple[Month, dict[Key, int], int]:
        zone = self.clock.zone_name
        kept = await self.reader.latest_kept_before(zone, first)
        if kept is not None:
            statement = await self.reader.kept(zone, kept)
            assert statement is not None
            return kept.shifted(1), closing_of(statement.lines), statement.ledger_closing
        posted = await self.reader.first_posting()
        start = min(Month.of(posted, self.clock.zone), first) if posted is not None else first
        return start, {}, 0

    async def _month(self, month: Month, opening: dict[Key, int], ledger: int, until: datetime) -> Statement:
        zone = self.clock.zone
        kept = await self.reader.kept(self.clock.zone_name, month)
        if kept is not None and kept.ends_at <= until:
            return kept
        start, end = month.start(zone), min(month.end(zone), until)
        flows = await self.reader.flows(start, end)
        ledger += await self.reader.ledger_flow(start, end)
        closed = end == month.end(zone) and self.clock.now >= end + self.clock.margin
        statement = statement_of(month, start, end, opening, flows, ledger, closed)
        if closed:
            self.to_keep.append(statement)
        return statement


async def _walk(
    store: LiabilityStore, clock: Clock, first: Month, last: Month, until: datetime
) -> tuple[list[Statement], PriceBook]:
    async with store.reading() as reader:
        walk = _Walk(reader, clock)
        statements = await walk.over(first, last, until)
        prices = PriceBook(await reader.prices())
    if walk.to_keep:
        await store.keep(clock.zone_name, walk.to_keep)
    return statements, prices


def _refuse_future(month: Month, clock: Clock) -> None:
    this = Month.of(clock.now, clock.zone)
    if month > this:
        raise FutureMonthError(month, this)


async def month_statement(store: LiabilityStore, month: Month, clock: Clock) -> ValuedStatement:
    """The month's statement: closed, provisional (ended, not yet closed) or to date (this month)."""
    _refuse_future(month, clock)
    statements, prices = await _walk(store, clock, month, month, clock.now)
    statement = statements[-1]
    day = value_day(statement.ends_at)
    return ValuedStatement(statement, by_issuer(statement.lines, prices, day), day)


class FutureInstantError(LiabilityError):
    def __init__(self, as_of: datetime, now: datetime) -> None:
        super().__init__(f"as_of {as_of.isoformat()} is after now ({now.isoformat()}); ask for now or a past instant")


async def position(store: LiabilityStore, as_of: datetime | None, clock: Clock) -> ValuedStatement:
    """What members held at `as_of` (default now), by issuer: the statement of its month up to that instant."""
    at = as_of.astimezone(UTC) if as_of is not None else clock.now
    if at > clock.now:
        raise FutureInstantError(at, clock.now)
    month = Month.of(at, clock.zone)
    statements, prices = await _walk(store, clock, month, month, at)
    statement = statements[-1]
    day = value_day(statement.ends_at)
    return ValuedStatement(statement, by_issuer(statement.lines, prices, day), day)


async def monthly_rates(store: LiabilityStore, first: Month, last: Month, clock: Clock) -> list[MonthRates]:
    """Breakage and redemption rates of each month from `first` to `last` (this month: to date)."""
    wanted = month_range(first, last, Month.of(clock.now, clock.zone))
    statements, _ = await _walk(store, clock, first, last, clock.now)
    by_month = {s.month: s for s in statements}
    return [rates_of(by_month[m]) if m in by_month else _no_rates(m) for m in wanted]


def _no_rates(month: Month) -> MonthRates:
    """A month before the ledger's first posting: nothing left, no rates."""
    return MonthRates(month, 0, 0, 0, None, None)


async def expiry_forecast(store: LiabilityStore, clock: Clock, months: int = FORECAST_MONTHS) -> Forecast:
    first, bounds = forecast_bounds(clock.now, clock.zone, months)
    async with store.reading() as reader:
        rows = await reader.forecast(bounds)
        prices = PriceBook(await reader.prices())
    return forecast_of(rows, first, months, prices, clock.now.date())


def default_rate_range(clock: Clock) -> tuple[Month, Month]:
    """The last twelve months, this one included."""
    this = Month.of(clock.now, clock.zone)
    return this.shifted(-11), this


def parse_range(first: str | None, last: str | None, clock: Clock) -> tuple[Month, Month]:
    default_first, default_last = default_rate_range(clock)
    to = Month.parse(last) if last else default_last
    since = Month.parse(first) if first else min(default_first, to)
    if since > to:
        raise InvalidRangeError(f"from {since.label} is after to {to.label}; ask for from <= to")
    return since, to


# --- issue prices -----------------------------------------------------------------------------------------------


async def list_prices(store: LiabilityStore) -> list[IssuePrice]:
    return await store.prices()


async def set_ops_price(store: LiabilityStore, price: IssuePrice, principal: Principal, today: date) -> IssuePrice:
    """Add an ops issue price version (audited); the same version again is accepted once, a different one refused."""
    price = IssuePrice(price.issuer, price.valid_from, price.currency, price.price_minor_per_point, "ops",
                       f"ops:{principal.subject}")  # fmt: skip
    check_ops_price(price, today)
    entry = audit.AuditEntry(
        actor=principal.subject, role=principal.role.value, action="issue_price.set",
        subject=f"issue_price:{price.issuer}:{price.valid_from.isoformat()}", before=None,
        after={"currency": price.currency, "price_minor_per_point": str(price.price_minor_per_point)},
    )  # fmt: skip
    stored = await store.add_ops_price(price, entry)
    if (
        stored is None
        or stored.currency != price.currency
        or stored.price_minor_per_point != price.price_minor_per_point
    ):
        raise PriceVersionExistsError(price.issuer, price.valid_from)
    return stored


def contract_price(event: EarnContractVersionAdded) -> IssuePrice:
    """What a contract version means here: the issue price of `partner:<id>:issued` from its first day."""
    p = event.payload
    return IssuePrice(f"partner:{p.partner_id}:issued", p.valid_from, p.currency, p.issue_price_minor_per_point,
                      "partner_contract", event.source)  # fmt: skip


async def record_contract_prices(
    store: LiabilityStore, topic: str, priced: Sequence[tuple[uuid.UUID, IssuePrice]]
) -> int:
    """Each contract version once: a repeated or late event (same partner and version) changes nothing."""
    return await store.add_contract_prices(topic, priced)
