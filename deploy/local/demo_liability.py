"""The demo's liability step: the partners' issue prices have reached the points service through their contracts'
topic, ops price the card, activities and the programme, and this month's liability statement reconciles to the
ledger exactly, with the expiry forecast and the month's breakage and redemption rates."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import httpx

OPS_PRICES = (("card:issued", "1.0"), ("activity:*", "1.0"), ("programme", "1.0"), ("migration", "1.0"))


def liability(client: httpx.Client) -> None:
    from deploy.local import demo  # here, not at the top: demo.py imports this module

    demo.step("Liability: partners' issue prices arrive from their earn contracts; ops price the card and bonuses")
    _wait_for_partner_prices(client, demo)
    today = datetime.now(UTC).date().isoformat()
    for issuer, price in OPS_PRICES:
        body = {"issuer": issuer, "valid_from": today, "currency": "CNY", "price_minor_per_point": price}
        answer = client.post(f"{demo.POINTS}/v1/ops/issue-prices", json=body, headers=demo.OPS)
        if answer.status_code not in (201, 409):  # 409: an earlier run today set another price; it stands
            demo.fail(answer, f"pricing {issuer}")
    print(f"    ops priced {', '.join(i for i, _ in OPS_PRICES)} from {today} at 1.0 fen a point")

    rates = _get(client, demo, "/v1/ops/liability/rates", "the monthly rates")
    month = rates["months"][-1]["month"]
    statement = _get(client, demo, f"/v1/ops/liability/statements/{month}", "this month's liability statement")
    print(f"    statement of {month} ({statement['status']}), programme time zone {statement['time_zone']}")
    print(f"    {'issuer':<26} {'issued':>9} {'redeemed':>9} {'expired':>8} {'closing':>9} {'gifts':>7} {'CNY':>10}")
    for line in statement["lines"]:
        value = "unpriced" if line["closing_value_minor"] is None else f"{line['closing_value_minor'] / 100:,.2f}"
        print(f"    {line['issuer'][:26]:<26} {line['issued']:>9,} {line['redeemed']:>9,} {line['expired']:>8,} "
              f"{line['closing']:>9,} {line['received_as_gifts']:>7,} {value:>10}")  # fmt: skip
    check = statement["reconciliation"]
    print(f"    closing {check['statement_points']:,} points = the lot-holding accounts' {check['ledger_points']:,} "
          f"(difference {check['difference']})")  # fmt: skip
    if check["difference"] != 0:
        raise SystemExit(f"the liability statement of {month} does not reconcile: {check}")

    forecast = _get(client, demo, "/v1/ops/liability/forecast", "the expiry forecast")
    due = [m for m in forecast["months"] if m["points"]][:3]
    soonest = ", ".join(f"{m['month']}: {m['points']:,}" for m in due) or "none in 24 months"
    print(f"    expiring soonest: {soonest}; after 24 months: {forecast['later_points']:,}")
    this = rates["months"][-1]
    print(f"    {month}: {this['redeemed']:,} redeemed, {this['expired']:,} expired; breakage rate "
          f"{this['breakage_rate'] or 'n/a'}, redemption rate {this['redemption_rate'] or 'n/a'}")  # fmt: skip
    print(f"    CSV: {demo.POINTS}/v1/ops/liability/statements/{month}.csv   console: {demo.CONSOLE}/ops/liability")


def _wait_for_partner_prices(client: httpx.Client, demo: ModuleType, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        answer = client.get(f"{demo.POINTS}/v1/ops/issue-prices", headers=demo.OPS)
        if answer.status_code != 200:
            demo.fail(answer, "reading the issue prices")
        partners = sorted(p["issuer"] for p in answer.json()["items"] if p["source"] == "partner_contract")
        if "partner:skymall:issued" in partners or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    if not partners:
        demo.fail(answer, "partner issue prices through loyalty.partner-contracts.v1")
    print(f"    from the partners' contracts: {', '.join(partners)}")


def _get(client: httpx.Client, demo: ModuleType, path: str, what: str) -> dict[str, Any]:
    answer = client.get(f"{demo.POINTS}{path}", headers=demo.OPS)
    if answer.status_code != 200:
        demo.fail(answer, what)
    found: dict[str, Any] = answer.json()
    return found
