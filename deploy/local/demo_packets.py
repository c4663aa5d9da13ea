"""The demo's red packets step: ops open a link packet from an activity's budget (five shares for six grabbers),
then Ada sends one from her own points to three friends, one grabs, and she closes it: the rest comes back to her
with the expiry of the lots it came from."""

from __future__ import annotations

import uuid
from typing import Any

import httpx


def red_packets(client: httpx.Client, me: dict[str, str], run: str) -> None:
    """`me`: Ada's headers (she has points by now)."""
    from deploy.local import demo  # here, not at the top: demo.py imports this module

    demo.step("Ops open a red packet from an activity's budget: 1,000 points for 5 grabbers, anyone with the link")
    body = {"name": f"Lunar new year red packets {run}", "kind": "limited_claim", "rules": {"claim_points": 1},
            "budget_points": 1_000, "quantity_cap": 1}  # fmt: skip
    answer = client.post(f"{demo.POINTS}/v1/ops/activities", json=body, headers=demo.OPS)
    if answer.status_code != 201:
        demo.fail(answer, "the activity that funds the red packet")
    activity = answer.json()["activity_id"]
    packet = _create(client, demo.OPS, {"activity_id": activity, "points": 1_000, "shares": 5,
                                        "audience": {"kind": "link"}, "message": "新年快乐"})  # fmt: skip
    token = packet["link_token"]
    print(f"    {demo.CONSOLE}/wallet/red-packets/link/{token}")
    print("    (the link is shown once; the ledger keeps its hash, and the 1,000 points moved into the packet)")

    demo.step("Six members open the link: five shares that sum to 1,000, the sixth is told why not")
    shares = []
    for i in range(6):
        grabber = _member(client, f"Lucky {i + 1} {run}")
        got = client.post(f"{demo.POINTS}/v1/red-packets/by-link/{token}/grabs", headers=_headers(demo, grabber))
        if got.status_code == 201:
            shares.append(got.json()["points"])
            print(f"    Lucky {i + 1}: +{got.json()['points']:,}")
        else:
            print(f"    Lucky {i + 1}: {got.status_code} {got.json()['detail']}")
    if len(shares) != 5 or sum(shares) != 1_000:
        raise SystemExit(f"the red packet's shares were {shares}: five summing to 1,000 expected")
    report = client.get(f"{demo.POINTS}/v1/ops/activities/{activity}/report", headers=demo.OPS).json()
    print(f"    the activity's report: {report['packet_points']:,} points put in red packets, budget left "
          f"{report['budget_left']:,}")  # fmt: skip

    ada_sends_to_friends(client, me, run)


def ada_sends_to_friends(client: httpx.Client, me: dict[str, str], run: str) -> None:
    from deploy.local import demo

    demo.step("Ada puts 100 of her points in a red packet for 3 friends; one grabs, then she closes it")
    friends = [_member(client, f"{name} {run}") for name in ("Bao", "Chen", "Dai")]
    packet = _create(client, me, {"points": 100, "shares": 3, "message": "Thanks for dinner",
                                  "audience": {"kind": "friends", "member_ids": friends}})  # fmt: skip
    got = client.post(f"{demo.POINTS}/v1/red-packets/{packet['packet_id']}/grabs", headers=_headers(demo, friends[0]))
    if got.status_code != 201:
        demo.fail(got, "Bao's grab")
    lots = client.get(f"{demo.POINTS}/v1/members/{friends[0]}/lots", headers=demo.OPS).json()["items"]
    print(f"    Bao: +{got.json()['points']:,}, in lots that expire {', '.join(x['expires_at'][:10] for x in lots)}"
          " (the dates of Ada's lots)")  # fmt: skip
    closed = client.post(f"{demo.POINTS}/v1/red-packets/{packet['packet_id']}/close", headers=me)
    if closed.status_code != 200:
        demo.fail(closed, "Ada closing her red packet")
    history = client.get(f"{demo.POINTS}/v1/members/me/history", headers=me).json()["items"]
    back = [f"{h['amount']:,} expiring {h['expires_at'][:10]}" for h in history
            if h["reason"] == "red_packet_return" and h["cause_event_id"] == packet["packet_id"]]  # fmt: skip
    print(f"    closed: {closed.json()['returned_points']:,} points came back to Ada: {', '.join(back)}"
          " (the expiry of the lots they came from)")  # fmt: skip


def _create(client: httpx.Client, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    from deploy.local import demo

    answer = client.post(f"{demo.POINTS}/v1/red-packets", headers=headers,
                         json={"packet_id": str(uuid.uuid4()), "duration_minutes": 60, **body})  # fmt: skip
    if answer.status_code != 201:
        demo.fail(answer, "creating a red packet")
    created: dict[str, Any] = answer.json()
    return created


def _member(client: httpx.Client, name: str) -> str:
    from deploy.local import demo

    answer = client.post(f"{demo.POINTS}/v1/members", json={"display_name": name}, headers=demo.OPS)
    if answer.status_code != 201:
        demo.fail(answer, f"registering {name}")
    return str(answer.json()["member_id"])


def _headers(demo: Any, member_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {demo.AUTHORITY.issue(member_id, demo.Role.MEMBER)}"}
