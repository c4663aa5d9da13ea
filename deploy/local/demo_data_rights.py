"""The demo's data rights step: a member, Bo, earns at SkyMall, downloads everything the programme holds of him
(points, partners, redemption), then erases his personal data: his name and customer reference become pseudonyms
in every service while his points, the ledger and settlement stay; asking again changes nothing."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import httpx

from loyalty_runtime.auth import Role


def data_rights(client: httpx.Client, mall: Any, run: str) -> None:
    """`mall`: SkyMall's signed back office (demo.Partner); `run`: the demo run's tag."""
    from deploy.local import demo  # here, not at the top: demo.py imports this module

    demo.step("Data rights: Bo earns at SkyMall, downloads all his data, then erases his personal data")
    answer = client.post(f"{demo.POINTS}/v1/members", json={"display_name": "Bo Chen"}, headers=demo.OPS)
    if answer.status_code != 201:
        demo.fail(answer, "registering Bo")
    bo = answer.json()["member_id"]
    me = {"Authorization": f"Bearer {demo.AUTHORITY.issue(bo, Role.MEMBER)}"}
    ref = f"bo-{run}"
    identifier = {"kind": "partner", "partner_id": "skymall", "customer_ref": ref}
    linked = client.post(f"{demo.POINTS}/v1/members/{bo}/identifiers", json=identifier, headers=demo.OPS)
    if linked.status_code not in (200, 201):
        demo.fail(linked, "linking Bo's SkyMall account")
    bought = mall.post("/purchases", {"idempotency_key": f"bo-{run}", "customer_ref": ref, "purchase_id": f"B{run}",
                                      "amount_minor": 25_800, "currency": "CNY",
                                      "occurred_at": datetime.now(UTC).isoformat()})  # fmt: skip
    if bought.status_code != 202:
        demo.fail(bought, "Bo's purchase")
    posted = _wait(lambda: client.get(f"{demo.POINTS}/v1/members/me/balance", headers=me).json()["posted"] or None,
                   demo, "Bo's points")  # fmt: skip

    data = _export(client, demo, bo, me)
    tables = data["points"]["tables"]
    print(f"    export: {sum(len(rows) for rows in tables.values())} rows from the points service "
          f"({len(tables)} tables), {len(data['partners']['tables']['intake_requests'])} intake rows from partners, "
          f"{len(data['redemption']['tables']['orders'])} orders")  # fmt: skip
    print(f"    name {tables['members'][0]['display_name']!r}, identifiers {data['points']['identifiers']}")

    erased = client.post(f"{demo.POINTS}/v1/members/me/erasure", json={"confirm": "ERASE"}, headers=me)
    if erased.status_code != 200:
        demo.fail(erased, "Bo's erasure")
    print(f"    erased: {erased.json()['identifiers']} identifier(s) replaced and unlinked; kept: "
          f"{erased.json()['kept'][0][:60]}...")  # fmt: skip

    def partners_erased() -> list[dict[str, str]] | None:
        refs = _export(client, demo, bo, me)["partners"]["customer_refs"]
        return refs if refs and all(r["customer_ref"].startswith("erased-") for r in refs) else None

    refs = _wait(partners_erased, demo, "the partners service erasing its copies")
    after = _export(client, demo, bo, me)["points"]
    print(f"    now: name {after['tables']['members'][0]['display_name']!r}, identifiers {after['identifiers']}, "
          f"SkyMall's customer ref {refs[0]['customer_ref']!r}")  # fmt: skip
    balance = client.get(f"{demo.POINTS}/v1/members/me/balance", headers=me).json()["posted"]
    if balance != posted:
        demo.fail(erased, f"keeping Bo's {posted} points (now {balance})")
    again = client.post(f"{demo.POINTS}/v1/members/{bo}/erasure", json={"confirm": "ERASE"}, headers=demo.OPS)
    if again.status_code != 200 or not again.json()["repeated"]:
        demo.fail(again, "a repeated erasure changing nothing")
    print(f"    his {balance:,} points stay; asking again (ops) changes nothing: repeated={again.json()['repeated']}")
    print(f"    console: {demo.CONSOLE}/wallet/my-data and the ops member page's Data rights buttons")


def _export(client: httpx.Client, demo: Any, member: str, headers: dict[str, str]) -> dict[str, Any]:
    parts: dict[str, Any] = {}
    for name, base in (("points", demo.POINTS), ("redemption", demo.REDEMPTION)):
        answer = client.get(f"{base}/v1/members/me/data-export", headers=headers)
        if answer.status_code != 200:
            demo.fail(answer, f"the {name} export")
        parts[name] = answer.json()
    purchases = parts["points"]["partner_purchase_event_ids"]
    answer = client.get(f"{demo.PARTNERS}/v1/members/me/data-export", params={"purchase_event_id": purchases},
                        headers=headers)  # fmt: skip
    if answer.status_code != 200:
        demo.fail(answer, "the partners export")
    parts["partners"] = answer.json()
    return parts


def _wait(probe: Any, demo: Any, what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.2)
    print(f"{what}: not within {timeout:.0f} s", flush=True)
    raise SystemExit(1)
