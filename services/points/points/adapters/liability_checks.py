"""The liability statement's reconciliation as invariant queries (adapters/invariants.py, `make verify`).

Each recomputes from scratch what the statements read incrementally: the position at an instant from the lots and
their debits, and the lot-holding accounts' total at that instant from the transfers alone. The instants are the
end of the latest kept month of each time zone (adapters/liability_store.py) and the start of this UTC month.
"""

from __future__ import annotations

from points.adapters.liability_store import GIFT_LOT
from points.domain.liability import HOLDER_KINDS, UNKNOWN_ISSUER

_HOLDERS = "(" + ", ".join(f"'{kind}'" for kind in HOLDER_KINDS) + ")"

_BOUNDS = """
bounds AS (
    SELECT DISTINCT ON (time_zone) time_zone, month, ends_at FROM liability_months ORDER BY time_zone, month DESC
), instants AS (
    SELECT time_zone, month, ends_at FROM bounds
    UNION ALL
    SELECT NULL, to_char(date_trunc('month', now() AT TIME ZONE 'UTC') - interval '1 month', 'YYYY-MM'),
           date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
)"""

_POSITION = f"""
position AS (
    SELECT i.time_zone, i.month, COALESCE(l.issuer, '{UNKNOWN_ISSUER}') AS issuer, {GIFT_LOT} AS gift,
           sum(l.amount) AS points
      FROM instants i JOIN transfers c ON c.posted_at < i.ends_at JOIN lots l ON l.lot_id = c.transfer_id
     GROUP BY 1, 2, 3, 4
    UNION ALL
    SELECT i.time_zone, i.month, COALESCE(l.issuer, '{UNKNOWN_ISSUER}'), {GIFT_LOT}, -sum(ld.amount)
      FROM instants i JOIN transfers d ON d.posted_at < i.ends_at
      JOIN lot_debits ld ON ld.transfer_id = d.transfer_id
      JOIN lots l ON l.lot_id = ld.lot_id JOIN transfers c ON c.transfer_id = l.lot_id
     GROUP BY 1, 2, 3, 4
), recomputed AS (
    SELECT time_zone, month, issuer, gift, sum(points) AS closing FROM position GROUP BY 1, 2, 3, 4
)"""

STATEMENTS_RECONCILE = f"""
WITH {_BOUNDS},
ledger AS (
    SELECT i.time_zone, i.month, i.ends_at,
           COALESCE(sum(t.amount * ((c.kind IN {_HOLDERS})::int - (d.kind IN {_HOLDERS})::int)), 0) AS points
      FROM instants i
      LEFT JOIN transfers t ON t.posted_at < i.ends_at
      LEFT JOIN accounts d ON d.account_id = t.debit_account
      LEFT JOIN accounts c ON c.account_id = t.credit_account
     GROUP BY 1, 2, 3
), {_POSITION.strip()},
lots_total AS (
    SELECT time_zone, month, sum(closing) AS points FROM recomputed GROUP BY 1, 2
), kept AS (
    SELECT time_zone, month, sum(closing) AS points FROM liability_month_lines GROUP BY 1, 2
)
SELECT g.time_zone, g.month, g.ends_at, g.points AS ledger_points, COALESCE(t.points, 0) AS lots_points,
       m.ledger_closing AS kept_ledger_points, k.points AS kept_statement_points
  FROM ledger g
  LEFT JOIN lots_total t ON t.time_zone IS NOT DISTINCT FROM g.time_zone AND t.month = g.month
  LEFT JOIN liability_months m ON m.time_zone = g.time_zone AND m.month = g.month
  LEFT JOIN kept k ON k.time_zone = g.time_zone AND k.month = g.month
 WHERE g.points <> COALESCE(t.points, 0)
    OR (m.month IS NOT NULL AND (m.ledger_closing <> g.points OR COALESCE(k.points, 0) <> g.points))
"""
"""The closing total of the latest kept month (and the position at the start of this UTC month) equals the sum of
the lot-holding accounts' balances at that instant, from the transfers; and so does the kept statement."""

STATEMENT_LINES_MATCH = f"""
WITH {_BOUNDS},
{_POSITION.strip()},
kept AS (
    SELECT l.time_zone, l.month, l.issuer, l.received_as_gift AS gift, l.closing
      FROM liability_month_lines l JOIN bounds b USING (time_zone, month)
)
SELECT time_zone, month, issuer, gift, k.closing AS kept_closing, r.closing AS ledger_closing
  FROM kept k FULL JOIN (SELECT * FROM recomputed WHERE time_zone IS NOT NULL) r USING (time_zone, month, issuer, gift)
 WHERE COALESCE(k.closing, 0) <> COALESCE(r.closing, 0)
"""
"""Each issuer's line of the latest kept month closes with what its lots held at the month's end."""

MONTHS_CHAIN = """
WITH lines AS (
    SELECT l.*, to_char(to_date(l.month, 'YYYY-MM') - interval '1 month', 'YYYY-MM') AS previous
      FROM liability_month_lines l
), kept_previous AS (
    SELECT n.time_zone, n.month, p.issuer, p.received_as_gift, p.closing
      FROM liability_months n
      JOIN liability_months pm ON pm.time_zone = n.time_zone
                               AND pm.month = to_char(to_date(n.month, 'YYYY-MM') - interval '1 month', 'YYYY-MM')
      JOIN liability_month_lines p ON p.time_zone = pm.time_zone AND p.month = pm.month
)
SELECT time_zone, month, issuer, received_as_gift, l.opening, k.closing AS previous_closing
  FROM (SELECT * FROM lines l
         WHERE EXISTS (SELECT 1 FROM liability_months pm WHERE pm.time_zone = l.time_zone AND pm.month = l.previous)) l
  FULL JOIN kept_previous k USING (time_zone, month, issuer, received_as_gift)
 WHERE COALESCE(l.opening, 0) <> COALESCE(k.closing, 0)
"""
"""A kept month opens, issuer by issuer, with the kept month before's closing."""

OUTSTANDING_NOW = f"""
SELECT a.points AS accounts_points, l.points AS live_lots_points
  FROM (SELECT COALESCE(sum(credits_posted - debits_posted), 0) AS points FROM accounts WHERE kind IN {_HOLDERS}) a,
       (SELECT COALESCE(sum(remaining), 0) AS points FROM lots WHERE remaining > 0) l
 WHERE a.points <> l.points
"""
"""Now: every issuer's outstanding (live lots) sums to the lot-holding accounts' posted balances."""
