"""Reconcile every finalised settlement statement with the ledger: `python -m tools.reconcile`.

The partners service derives statements from the TransferPosted events it consumed. This tool
recomputes each finalised statement's points straight from the points database's `transfers`
table, by posting time, with its own SQL (not the partners service's code), and compares:

- per partner and month: points issued, points redeemed, breakage (from both the statement and
  the sum of its lines), and that a partner with points in the ledger has a statement at all;
- per month: the gifted points of the programme summary;
- per line: amounts equal points x price (x rebate share), rounded half to even, and net adds up.

Prints every mismatch and exits 1; exits 0 when all agree, 2 when a database cannot be read.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal

import asyncpg

from loyalty_runtime.settings import LOCAL_POSTGRES

DEFAULT_POINTS_DB = f"{LOCAL_POSTGRES}/loyalty_points"
DEFAULT_PARTNERS_DB = f"{LOCAL_POSTGRES}/loyalty_partners"

# Per partner: issued = debits − credits of partner:P:issued; redeemed = credits − debits of partner:P:redeemed
# except exchanges out (reason exchange_out), which are `exchanged`; breakage = expiries of points P issued −
# expired points given back to partner:P:issued.
LEDGER_FIGURES = r"""
WITH t AS (
    SELECT debit_account, credit_account, amount, reason, memo->>'issuer' AS issuer
      FROM transfers
     WHERE posted_at >= $1 AND posted_at < $2
), figures (partner_id, measure, points) AS (
    SELECT substring(debit_account FROM '^partner:(.+):issued$'), 'issued', amount
      FROM t WHERE debit_account ~ '^partner:[^:]+:issued$'
    UNION ALL
    SELECT substring(credit_account FROM '^partner:(.+):issued$'), 'issued', -amount
      FROM t WHERE credit_account ~ '^partner:[^:]+:issued$'
    UNION ALL
    SELECT substring(credit_account FROM '^partner:(.+):redeemed$'),
           CASE WHEN reason = 'exchange_out' THEN 'exchanged' ELSE 'redeemed' END, amount
      FROM t WHERE credit_account ~ '^partner:[^:]+:redeemed$'
    UNION ALL
    SELECT substring(debit_account FROM '^partner:(.+):redeemed$'),
           CASE WHEN reason = 'exchange_out' THEN 'exchanged' ELSE 'redeemed' END, -amount
      FROM t WHERE debit_account ~ '^partner:[^:]+:redeemed$'
    UNION ALL
    SELECT substring(issuer FROM '^partner:(.+):issued$'), 'breakage', amount
      FROM t WHERE reason = 'expiry' AND issuer ~ '^partner:[^:]+:issued$'
    UNION ALL
    SELECT substring(credit_account FROM '^partner:(.+):issued$'), 'breakage', -amount
      FROM t WHERE reason = 'expired_reversal' AND credit_account ~ '^partner:[^:]+:issued$'
    UNION ALL
    SELECT NULL, 'gifted', amount FROM t WHERE reason = 'gift'
)
SELECT partner_id, measure, sum(points)::bigint AS points FROM figures GROUP BY 1, 2
"""

FINALISED_RUNS = "SELECT period, period_start, period_end, gifted_points FROM settlement_runs ORDER BY period"

FINALISED_STATEMENTS = """
SELECT s.partner_id, s.points_issued, s.points_redeemed, s.breakage_points, s.points_exchanged,
       coalesce(sum(l.points_issued), 0)::bigint AS line_issued,
       coalesce(sum(l.points_redeemed), 0)::bigint AS line_redeemed,
       coalesce(sum(l.breakage_points), 0)::bigint AS line_breakage,
       coalesce(sum(l.points_exchanged), 0)::bigint AS line_exchanged
  FROM settlement_statements s LEFT JOIN settlement_lines l USING (period, partner_id)
 WHERE s.period = $1
 GROUP BY s.partner_id, s.points_issued, s.points_redeemed, s.breakage_points, s.points_exchanged
"""

FINALISED_LINES = """
SELECT partner_id, contract_valid_from, issue_price_minor_per_point, redemption_price_minor_per_point,
       breakage_rebate_share, points_issued, issue_amount_minor, points_redeemed, redemption_amount_minor,
       breakage_points, breakage_rebate_minor, net_minor, points_exchanged, exchange_amount_minor
  FROM settlement_lines WHERE period = $1 ORDER BY partner_id, contract_valid_from
"""

MEASURES = ("issued", "redeemed", "breakage", "exchanged")
_EXACT = Context(prec=60)


@dataclass(frozen=True)
class Mismatch:
    period: str
    partner_id: str | None
    figure: str
    found: int
    expected: int
    source: str = "ledger"
    """What `expected` comes from: the ledger, the statement's own total, or the line's prices."""

    def __str__(self) -> str:
        who = self.partner_id or "programme"
        return f"{self.period} {who}: {self.figure} is {self.found}, the {self.source} says {self.expected}"


@dataclass(frozen=True)
class Report:
    periods: int
    statements: int
    mismatches: list[Mismatch]


async def reconcile(points_dsn: str, partners_dsn: str) -> Report:
    """Compare every finalised statement with the ledger; each database read in one snapshot."""
    points = await asyncpg.connect(points_dsn)
    partners = await asyncpg.connect(partners_dsn)
    try:
        async with (
            points.transaction(isolation="repeatable_read", readonly=True),
            partners.transaction(isolation="repeatable_read", readonly=True),
        ):
            mismatches: list[Mismatch] = []
            runs = await partners.fetch(FINALISED_RUNS)
            statements = 0
            for run in runs:
                found = await _reconcile_period(points, partners, run)
                statements += found[0]
                mismatches.extend(found[1])
            return Report(len(runs), statements, mismatches)
    finally:
        await points.close()
        await partners.close()


async def _reconcile_period(
    points: asyncpg.Connection, partners: asyncpg.Connection, run: asyncpg.Record
) -> tuple[int, list[Mismatch]]:
    period: str = run["period"]
    ledger = await ledger_figures(points, run["period_start"], run["period_end"])
    stored = {r["partner_id"]: r for r in await partners.fetch(FINALISED_STATEMENTS, period)}
    found: list[Mismatch] = []
    for partner_id in sorted({p for p, _ in ledger if p is not None} | set(stored)):
        row = stored.get(partner_id)
        for measure in MEASURES:
            in_ledger = ledger.get((partner_id, measure), 0)
            if row is None:
                if in_ledger:
                    found.append(Mismatch(period, partner_id, f"points {measure} (no statement)", 0, in_ledger))
                continue
            column = {"issued": "points_issued", "redeemed": "points_redeemed", "breakage": "breakage_points",
                      "exchanged": "points_exchanged"}[measure]  # fmt: skip
            if row[column] != in_ledger:
                found.append(Mismatch(period, partner_id, f"points {measure}", row[column], in_ledger))
            if row[f"line_{measure}"] != row[column]:
                found.append(
                    Mismatch(
                        period,
                        partner_id,
                        f"points {measure} summed over its lines",
                        row[f"line_{measure}"],
                        row[column],
                        "statement",
                    )
                )
    gifted = ledger.get((None, "gifted"), 0)
    if run["gifted_points"] != gifted:
        found.append(Mismatch(period, None, "points gifted", run["gifted_points"], gifted))
    for line in await partners.fetch(FINALISED_LINES, period):
        found.extend(_line_arithmetic(period, line))
    return len(stored), found


async def ledger_figures(
    points: asyncpg.Connection, start: datetime, end: datetime
) -> dict[tuple[str | None, str], int]:
    """{(partner id, measure): points} of the transfers posted in [start, end); (None, 'gifted') for gifts."""
    return {(r["partner_id"], r["measure"]): r["points"] for r in await points.fetch(LEDGER_FIGURES, start, end)}


def _line_arithmetic(period: str, line: asyncpg.Record) -> list[Mismatch]:
    figure = f"line {line['contract_valid_from']}"
    issue_price: Decimal = line["issue_price_minor_per_point"]
    expected = {
        "issue_amount_minor": _minor(line["points_issued"], issue_price),
        "redemption_amount_minor": _minor(line["points_redeemed"], line["redemption_price_minor_per_point"]),
        "breakage_rebate_minor": _minor(line["breakage_points"], issue_price, line["breakage_rebate_share"]),
        "exchange_amount_minor": _minor(line["points_exchanged"], line["redemption_price_minor_per_point"]),
    }
    expected["net_minor"] = (
        line["redemption_amount_minor"] + line["exchange_amount_minor"] + line["breakage_rebate_minor"]
        - line["issue_amount_minor"]
    )  # fmt: skip
    return [
        Mismatch(period, line["partner_id"], f"{figure} {column}", line[column], value, "price times points")
        for column, value in expected.items()
        if line[column] != value
    ]


def _minor(points: int, *factors: Decimal) -> int:
    amount = Decimal(points)
    for factor in factors:
        amount = _EXACT.multiply(amount, factor)
    return int(amount.quantize(Decimal(1), rounding=ROUND_HALF_EVEN, context=_EXACT))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--points-db",
        default=os.environ.get("POINTS_DATABASE_URL", DEFAULT_POINTS_DB),
        help="the points service's database (env POINTS_DATABASE_URL)",
    )
    parser.add_argument(
        "--partners-db",
        default=os.environ.get("PARTNERS_DATABASE_URL", DEFAULT_PARTNERS_DB),
        help="the partners service's database (env PARTNERS_DATABASE_URL)",
    )
    args = parser.parse_args(argv)
    try:
        report = asyncio.run(reconcile(args.points_db, args.partners_db))
    except asyncpg.UndefinedTableError as error:
        print(f"cannot reconcile settlement: {error}; start the system with `make up` (it migrates)", file=sys.stderr)
        return 2
    except (OSError, asyncpg.PostgresError) as error:
        print(f"cannot reconcile settlement: {type(error).__name__}: {error}", file=sys.stderr)
        return 2
    for mismatch in report.mismatches:
        print(f"FAIL  {mismatch}")
    if report.mismatches:
        print(f"\n{len(report.mismatches)} settlement figure(s) disagree with the ledger.", file=sys.stderr)
        return 1
    print(
        f"ok    settlement: {report.statements} finalised statement(s) in {report.periods} month(s) "
        "reconcile with the ledger"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
