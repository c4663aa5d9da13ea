"""Reconcile redemption orders with the ledger's holds: `python -m tools.reconcile_orders`.

An order is charged the price it was placed at (its unit price, the member's own: services/redemption/
redemption/domain/prices.py), and settlement pays the partner the points the ledger actually captured. This
tool reads both databases, each in one snapshot, and checks with its own SQL:

- every fulfilled order's hold was captured in the ledger for exactly the order's points;
- no cancelled order's hold was captured.

Orders still on their way are left alone: their hold may not have reached the ledger yet.
Prints every mismatch and exits 1; exits 0 when all agree, 2 when a database cannot be read.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

import asyncpg

from loyalty_runtime.settings import LOCAL_POSTGRES

DEFAULT_POINTS_DB = f"{LOCAL_POSTGRES}/loyalty_points"
DEFAULT_REDEMPTION_DB = f"{LOCAL_POSTGRES}/loyalty_redemption"

ORDERS = """
SELECT order_id, hold_id, state, quantity, unit_points
  FROM orders WHERE state IN ('fulfilled', 'cancelled')
"""
HOLDS = "SELECT hold_id, status, amount FROM holds WHERE hold_id = ANY($1::uuid[])"


def mismatches_of(orders: Sequence[asyncpg.Record], holds: dict[object, asyncpg.Record]) -> list[str]:
    """What disagrees, one line per order and figure."""
    found: list[str] = []
    for order in orders:
        points = order["unit_points"] * order["quantity"]
        hold = holds.get(order["hold_id"])
        if order["state"] == "fulfilled" and (hold is None or hold["status"] != "posted"):
            found.append(
                f"order {order['order_id']} is fulfilled but its hold is {hold['status'] if hold else 'missing'}"
            )
        elif order["state"] == "fulfilled" and hold["amount"] != points:
            found.append(f"order {order['order_id']}: {points} points ordered, the ledger captured {hold['amount']}")
        elif order["state"] == "cancelled" and hold is not None and hold["status"] == "posted":
            found.append(f"order {order['order_id']} is cancelled but the ledger captured its hold")
    return found


async def reconcile_orders(points_dsn: str, redemption_dsn: str) -> tuple[int, list[str]]:
    """(orders checked, mismatches)."""
    redemption = await asyncpg.connect(redemption_dsn)
    points = await asyncpg.connect(points_dsn)
    try:
        async with redemption.transaction(isolation="repeatable_read", readonly=True):
            orders = await redemption.fetch(ORDERS)
        async with points.transaction(isolation="repeatable_read", readonly=True):
            rows = await points.fetch(HOLDS, [o["hold_id"] for o in orders])
        return len(orders), mismatches_of(orders, {row["hold_id"]: row for row in rows})
    finally:
        await redemption.close()
        await points.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--points-db", default=os.environ.get("POINTS_DATABASE_URL", DEFAULT_POINTS_DB),
                        help="the points service's database (env POINTS_DATABASE_URL)")  # fmt: skip
    parser.add_argument("--redemption-db", default=os.environ.get("REDEMPTION_DATABASE_URL", DEFAULT_REDEMPTION_DB),
                        help="the redemption service's database (env REDEMPTION_DATABASE_URL)")  # fmt: skip
    args = parser.parse_args(argv)
    try:
        checked, mismatches = asyncio.run(reconcile_orders(args.points_db, args.redemption_db))
    except asyncpg.UndefinedColumnError as error:
        print(f"cannot reconcile orders: {error}; start the system with `make up` (it migrates)", file=sys.stderr)
        return 2
    except (OSError, asyncpg.PostgresError) as error:
        print(f"cannot reconcile orders: {type(error).__name__}: {error}", file=sys.stderr)
        return 2
    for line in mismatches:
        print(f"FAIL  {line}")
    if mismatches:
        print(f"\n{len(mismatches)} order figure(s) disagree with the ledger.", file=sys.stderr)
        return 1
    print(f"ok    orders: {checked} finished order(s) charged their own price, as the ledger captured it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
