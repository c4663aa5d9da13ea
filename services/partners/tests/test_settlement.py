"""Settlement's rules, without a database: what a transfer means, how a statement is priced, when a month closes."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest

from partners.domain.earn import EarnContract
from partners.domain.settlement import (
    DailyPoints,
    InvalidPeriodError,
    LedgerBehindError,
    LedgerTransfer,
    Measure,
    PartitionPosition,
    PeriodNotEndedError,
    Statement,
    StatementLine,
    UnpricedPointsError,
    UnsettleableTransferError,
    Watermark,
    check_finalisable,
    entries_of,
    minor_units,
    month_period,
    programme_summary,
    range_period,
    requested_period,
    statement_for,
)

MEMBER = f"member:{uuid.uuid4()}"
OTHER_MEMBER = f"member:{uuid.uuid4()}"
AT = datetime(2026, 10, 14, 9, 30, tzinfo=UTC)
OCTOBER = month_period("2026-10")


def contract(valid_from: date = date(2020, 1, 1), **terms: object) -> EarnContract:
    fields: dict[str, object] = {
        "partner_id": "skymall",
        "valid_from": valid_from,
        "currency": "CNY",
        "points_per_unit": Decimal(1),
        "issue_price_minor_per_point": Decimal("0.5"),
        "redemption_price_minor_per_point": Decimal("0.4"),
        **terms,
    }
    return EarnContract(**fields)  # type: ignore[arg-type]


def transfer(debit: str, credit: str, amount: int, reason: str, issuer: str | None = None) -> LedgerTransfer:
    return LedgerTransfer(uuid.uuid4(), uuid.uuid4(), debit, credit, amount, reason, AT, issuer)


def measured(t: LedgerTransfer) -> list[tuple[str | None, Measure, int]]:
    return sorted(((e.partner_id, e.measure, e.points) for e in entries_of(t)), key=str)


def day(partner: str | None, measure: Measure, points: int, on: date = date(2026, 10, 14)) -> DailyPoints:
    return DailyPoints(partner, measure, on, points)


# --- what each transfer of the ledger means to settlement ------------------------------------------------


@pytest.mark.parametrize(
    ("debit", "credit", "reason", "issuer", "expected"),
    [
        ("partner:skymall:issued", MEMBER, "partner_purchase", None, [("skymall", Measure.ISSUED, 100)]),
        (MEMBER, "partner:skymall:issued", "partner_refund", None, [("skymall", Measure.ISSUED, -100)]),
        (f"receivable:{uuid.uuid4()}", "partner:skymall:issued", "clawback", None, [("skymall", Measure.ISSUED, -100)]),
        (
            "breakage",
            "partner:skymall:issued",
            "expired_reversal",
            None,
            [("skymall", Measure.BREAKAGE, -100), ("skymall", Measure.ISSUED, -100)],
        ),
        (MEMBER, "partner:skyair:redeemed", "redemption", None, [("skyair", Measure.REDEEMED, 100)]),
        ("partner:skyair:redeemed", MEMBER, "redemption_reversal", None, [("skyair", Measure.REDEEMED, -100)]),
        (MEMBER, "breakage", "expiry", "partner:skymall:issued", [("skymall", Measure.BREAKAGE, 100)]),
        (
            "unclaimed:partner:skymall:c-1",
            "breakage",
            "expiry",
            "partner:skymall:issued",
            [("skymall", Measure.BREAKAGE, 100)],
        ),
        (MEMBER, "breakage", "expiry", "card:issued", []),
        (MEMBER, "breakage", "expiry", None, []),
        (MEMBER, OTHER_MEMBER, "gift", "partner:skymall:issued", [(None, Measure.GIFTED, 100)]),
        ("card:issued", MEMBER, "card_purchase", None, []),
        (MEMBER, "card:issued", "card_reversal", None, []),
        ("unclaimed:card:tok", MEMBER, "claim", None, []),
        (MEMBER, f"receivable:{uuid.uuid4()}", "clawback_repayment", None, []),
    ],
)
def test_each_ledger_transfer_counts_for_the_right_partner_and_measure(debit, credit, reason, issuer, expected):
    assert measured(transfer(debit, credit, 100, reason, issuer)) == sorted(expected, key=str)


def test_a_transfer_naming_an_unreadable_partner_account_is_refused():
    with pytest.raises(UnsettleableTransferError, match="not a partner account"):
        entries_of(transfer("partner:Sky_Mall:issued", MEMBER, 5, "partner_purchase"))
    with pytest.raises(UnsettleableTransferError):
        entries_of(transfer(MEMBER, "partner:skymall:paid", 5, "redemption"))


def test_entries_carry_the_transfer_and_its_posting_time():
    t = transfer("partner:skymall:issued", MEMBER, 7, "partner_purchase")
    [entry] = entries_of(t)
    assert (entry.transfer_id, entry.posted_at) == (t.transfer_id, AT)


# --- pricing ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "expected"),
    [("2.5", 2), ("3.5", 4), ("-2.5", -2), ("-3.5", -4), ("2.5001", 3), ("0.4999", 0), ("7", 7)],
)
def test_amounts_round_half_to_even_once(amount, expected):
    assert minor_units(Decimal(amount)) == expected


def test_a_statement_has_one_line_per_contract_version_in_force():
    old = contract(date(2020, 1, 1))
    new = contract(
        date(2026, 10, 15),
        issue_price_minor_per_point=Decimal("0.6"),
        redemption_price_minor_per_point=Decimal("0.45"),
    )
    daily = [
        day("skymall", Measure.ISSUED, 1_000, date(2026, 10, 1)),
        day("skymall", Measure.ISSUED, 500, date(2026, 10, 14)),
        day("skymall", Measure.ISSUED, 2_000, date(2026, 10, 15)),
        day("skymall", Measure.REDEEMED, 300, date(2026, 10, 31)),
        day("skyair", Measure.ISSUED, 9_999, date(2026, 10, 20)),  # another partner's points are not ours
    ]
    statement = statement_for("skymall", OCTOBER, daily, [new, old])
    assert [line.contract_valid_from for line in statement.lines] == [date(2020, 1, 1), date(2026, 10, 15)]
    first, second = statement.lines
    assert (first.points_issued, first.issue_amount_minor, first.points_redeemed) == (1_500, 750, 0)
    assert (second.points_issued, second.issue_amount_minor) == (2_000, 1_200)
    assert (second.points_redeemed, second.redemption_amount_minor) == (300, 135)
    assert statement.points_issued == 3_500
    assert [(t.currency, t.issue_amount_minor, t.net_minor) for t in statement.totals] == [("CNY", 1_950, -1_815)]


def test_each_line_rounds_once_not_each_day():
    # 3 days of 1 point at 0.5: rounding per day would give 0+0+0 (half to even) or 1+1+1; once per line gives 2.
    daily = [day("skymall", Measure.ISSUED, 1, date(2026, 10, d)) for d in (1, 2, 3)]
    [line] = statement_for("skymall", OCTOBER, daily, [contract()]).lines
    assert line.issue_amount_minor == 2


def test_net_is_positive_when_the_programme_owes_the_partner_and_negative_when_the_partner_owes():
    terms = [contract()]
    redeemer = statement_for("skymall", OCTOBER, [day("skymall", Measure.REDEEMED, 1_000)], terms)
    issuer = statement_for("skymall", OCTOBER, [day("skymall", Measure.ISSUED, 1_000)], terms)
    assert redeemer.lines[0].net_minor == 400
    assert issuer.lines[0].net_minor == -500


def test_breakage_refunds_the_contract_share_of_the_issue_price():
    terms = [contract(breakage_rebate_share=Decimal("0.25"))]
    daily = [day("skymall", Measure.ISSUED, 10_000), day("skymall", Measure.BREAKAGE, 1_000)]
    [line] = statement_for("skymall", OCTOBER, daily, terms).lines
    assert (line.breakage_points, line.breakage_rebate_minor) == (1_000, 125)
    assert line.net_minor == 125 - 5_000
    # 3 points x 0.5 x 0.5 = 0.75: rounded once, to 1.
    [small] = statement_for(
        "skymall", OCTOBER, [day("skymall", Measure.BREAKAGE, 3)], [contract(breakage_rebate_share=Decimal("0.5"))]
    ).lines
    assert small.breakage_rebate_minor == 1


def test_without_a_rebate_share_breakage_is_shown_but_earns_nothing():
    [line] = statement_for("skymall", OCTOBER, [day("skymall", Measure.BREAKAGE, 1_000)], [contract()]).lines
    assert (line.breakage_points, line.breakage_rebate_minor, line.net_minor) == (1_000, 0, 0)


def test_large_amounts_are_exact():
    price, share = Decimal("9999999999.9999"), Decimal("0.3333")
    line = StatementLine.priced(
        contract(issue_price_minor_per_point=price, breakage_rebate_share=share), 10**15, 0, 10**15 - 1
    )
    # Fractions as the oracle: Decimal's default 28 digits would round these products before the final rounding.
    assert line.issue_amount_minor == 10**15 * Fraction(price)
    exact_rebate = (10**15 - 1) * Fraction(price) * Fraction(share)
    assert line.breakage_rebate_minor == round(exact_rebate)  # round() on a Fraction is half to even
    assert exact_rebate.denominator != 1


def test_a_partner_without_points_gets_one_zero_line_of_the_version_in_force():
    statement = statement_for("skymall", OCTOBER, [], [contract(date(2020, 1, 1)), contract(date(2026, 10, 20))])
    [line] = statement.lines
    assert line.contract_valid_from == date(2026, 10, 20)
    assert (line.points_issued, line.net_minor) == (0, 0)


def test_a_partner_whose_contract_starts_after_the_period_gets_no_line():
    assert statement_for("skymall", OCTOBER, [], [contract(date(2026, 11, 1))]).lines == ()


def test_points_on_a_day_without_a_contract_cannot_be_priced():
    daily = [day("skymall", Measure.ISSUED, 10, date(2026, 10, 3))]
    with pytest.raises(UnpricedPointsError, match="2026-10-03"):
        statement_for("skymall", OCTOBER, daily, [contract(date(2026, 10, 4))])
    with pytest.raises(UnpricedPointsError, match="register the partner"):
        statement_for("skymall", OCTOBER, daily, [])


def test_a_currency_change_gives_one_total_per_currency():
    daily = [day("skymall", Measure.ISSUED, 100, date(2026, 10, 1)), day("skymall", Measure.ISSUED, 100)]
    terms = [contract(), contract(date(2026, 10, 10), currency="HKD")]
    statement = statement_for("skymall", OCTOBER, daily, terms)
    assert [(t.currency, t.points_issued) for t in statement.totals] == [("CNY", 100), ("HKD", 100)]


def test_the_programme_summary_is_the_sum_of_the_statements_plus_gifts():
    a = statement_for("skymall", OCTOBER, [day("skymall", Measure.ISSUED, 100)], [contract()])
    b = statement_for("skyair", OCTOBER, [day("skyair", Measure.REDEEMED, 40)], [contract(partner_id="skyair")])
    summary = programme_summary(OCTOBER, [a, b], gifted_points=7)
    assert (summary.partners, summary.points_issued, summary.points_redeemed, summary.gifted_points) == (2, 100, 40, 7)
    [totals] = summary.totals
    assert totals.net_minor == a.totals[0].net_minor + b.totals[0].net_minor == -50 + 16


def test_a_statement_with_no_lines_sums_to_nothing():
    statement = Statement("skymall", OCTOBER, ())
    assert (statement.points_issued, statement.totals) == (0, ())


# --- periods ---------------------------------------------------------------------------------------------


def test_a_month_is_its_first_instant_to_the_next_months_first_instant_utc():
    assert (OCTOBER.start, OCTOBER.end) == (datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC))
    december = month_period("2026-12")
    assert december.end == datetime(2027, 1, 1, tzinfo=UTC)
    assert december.last_day == date(2026, 12, 31)
    assert OCTOBER.label == "2026-10"


@pytest.mark.parametrize("text", ["2026-13", "2026-00", "2026-1", "26-10", "2026-10-01", "", "1969-12"])
def test_a_malformed_month_is_refused(text):
    with pytest.raises(InvalidPeriodError, match="YYYY-MM"):
        month_period(text)


def test_a_range_is_normalised_to_utc_and_bounded():
    start = datetime.fromisoformat("2026-10-01T08:00:00+08:00")
    period = range_period(start, start + timedelta(days=2))
    assert period.start == datetime(2026, 10, 1, tzinfo=UTC)
    assert period.label == "2026-10-01T00:00:00Z/2026-10-03T00:00:00Z"
    with pytest.raises(InvalidPeriodError, match="at or after its end"):
        range_period(start, start)
    with pytest.raises(InvalidPeriodError, match="367 days"):
        range_period(start, start + timedelta(days=367))
    with pytest.raises(InvalidPeriodError, match="offset"):
        range_period(datetime(2026, 10, 1), datetime(2026, 10, 2))


def test_a_request_names_a_month_or_a_range_not_both():
    assert requested_period("2026-10", None, None) == OCTOBER
    with pytest.raises(InvalidPeriodError, match="both"):
        requested_period("2026-10", AT, None)
    with pytest.raises(InvalidPeriodError, match="no period"):
        requested_period(None, AT, None)


# --- when a month may be finalised -----------------------------------------------------------------------

MARGIN = timedelta(minutes=5)
HORIZON = OCTOBER.end + MARGIN


def watermark(now: datetime, positions: dict[int, tuple[int, datetime | None]], ends: dict[int, int]) -> Watermark:
    return Watermark(now, {p: PartitionPosition(p, o, at) for p, (o, at) in positions.items()}, ends, MARGIN)


def test_a_month_is_finalised_only_after_its_end_and_the_margin():
    late = watermark(HORIZON - timedelta(seconds=1), {0: (5, HORIZON)}, {0: 5})
    with pytest.raises(PeriodNotEndedError, match="from 2026-11-01T00:05:00Z"):
        check_finalisable(OCTOBER, late, force=False)
    with pytest.raises(PeriodNotEndedError):
        check_finalisable(OCTOBER, watermark(OCTOBER.end - timedelta(seconds=1), {}, {}), force=True)
    check_finalisable(OCTOBER, watermark(OCTOBER.end, {}, {}), force=True)  # force waives the proof, not the end


def test_a_month_is_finalised_once_every_partition_is_past_its_end_or_fully_read():
    now = HORIZON + timedelta(days=1)
    # partition 0 saw a transfer past the horizon; partition 1 is read to its end; partition 2 never had a record
    check_finalisable(OCTOBER, watermark(now, {0: (10, HORIZON), 1: (7, AT)}, {0: 12, 1: 7, 2: 0}), force=False)


def test_a_month_waits_for_a_partition_that_is_behind():
    now = HORIZON + timedelta(days=1)
    behind = watermark(now, {0: (10, HORIZON), 1: (6, AT)}, {0: 12, 1: 7, 2: 3})
    with pytest.raises(
        LedgerBehindError, match=r"partition 1 \(read to offset 6 of 7\), partition 2 \(read to offset 0 of 3\)"
    ):
        check_finalisable(OCTOBER, behind, force=False)
    check_finalisable(OCTOBER, behind, force=True)


def test_a_month_waits_until_the_ledger_published_past_its_end():
    now = HORIZON + timedelta(days=1)
    # everything read, but the newest transfer was posted before end + margin: the relay may still hold older ones
    quiet = watermark(now, {0: (3, HORIZON - timedelta(microseconds=1))}, {0: 3})
    with pytest.raises(LedgerBehindError, match="one posted at or after 2026-11-01T00:05:00Z is needed"):
        check_finalisable(OCTOBER, quiet, force=False)
    with pytest.raises(LedgerBehindError, match="no transfer was consumed yet"):
        check_finalisable(OCTOBER, watermark(now, {}, {}), force=False)


def test_the_watermark_evidence_names_every_partition():
    evidence = watermark(HORIZON, {0: (3, HORIZON)}, {0: 3, 1: 0}).evidence()
    assert evidence["newest_posted_at"] == "2026-11-01T00:05:00Z"
    assert evidence["partitions"] == {
        "0": {"end_offset": 3, "next_offset": 3, "newest_posted_at": "2026-11-01T00:05:00Z"},
        "1": {"end_offset": 0, "next_offset": 0, "newest_posted_at": None},
    }
