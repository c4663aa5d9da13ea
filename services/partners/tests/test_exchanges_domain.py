"""A partner decides an exchange once (partners.domain.exchanges) and settlement prices exchanged points."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from partners.domain.earn import EarnContract
from partners.domain.exchanges import (
    Decision,
    DecisionConflictError,
    ExchangeRequest,
    ExchangeStatus,
    decide,
)
from partners.domain.settlement import DailyPoints, LedgerTransfer, Measure, entries_of, month_period, statement_for

NOW = datetime(2026, 11, 5, 12, tzinfo=UTC)
REQUEST = ExchangeRequest(uuid.uuid4(), "skyair", uuid.uuid4(), "SK123", 1000, 800, "miles", Decimal("0.8"),
                          NOW - timedelta(hours=1), NOW + timedelta(hours=71))  # fmt: skip


def test_a_pending_exchange_is_confirmed_or_refused() -> None:
    assert decide(REQUEST, Decision.CONFIRM, NOW) is ExchangeStatus.CONFIRMED
    assert decide(REQUEST, Decision.REFUSE, NOW) is ExchangeStatus.REFUSED


@pytest.mark.parametrize(
    ("status", "reason"), [(ExchangeStatus.CONFIRMED, "already_confirmed"), (ExchangeStatus.REFUSED, "already_refused")]
)
def test_a_second_decision_is_a_conflict_whatever_it_says(status: ExchangeStatus, reason: str) -> None:
    decided = dataclasses.replace(REQUEST, status=status, partner_reference="R1", refuse_reason="no")
    for decision in Decision:
        with pytest.raises(DecisionConflictError) as conflict:
            decide(decided, decision, NOW)
        assert conflict.value.reason == reason


def test_a_decision_after_the_hold_expired_is_a_conflict() -> None:
    assert REQUEST.status_at(REQUEST.expires_at) is ExchangeStatus.EXPIRED
    with pytest.raises(DecisionConflictError) as conflict:
        decide(REQUEST, Decision.CONFIRM, REQUEST.expires_at)
    assert conflict.value.reason == "expired"


def test_an_exchange_capture_is_exchanged_not_redeemed() -> None:
    captured = LedgerTransfer(uuid.uuid4(), uuid.uuid4(), "member:" + str(uuid.uuid4()), "partner:skyair:redeemed",
                              600, "exchange_out", NOW)  # fmt: skip
    (entry,) = entries_of(captured)
    assert (entry.partner_id, entry.measure, entry.points) == ("skyair", Measure.EXCHANGED, 600)
    redeemed = dataclasses.replace(captured, reason="redemption")
    assert entries_of(redeemed)[0].measure is Measure.REDEEMED


def test_exchanged_points_are_their_own_line_figures_priced_at_the_redemption_price_and_in_net() -> None:
    contract = EarnContract(partner_id="skyair", valid_from=date(2026, 1, 1), points_per_unit=Decimal(1),
                            currency="CNY", issue_price_minor_per_point=Decimal("1.0"),
                            redemption_price_minor_per_point=Decimal("0.9"),
                            breakage_rebate_share=Decimal("0.5"))  # fmt: skip
    day = NOW.date()
    daily = [DailyPoints("skyair", Measure.ISSUED, day, 1000), DailyPoints("skyair", Measure.REDEEMED, day, 100),
             DailyPoints("skyair", Measure.EXCHANGED, day, 601)]  # fmt: skip
    (line,) = statement_for("skyair", month_period("2026-11"), daily, [contract]).lines
    assert (line.points_redeemed, line.redemption_amount_minor) == (100, 90)
    assert (line.points_exchanged, line.exchange_amount_minor) == (601, 541)  # 540.9 rounds half to even
    assert line.net_minor == 90 + 541 - 1000
