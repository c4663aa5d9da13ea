"""The demo's attribution step: the targeted activity's MemberMessaged events (none for the holdout), signed
callbacks from the messaging system (one out of order), a branch staff member's share link that two members open
and one answers with a purchase, then the attribution report by channel and by staff member."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from contracts.signing import signed_headers
from points.settings import LOCAL_MESSAGING_SECRET

BRANCH = "sh-pudong"
STAFF = "ops-2"


def attribution(client: httpx.Client, mall: Any, run: str) -> None:
    """`mall`: demo.Partner for SkyMall; the activity is the one targeted_activity() started for this run."""
    from deploy.local import demo  # here, not at the top: demo.py imports this module

    demo.step("The targeted activity messaged its members, one channel each, for the bank's messaging systems")
    activity = _activity(client, demo, f"Flyers shop double {run}")
    report = client.get(f"{demo.POINTS}/v1/ops/activities/{activity}/report", headers=demo.OPS).json()
    messages = _messages(client, demo, activity, report["targeted"])
    channels = Counter(m["channel"] for m in messages)
    print(f"    {len(messages)} MemberMessaged on loyalty.member-messages.v1 for {report['targeted']} targeted members"
          f" ({', '.join(f'{n} by {c}' for c, n in sorted(channels.items()))}); the {report['holdout']} held out"
          " got none")  # fmt: skip

    demo.step("The messaging system posts signed callbacks: delivered, opened, clicked (one click before its delivery)")
    _callbacks(client, demo, messages[:6])
    after = client.get(f"{demo.POINTS}/v1/ops/activities/{activity}/report", headers=demo.OPS).json()
    for row in after["channels"]:
        channel = row["channel"]
        name = channel or "holdout"
        print(f"    {name:<8} members {row['members']:>3}  delivered {row['delivered']:>3}  opened {row['opened']:>3}"
              f"  clicked {row['clicked']:>3}  responded {row['responders']:>3} ({row['response_rate']})")  # fmt: skip

    demo.step(f"A staff member ({STAFF}, branch {BRANCH}) shares the activity on WeChat; two members open the link")
    staff = {"Authorization": f"Bearer {demo.AUTHORITY.issue(STAFF, demo.Role.OPS)}"}
    body = {"target": {"kind": "activity", "activity_id": activity}, "channel": "wechat", "branch_id": BRANCH,
            "window_days": 7, "campaign_ref": f"winter-{run}"}  # fmt: skip
    made = client.post(f"{demo.POINTS}/v1/share-links", json=body, headers=staff)
    if made.status_code != 201:
        demo.fail(made, "the staff member's share link")
    code = made.json()["code"]
    print(f"    {demo.CONSOLE}/s/{code}")
    openers = [m["member_id"] for m in messages[:2]]
    for member in openers:
        opened = client.post(f"{demo.POINTS}/v1/share-links/{code}/opens", headers=_member(demo, member))
        if opened.status_code != 202:
            demo.fail(opened, "opening the share link")

    demo.step("One of them shops at SkyMall within the link's week, the purchase carrying the link's code")
    ref = _skymall_ref(client, demo, openers[0])
    purchase = {"idempotency_key": f"shared-{run}", "customer_ref": ref, "purchase_id": f"SH{run}",
                "amount_minor": 58_800, "currency": "CNY", "occurred_at": datetime.now(UTC).isoformat(),
                "attribution": {"channel": "wechat", "share_code": code}}  # fmt: skip
    answer = mall.post("/purchases", purchase)
    if answer.status_code != 202:
        demo.fail(answer, "the shared purchase")
    demo.wait_applied(client, [answer.json()["event_id"]])
    print(f"    588.00 CNY, {answer.json()['points']} points and the activity's bonus")

    demo.step("The attribution report: by channel (with incremental spend against the holdout) and by staff")
    since = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    for group in ("channel", "staff"):
        found = client.get(f"{demo.POINTS}/v1/ops/attribution", params={"group": group, "from": since},
                           headers=demo.OPS)  # fmt: skip
        if found.status_code != 200:
            demo.fail(found, f"the attribution report by {group}")
        for row in found.json()["rows"]:
            spend = ", ".join(
                f"{s['spend_minor'] / 100:,.2f} {s['currency']}"
                + (f" (+{s['incremental_spend_minor'] / 100:,.2f} vs holdout)"
                   if s["incremental_spend_minor"] is not None else "")
                for s in row["spend"]
            ) or "-"  # fmt: skip
            print(f"    {group} {row['key'] or '(none)':<10} reached {row['reach']:>3}  opens {row['opens']:>3}"
                  f"  responded {row['responders']:>3} ({row['response_rate']})  points {row['points_granted']:>6,}"
                  f"  spend {spend}")  # fmt: skip
    print(f"    CSV: {demo.POINTS}/v1/ops/attribution.csv?group=staff   console: {demo.CONSOLE}/ops/attribution")


def _activity(client: httpx.Client, demo: Any, name: str) -> str:
    for found in client.get(f"{demo.POINTS}/v1/ops/activities", headers=demo.OPS).json():
        if found["name"] == name:
            return str(found["activity_id"])
    raise SystemExit(f"no activity named {name!r}: targeted_activity() runs before this step")


def _messages(client: httpx.Client, demo: Any, activity: str, targeted: int, timeout: float = 30) -> list[Any]:
    """The activity's messages, once every targeted member has one (the job runs every MESSAGE_INTERVAL_SECONDS)."""
    deadline = time.monotonic() + timeout
    while True:
        items = client.get(f"{demo.POINTS}/v1/ops/activities/{activity}/messages", params={"limit": 500},
                           headers=demo.OPS).json()["items"]  # fmt: skip
        if len(items) >= targeted:
            return list(items)
        if time.monotonic() > deadline:
            raise SystemExit(f"{len(items)} of {targeted} messages within {timeout:.0f} s; see .local/logs/points.log")
        time.sleep(0.5)


def _callbacks(client: httpx.Client, demo: Any, messages: list[Any]) -> None:
    now = datetime.now(UTC)

    def at(seconds: int) -> str:
        return (now + timedelta(seconds=seconds)).isoformat()

    items = [{"message_id": m["message_id"], "event": "delivered", "at": at(1)} for m in messages[1:]]
    items += [{"message_id": m["message_id"], "event": "opened", "at": at(30)} for m in messages[:4]]
    items += [{"message_id": m["message_id"], "event": "clicked", "at": at(40)} for m in messages[:2]]
    secret = os.environ.get("MESSAGING_CALLBACK_SECRET", LOCAL_MESSAGING_SECRET)
    for batch in (items[-2:], items[:-2]):  # the clicks first: they imply the open and the delivery
        raw = json.dumps({"callbacks": batch}).encode()
        path = "/v1/messages/callbacks"
        headers = signed_headers("messaging", secret, "POST", path, raw, int(time.time()))
        answer = client.post(f"{demo.POINTS}{path}", content=raw,
                             headers={**headers, "content-type": "application/json"})  # fmt: skip
        if answer.status_code != 200:
            demo.fail(answer, "the messaging system's callbacks")
    raw = json.dumps({"callbacks": items[:1]}).encode()
    wrong = signed_headers("messaging", "not-the-messaging-secret-at-all-no", "POST", path, raw, int(time.time()))
    forged = client.post(f"{demo.POINTS}{path}", content=raw, headers={**wrong, "content-type": "application/json"})
    print(f"    {len(items)} callbacks recorded; one signed with another secret: {forged.status_code}")


def _member(demo: Any, member_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {demo.AUTHORITY.issue(member_id, demo.Role.MEMBER)}"}


def _skymall_ref(client: httpx.Client, demo: Any, member_id: str) -> str:
    for item in client.get(f"{demo.POINTS}/v1/members/{member_id}/identifiers", headers=demo.OPS).json():
        kind, _, rest = str(item["identifier"]).partition(":")
        partner, _, ref = rest.partition(":")
        if kind == "partner" and partner == "skymall":
            return ref
    raise SystemExit(f"member {member_id} has no SkyMall account: targeted_activity() links one to each flyer")
