"""The demo's adjustments step: one ops user credits Ada a small goodwill gesture (it posts at once), then asks for
a correction above the approval threshold; approving it herself is refused, a second ops user approves it and it
posts; the audit log shows who asked, who approved and what the balance was before and after."""

from __future__ import annotations

import uuid

import httpx

from loyalty_runtime.auth import Role


def adjustments(client: httpx.Client, ada: str) -> None:
    """`ada`: the member id of Ada."""
    from deploy.local import demo  # here, not at the top: demo.py imports this module

    olivia = {"Authorization": f"Bearer {demo.AUTHORITY.issue('ops-olivia', Role.OPS)}"}
    wei = {"Authorization": f"Bearer {demo.AUTHORITY.issue('ops-wei', Role.OPS)}"}
    url = f"{demo.POINTS}/v1/ops/adjustments"

    demo.step("Ops adjust Ada's points: 200 goodwill points post at once (at or below the approval threshold)")
    small = _request(client, demo, olivia, ada, 200, "goodwill", "late delivery of her phone, apologised by phone")
    threshold = client.get(url, params={"limit": 1}, headers=olivia).json()["threshold"]
    print(f"    {small['status']}: +{small['points']:,} from the adjustments account (threshold {threshold:,})")

    demo.step(f"A correction above {threshold:,} points waits for a second ops user (four eyes)")
    big = _request(client, demo, olivia, ada, threshold + 500, "correction", "flight A-1 earned at 1x, contract is 3x")
    print(f"    {big['status']}: {big['points']:,} points requested by {big['requested_by']}")
    own = client.post(f"{url}/{big['adjustment_id']}/approve", json={}, headers=olivia)
    print(f"    the requester approving it herself: {own.status_code} {own.json()['detail'][:70]}...")
    if own.status_code != 403:
        demo.fail(own, "refusing the requester's own approval")
    approved = client.post(f"{url}/{big['adjustment_id']}/approve", json={"note": "contract checked"}, headers=wei)
    if approved.status_code != 200 or approved.json()["status"] != "posted":
        demo.fail(approved, "the second ops user's approval")
    print(f"    approved by {approved.json()['decided_by']}: {approved.json()['status']}")

    demo.step("The audit log: who asked, who approved, the balance before and after")
    found = client.get(f"{demo.POINTS}/v1/ops/audit", params={"subject": f"member:{ada}", "action": "adjustment."},
                       headers=wei)  # fmt: skip
    if found.status_code != 200:
        demo.fail(found, "searching the audit log")
    for entry in reversed(found.json()["items"]):
        before, after = entry["before"] or {}, entry["after"] or {}
        print(f"    {entry['at'][:19].replace('T', ' ')}  {entry['actor']:<11} {entry['action']:<18} "
              f"posted {before.get('posted', 0):,} -> {after.get('posted', 0):,}")  # fmt: skip
    trail = client.get(f"{demo.POINTS}/v1/ops/audit", params={"subject": f"adjustment:{big['adjustment_id']}"},
                       headers=wei).json()["items"]  # fmt: skip
    print(f"    the correction's own trail: {', '.join(e['action'] for e in reversed(trail))}")
    print(f"    console: {demo.CONSOLE}/ops/adjustments and {demo.CONSOLE}/ops/audit")


def _request(client: httpx.Client, demo: object, headers: dict[str, str], member: str, points: int, reason: str,
             note: str) -> dict[str, object]:  # fmt: skip
    body = {"adjustment_id": str(uuid.uuid4()), "member_id": member, "direction": "credit", "points": points,
            "reason": reason, "note": note}  # fmt: skip
    answer = client.post(f"{demo.POINTS}/v1/ops/adjustments", json=body, headers=headers)  # type: ignore[attr-defined]
    if answer.status_code != 201:
        demo.fail(answer, f"the {reason} adjustment")  # type: ignore[attr-defined]
    made: dict[str, object] = answer.json()
    return made
