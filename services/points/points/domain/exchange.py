"""Points exchange: the bank's card points in, alliance points out to a partner programme's units (miles).

In. The card system debits its own reward points and says so (`CardPointsConverted`). They become alliance
points at the card-points rate in force at the moment the card system debited them (ops keep dated
versions: alliance points per card point, a Decimal). The credit rounds DOWN to whole points; the fraction
left over is stated on the conversion (it is not credited, and not carried to the next conversion). No rate
in force, or a conversion worth less than one point, is refused: the event goes to the dead-letter topic.
The points are a lot with the programme's normal validity (from the moment the card system debited them),
issued by `card-points:exchange`, credited to the member linked to the card token; a card not linked yet
credits its identifier's unclaimed account, as card purchases do, and linking it claims them. A repeat (the
same request id, under any event id) changes nothing: the transfer id derives from the request id.

Out. Ops define an exchange programme per partner: what its units are called, dated rates (units per
alliance point, a Decimal), a minimum, a step (the points asked for are a multiple of it) and a daily limit
(points per member per programme day, counting exchanges that are pending or captured, never released
ones). A request places a two-phase hold on the member's points (domain/holds.py); the partner's
confirmation captures it (to the partner's redeemed account, reason `exchange_out`; settlement prices these
points on their own figures of the statement line, at the redemption price of the contract in force), its
refusal or the hold's expiry releases it. Units are points x rate rounded down; a request worth less than one unit is
refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal
from enum import StrEnum

EXCHANGE_IN_REASON = "exchange_in"
EXCHANGE_OUT_REASON = "exchange_out"
"""The reason of the transfer that captures an exchange's hold; settlement prices these on their own line."""


class ExchangeRefusedError(ValueError):
    """A conversion or an exchange the rules do not allow; `reason` is a code for programs, the message says why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class DatedRate:
    valid_from: datetime
    rate: Decimal


def rate_at(rates: Iterable[DatedRate], at: datetime) -> DatedRate | None:
    """The version in force at `at`: the latest that starts at or before it; None before the first."""
    in_force = [r for r in rates if r.valid_from <= at]
    return max(in_force, key=lambda r: r.valid_from) if in_force else None


# --- in: card points ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Conversion:
    card_points: int
    rate: DatedRate
    points: int
    """Whole alliance points credited."""
    remainder: Decimal
    """The fraction of a point the card points were worth beyond `points` (0 <= remainder < 1), not credited."""


def convert_in(card_points: int, rates: Iterable[DatedRate], at: datetime) -> Conversion:
    """Card points debited at `at` as alliance points at the rate then in force, rounded down."""
    if card_points <= 0:
        raise ExchangeRefusedError("not_positive", f"card points must be a positive whole number, not {card_points}")
    rate = rate_at(rates, at)
    if rate is None:
        raise ExchangeRefusedError(
            "no_rate", f"no card-points rate is in force at {at.isoformat()}; ops add one (/v1/ops/card-points-rates)"
        )
    worth = Decimal(card_points) * rate.rate
    points = int(worth.to_integral_value(rounding=ROUND_FLOOR))
    if points < 1:
        raise ExchangeRefusedError(
            "below_one_point", f"{card_points} card points at {rate.rate} are worth {worth}, less than one point"
        )
    return Conversion(card_points, rate, points, worth - points)


# --- out: partner programmes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExchangeProgramme:
    partner_id: str
    units_name: str
    min_points: int
    step_points: int
    daily_limit_points: int
    rates: tuple[DatedRate, ...] = ()
    active: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.min_points <= self.daily_limit_points:
            raise ExchangeRefusedError("bad_programme", "the minimum is at least 1 and at most the daily limit")
        if self.step_points < 1:
            raise ExchangeRefusedError("bad_programme", "the step is at least 1 point")


@dataclass(frozen=True)
class Quote:
    points: int
    units: int
    rate: DatedRate


def quote(programme: ExchangeProgramme, points: int, at: datetime, exchanged_today: int) -> Quote:
    """What `points` are worth in the programme's units at `at`, or why they cannot be exchanged now.

    `exchanged_today` is what the member already has pending or captured with this programme on the
    programme day of `at`.
    """
    p = programme
    if not p.active:
        raise ExchangeRefusedError("programme_closed", f"exchanges to {p.partner_id} are closed")
    rate = rate_at(p.rates, at)
    if rate is None:
        raise ExchangeRefusedError("no_rate", f"no exchange rate to {p.partner_id} is in force yet")
    if points < p.min_points:
        raise ExchangeRefusedError("below_minimum", f"the minimum exchange is {p.min_points} points, not {points}")
    if points % p.step_points:
        raise ExchangeRefusedError("not_a_step", f"exchange a multiple of {p.step_points} points, not {points}")
    left = max(p.daily_limit_points - exchanged_today, 0)
    if points > left:
        raise ExchangeRefusedError(
            "daily_limit",
            f"the daily limit is {p.daily_limit_points} points; {left} left today (programme day)",
        )
    units = int((Decimal(points) * rate.rate).to_integral_value(rounding=ROUND_FLOOR))
    if units < 1:
        raise ExchangeRefusedError("below_one_unit", f"{points} points are worth less than one {p.units_name}")
    return Quote(points, units, rate)


class ExchangeStatus(StrEnum):
    """What became of an exchange; read from its hold (pending, posted, voided and why)."""

    PENDING = "pending"
    CAPTURED = "captured"
    REFUSED = "refused"
    EXPIRED = "expired"


def status_of(hold_status: str, void_reason: str | None) -> ExchangeStatus:
    if hold_status == "pending":
        return ExchangeStatus.PENDING
    if hold_status == "posted":
        return ExchangeStatus.CAPTURED
    return ExchangeStatus.EXPIRED if void_reason == "expired" else ExchangeStatus.REFUSED


class Decision(StrEnum):
    CONFIRM = "confirm"
    REFUSE = "refuse"


def settle(status: ExchangeStatus, decision: Decision) -> ExchangeStatus | None:
    """The status a partner's decision leads to, or None when it changes nothing (decided, or expired, already)."""
    if status is not ExchangeStatus.PENDING:
        return None
    return ExchangeStatus.CAPTURED if decision is Decision.CONFIRM else ExchangeStatus.REFUSED
