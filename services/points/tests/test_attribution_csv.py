"""The attribution report as CSV: a header row, one row per group and currency, no formula a spreadsheet would run."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from points.api.attribution import CSV_COLUMNS, ReportOut, to_csv
from points.api.spreadsheets import safe_cell
from points.domain.attribution import AttributionReport, AttributionRow, Grouping, Spend, report_period


def test_text_that_a_spreadsheet_would_run_is_quoted_and_numbers_stay_numbers():
    for hostile in ('=HYPERLINK("x")', "+1", "-cmd", "@SUM(A1)", "\tx", "\rx"):
        assert safe_cell(hostile) == "'" + hostile
    assert safe_cell("sh-pudong") == "sh-pudong"
    assert safe_cell(-200) == -200, "a negative incremental spend is a number, not a formula"
    assert safe_cell(None) == ""


def test_one_row_per_group_and_currency_after_the_header():
    period = report_period(date(2026, 11, 1), date(2026, 11, 30), ZoneInfo("Asia/Shanghai"))
    rows = [
        AttributionRow("=evil", reach=4, opens=3, responders=1, points_granted=100,
                       spend={"CNY": Spend("CNY", 10_000, -200), "USD": Spend("USD", 5)}),
        AttributionRow(None, reach=2),
    ]  # fmt: skip
    report = AttributionReport(Grouping.STAFF, period, datetime(2026, 12, 1, tzinfo=UTC), rows)
    lines = list(csv.reader(io.StringIO(to_csv(ReportOut.of(report)))))
    assert tuple(lines[0]) == CSV_COLUMNS
    assert lines[1:] == [
        ["staff", "2026-11-01", "2026-11-30", "'=evil", "4", "3", "1", "0.2500", "100", "CNY", "10000", "-200"],
        ["staff", "2026-11-01", "2026-11-30", "'=evil", "4", "3", "1", "0.2500", "100", "USD", "5", ""],
        ["staff", "2026-11-01", "2026-11-30", "", "2", "0", "0", "0.0000", "0", "", "", ""],
    ]
    assert ReportOut.of(report).model_dump(by_alias=True)["from"] == date(2026, 11, 1)
