"""The demo's tiers step: ops put a tier set and run the reviews now, Ada reads her tier and how far the next one
is, and one more purchase at SkyMall earns her tier's multiplier as a tier bonus (points/domain/tiers.py)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import httpx

TIER_SET = {
    "qualification": "rolling_12_months",
    "grace_days": 30,
    "downgrade_policy": "one_tier_down",
    "tiers": [
        {"code": "green", "name": "Green", "threshold_points": 0, "earn_multiplier": "1"},
        {"code": "silver", "name": "Silver", "threshold_points": 2_000, "earn_multiplier": "1.25",
         "benefits": ["Priority customer service"]},
        {"code": "gold", "name": "Gold", "threshold_points": 10_000, "earn_multiplier": "1.5",
         "benefits": ["Airport lounge access", "Free shipping at SkyMall"]},
    ],
}  # fmt: skip


def tiers(client: httpx.Client, mall: Any, me: dict[str, str], run: str) -> None:
    """`mall`: SkyMall's signed back office (demo.Partner); `me`: Ada's headers; `run`: this run's suffix."""
    from deploy.local import demo  # here, not at the top: demo.py imports this module

    demo.step("Ops put a tier set on qualifying points (purchases' own points, rolling 12 months): Green, "
              "Silver from 2,000 (x1.25), Gold from 10,000 (x1.5); 30 grace days, then one tier down")  # fmt: skip
    answer = client.put(f"{demo.POINTS}/v1/ops/tier-set", json=TIER_SET, headers=demo.OPS)
    if answer.status_code != 200:
        demo.fail(answer, "putting the tier set")
    print(f"    tier set version {answer.json()['version']} (the same set again changes nothing)")
    ran = client.post(f"{demo.POINTS}/v1/ops/tier-reviews", headers=demo.OPS)
    if ran.status_code != 200:
        demo.fail(ran, "running the tier reviews")
    counts = ran.json()
    print(f"    reviews now: {counts['upgraded']} members moved up to the tier their points reach, "
          f"{counts['reviewed']} reviewed at the end of a period")  # fmt: skip
    mine = _tier(client, me)
    tier = mine["tier"]
    print(f"    Ada: {tier['name'] if tier else 'no tier'} on {mine['current_window']['qualifying_points']:,} "
          f"qualifying points (the phone's refund lowered them; her balance and the bonuses do not count)")  # fmt: skip
    if mine["next_tier"]:
        print(f"    {mine['points_to_reach']:,} more to reach {mine['next_tier']['name']}")
    else:
        print("    the top tier: no tier above it")
    if mine["review_on"]:
        print(f"    to keep it: {mine['points_to_keep']:,} qualifying points from {mine['review_window']['first_day']} "
              f"to {mine['review_window']['last_day']}, reviewed on {mine['review_on']}")  # fmt: skip
    _tier_bonus(client, mall, me, run, mine)


def _tier(client: httpx.Client, me: dict[str, str]) -> dict[str, Any]:
    from deploy.local import demo

    answer = client.get(f"{demo.POINTS}/v1/members/me/tier", headers=me)
    if answer.status_code != 200:
        demo.fail(answer, "reading Ada's tier")
    found: dict[str, Any] = answer.json()
    return found


def _tier_bonus(client: httpx.Client, mall: Any, me: dict[str, str], run: str, mine: dict[str, Any]) -> None:
    from deploy.local import demo

    tier = mine["tier"] or {"name": "no tier", "earn_multiplier": "1"}
    demo.step(f"SkyMall posts one more purchase for Ada, 599.00 CNY: as {tier['name']} she earns "
              f"x{tier['earn_multiplier']}, the extra as a tier bonus from the programme account")  # fmt: skip
    purchase = {"idempotency_key": f"mall-{run}-tier", "customer_ref": f"ada-{run}", "purchase_id": f"M{run}-tier",
                "amount_minor": 59_900, "currency": "CNY", "occurred_at": datetime.now(UTC).isoformat()}  # fmt: skip
    answer = mall.post("/purchases", purchase)
    if answer.status_code != 202:
        demo.fail(answer, "the purchase after the tier set")
    event_id, points = answer.json()["event_id"], answer.json()["points"]
    deadline = time.monotonic() + 30
    while True:
        items = client.get(f"{demo.POINTS}/v1/members/me/history", params={"limit": 20}, headers=me).json()["items"]
        bonus = [i for i in items if i["reason"] == "tier_bonus" and i["cause_event_id"] == event_id]
        if bonus:
            break
        if time.monotonic() > deadline:
            raise SystemExit("the tier bonus did not reach Ada's history within 30 s; see .local/logs/points.log")
        time.sleep(0.2)
    memo = bonus[0]["memo"]
    print(f"    +{points:,} points for the purchase, +{bonus[0]['amount']:,} tier bonus "
          f"({memo.get('tier')} x{memo.get('multiplier')}), in her history as 'tier_bonus'")  # fmt: skip
