"""Settlement: what each partner owes the programme, or is owed, for a period, derived from the ledger.

For partner P and a period [start, end) of posting time (UTC):

- points issued   = points debited from `partner:P:issued` − points credited back to it
  (refunds, clawbacks, reversals of expired points), priced at the contract's issue price;
- points redeemed = points credited to `partner:P:redeemed` − points debited from it,
  priced at the contract's redemption price;
- breakage        = expired points that P issued − expired points given back to `partner:P:issued`
  (a refund after expiry); P gets `breakage_rebate_share` of the issue price back for them;
- points exchanged = points that members exchanged out to P's own programme (its miles): captures of exchange
  holds, credited to `partner:P:redeemed` with reason `exchange_out`; a measure of their own (not counted as
  redeemed), priced like redemptions at the contract's redemption price: the programme pays P for the units
  P credited;
- net             = redemption amount + exchange amount + breakage rebate − issue amount: positive, the
  programme pays P; negative, P pays the programme.

Each point is priced with the contract version in force on the UTC day of its posting; a statement
has one line per version. Amounts are Decimal products rounded once per line to whole minor units
(half to even). Gifts move points between members and involve no partner money: they appear in
the programme summary only.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal
from enum import StrEnum

from partners.domain.earn import EarnContract, NoContractError, contract_on
from partners.domain.errors import PartnersError

GIFTS_NOTE = (
    "Gifts move points between members and involve no partner money: they are not part of a partner's "
    "statement and appear only in the programme summary."
)
MAX_RANGE = timedelta(days=366)
"""The longest arbitrary range a statement covers; longer ones are read month by month."""

_PARTNER_ID = r"[a-z0-9][a-z0-9-]{1,62}"
_PARTNER_ACCOUNT = re.compile(rf"^partner:(?P<partner>{_PARTNER_ID}):(?P<side>issued|redeemed)$")
_MONTH = re.compile(r"^(?P<year>[0-9]{4})-(?P<month>0[1-9]|1[0-2])$")
# Enough digits for points (< 10^19) x price (< 10^10, 4 places) x share (4 places), so products are exact.
_EXACT = Context(prec=60)
_WHOLE = Decimal(1)


class Measure(StrEnum):
    ISSUED = "issued"
    REDEEMED = "redeemed"
    BREAKAGE = "breakage"
    GIFTED = "gifted"
    EXCHANGED = "exchanged"


class Reason(StrEnum):
    """The ledger's transfer reasons that settlement reads beyond the accounts they touch."""

    EXPIRY = "expiry"
    EXPIRED_REVERSAL = "expired_reversal"
    GIFT = "gift"
    EXCHANGE_OUT = "exchange_out"
    """A captured exchange hold (points exchange): points exchanged out to the partner's programme."""


# --- errors -----------------------------------------------------------------------------------------------


class InvalidPeriodError(PartnersError):
    def __init__(self, reason: str) -> None:
        super().__init__(
            f"{reason}; ask for a month as period=YYYY-MM (UTC), or a range as from=...&to=... "
            f"(ISO 8601 with an offset, from before to, at most {MAX_RANGE.days} days)"
        )


class PeriodNotEndedError(PartnersError):
    def __init__(self, period: Period, ready_at: datetime) -> None:
        super().__init__(
            f"period {period.label} ends {_iso(period.end)}; it can be finalised from {_iso(ready_at)} on, "
            "when transfers posted before its end have had time to arrive"
        )


class LedgerBehindError(PartnersError):
    """The consumer cannot yet prove that it has every transfer posted before the period's end."""

    def __init__(self, period: Period, reasons: Sequence[str]) -> None:
        super().__init__(
            f"period {period.label} cannot be finalised yet: " + "; ".join(reasons) + ". Retry later, or send "
            '"force": true if the ledger has been quiet since the period ended (the reconciliation in '
            "`make verify` then proves the statements against the ledger)"
        )


class UnpricedPointsError(PartnersError):
    def __init__(self, partner_id: str, day: date) -> None:
        super().__init__(
            f"partner {partner_id!r} has points posted on {day.isoformat()} (UTC) but no contract version in force "
            "that day, so they cannot be priced; register the partner (POST /v1/partners) with a contract that "
            "covers that day"
        )


class UnsettleableTransferError(PartnersError):
    """A transfer that names a partner account settlement cannot read; it goes to the dead-letter topic."""

    def __init__(self, transfer_id: uuid.UUID, account: str) -> None:
        super().__init__(f"transfer {transfer_id}: {account[:100]!r} is not a partner account 'partner:<id>:<side>'")


# --- periods ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """Posting times from `start` (inclusive) to `end` (exclusive), UTC; `month` when it is one calendar month."""

    start: datetime
    end: datetime
    month: str | None = None

    @property
    def label(self) -> str:
        return self.month or f"{_iso(self.start)}/{_iso(self.end)}"

    @property
    def last_day(self) -> date:
        return (self.end - timedelta(microseconds=1)).date()


def month_period(text: str) -> Period:
    found = _MONTH.match(text)
    if found is None:
        raise InvalidPeriodError(f"period {text[:20]!r} is not a month YYYY-MM")
    year, month = int(found["year"]), int(found["month"])
    if not 1970 <= year <= 9998:
        raise InvalidPeriodError(f"period {text} is outside the years 1970 to 9998")
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return Period(start, end, text)


def range_period(start: datetime, end: datetime) -> Period:
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidPeriodError("a range needs timestamps with an offset, e.g. 2026-10-01T00:00:00Z")
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if start >= end:
        raise InvalidPeriodError(f"the range starts ({_iso(start)}) at or after its end ({_iso(end)})")
    if end - start > MAX_RANGE:
        raise InvalidPeriodError(f"the range is {(end - start).days} days long")
    return Period(start, end)


def requested_period(month: str | None, start: datetime | None, end: datetime | None) -> Period:
    """A month, or a range: exactly one of the two."""
    if month is not None:
        if start is not None or end is not None:
            raise InvalidPeriodError("period and from/to were both given")
        return month_period(month)
    if start is None or end is None:
        raise InvalidPeriodError("no period given")
    return range_period(start, end)


# --- what a ledger transfer means to settlement -----------------------------------------------------------


@dataclass(frozen=True)
class LedgerTransfer:
    transfer_id: uuid.UUID
    event_id: uuid.UUID
    debit_account: str
    credit_account: str
    amount: int
    reason: str
    posted_at: datetime
    issuer_account: str | None = None


@dataclass(frozen=True)
class Entry:
    """Signed points that one transfer adds to one measure of one partner (None: programme-wide)."""

    transfer_id: uuid.UUID
    partner_id: str | None
    measure: Measure
    points: int
    posted_at: datetime


def _partner_side(transfer_id: uuid.UUID, account: str) -> tuple[str, str] | None:
    if not account.startswith("partner:"):
        return None
    found = _PARTNER_ACCOUNT.match(account)
    if found is None:
        raise UnsettleableTransferError(transfer_id, account)
    return found["partner"], found["side"]


def entries_of(transfer: LedgerTransfer) -> tuple[Entry, ...]:
    """Everything settlement reads from one transfer; empty for transfers that concern no partner and no gift."""
    t = transfer
    found: list[Entry] = []

    def add(partner_id: str | None, measure: Measure, points: int) -> None:
        found.append(Entry(t.transfer_id, partner_id, measure, points, t.posted_at))

    debit = _partner_side(t.transfer_id, t.debit_account)
    credit = _partner_side(t.transfer_id, t.credit_account)
    redeemed = Measure.EXCHANGED if t.reason == Reason.EXCHANGE_OUT else Measure.REDEEMED
    sides = {"issued": Measure.ISSUED, "redeemed": redeemed}
    if debit is not None:
        add(debit[0], sides[debit[1]], t.amount if debit[1] == "issued" else -t.amount)
    if credit is not None:
        add(credit[0], sides[credit[1]], -t.amount if credit[1] == "issued" else t.amount)
    if t.reason == Reason.EXPIRY and t.issuer_account is not None:
        issuer = _partner_side(t.transfer_id, t.issuer_account)
        if issuer is not None and issuer[1] == "issued":
            add(issuer[0], Measure.BREAKAGE, t.amount)
    if t.reason == Reason.EXPIRED_REVERSAL and credit is not None and credit[1] == "issued":
        add(credit[0], Measure.BREAKAGE, -t.amount)
    if t.reason == Reason.GIFT:
        add(None, Measure.GIFTED, t.amount)
    return tuple(found)


@dataclass(frozen=True)
class DailyPoints:
    """The sum of a partner's entries of one measure on one UTC day of posting."""

    partner_id: str | None
    measure: Measure
    day: date
    points: int


# --- statements -------------------------------------------------------------------------------------------


def minor_units(amount: Decimal) -> int:
    """Round once, to whole minor units, half to even."""
    return int(amount.quantize(_WHOLE, rounding=ROUND_HALF_EVEN, context=_EXACT))


@dataclass(frozen=True)
class StatementLine:
    """The points of one contract version, priced with its terms."""

    contract_valid_from: date
    currency: str
    issue_price_minor_per_point: Decimal
    redemption_price_minor_per_point: Decimal
    breakage_rebate_share: Decimal
    points_issued: int
    issue_amount_minor: int
    points_redeemed: int
    redemption_amount_minor: int
    breakage_points: int
    breakage_rebate_minor: int
    points_exchanged: int = 0
    """Points exchanged out to the partner's programme, priced at the redemption price."""
    exchange_amount_minor: int = 0

    @property
    def net_minor(self) -> int:
        """Positive: the programme pays the partner; negative: the partner pays the programme."""
        return (
            self.redemption_amount_minor + self.exchange_amount_minor + self.breakage_rebate_minor
            - self.issue_amount_minor
        )  # fmt: skip

    @classmethod
    def priced(
        cls, contract: EarnContract, issued: int, redeemed: int, breakage: int, exchanged: int = 0
    ) -> StatementLine:
        issue_price = contract.issue_price_minor_per_point
        rebate = _EXACT.multiply(_EXACT.multiply(Decimal(breakage), issue_price), contract.breakage_rebate_share)
        return cls(
            contract_valid_from=contract.valid_from,
            currency=contract.currency,
            issue_price_minor_per_point=issue_price,
            redemption_price_minor_per_point=contract.redemption_price_minor_per_point,
            breakage_rebate_share=contract.breakage_rebate_share,
            points_issued=issued,
            issue_amount_minor=minor_units(_EXACT.multiply(Decimal(issued), issue_price)),
            points_redeemed=redeemed,
            redemption_amount_minor=minor_units(
                _EXACT.multiply(Decimal(redeemed), contract.redemption_price_minor_per_point)
            ),
            breakage_points=breakage,
            breakage_rebate_minor=minor_units(rebate),
            points_exchanged=exchanged,
            exchange_amount_minor=minor_units(
                _EXACT.multiply(Decimal(exchanged), contract.redemption_price_minor_per_point)
            ),
        )


@dataclass(frozen=True)
class Totals:
    """Sums of statement lines in one currency."""

    currency: str
    points_issued: int = 0
    issue_amount_minor: int = 0
    points_redeemed: int = 0
    redemption_amount_minor: int = 0
    breakage_points: int = 0
    breakage_rebate_minor: int = 0
    net_minor: int = 0
    points_exchanged: int = 0
    exchange_amount_minor: int = 0

    def plus(self, line: StatementLine | Totals) -> Totals:
        return Totals(
            self.currency,
            self.points_issued + line.points_issued,
            self.issue_amount_minor + line.issue_amount_minor,
            self.points_redeemed + line.points_redeemed,
            self.redemption_amount_minor + line.redemption_amount_minor,
            self.breakage_points + line.breakage_points,
            self.breakage_rebate_minor + line.breakage_rebate_minor,
            self.net_minor + line.net_minor,
            self.points_exchanged + line.points_exchanged,
            self.exchange_amount_minor + line.exchange_amount_minor,
        )


def totals_by_currency(items: Iterable[StatementLine | Totals]) -> tuple[Totals, ...]:
    sums: dict[str, Totals] = {}
    for item in items:
        sums[item.currency] = sums.get(item.currency, Totals(item.currency)).plus(item)
    return tuple(sums[c] for c in sorted(sums))


@dataclass(frozen=True)
class Statement:
    partner_id: str
    period: Period
    lines: tuple[StatementLine, ...]

    @property
    def totals(self) -> tuple[Totals, ...]:
        """One per currency; a partner whose contract never changed currency has one."""
        return totals_by_currency(self.lines)

    @property
    def points_issued(self) -> int:
        return sum(line.points_issued for line in self.lines)

    @property
    def points_redeemed(self) -> int:
        return sum(line.points_redeemed for line in self.lines)

    @property
    def breakage_points(self) -> int:
        return sum(line.breakage_points for line in self.lines)

    @property
    def points_exchanged(self) -> int:
        return sum(line.points_exchanged for line in self.lines)


def statement_for(
    partner_id: str, period: Period, daily: Iterable[DailyPoints], contracts: Sequence[EarnContract]
) -> Statement:
    """Price the partner's points of the period, one line per contract version that was in force.

    A partner without points in the period gets one zero line of the version in force on its last day.
    """
    versions = {c.valid_from: c for c in contracts}
    points: dict[date, dict[Measure, int]] = {}
    for item in daily:
        if item.partner_id != partner_id:
            continue
        try:
            version = contract_on(contracts, item.day).valid_from
        except NoContractError:
            raise UnpricedPointsError(partner_id, item.day) from None
        counts = points.setdefault(version, {})
        counts[item.measure] = counts.get(item.measure, 0) + item.points
    if not points and contracts_in_force(contracts, period):
        points[contract_on(contracts, period.last_day).valid_from] = {}
    lines = tuple(
        StatementLine.priced(
            versions[version],
            counts.get(Measure.ISSUED, 0),
            counts.get(Measure.REDEEMED, 0),
            counts.get(Measure.BREAKAGE, 0),
            counts.get(Measure.EXCHANGED, 0),
        )
        for version, counts in sorted(points.items())
    )
    return Statement(partner_id, period, lines)


def first_day(contracts: Sequence[EarnContract]) -> date:
    return min(c.valid_from for c in contracts)


def contracts_in_force(contracts: Sequence[EarnContract], period: Period) -> bool:
    """True when some version of the contract was in force on some day of the period."""
    return bool(contracts) and first_day(contracts) <= period.last_day


@dataclass(frozen=True)
class ProgrammeSummary:
    """Every partner's statement summed, and what moves no partner money (gifts)."""

    period: Period
    partners: int
    points_issued: int
    points_redeemed: int
    breakage_points: int
    gifted_points: int
    totals: tuple[Totals, ...]
    points_exchanged: int = 0


def programme_summary(period: Period, statements: Sequence[Statement], gifted_points: int) -> ProgrammeSummary:
    return ProgrammeSummary(
        period=period,
        partners=len(statements),
        points_issued=sum(s.points_issued for s in statements),
        points_redeemed=sum(s.points_redeemed for s in statements),
        breakage_points=sum(s.breakage_points for s in statements),
        gifted_points=gifted_points,
        totals=totals_by_currency(t for s in statements for t in s.totals),
        points_exchanged=sum(s.points_exchanged for s in statements),
    )


def gifted_points(daily: Iterable[DailyPoints]) -> int:
    return sum(d.points for d in daily if d.measure is Measure.GIFTED)


def partners_with_points(daily: Iterable[DailyPoints]) -> set[str]:
    return {d.partner_id for d in daily if d.partner_id is not None}


# --- when a month may be finalised ------------------------------------------------------------------------


@dataclass(frozen=True)
class PartitionPosition:
    """How far the consumer got on one partition: the next offset to read, the newest posting time it saw."""

    partition: int
    next_offset: int
    newest_posted_at: datetime | None = None


@dataclass(frozen=True)
class Watermark:
    """The consumer's positions and the topic's end offsets, read in that order, at `checked_at`."""

    checked_at: datetime
    positions: Mapping[int, PartitionPosition]
    end_offsets: Mapping[int, int]
    margin: timedelta

    @property
    def newest_posted_at(self) -> datetime | None:
        seen = [p.newest_posted_at for p in self.positions.values() if p.newest_posted_at is not None]
        return max(seen, default=None)

    def evidence(self) -> dict[str, object]:
        return {
            "checked_at": _iso(self.checked_at),
            "margin_seconds": self.margin.total_seconds(),
            "newest_posted_at": _iso(self.newest_posted_at) if self.newest_posted_at else None,
            "partitions": {
                str(p): {
                    "end_offset": end,
                    "next_offset": self.positions[p].next_offset if p in self.positions else 0,
                    "newest_posted_at": _iso(seen) if (seen := self._newest(p)) else None,
                }
                for p, end in sorted(self.end_offsets.items())
            },
        }

    def _newest(self, partition: int) -> datetime | None:
        position = self.positions.get(partition)
        return position.newest_posted_at if position else None


def check_finalisable(period: Period, watermark: Watermark, *, force: bool) -> None:
    """Raise unless the consumer provably holds every transfer posted before the period's end.

    The rule, with `margin` longer than the time from a transfer's posting stamp to its commit plus the
    clock skew between ledger writers (the outbox relay publishes in commit order, each partition in order):

    1. the period ended at least `margin` ago;
    2. the consumer has seen a transfer posted at or after end + margin: the ledger has published
       past the period, so every transfer posted before the end was handed to the broker before it;
    3. on every partition, the consumer has either seen a transfer posted at or after end + margin,
       or read everything the partition holds (its end offset), so nothing earlier waits there.

    `force` skips 2 and 3 (a quiet ledger never satisfies 2) but never 1 without margin: a month is
    finalised only after it ended.
    """
    horizon = period.end + watermark.margin
    if force:
        if watermark.checked_at < period.end:
            raise PeriodNotEndedError(period, period.end)
        return
    if watermark.checked_at < horizon:
        raise PeriodNotEndedError(period, horizon)
    reasons: list[str] = []
    newest = watermark.newest_posted_at
    if newest is None or newest < horizon:
        seen = f"the newest transfer consumed was posted {_iso(newest)}" if newest else "no transfer was consumed yet"
        reasons.append(f"{seen}, and one posted at or after {_iso(horizon)} is needed")
    behind = [
        f"partition {p} (read to offset {watermark.positions[p].next_offset if p in watermark.positions else 0} "
        f"of {end})"
        for p, end in sorted(watermark.end_offsets.items())
        if not _partition_past(watermark.positions.get(p), end, horizon)
    ]
    if behind:
        reasons.append("the consumer has not caught up on " + ", ".join(behind))
    if reasons:
        raise LedgerBehindError(period, reasons)


def _partition_past(position: PartitionPosition | None, end_offset: int, horizon: datetime) -> bool:
    if position is None:
        return end_offset == 0
    if position.newest_posted_at is not None and position.newest_posted_at >= horizon:
        return True
    return position.next_offset >= end_offset


def _iso(moment: datetime | None) -> str:
    if moment is None:
        return "never"
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
