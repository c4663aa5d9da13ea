"""The demo's member prices step: SkyMall prices a voucher per tier and opens a day pass to Gold and above;
Ada sees her own price, a member without a tier the price for everyone, and Ada's order is charged what she saw."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

OFFER = "tier-voucher"
GOLD_ONLY = "gold-day-pass"


def member_prices(client: httpx.Client, mall: Any, me: dict[str, str]) -> None:
    """`mall`: demo.Partner of SkyMall; `me`: Ada's headers (she holds a tier after the tiers step)."""
    from deploy.local import demo  # here, not at the top: demo.py imports this module

    demo.step("SkyMall prices a voucher per tier (one customer, one price) and opens a day pass to Gold and above")
    until = (datetime.now(UTC) + timedelta(days=365)).isoformat()
    common = {"kind": "voucher", "category": "vouchers", "stock": 1_000, "valid_from": datetime.now(UTC).isoformat(),
              "valid_until": until}  # fmt: skip
    voucher = {
        **common,
        "title": "50 CNY voucher",
        "price_points": 5_000,
        "tier_prices": [{"tier": "silver", "price_points": 4_500}, {"tier": "gold", "price_points": 4_000}],
    }
    day_pass = {**common, "title": "Lounge day pass", "price_points": 8_000, "tiers_only": ["gold"]}
    for offer_id, offer in ((OFFER, voucher), (GOLD_ONLY, day_pass)):
        answer = mall.send("PUT", f"/offers/{offer_id}", offer)
        if answer.status_code not in (200, 201):
            demo.fail(answer, f"publishing {offer_id}")
    print("    50 CNY voucher: 5,000 points; Silver 4,500; Gold 4,000.  Lounge day pass: Gold only, 8,000")

    _catalog_at(client, demo.OPS, None, wanted=(OFFER, GOLD_ONLY))  # both offers came through Kafka
    tier = client.get(f"{demo.POINTS}/v1/members/me/tier", headers=me).json()["tier"]
    code = tier["code"] if tier else None
    seen = _catalog_at(client, me, code)
    bo, stranger = _new_member(client, demo)
    theirs = _catalog_at(client, stranger, None)
    print(f"    Ada ({tier['name'] if tier else 'no tier'}) sees the voucher at {seen[OFFER]:,} points"
          f"{' and the Gold day pass' if GOLD_ONLY in seen else ''}")  # fmt: skip
    print(f"    a member without a tier sees it at {theirs[OFFER]:,}"
          f"{'' if GOLD_ONLY in theirs else ', and no day pass at all'}")  # fmt: skip

    segment_price(client, mall, voucher, bo, stranger)

    demo.step("Ada orders the voucher at the price she was shown; a stale price is refused, never charged")
    stale = _order(client, me, seen[OFFER] + 1)
    print(f"    at a price she was not shown: {stale.status_code} {stale.json()['detail'][:80]}")
    placed = _order(client, me, seen[OFFER])
    if placed.status_code != 202:
        demo.fail(placed, "ordering the voucher")
    print(
        f"    at {seen[OFFER]:,}: 202, order {placed.json()['order_id'][:8]} holds {placed.json()['points']:,} points"
    )


def _catalog_at(
    client: httpx.Client, headers: dict[str, str], tier: str | None, wanted: tuple[str, ...] = (OFFER,)
) -> dict[str, int]:
    """The reader's catalog prices once redemption knows its tier and the `wanted` offers (through Kafka)."""
    from deploy.local import demo

    deadline = time.monotonic() + 30
    while True:
        page = client.get(f"{demo.REDEMPTION}/v1/catalog", params={"partner_id": "skymall", "limit": 100},
                          headers=headers).json()  # fmt: skip
        prices = {o["offer_id"]: o["price_points"] for o in page["items"]}
        if page["tier"] == tier and all(offer in prices for offer in wanted):
            return prices
        if time.monotonic() > deadline:
            raise SystemExit(f"the catalog did not show tier {tier!r} prices; see .local/logs/redemption.log")
        time.sleep(0.2)


def segment_price(
    client: httpx.Client, mall: Any, voucher: dict[str, Any], bo: str, bo_headers: dict[str, str]
) -> None:
    """Ops publish a segment (Bo in it); SkyMall prices the voucher for it; Bo, who has no tier, now pays that."""
    from deploy.local import demo

    demo.step("Ops publish a segment for member prices; SkyMall prices the voucher for its members")
    rules = {"all": [{"kind": "members", "member_ids": [bo]}]}
    made = client.post(f"{demo.POINTS}/v1/ops/segments", json={"name": "SkyMall newcomers", "rules": rules},
                       headers=demo.OPS)  # fmt: skip
    if made.status_code != 201:
        demo.fail(made, "creating the segment")
    segment = made.json()["segment_id"]
    published = client.post(f"{demo.POINTS}/v1/ops/segments/{segment}/publications", headers=demo.OPS)
    if published.status_code != 201:
        demo.fail(published, "publishing the segment")
    print(f"    'SkyMall newcomers' published: {published.json()['members']} member, listed for the catalog")
    priced = {**voucher, "segment_prices": [{"segment_id": segment, "price_points": 4_800}]}
    answer = mall.send("PUT", f"/offers/{OFFER}", priced)
    if answer.status_code not in (200, 201):
        demo.fail(answer, "pricing the voucher for the segment")
    deadline = time.monotonic() + 30
    while _catalog_at(client, bo_headers, None).get(OFFER) != 4_800:
        if time.monotonic() > deadline:
            raise SystemExit("the segment price did not reach the catalog; see .local/logs/redemption.log")
        time.sleep(0.2)
    print("    Bo, in the segment, now sees the voucher at 4,800; Ada keeps Gold's 4,000, the lowest that applies")


def _new_member(client: httpx.Client, demo: Any) -> tuple[str, dict[str, str]]:
    answer = client.post(f"{demo.POINTS}/v1/members", json={"display_name": "Bo"}, headers=demo.OPS)
    if answer.status_code != 201:
        demo.fail(answer, "registering a member")
    member = answer.json()["member_id"]
    return member, {"Authorization": f"Bearer {demo.AUTHORITY.issue(member, demo.Role.MEMBER)}"}


def _order(client: httpx.Client, me: dict[str, str], expected: int) -> httpx.Response:
    from deploy.local import demo

    body = {"partner_id": "skymall", "offer_id": OFFER, "idempotency_key": uuid.uuid4().hex,
            "expected_unit_points": expected}  # fmt: skip
    return client.post(f"{demo.REDEMPTION}/v1/orders", json=body, headers=me)
