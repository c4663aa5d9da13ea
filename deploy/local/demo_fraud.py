"""The demo's fraud step: ops set a velocity rule (at most 5,000 points a day per member), SkyMall posts a very
big purchase of Ada's, and its points pend for review instead of posting; Ada sees them as pending; one ops user
releases them (a second one, a moment later, is told who decided first); then the rules are put back as they were."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import httpx

from loyalty_runtime.auth import Role

RULE = {"member": {"points_per_day": 5000}}


def fraud(client: httpx.Client, mall: Any, me: dict[str, str], ada: str, run: str) -> None:
    """`mall`: demo.Partner of SkyMall; `me`: Ada's headers; `ada`: her member id; `run`: the demo run's tag."""
    from deploy.local import demo  # here, not at the top: demo.py imports this module

    olivia = {"Authorization": f"Bearer {demo.AUTHORITY.issue('ops-olivia', Role.OPS)}"}
    wei = {"Authorization": f"Bearer {demo.AUTHORITY.issue('ops-wei', Role.OPS)}"}
    rules_url, reviews_url = f"{demo.POINTS}/v1/ops/velocity-rules", f"{demo.POINTS}/v1/ops/reviews"

    demo.step("Ops set a velocity rule: a member earning more than 5,000 points a day is held for review")
    before = client.get(rules_url, headers=olivia)
    if before.status_code != 200:
        demo.fail(before, "reading the velocity rules")
    put = client.put(rules_url, json={**_rules_of(before.json()), **RULE}, headers=olivia)
    if put.status_code != 200:
        demo.fail(put, "setting the velocity rules")
    print(f"    version {put.json()['version']} by {put.json()['set_by']}; the earn consumers apply it within 5 s")
    time.sleep(6)  # the consumers' cache of the rules

    try:
        review = _big_purchase(client, demo, mall, me, olivia, ada, run, reviews_url)
        _release(client, demo, me, olivia, wei, review, reviews_url)
    finally:
        restored = client.put(rules_url, json=_rules_of(before.json()), headers=olivia)
        if restored.status_code != 200:
            demo.fail(restored, "putting the velocity rules back")
        print(f"    rules put back as they were (version {restored.json()['version']})")


def _rules_of(current: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in current.items() if k not in ("version", "set_by", "set_at")}


def _big_purchase(client: httpx.Client, demo: Any, mall: Any, me: dict[str, str], ops: dict[str, str], ada: str,
                  run: str, reviews_url: str) -> dict[str, Any]:  # fmt: skip
    demo.step("SkyMall posts a 9,999.00 CNY laptop for Ada: its points pend instead of posting")
    laptop = {"idempotency_key": f"mall-{run}-fraud", "customer_ref": f"ada-{run}", "purchase_id": f"M{run}-F",
              "amount_minor": 999_900, "currency": "CNY", "category": "electronics",
              "occurred_at": datetime.now(UTC).isoformat()}  # fmt: skip
    answer = mall.post("/purchases", laptop)
    if answer.status_code != 202:
        demo.fail(answer, "the big SkyMall purchase")
    deadline = time.monotonic() + 20
    while True:
        found = client.get(reviews_url, params={"status": "open", "member_id": ada}, headers=ops)
        items = [r for r in found.json().get("items", []) if r["source_key"].endswith(f"M{run}-F")]
        if items:
            break
        if time.monotonic() > deadline:
            demo.fail(found, "the purchase held for review")
        time.sleep(0.3)
    review: dict[str, Any] = items[0]
    print(f"    held: {review['points']:,} points, rule {review['rule']}: {review['detail']}")
    balance = client.get(f"{demo.POINTS}/v1/members/me/balance", headers=me).json()
    print(f"    Ada: {balance['available']:,} available, {balance['pending_review']:,} pending review (not spendable)")
    return review


def _release(client: httpx.Client, demo: Any, me: dict[str, str], olivia: dict[str, str], wei: dict[str, str],
             review: dict[str, Any], reviews_url: str) -> None:  # fmt: skip
    demo.step("Ops release it after a call to Ada; a second ops user deciding it too is told who was first")
    url = f"{reviews_url}/{review['review_id']}"
    released = client.post(f"{url}/release", json={"note": "Ada confirmed the laptop by phone"}, headers=olivia)
    if released.status_code != 200:
        demo.fail(released, "releasing the review")
    print(f"    released: {released.json()['points']:,} points to Ada, as a lot with the purchase's own expiry")
    late = client.post(f"{url}/reject", json={"note": "looks odd"}, headers=wei)
    if late.status_code != 409:
        demo.fail(late, "refusing a second decision")
    print(f"    the second decision: {late.status_code} {late.json()['detail'][:80]}...")
    balance = client.get(f"{demo.POINTS}/v1/members/me/balance", headers=me).json()
    print(f"    Ada: {balance['available']:,} available, {balance['pending_review']:,} pending review")
    print(f"    console: {demo.CONSOLE}/ops/reviews and {demo.CONSOLE}/ops/velocity-rules")
