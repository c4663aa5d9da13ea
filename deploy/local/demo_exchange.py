"""The demo's points exchange step (issue 13, item 2).

In: the bank's card system debits 8,003 of Ada's card reward points and says so on loyalty.card-points-exchanges.v1
(produced here as the card system would); they become 2,000 alliance points at 0.25 per card point (rounded down,
0.75 stated as the remainder); the same message again changes nothing.
Out: Ada exchanges 600 points into SkyAir miles (a two-phase hold); 1,500 more would pass the daily limit and are
refused; SkyAir confirms the 600 with its reference (captured, priced in its statement), a second confirm is 409;
a second exchange of 500 is refused by SkyAir and released.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from contracts.events.exchange import CardPointsConverted, CardPointsConvertedPayload
from contracts.signing import signed_headers
from contracts.topics import CARD_POINTS_EXCHANGES

RATES_FROM = "2020-01-01T00:00:00+00:00"
_LAST_STAMP = [0]


def _fresh_second() -> int:
    """A timestamp later than the previous signed call's: the partners service accepts each signature once."""
    if int(time.time()) <= _LAST_STAMP[0]:
        time.sleep(_LAST_STAMP[0] + 1 - time.time())
    _LAST_STAMP[0] = max(int(time.time()), _LAST_STAMP[0] + 1)
    return _LAST_STAMP[0]


def exchange(client: httpx.Client, me: dict[str, str], air: Any, card: str) -> None:
    """`me`: Ada's headers; `air`: SkyAir's signed back office (demo.Partner); `card`: Ada's linked card token."""
    from deploy.local import demo  # here, not at the top: demo.py imports this module

    demo.step("Points exchange in: Ada's bank card points become alliance points at the dated rate")
    _ops_terms(client, demo)
    before = client.get(f"{demo.POINTS}/v1/members/me/balance", headers=me).json()["posted"]
    event_id, request_id = uuid.uuid4(), uuid.uuid4()
    converted = CardPointsConverted(
        event_id=event_id, occurred_at=datetime.now(UTC), source="card-system", correlation_id=event_id,
        payload=CardPointsConvertedPayload(request_id=request_id, card_token=card, card_points=8003),
    )  # fmt: skip
    again = converted.model_copy(update={"event_id": uuid.uuid4()})  # the card system sends it twice
    raw = [e.model_dump_json().encode() for e in (converted, again)]
    asyncio.run(demo.publish_raw(CARD_POINTS_EXCHANGES.name, card.encode(), raw))  # keyed by card token
    posted = _wait(lambda: _posted_at_least(client, demo, me, before + 2000), "the converted card points")
    print(f"    8,003 card points at 0.25 -> +2,000 points (0.75 of a point stated, not credited); balance {posted:,}")
    time.sleep(1.0)
    after_repeat = client.get(f"{demo.POINTS}/v1/members/me/balance", headers=me).json()["posted"]
    print(f"    the same conversion again (another event, one request id): balance still {after_repeat:,}")

    demo.step("Points exchange out: Ada exchanges 600 points into SkyAir miles (held until SkyAir decides)")
    first = _ask(client, demo, me, 600)
    print(f"    {first['status']}: {first['points']:,} points -> {first['units']:,} {first['units_name']}")
    over = client.post(f"{demo.POINTS}/v1/members/me/exchanges", headers=me, json=_body(1500))
    print(f"    1,500 more today: {over.status_code} {over.json().get('reason')}: {over.json()['detail'][:70]}")
    second = _ask(client, demo, me, 500)

    listed = _wait(lambda: _pending(air, demo, {first["exchange_id"], second["exchange_id"]}), "SkyAir's pending list")
    print(f"    SkyAir sees {len(listed)} pending exchanges to credit")
    confirmed = _signed(
        air, demo, "POST", f"/exchanges/{first['exchange_id']}/confirm", {"partner_reference": "SKY-TX-1"}
    )
    if confirmed.status_code != 200:
        demo.fail(confirmed, "SkyAir confirming the exchange")
    twice = _signed(air, demo, "POST", f"/exchanges/{first['exchange_id']}/confirm", {"partner_reference": "SKY-TX-2"})
    print(f"    SkyAir confirms with SKY-TX-1; confirming again: {twice.status_code} {twice.json().get('reason')}")
    refused = _signed(air, demo, "POST", f"/exchanges/{second['exchange_id']}/refuse", {"reason": "unknown number"})
    if refused.status_code != 200:
        demo.fail(refused, "SkyAir refusing the exchange")
    states = _wait(lambda: _settled(client, demo, me, first["exchange_id"], second["exchange_id"]), "the holds")
    balance = client.get(f"{demo.POINTS}/v1/members/me/balance", headers=me).json()
    print(f"    ledger: 600 {states[0]}, 500 {states[1]}; Ada has {balance['available']:,} points available")
    line = _wait(lambda: _exchange_line(client, demo), "SkyAir's exchange line in its statement")
    print(f"    SkyAir's statement: {line['points_exchanged']:,} points exchanged, paid "
          f"{line['exchange_amount_minor'] / 100:,.2f} {line['currency']} at the redemption price")  # fmt: skip


def _ops_terms(client: httpx.Client, demo: Any) -> None:
    """The card points rate and SkyAir's programme (a rerun finds the same dated versions: 409 is fine)."""
    rate = client.post(f"{demo.POINTS}/v1/ops/card-points-rates", headers=demo.OPS,
                       json={"valid_from": RATES_FROM, "rate": "0.25"})  # fmt: skip
    terms = {"units_name": "miles", "min_points": 500, "step_points": 100, "daily_limit_points": 2000}
    programme = client.put(f"{demo.POINTS}/v1/ops/exchange-programmes/skyair", headers=demo.OPS, json=terms)
    miles = client.post(f"{demo.POINTS}/v1/ops/exchange-programmes/skyair/rates", headers=demo.OPS,
                        json={"valid_from": RATES_FROM, "rate": "0.8"})  # fmt: skip
    for answer, what in ((rate, "the card points rate"), (programme, "SkyAir's programme"), (miles, "the miles rate")):
        if answer.status_code not in (200, 201, 409):
            demo.fail(answer, what)
    print("    ops: 0.25 points per card point; SkyAir miles at 0.8 per point, min 500, step 100, 2,000 a day")


def _body(points: int) -> dict[str, Any]:
    return {"exchange_id": str(uuid.uuid4()), "partner_id": "skyair", "points": points, "membership_number": "FF-ADA"}


def _ask(client: httpx.Client, demo: Any, me: dict[str, str], points: int) -> dict[str, Any]:
    answer = client.post(f"{demo.POINTS}/v1/members/me/exchanges", headers=me, json=_body(points))
    if answer.status_code != 201:
        demo.fail(answer, f"exchanging {points} points")
    made: dict[str, Any] = answer.json()
    return made


def _signed(air: Any, demo: Any, method: str, path: str, payload: object | None = None) -> httpx.Response:
    """A signed request of SkyAir's; the signature covers the path without its query."""
    body = b"" if payload is None else json.dumps(payload).encode()
    full, _, query = f"/v1/partners/{air.partner_id}{path}".partition("?")
    headers = signed_headers(air.key_id, air.secret, method, full, body, _fresh_second())
    url = demo.PARTNERS + full + (f"?{query}" if query else "")
    return air.client.request(method, url, content=body, headers={**headers, "content-type": "application/json"})


def _pending(air: Any, demo: Any, wanted: set[str]) -> list[Any] | None:
    answer = _signed(air, demo, "GET", "/exchanges?status=pending")
    if answer.status_code != 200:
        demo.fail(answer, "SkyAir listing its pending exchanges")
    items = [i for i in answer.json()["items"] if i["exchange_id"] in wanted]
    return items if len(items) == len(wanted) else None


def _posted_at_least(client: httpx.Client, demo: Any, me: dict[str, str], points: int) -> int | None:
    posted: int = client.get(f"{demo.POINTS}/v1/members/me/balance", headers=me).json()["posted"]
    return posted if posted >= points else None


def _settled(client: httpx.Client, demo: Any, me: dict[str, str], *exchange_ids: str) -> list[str] | None:
    items = client.get(f"{demo.POINTS}/v1/members/me/exchanges", headers=me).json()["items"]
    status = {i["exchange_id"]: i["status"] for i in items}
    found = [status.get(e, "pending") for e in exchange_ids]
    return None if "pending" in found else found


def _exchange_line(client: httpx.Client, demo: Any) -> dict[str, Any] | None:
    period = datetime.now(UTC).strftime("%Y-%m")
    answer = client.get(f"{demo.PARTNERS}/v1/ops/statements", params={"period": period}, headers=demo.OPS)
    if answer.status_code != 200:
        return None
    lines = [line for s in answer.json()["statements"] if s["partner_id"] == "skyair" for line in s["lines"]]
    return next((line for line in lines if line["points_exchanged"] >= 600), None)


def _wait(check: Any, what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}; see .local/logs/points.log and partners.log")
