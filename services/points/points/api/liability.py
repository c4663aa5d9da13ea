"""Liability and breakage (ops): outstanding points by issuer, month-end statements, the expiry forecast, the
monthly breakage and redemption rates (JSON and CSV), and the issue prices that value them."""

import csv
import datetime as dt
import io
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Response, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contracts.money import Currency
from loyalty_runtime.auth import Principal, ops_dependency
from points.adapters.liability_store import LiabilityStore
from points.api.spreadsheets import safe_cell
from points.domain import liability as domain
from points.domain.liability import (
    CurrencyTotal,
    FutureMonthError,
    InvalidMonthError,
    InvalidRangeError,
    IssuePrice,
    IssuerLine,
    Month,
    PriceRefusedError,
    PriceVersionExistsError,
)
from points.handlers import liability as handle
from points.handlers.liability import Clock, FutureInstantError, ValuedStatement

ERRORS: dict[type[Exception], int] = {
    InvalidMonthError: status.HTTP_422_UNPROCESSABLE_CONTENT,
    FutureMonthError: status.HTTP_422_UNPROCESSABLE_CONTENT,
    FutureInstantError: status.HTTP_422_UNPROCESSABLE_CONTENT,
    InvalidRangeError: status.HTTP_422_UNPROCESSABLE_CONTENT,
    PriceRefusedError: status.HTTP_422_UNPROCESSABLE_CONTENT,
    PriceVersionExistsError: status.HTTP_409_CONFLICT,
}
"""The statuses of the liability reports' refusals, mapped in app.py."""

DEFINITIONS = f"""Read from the ledger in one consistent snapshot; ops only.

- **issuer**: where the points came from, kept by every lot through claims, gifts and red packets:
  `partner:<id>:issued`, `card:issued`, `activity:<id>:budget`, `programme`, `migration`, ... (`unknown`: lots
  older than issuers). **received_as_gifts**: the part of the issuer's points that reached their member from
  another member (a gift, or a red packet a member funded); gifts move liability between members, they create none.
- **outstanding** (a statement's **closing**): what every lot-holding account (members, unclaimed identifiers,
  red packets) holds, held points included.
- A **month** is a calendar month in the programme's time zone, by the transfers' posting time. Per issuer:
  closing = opening + issued - redeemed - expired + moved + other. **issued**: from issuer accounts, net of
  refunds and reversals given back to them; **redeemed**: captured for partners' redemptions (net); **expired**:
  moved to breakage (net); **moved**: between lot-holding accounts (gifts, red packets, claims; 0 over all
  issuers); **other**: anything else (clawback repayments, adjustments, exchanges). **status**: `closed` once
  the month ended long enough ago that nothing posted before its end can still arrive (then it is kept and never
  changes), `provisional` just after its end, `open` for this month (to date).
- **reconciliation**: the statement's closing total against the sum of the lot-holding accounts' balances at
  its end summed from the transfers alone; **difference** is 0 when it reconciles (`make verify` proves it).
- **value**: points x the issue price in force on the UTC day of the instant valued (a month: its last day):
  partners' from their earn contracts, the others as ops set them (`/v1/ops/issue-prices`; `activity:*` prices
  every activity without its own). Integer minor units, rounded once per line half to even. **unpriced**:
  issuers holding points with no price in force; their points are not in the value totals.
- **rates** of a month, from the gross points that left members in it: **breakage_rate** = expired /
  (expired + redeemed), **redemption_rate** = redeemed / (expired + redeemed), 4 decimals half to even; null
  when nothing left. At most {domain.MAX_RATE_MONTHS} months per request.
- **forecast**: live lots by the month (programme time zone) in which they expire, for this month and the next
  {domain.FORECAST_MONTHS - 1}; lots already due but not yet expired count in this month; **later_points** expire
  after the last month. Valued at today's prices.
"""

MonthText = Annotated[str, Path(pattern=r"^[0-9]{4}-[0-9]{2}$", description="YYYY-MM, in the programme's zone.")]
MonthQuery = Annotated[str | None, Query(pattern=r"^[0-9]{4}-[0-9]{2}$", description="YYYY-MM")]


class PriceOut(BaseModel):
    issuer: str
    valid_from: dt.date
    currency: str
    price_minor_per_point: Decimal
    source: Literal["partner_contract", "ops"]
    set_by: str

    @classmethod
    def of(cls, p: IssuePrice) -> "PriceOut":
        return cls(issuer=p.issuer, valid_from=p.valid_from, currency=p.currency,
                   price_minor_per_point=p.price_minor_per_point, source=p.source, set_by=p.set_by)  # fmt: skip


class PricesOut(BaseModel):
    items: list[PriceOut]


class PriceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    issuer: str = Field(min_length=1, max_length=200, examples=["card:issued", "activity:*", "programme", "migration"])
    valid_from: dt.date = Field(description="The first UTC day the price is in force (today or later).")
    currency: Currency
    price_minor_per_point: Decimal = Field(gt=0, lt=10**10, max_digits=14, decimal_places=4)


class ValueOut(BaseModel):
    currency: str
    value_minor: int

    @classmethod
    def all(cls, totals: tuple[CurrencyTotal, ...]) -> list["ValueOut"]:
        return [cls(currency=t.currency, value_minor=t.value_minor) for t in totals]


class IssuerOut(BaseModel):
    issuer: str
    opening: int
    issued: int
    redeemed: int
    expired: int
    moved: int
    other: int
    closing: int
    received_as_gifts: int
    price: PriceOut | None
    closing_value_minor: int | None
    received_as_gifts_value_minor: int | None

    @classmethod
    def of(cls, line: IssuerLine) -> "IssuerOut":
        m = line.movements
        return cls(
            issuer=line.issuer, opening=line.opening, issued=m.issued, redeemed=m.redeemed, expired=m.expired,
            moved=m.moved, other=m.other, closing=line.closing, received_as_gifts=line.received_as_gifts,
            price=PriceOut.of(line.price) if line.price else None, closing_value_minor=line.closing_value_minor,
            received_as_gifts_value_minor=line.received_as_gifts_value_minor,
        )  # fmt: skip


class TotalsOut(BaseModel):
    opening: int
    issued: int
    redeemed: int
    expired: int
    moved: int
    other: int
    closing: int
    received_as_gifts: int


class ReconciliationOut(BaseModel):
    ledger_points: int = Field(description="The lot-holding accounts' balances at the end, from the transfers.")
    statement_points: int
    difference: int = Field(description="statement_points - ledger_points: 0 when it reconciles.")


class StatementOut(BaseModel):
    month: str
    time_zone: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    status: Literal["closed", "provisional", "open"]
    valued_on: dt.date
    lines: list[IssuerOut]
    totals: TotalsOut
    values: list[ValueOut]
    unpriced: list[str]
    reconciliation: ReconciliationOut

    @classmethod
    def of(cls, found: ValuedStatement, clock: Clock) -> "StatementOut":
        s, v = found.statement, found.valued
        t = s.totals
        if s.closed:
            state: Literal["closed", "provisional", "open"] = "closed"
        else:
            state = "provisional" if s.ends_at == s.month.end(clock.zone) else "open"
        gifts = sum(line.received_as_gifts for line in v.lines)
        return cls(
            month=s.month.label, time_zone=clock.zone_name, starts_at=s.starts_at, ends_at=s.ends_at, status=state,
            valued_on=found.valued_on, lines=[IssuerOut.of(line) for line in v.lines],
            totals=TotalsOut(opening=s.opening_total, issued=t.issued, redeemed=t.redeemed, expired=t.expired,
                             moved=t.moved, other=t.other, closing=s.closing_total, received_as_gifts=gifts),
            values=ValueOut.all(v.totals), unpriced=list(v.unpriced),
            reconciliation=ReconciliationOut(ledger_points=s.ledger_closing, statement_points=s.closing_total,
                                             difference=s.difference),
        )  # fmt: skip


class PositionOut(BaseModel):
    as_of: dt.datetime
    time_zone: str
    valued_on: dt.date
    issuers: list[IssuerOut] = Field(description="Each issuer's outstanding (`closing`) with this month's movements.")
    outstanding: int
    received_as_gifts: int
    values: list[ValueOut]
    unpriced: list[str]
    reconciliation: ReconciliationOut


class ForecastMonthOut(BaseModel):
    month: str
    points: int
    values: list[ValueOut]


class ForecastOut(BaseModel):
    as_of: dt.datetime
    time_zone: str
    valued_on: dt.date
    months: list[ForecastMonthOut]
    later_points: int
    unpriced: list[str]


class RatesMonthOut(BaseModel):
    month: str
    issued: int
    redeemed: int = Field(description="Gross points redeemed in the month.")
    expired: int = Field(description="Gross points expired in the month.")
    breakage_rate: Decimal | None
    redemption_rate: Decimal | None


class RatesOut(BaseModel):
    time_zone: str
    months: list[RatesMonthOut]


CSV_COLUMNS = ("month", "time_zone", "status", "issuer", "opening", "issued", "redeemed", "expired", "moved", "other",
               "closing", "received_as_gifts", "currency", "price_minor_per_point", "closing_value_minor",
               "received_as_gifts_value_minor")  # fmt: skip


def to_csv(found: StatementOut) -> str:
    """A header row, one row per issuer, then a `total` row per currency (one with empty value cells if none)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    head = [found.month, found.time_zone, found.status]
    for line in found.lines:
        price = line.price
        writer.writerow([safe_cell(v) for v in [
            *head, line.issuer, line.opening, line.issued, line.redeemed, line.expired, line.moved, line.other,
            line.closing, line.received_as_gifts, price.currency if price else None,
            price.price_minor_per_point if price else None, line.closing_value_minor,
            line.received_as_gifts_value_minor]])  # fmt: skip
    t = found.totals
    common = [*head, "total", t.opening, t.issued, t.redeemed, t.expired, t.moved, t.other, t.closing,
              t.received_as_gifts]  # fmt: skip
    values: list[ValueOut | None] = [*found.values] or [None]
    for value in values:
        extra = [value.currency, None, value.value_minor, None] if value else [None] * 4
        writer.writerow([safe_cell(v) for v in [*common, *extra]])
    return out.getvalue()


def router(
    store: Callable[[], LiabilityStore],
    authenticate: Callable[..., Principal],
    clock: Callable[[], Clock],
) -> APIRouter:
    api = APIRouter(prefix="/v1/ops", tags=["liability"])
    Ops = Annotated[Principal, Depends(ops_dependency(authenticate))]
    Store = Annotated[LiabilityStore, Depends(store)]
    refusals: dict[int | str, dict[str, Any]] = {
        422: {"description": "A bad or future month, range or instant (the reason says which)."}
    }

    @api.get("/liability", response_model=PositionOut, description=DEFINITIONS, responses=refusals)
    async def outstanding(_ops: Ops, liabilities: Store, as_of: AwareDatetime | None = None) -> PositionOut:
        """Outstanding points by issuer at `as_of` (default now), valued at the prices in force that day."""
        now = clock()
        found = await handle.position(liabilities, as_of, now)
        s, v = found.statement, found.valued
        return PositionOut(
            as_of=s.ends_at, time_zone=now.zone_name, valued_on=found.valued_on,
            issuers=[IssuerOut.of(line) for line in v.lines], outstanding=s.closing_total,
            received_as_gifts=sum(line.received_as_gifts for line in v.lines), values=ValueOut.all(v.totals),
            unpriced=list(v.unpriced),
            reconciliation=ReconciliationOut(ledger_points=s.ledger_closing, statement_points=s.closing_total,
                                             difference=s.difference),
        )  # fmt: skip

    @api.get(
        "/liability/statements/{month}.csv", response_class=Response, responses={
            200: {"content": {"text/csv": {}}, "description": "One row per issuer, then the totals."}, **refusals},
        description=f"The month's statement as CSV (text that a spreadsheet would run is quoted).\n\n{DEFINITIONS}",
    )  # fmt: skip
    async def statement_csv(_ops: Ops, liabilities: Store, month: MonthText) -> Response:
        now = clock()
        found = StatementOut.of(await handle.month_statement(liabilities, Month.parse(month), now), now)
        name = f"liability-{found.month}.csv"
        return Response(to_csv(found), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})  # fmt: skip

    @api.get("/liability/statements/{month}", response_model=StatementOut, description=DEFINITIONS,
             responses=refusals)  # fmt: skip
    async def statement(_ops: Ops, liabilities: Store, month: MonthText) -> StatementOut:
        """The month-end liability statement of `month`, per issuer, reconciled to the ledger."""
        now = clock()
        return StatementOut.of(await handle.month_statement(liabilities, Month.parse(month), now), now)

    @api.get("/liability/forecast", response_model=ForecastOut, description=DEFINITIONS)
    async def forecast(_ops: Ops, liabilities: Store) -> ForecastOut:
        """Points that will expire in each of the next 24 months (this one included), and their value."""
        now = clock()
        found = await handle.expiry_forecast(liabilities, now)
        months = [ForecastMonthOut(month=m.month.label, points=m.points, values=ValueOut.all(m.values))
                  for m in found.months]  # fmt: skip
        return ForecastOut(as_of=now.now, time_zone=now.zone_name, valued_on=now.now.date(), months=months,
                           later_points=found.later_points, unpriced=list(found.unpriced))  # fmt: skip

    @api.get("/liability/rates", response_model=RatesOut, description=DEFINITIONS, responses=refusals)
    async def rates(
        _ops: Ops,
        liabilities: Store,
        from_: Annotated[MonthQuery, Query(alias="from")] = None,
        to: MonthQuery = None,
    ) -> RatesOut:
        """Breakage and redemption rates per month, `from` to `to` (default: the last 12 months, this one to date)."""
        now = clock()
        first, last = handle.parse_range(from_, to, now)
        found = await handle.monthly_rates(liabilities, first, last, now)
        months = [RatesMonthOut(month=r.month.label, issued=r.issued, redeemed=r.redeemed, expired=r.expired,
                                breakage_rate=r.breakage_rate, redemption_rate=r.redemption_rate)
                  for r in found]  # fmt: skip
        return RatesOut(time_zone=now.zone_name, months=months)

    @api.get("/issue-prices", response_model=PricesOut)
    async def prices(_ops: Ops, liabilities: Store) -> PricesOut:
        """Every issue price version: partners' from their earn contracts, the others set by ops."""
        return PricesOut(items=[PriceOut.of(p) for p in await handle.list_prices(liabilities)])

    @api.post("/issue-prices", response_model=PriceOut, status_code=status.HTTP_201_CREATED, responses={
        409: {"description": "That issuer already has a different price from that day."},
        422: {"description": "A partner's issuer, an unknown issuer, a day in the past or a bad price."}})  # fmt: skip
    async def set_price(caller: Ops, liabilities: Store, body: PriceIn) -> PriceOut:
        """Add a dated issue price for an issuer that is not a partner (the card, activities, the programme,
        migrated balances, ...); sending the same version again answers it again, audited once."""
        price = IssuePrice(body.issuer, body.valid_from, body.currency, body.price_minor_per_point)
        today = clock().now.astimezone(dt.UTC).date()
        return PriceOut.of(await handle.set_ops_price(liabilities, price, caller, today))

    return api
