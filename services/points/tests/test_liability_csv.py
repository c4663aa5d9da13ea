"""The liability statement as CSV: one row per issuer, a total row per currency, formulas quoted."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from points.api.liability import StatementOut, to_csv
from points.domain.liability import Flow, IssuePrice, Month, PriceBook, by_issuer, statement_of
from points.handlers.liability import Clock, ValuedStatement

ZONE = ZoneInfo("Asia/Shanghai")


def exported(issuer: str) -> list[dict[str, str]]:
    month = Month(2026, 3)
    statement = statement_of(month, month.start(ZONE), month.end(ZONE), {(issuer, False): 10},
                             [Flow(issuer, False, "partner_issued", 5)], ledger_closing=15, closed=True)  # fmt: skip
    prices = PriceBook([IssuePrice(issuer, date(2026, 1, 1), "CNY", Decimal("0.5"))])
    valued = ValuedStatement(statement, by_issuer(statement.lines, prices, date(2026, 3, 31)), date(2026, 3, 31))
    clock = Clock(ZONE, datetime(2026, 5, 1, tzinfo=UTC), timedelta(minutes=5))
    return list(csv.DictReader(io.StringIO(to_csv(StatementOut.of(valued, clock)))))


def test_one_row_per_issuer_then_the_totals_with_their_value() -> None:
    rows = exported("partner:skymall:issued")
    assert [(r["issuer"], r["opening"], r["issued"], r["closing"], r["closing_value_minor"]) for r in rows] == [
        ("partner:skymall:issued", "10", "5", "15", "8"),  # 7.5 rounds half to even
        ("total", "10", "5", "15", "8"),
    ]
    assert {r["status"] for r in rows} == {"closed"}


def test_text_a_spreadsheet_would_run_is_quoted() -> None:
    rows = exported('=HYPERLINK("http://evil")')
    assert rows[0]["issuer"].startswith("'=")
