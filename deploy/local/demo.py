"""Drive the running platform through a member's day and say what happened at each step.

Run by `make demo` after `make up`: two partners post signed purchases (and a refund), the
bank's card system streams card payments, and the member reads one balance and one history.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx

from contracts.signing import signed_headers
from contracts.topics import CARD_TRANSACTIONS
from deploy.local.demo_adjustments import adjustments
from deploy.local.demo_attribution import attribution
from deploy.local.demo_data_rights import data_rights
from deploy.local.demo_earnings import daily_earnings
from deploy.local.demo_exchange import exchange
from deploy.local.demo_fraud import fraud
from deploy.local.demo_import import batch_import
from deploy.local.demo_liability import liability
from deploy.local.demo_packets import red_packets
from deploy.local.demo_prices import member_prices
from deploy.local.demo_tiers import tiers
from deploy.local.demo_webhooks import webhooks
from loyalty_runtime.auth import Role, TokenAuthority
from loyalty_runtime.settings import LOCAL_JWT_SECRET
from tools.cardfeed import CardFeed, publish

PARTNERS = "http://127.0.0.1:8101"
POINTS = "http://127.0.0.1:8102"
KAFKA = "127.0.0.1:19092"
AUTHORITY = TokenAuthority(os.environ.get("JWT_SECRET", LOCAL_JWT_SECRET))
OPS = {"Authorization": f"Bearer {AUTHORITY.issue('ops-demo', Role.OPS)}"}

PARTNER_TERMS = {
    "skymall": ("SkyMall (e-commerce)", {"points_per_unit": "1", "category_rates": {"electronics": "2"}}),
    "skyair": ("SkyAir (travel)", {"points_per_unit": "3", "category_rates": {}}),
    "skycafe": ("SkyCafe (coffee chain)", {"points_per_unit": "1", "category_rates": {}}),
}
REDEMPTION = "http://127.0.0.1:8103"
CONSOLE = "http://127.0.0.1:8104"


def step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def fail(answer: httpx.Response, what: str) -> None:
    print(f"{what} failed: {answer.status_code} {answer.text}", file=sys.stderr)
    raise SystemExit(1)


class Partner:
    """A partner's back office: signs every request with its key."""

    def __init__(self, client: httpx.Client, partner_id: str, key_id: str, secret: str) -> None:
        self.client, self.partner_id, self.key_id, self.secret = client, partner_id, key_id, secret

    def send(self, method: str, path: str, payload: object) -> httpx.Response:
        body = json.dumps(payload).encode()
        full = f"/v1/partners/{self.partner_id}{path}"
        signed = full.partition("?")[0]  # the signature covers the path; a query string is not part of it
        headers = signed_headers(self.key_id, self.secret, method, signed, body, int(time.time()))
        return self.client.request(
            method, PARTNERS + full, content=body, headers={**headers, "content-type": "application/json"}
        )

    def post(self, path: str, payload: object) -> httpx.Response:
        return self.send("POST", path, payload)


def onboard(client: httpx.Client, partner_id: str) -> Partner:
    """Register the partner; on a later run it exists, so ops issue it a fresh key instead."""
    name, rates = PARTNER_TERMS[partner_id]
    contract = {"valid_from": "2020-01-01", "currency": "CNY", **rates,
                "issue_price_minor_per_point": "1.0", "redemption_price_minor_per_point": "0.8"}  # fmt: skip
    answer = client.post(
        f"{PARTNERS}/v1/partners", json={"partner_id": partner_id, "name": name, "contract": contract}, headers=OPS
    )
    if answer.status_code == 409:
        answer = client.post(f"{PARTNERS}/v1/partners/{partner_id}/keys", headers=OPS)
    if answer.status_code != 201:
        fail(answer, f"onboarding {partner_id}")
    credentials = answer.json()
    return Partner(client, partner_id, credentials["key_id"], credentials["secret"])


def link_identifiers(
    client: httpx.Client, me: dict[str, str], mall: Partner, air: Partner, run: str, card: str
) -> None:
    """Each identifier's owner issues a one-time code (the partners, signed; the card system, as ops); Ada uses it."""
    without = client.post(f"{POINTS}/v1/members/me/identifiers", headers=me,
                          json={"kind": "partner", "partner_id": "skymall", "customer_ref": f"ada-{run}"})  # fmt: skip
    print(f"    without a code: {without.status_code} {without.json()['reason']}")
    codes = []
    for partner, ref in ((mall, f"ada-{run}"), (air, f"FF{run}")):
        issued = partner.post("/link-codes", {"customer_ref": ref})
        if issued.status_code != 201:
            fail(issued, f"{partner.partner_id} issuing a link code")
        codes.append(({"kind": "partner", "partner_id": partner.partner_id, "customer_ref": ref}, issued.json()))
    issued = client.post(f"{POINTS}/v1/ops/link-codes", json={"kind": "card", "card_token": card}, headers=OPS)
    if issued.status_code != 201:
        fail(issued, "the card system issuing a link code")
    codes.append(({"kind": "card", "card_token": card}, issued.json()))
    for identifier, code in codes:
        print(f"    link code {code['link_code']} for {identifier.get('customer_ref') or card}")
        deadline = time.monotonic() + 15
        while True:  # a partner's code reaches points through Kafka: a moment after it was issued
            body = {**identifier, "link_code": code["link_code"]}
            linked = client.post(f"{POINTS}/v1/members/me/identifiers", json=body, headers=me)
            if linked.status_code != 409 or linked.json().get("reason") != "link_code_not_known_yet":
                break
            if time.monotonic() > deadline:
                fail(linked, "linking with a code")
            time.sleep(0.2)
        if linked.status_code not in (200, 201):
            fail(linked, "linking an identifier")


def transfers_of(items: list[Any]) -> list[Any]:
    """History entries that moved points (the history also shows identifiers linked and unlinked)."""
    return [item for item in items if item.get("kind", "transfer") == "transfer"]


def wait_for(client: httpx.Client, member_headers: dict[str, str], entries: int, timeout: float = 30) -> list[Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = client.get(f"{POINTS}/v1/members/me/history", headers=member_headers).json()["items"]
        items = transfers_of(found)
        if len(items) >= entries:
            return items
        time.sleep(0.1)
    raise SystemExit(f"the ledger did not show {entries} entries within {timeout:.0f} s; see .local/logs/points.log")


def redeem_at_another_partner(client: httpx.Client, me: dict[str, str], posted: int) -> None:
    step("SkyCafe, where Ada never earned a point, publishes a voucher offer (signed)")
    cafe = onboard(client, "skycafe")
    key = client.post(f"{REDEMPTION}/v1/ops/fulfilment-keys/skycafe", json={"grace_seconds": 0}, headers=OPS)
    if key.status_code != 201:
        fail(key, "issuing SkyCafe's fulfilment key")
    print(f"    SkyCafe's own key for the programme's fulfilment calls: {key.json()['key_id']} (its secret shown once)")
    until = datetime.now(UTC).replace(year=datetime.now(UTC).year + 1).isoformat()
    offer = {"kind": "voucher", "title": "Coffee for a year", "description": "52 coffee vouchers",
             "category": "food", "price_points": 5_000, "stock": 100,
             "valid_from": datetime.now(UTC).isoformat(), "valid_until": until}  # fmt: skip
    answer = cafe.send("PUT", "/offers/coffee-year", offer)
    if answer.status_code not in (200, 201):
        fail(answer, "publishing the offer")
    deadline = time.monotonic() + 15
    while client.get(f"{REDEMPTION}/v1/catalog/skycafe/coffee-year", headers=me).status_code != 200:
        if time.monotonic() > deadline:
            raise SystemExit("the offer did not reach the catalog; see .local/logs/redemption.log")
        time.sleep(0.1)
    catalog = client.get(f"{REDEMPTION}/v1/catalog", params={"partner_id": "skycafe"}, headers=me).json()["items"]
    print(f"    in the catalog: {catalog[0]['title']!r} for {catalog[0]['price_points']:,} points")

    step("Ada redeems points earned at SkyMall, SkyAir and with the card, at SkyCafe")
    placed = client.post(
        f"{REDEMPTION}/v1/orders",
        json={"partner_id": "skycafe", "offer_id": "coffee-year", "idempotency_key": uuid.uuid4().hex},
        headers=me,
    )
    if placed.status_code != 202:
        fail(placed, "the order")
    order_id = placed.json()["order_id"]
    print(f"    order {order_id}: {placed.json()['state']}")
    deadline = time.monotonic() + 30
    while True:
        order = client.get(f"{REDEMPTION}/v1/orders/{order_id}", headers=me).json()
        if order["state"] in ("fulfilled", "cancelled", "payment_failed") or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    print(f"    order {order['state']}; voucher code {order['voucher_code']}")
    after = client.get(f"{POINTS}/v1/members/me/balance", headers=me).json()
    print(f"    balance: {posted:,} -> {after['posted']:,} points (hold captured by the ledger)")


def wait_applied(client: httpx.Client, event_ids: list[str], timeout: float = 30) -> None:
    """Until the ledger has applied every one of these events."""
    deadline = time.monotonic() + timeout
    pending = list(event_ids)
    while pending:
        if time.monotonic() > deadline:
            raise SystemExit(f"{len(pending)} events not applied within {timeout:.0f} s; see .local/logs/points.log")
        if client.get(f"{POINTS}/v1/events/{pending[0]}", headers=OPS).status_code == 200:
            pending.pop(0)
        else:
            time.sleep(0.1)


def targeted_activity(client: httpx.Client, mall: Partner, air: Partner, run: str) -> None:
    step("Ops target frequent flyers: double points at SkyMall this week, 25% held out to measure")
    # A cohort: 24 members who fly with SkyAir, half of them often.
    cohort = []
    for i in range(24):
        member = client.post(f"{POINTS}/v1/members", json={"display_name": f"flyer {i}"}, headers=OPS).json()
        for partner, ref in (("skyair", f"F{run}{i}"), ("skymall", f"m{run}{i}")):
            link = {"kind": "partner", "partner_id": partner, "customer_ref": ref}
            linked = client.post(f"{POINTS}/v1/members/{member['member_id']}/identifiers", json=link, headers=OPS)
            if linked.status_code not in (200, 201):
                fail(linked, "ops linking a cohort member")
        cohort.append(i)
    now = datetime.now(UTC).isoformat()
    flights = [
        {"idempotency_key": f"fly-{run}-{i}", "customer_ref": f"F{run}{i}", "purchase_id": f"FL{run}-{i}",
         "amount_minor": 150_000 if i % 2 else 30_000, "currency": "CNY", "occurred_at": now}
        for i in cohort
    ]  # fmt: skip
    answer = air.post("/purchases/batch", {"purchases": flights})
    if answer.status_code != 202:
        fail(answer, "the flights")
    wait_applied(client, [a["event_id"] for a in answer.json()["accepted"]])
    rules = {"all": [{"kind": "spend", "window_days": 30, "min_minor": 100_000, "currency": "CNY",
                      "partner_id": "skyair"}]}  # fmt: skip
    preview = client.post(f"{POINTS}/v1/ops/segments/preview", json={"rules": rules}, headers=OPS).json()
    segment = client.post(f"{POINTS}/v1/ops/segments", json={"name": f"frequent flyers {run}", "rules": rules},
                          headers=OPS).json()  # fmt: skip
    print(f"    segment 'spent 1,000+ CNY at SkyAir in 30 days': {preview['count']} members")
    body = {"name": f"Flyers shop double {run}", "kind": "multiplier", "budget_points": 50_000,
            "rules": {"multiplier": "2", "scope": {"channel": "partner", "partner_id": "skymall"}},
            "per_member_cap": 5_000, "segment_id": segment["segment_id"], "holdout_share": "0.25"}  # fmt: skip
    activity = client.post(f"{POINTS}/v1/ops/activities", json=body, headers=OPS).json()
    week = (datetime.now(UTC) + timedelta(days=7)).isoformat()
    started = client.post(f"{POINTS}/v1/ops/activities/{activity['activity_id']}/activate",
                          json={"ends_at": week}, headers=OPS)  # fmt: skip
    if started.status_code != 200:
        fail(started, "activating the activity")
    print(f"    activity {activity['activity_id']}: {started.json()['status']} until {week[:10]}")

    step("The cohort shops at SkyMall; targeted members get the bonus with their points")
    shopping = [
        {"idempotency_key": f"shop-{run}-{i}", "customer_ref": f"m{run}{i}", "purchase_id": f"S{run}-{i}",
         "amount_minor": 20_000 + 1_000 * i, "currency": "CNY", "occurred_at": datetime.now(UTC).isoformat()}
        for i in cohort if i % 3
    ]  # fmt: skip
    answer = mall.post("/purchases/batch", {"purchases": shopping})
    if answer.status_code != 202:
        fail(answer, "the shopping")
    wait_applied(client, [a["event_id"] for a in answer.json()["accepted"]])
    report_url = f"{POINTS}/v1/ops/activities/{activity['activity_id']}/report"
    report = client.get(report_url, headers=OPS).json()
    spend = {c["currency"]: c for c in report["spend"]}
    print(f"    targeted {report['targeted']}, held out {report['holdout']}, responded {report['responded']}"
          f" (rate {report['response_rate']})")  # fmt: skip
    print(f"    points granted {report['points_granted']:,} of {report['budget_points']:,};"
          f" budget left {report['budget_left']:,}")  # fmt: skip
    for currency, figures in spend.items():
        lift = figures.get("lift_per_member_minor")
        lift_text = f"{Decimal(lift) / 100:,.2f} {currency} per member" if lift is not None else "n/a"
        print(f"    spend per targeted member vs holdout: lift {lift_text}")
    print(f"    CSV: {report_url}.csv")
    refund_a_bonus(client, mall, shopping, report_url)


def refund_a_bonus(client: httpx.Client, mall: Partner, shopping: list[dict[str, Any]], report_url: str) -> None:
    step("Every shopper returns half of the order: the bonus goes back to the activity's budget in proportion")
    refunds = [
        {"idempotency_key": f"{s['idempotency_key']}-r", "customer_ref": s["customer_ref"],
         "refund_id": f"{s['purchase_id']}-R", "purchase_id": s["purchase_id"], "amount_minor": s["amount_minor"] // 2,
         "currency": "CNY", "occurred_at": datetime.now(UTC).isoformat()}
        for s in shopping
    ]  # fmt: skip
    answer = mall.post("/refunds/batch", {"refunds": refunds})
    if answer.status_code != 202:
        fail(answer, "the refunds")
    wait_applied(client, [a["event_id"] for a in answer.json()["accepted"]])
    report = client.get(report_url, headers=OPS).json()
    print(f"    granted {report['points_granted']:,}, taken back {report['points_reversed']:,},"
          f" net {report['points_net']:,}; budget left {report['budget_left']:,}")  # fmt: skip


def poison_message(client: httpx.Client, card: str, run: str) -> None:
    step("The card system sends a garbled message among Ada's payments: it is set aside, the rest goes on")
    good = list(CardFeed([card], seed=int(run, 16) + 1).events(1))
    garbled = b'{"type": "CardPurchasePosted", "payload": {"card_token": "' + card.encode() + b'"}}'
    asyncio.run(publish_raw(CARD_TRANSACTIONS.name, card.encode(), [garbled]))
    asyncio.run(publish(KAFKA, CARD_TRANSACTIONS.name, good))
    wait_applied(client, [str(good[0].event_id)])
    print(f"    the payment after it was applied: {good[0].payload.merchant_name}")  # type: ignore[attr-defined]
    deadline = time.monotonic() + 15
    while True:
        params = {"topic": CARD_TRANSACTIONS.name, "limit": 20}
        items = client.get(f"{POINTS}/v1/ops/dead-letters", params=params, headers=OPS).json()["items"]
        found = [d for d in items if d["key"] == card]  # this run's card token
        if found or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    if not found:
        raise SystemExit("the garbled message did not reach the dead letters; see .local/logs/points.log")
    letter = found[0]
    print(f"    dead letter {letter['id']} at {letter['topic']} {letter['partition']}:{letter['offset']}")
    print(f"    reason: {letter['error_class']}: {letter['reason'][:90]}")
    print(f"    ops: make dlq   (list)   make dlq SHOW={letter['id']}   make dlq REPLAY={letter['id']} (after a fix)")


async def publish_raw(topic: str, key: bytes, values: list[bytes]) -> None:
    """Bytes as a careless producer sends them."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=KAFKA, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


def settlement(client: httpx.Client) -> None:
    period = datetime.now(UTC).strftime("%Y-%m")
    step(f"Settlement for {period}, derived from the ledger's transfers (provisional until the month is closed)")
    deadline = time.monotonic() + 15
    while True:  # the partners service reads the ledger's transfers from Kafka; give it a moment
        answer = client.get(f"{PARTNERS}/v1/ops/statements", params={"period": period}, headers=OPS)
        if answer.status_code != 200:
            fail(answer, "reading the statements")
        found = answer.json()
        redeemed = {s["partner_id"]: s["points_redeemed"] for s in found["statements"]}
        if redeemed.get("skycafe", 0) > 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    print(f"    {'partner':<9} {'issued':>10} {'redeemed':>10} {'pays (CNY)':>12} {'is paid':>10} {'net':>11}")
    for statement in found["statements"]:
        for total in statement["totals"]:
            partner, issued, redeemed = (
                statement["partner_id"],
                statement["points_issued"],
                statement["points_redeemed"],
            )
            pays, paid, net = (total[k] / 100 for k in ("issue_amount_minor", "redemption_amount_minor", "net_minor"))
            print(f"    {partner:<9} {issued:>10,} {redeemed:>10,} {pays:>12,.2f} {paid:>10,.2f} {net:>+11,.2f}")
    programme = found["programme"]
    print(
        f"    programme: {programme['points_issued']:,} issued by partners, {programme['points_redeemed']:,} redeemed"
    )
    print("    (net > 0: the programme pays the partner; card points are the bank's own and settle outside)")


def main() -> int:
    run = uuid.uuid4().hex[:6]
    now = datetime.now(UTC).isoformat()
    with httpx.Client(timeout=15) as client:
        step("Ops onboard two partners with dated earn contracts; each gets its signing key once")
        mall, air = onboard(client, "skymall"), onboard(client, "skyair")
        print(f"    skymall: 1 point per CNY, 2 on electronics   key {mall.key_id}")
        print(f"    skyair:  3 points per CNY                     key {air.key_id}")

        step("Ops register a member, Ada; she links her shop accounts and her card with one-time link codes")
        answer = client.post(f"{POINTS}/v1/members", json={"display_name": "Ada"}, headers=OPS)
        if answer.status_code != 201:
            fail(answer, "registering Ada")
        ada = answer.json()["member_id"]
        me = {"Authorization": f"Bearer {AUTHORITY.issue(ada, Role.MEMBER)}"}
        card = f"tok_ada{run}demo"
        link_identifiers(client, me, mall, air, run, card)
        print(f"    member {ada}: skymall ada-{run}, skyair FF{run}, card {card}")

        step("SkyMall posts a signed purchase: a phone, 3,999.00 CNY (electronics)")
        phone = {"idempotency_key": f"mall-{run}-1", "customer_ref": f"ada-{run}", "purchase_id": f"M{run}-1",
                 "amount_minor": 399_900, "currency": "CNY", "category": "electronics", "occurred_at": now}  # fmt: skip
        answer = mall.post("/purchases", phone)
        if answer.status_code != 202:
            fail(answer, "the SkyMall purchase")
        print(f"    202 Accepted once Kafka confirmed: {answer.json()['points']} points")
        time.sleep(1.0)  # a retry is signed anew (each signature is accepted once), so a second later
        retried = mall.post("/purchases", phone)
        same = retried.json().get("event_id") == answer.json()["event_id"]
        print(f"    the same request again (a retry): {retried.status_code}, {'the same' if same else 'another'} event")
        changed = mall.post("/purchases", {**phone, "amount_minor": 299_900})
        print(
            f"    the same key with another amount: {changed.status_code} {changed.json()['detail'][0]['msg'][:70]}..."
        )

        step("SkyAir posts a batch of two flights, 1,280.00 and 860.50 CNY")
        flights = [
            {"idempotency_key": f"air-{run}-{i}", "customer_ref": f"FF{run}", "purchase_id": f"A{run}-{i}",
             "amount_minor": amount, "currency": "CNY", "occurred_at": now}
            for i, amount in enumerate((128_000, 86_050))
        ]  # fmt: skip
        answer = air.post("/purchases/batch", {"purchases": flights})
        if answer.status_code != 202:
            fail(answer, "the SkyAir batch")
        print(f"    202 Accepted: {[a['points'] for a in answer.json()['accepted']]} points")

        step("The bank's card system streams three of Ada's card payments")
        card_events = list(CardFeed([card], seed=len(run) + int(run, 16)).events(3))
        asyncio.run(publish(KAFKA, CARD_TRANSACTIONS.name, card_events))
        for event in card_events:
            p = event.payload  # type: ignore[attr-defined]
            print(
                f"    {p.merchant_name:<20} mcc {p.merchant_category_code}  {p.amount.amount_minor / 100:>10,.2f} CNY"
            )

        step("SkyMall refunds half of the phone order, 1,999.50 CNY")
        answer = mall.post("/refunds", {"idempotency_key": f"mall-{run}-r1", "customer_ref": f"ada-{run}",
                                        "refund_id": f"R{run}-1", "purchase_id": f"M{run}-1",
                                        "amount_minor": 199_950, "currency": "CNY", "occurred_at": now})  # fmt: skip
        if answer.status_code != 202:
            fail(answer, "the refund")
        print("    202 Accepted: the ledger reverses half of the phone's points")

        step("Ada reads one balance and one history, whoever issued the points")
        history = wait_for(client, me, entries=7)
        balance = client.get(f"{POINTS}/v1/members/me/balance", headers=me).json()
        print(f"    balance: {balance['posted']:,} points posted, {balance['available']:,} available")
        print(f"    {'when (UTC)':<20} {'':>7}  {'reason':<17} {'from/to':<22} detail")
        for entry in reversed(history):
            sign = "+" if entry["direction"] == "credit" else "-"
            memo = entry["memo"]
            detail = memo.get("merchant_name") or memo.get("purchase_id") or ""
            when = entry["posted_at"][:19].replace("T", " ")
            amount, reason, other = entry["amount"], entry["reason"], entry["counterparty"]
            print(f"    {when:<20} {sign}{amount:>6,}  {reason:<17} {other:<22} {detail}")
        lots = client.get(f"{POINTS}/v1/members/me/lots", headers=me).json()["items"]
        print(f"    {len(lots)} lots; the first expires {lots[0]['expires_at'][:10]}")

        redeem_at_another_partner(client, me, balance["posted"])
        poison_message(client, card, run)
        targeted_activity(client, mall, air, run)
        attribution(client, mall, run)
        tiers(client, mall, me, run)
        member_prices(client, mall, me)
        daily_earnings(client, me, ada)
        red_packets(client, me, run)
        adjustments(client, ada)
        webhooks(client, me)
        batch_import(client)
        data_rights(client, mall, run)  # before the statements: Bo's purchase is in them
        liability(client)
        fraud(client, mall, me, ada, run)
        exchange(client, me, air, card)  # before the statements: SkyAir's exchange line
        settlement(client)

    in_a_browser()

    step("Where to look next")
    print("    make verify     check every ledger invariant on this database")
    print("    make dlq        dead letters of every service: list, show, replay after a fix")
    print(f"    API docs:       {PARTNERS}/docs  {POINTS}/docs  http://127.0.0.1:8103/docs")
    print("    logs:           .local/logs/*.log (JSON lines with trace ids)")
    print("    stop it all:    make down")
    return 0


def in_a_browser() -> None:
    step("The programme in a browser: the console, with a sign-in page that lists the demo identities")
    signin = httpx.get(f"{CONSOLE}/signin", timeout=10)
    if signin.status_code != 200:
        fail(signin, "the console's sign-in page")
    print(f"    member wallet   {CONSOLE}/wallet   sign in as Ada (made for a phone: try a 390 px window)")
    print(f"    partner portal  {CONSOLE}/portal   sign in as SkyCafe's staff (or SkyMall's, SkyAir's)")
    print(f"    ops console     {CONSOLE}/ops      sign in as Olivia Chen")
    print(f"    every identity: {CONSOLE}/signin   简体中文: switch the language at the foot of any page")


if __name__ == "__main__":
    raise SystemExit(main())
