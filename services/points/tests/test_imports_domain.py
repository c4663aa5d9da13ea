"""Batch import's reading and validation (points/domain/imports.py): no database."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from points.domain.imports import (
    BalanceRow,
    FileFormatError,
    Format,
    Kind,
    MemberRow,
    PurchaseRow,
    Refusal,
    Report,
    RowError,
    Validator,
    detect_format,
    legacy_member_id,
    records,
    row_cause,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def balances(*lines: str) -> list[BalanceRow | RowError]:
    validator = Validator(Kind.BALANCES, NOW)
    text = ["member,points,expires_at,earned_at,lot_id\n", *(line + "\n" for line in lines)]
    return [validator.check(n, raw) for n, raw in records(text, Format.CSV)]  # type: ignore[misc]


def refusal(row: object) -> Refusal:
    assert isinstance(row, RowError), row
    return row.refusal


def test_format_is_told_by_extension_then_by_content() -> None:
    assert detect_format("old.CSV", "{") is Format.CSV
    assert detect_format("old.ndjson", "member,points") is Format.JSON_LINES
    assert detect_format("export.txt", '  {"member": "L-1"}') is Format.JSON_LINES
    assert detect_format("export.txt", "member,points") is Format.CSV


def test_a_balance_row_becomes_a_lot_with_its_own_expiry_at_the_end_of_the_day() -> None:
    [row] = balances("L-1,1200,2030-06-30,2025-06-30T12:00:00+08:00,OLD-1")
    assert isinstance(row, BalanceRow)
    assert row.points == 1200
    assert row.expires_at == datetime(2030, 7, 1, tzinfo=UTC)
    assert row.earned_at == datetime(2025, 6, 30, 4, 0, tzinfo=UTC)
    assert row.key == "OLD-1"
    assert row.line == 2


def test_a_date_expires_at_the_end_of_that_day_in_the_programmes_zone() -> None:
    validator = Validator(Kind.BALANCES, NOW, ZoneInfo("Asia/Shanghai"))
    row = validator.check(2, {"member": "L-1", "points": "5", "expires_at": "2030-06-30"})
    assert isinstance(row, BalanceRow)
    assert row.expires_at == datetime(2030, 6, 30, 16, 0, tzinfo=UTC)  # midnight in Shanghai


def test_a_row_without_lot_id_is_keyed_by_member_expiry_and_earned_at() -> None:
    first, again = balances("L-1,10,2030-06-30,,", "L-1,20,2030-06-30,,")
    assert isinstance(first, BalanceRow)
    assert refusal(again) is Refusal.DUPLICATE


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("L-1,0,2030-06-30,,", Refusal.NEGATIVE_POINTS),
        ("L-1,-5,2030-06-30,,", Refusal.NEGATIVE_POINTS),
        ("L-1,1.5,2030-06-30,,", Refusal.BAD_VALUE),
        ("L-1,ten,2030-06-30,,", Refusal.BAD_VALUE),
        ("L-1,10,2020-06-30,,", Refusal.EXPIRED),
        ("L-1,10,30/06/2030,,", Refusal.BAD_VALUE),
        ("L-1,10,2030-06-30T00:00:00,,", Refusal.BAD_VALUE),  # no offset: which zone?
        ("L-1,10,2030-06-30,2027-01-01T00:00:00Z,", Refusal.BAD_VALUE),  # earned in the future
        ("L-1,10,,,", Refusal.MISSING),
        (",10,2030-06-30,,", Refusal.MISSING),
        ("card:not-a-token,10,2030-06-30,,", Refusal.BAD_VALUE),
        ("L 1,10,2030-06-30,,", Refusal.BAD_VALUE),
        ("L-1,10,2030-06-30", Refusal.MALFORMED),
        ("L-1,2000000000,2030-06-30,,", Refusal.BAD_VALUE),
    ],
)
def test_bad_balance_rows_are_refused_with_their_reason(line: str, expected: Refusal) -> None:
    assert refusal(balances(line)[0]) is expected


def test_an_identifier_may_name_the_member() -> None:
    [card, partner] = balances("card:tok_abcdefgh12,5,2030-01-01,,a", "partner:skymall:c-9,5,2030-01-01,,b")
    assert isinstance(card, BalanceRow)
    assert isinstance(partner, BalanceRow)


def test_json_lines_with_numbers_and_bad_lines() -> None:
    validator = Validator(Kind.BALANCES, NOW)
    text = ['{"member": "L-1", "points": 7, "expires_at": "2031-01-01"}\n', "not json\n", "\n", "[1]\n"]
    rows = [validator.check(n, raw) for n, raw in records(text, Format.JSON_LINES)]
    assert isinstance(rows[0], BalanceRow)
    assert rows[0].points == 7
    assert [refusal(r) for r in rows[1:]] == [Refusal.MALFORMED, Refusal.MALFORMED]
    assert [r.line for r in rows] == [1, 2, 4]


def test_members_with_identifiers_and_duplicates() -> None:
    validator = Validator(Kind.MEMBERS, NOW)
    text = [
        "legacy_id,display_name,identifiers,created_at\n",
        "L-1,Wang Fang,card:tok_abcdefgh12;partner:skymall:wf,2019-03-14T09:30:00+08:00\n",
        "L-1,Again,,\n",
        "L-2,Other,partner:skymall:wf,\n",
        "L-3,Bad,shop:x,\n",
        "L-4,Later,,2027-01-01\n",
    ]
    rows = [validator.check(n, raw) for n, raw in records(text, Format.CSV)]
    first = rows[0]
    assert isinstance(first, MemberRow)
    assert first.identifiers == ("card:tok_abcdefgh12", "partner:skymall:wf")
    assert first.member_id == legacy_member_id("L-1")
    assert [refusal(r) for r in rows[1:]] == [Refusal.DUPLICATE, Refusal.DUPLICATE, Refusal.BAD_VALUE,
                                              Refusal.BAD_VALUE]  # fmt: skip


def test_purchases_are_checked_and_keyed_by_partner_and_purchase() -> None:
    validator = Validator(Kind.PURCHASES, NOW)
    base = {"partner_id": "skymall", "customer_ref": "wf", "purchase_id": "P1", "amount_minor": 100,
            "currency": "CNY", "occurred_at": "2025-01-01T00:00:00Z"}  # fmt: skip
    ok = validator.check(1, base)
    assert isinstance(ok, PurchaseRow)
    assert ok.identifier == "partner:skymall:wf"
    assert refusal(validator.check(2, base)) is Refusal.DUPLICATE
    assert refusal(validator.check(3, {**base, "purchase_id": "P2", "currency": "cny"})) is Refusal.BAD_VALUE
    assert refusal(validator.check(4, {**base, "purchase_id": "P3", "amount_minor": 0})) is Refusal.BAD_VALUE
    assert isinstance(validator.check(5, {**base, "partner_id": "skyair"}), PurchaseRow)


def test_ids_are_stable_and_distinct_per_kind() -> None:
    assert legacy_member_id("L-1") == legacy_member_id("L-1") != legacy_member_id("L-2")
    assert row_cause(Kind.BALANCES, "k") == row_cause(Kind.BALANCES, "k") != row_cause(Kind.PURCHASES, "k")


def test_a_csv_needs_a_proper_header() -> None:
    with pytest.raises(FileFormatError):
        list(records([], Format.CSV))
    with pytest.raises(FileFormatError):
        list(records(["member,member\n"], Format.CSV))


def test_the_report_counts_by_reason_and_keeps_the_first_errors() -> None:
    report = Report(Kind.BALANCES, keep_errors=2)
    for line in (5, 6, 7):
        report.refuse(RowError(line, Refusal.EXPIRED, "old"))
    assert report.refused == {Refusal.EXPIRED: 3}
    assert [e.line for e in report.errors] == [5, 6]
    assert "  refused already_expired: 3" in report.lines()
