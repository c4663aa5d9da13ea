"""Redemption survives restarts: points and redemption killed with SIGKILL while orders are in flight.

Every order must end in exactly one of "fulfilled and paid" or "cancelled and refunded":
fulfilled <=> its hold was captured once <=> its stock was sold; cancelled <=> its hold was
released (or refused) and its stock given back; and a partner that delivered was paid.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request, Response

from contracts.topics import OFFERS, PARTNER_PURCHASES
from points.handlers.verify import verify_ledger
from tests.support.ledger import link, member_headers, new_member, publish, purchase
from tests.support.offers import published
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
MEMBERS = 30
ORDERS_PER_MEMBER = 4


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class FakePartner:
    """A partner's fulfilment endpoint: most orders delivered, some declined, some only on a second try."""

    def __init__(self) -> None:
        self.delivered: set[str] = set()
        self.declined: set[str] = set()
        self.seen: set[str] = set()
        self.app = FastAPI()
        self.app.post("/fulfil")(self.fulfil)

    async def fulfil(self, request: Request) -> Response:
        order_id = request.headers["Idempotency-Key"]
        roll = int(hashlib.sha256(order_id.encode()).hexdigest(), 16) % 100
        first_time = order_id not in self.seen
        self.seen.add(order_id)
        if roll < 15:
            self.declined.add(order_id)
            return Response(status_code=409)
        if roll < 30 and first_time:
            return Response(status_code=503)
        self.delivered.add(order_id)
        return Response(status_code=200, content=b'{"reference": "ok"}', media_type="application/json")


class Service:
    def __init__(self, name: str, env: dict[str, str], log: Path) -> None:
        self.name, self.env, self.log = name, env, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.name, "serve"], env=self.env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
            )

    async def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(self.process.wait, 10)

    async def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            await asyncio.to_thread(self.process.wait, 30)


async def ready(client: httpx.AsyncClient, base: str) -> bool:
    try:
        return (await client.get(f"{base}/ready")).status_code == 200
    except httpx.TransportError:
        return False


async def fetch(dsn: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(sql)
    finally:
        await conn.close()


async def test_orders_end_fulfilled_and_paid_or_cancelled_and_refunded_across_restarts(
    infra, topic_prefix, database, tmp_path
):
    partner = FakePartner()
    partner_port = free_port()
    server = uvicorn.Server(uvicorn.Config(partner.app, host="127.0.0.1", port=partner_port, log_config=None))
    serving = asyncio.create_task(server.serve())

    points_dsn, redemption_dsn = await database("points"), await database("redemption")
    ports = {"points": free_port(), "redemption": free_port()}
    common = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": infra.kafka, "KAFKA_TOPIC_PREFIX": topic_prefix}
    services = {
        "points": Service(
            "points",
            {**common, "DATABASE_URL": points_dsn, "HTTP_PORT": str(ports["points"]),
             "CONSUMER_GROUP": f"points-{topic_prefix}", "HOLD_EXPIRY_INTERVAL_SECONDS": "1"},
            tmp_path / "points.log",
        ),
        "redemption": Service(
            "redemption",
            {**common, "DATABASE_URL": redemption_dsn, "HTTP_PORT": str(ports["redemption"]),
             "CONSUMER_GROUP": f"redemption-{topic_prefix}", "FULFILMENT_TIMEOUT_SECONDS": "30"},
            tmp_path / "redemption.log",
        ),
    }  # fmt: skip
    base = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    try:
        for service in services.values():
            service.start()
        async with httpx.AsyncClient(timeout=10) as client:
            for name in services:
                await eventually(lambda n=name: ready(client, base[n]), timeout=60, what=f"{name} to be ready")
            points_api = httpx.AsyncClient(base_url=base["points"], timeout=10)
            members = [await new_member(points_api, f"m{i}") for i in range(MEMBERS)]
            for member in members:
                await link(points_api, member, partner_id="skymall", customer_ref=f"c-{member.hex[:10]}")
            purchases = [purchase(f"c-{m.hex[:10]}", f"o-{m.hex[:10]}", 20_000, points=200) for m in members]
            await publish(infra.kafka, PARTNER_PURCHASES.qualified(topic_prefix), purchases)
            await publish(
                infra.kafka,
                OFFERS.qualified(topic_prefix),
                [
                    published("skyair", "voucher", 1, price_points=30, stock=50),
                    published(
                        "skyair",
                        "gadget",
                        1,
                        kind="product",
                        price_points=50,
                        stock=45,
                        fulfilment_url=f"http://127.0.0.1:{partner_port}/fulfil",
                    ),
                ],
                key=b"skyair",
            )

            async def earned_and_listed() -> bool:
                earned = await fetch(points_dsn, "SELECT count(*) AS n FROM earnings")
                listed = await fetch(redemption_dsn, "SELECT count(*) AS n FROM catalog")
                return earned[0]["n"] == MEMBERS and listed[0]["n"] == 2

            await eventually(earned_and_listed, what="points earned and offers listed")

            async def place(member: uuid.UUID, offer_id: str, key: str) -> str:
                """Retry through restarts with the same idempotency key, as a member's app would."""
                body = {"partner_id": "skyair", "offer_id": offer_id, "idempotency_key": key}
                while True:
                    try:
                        answer = await client.post(
                            f"{base['redemption']}/v1/orders", json=body, headers=member_headers(member)
                        )
                    except httpx.TransportError:
                        await asyncio.sleep(0.2)  # the service is restarting; the member taps again
                        continue
                    if answer.status_code in (200, 202):
                        return str(answer.json()["order_id"])
                    if answer.status_code == 409:  # out of stock when ordered: nothing to end
                        return ""
                    await asyncio.sleep(0.2)

            orders = [
                place(member, "voucher" if i % 2 else "gadget", f"{member}-{i}")
                for member in members
                for i in range(ORDERS_PER_MEMBER)
            ]
            ordering = asyncio.gather(*orders)
            for victim in ("redemption", "points", "redemption", "points"):
                await asyncio.sleep(1.0)  # let orders reach every step before the next crash
                await services[victim].kill()
                services[victim].start()
            placed = [o for o in await ordering if o]
            for name in services:
                await eventually(lambda n=name: ready(client, base[n]), timeout=60, what=f"{name} back")

            async def all_final() -> bool:
                rows = await fetch(redemption_dsn, "SELECT state FROM orders")
                return len(rows) == len(placed) and all(
                    r["state"] in ("fulfilled", "cancelled", "payment_failed") for r in rows
                )

            await eventually(all_final, timeout=180, what="every order to end")
            await points_api.aclose()
    finally:
        for service in services.values():
            await service.stop()
        server.should_exit = True
        await serving

    orders = {str(r["order_id"]): r for r in await fetch(redemption_dsn, "SELECT * FROM orders")}
    holds = {r["hold_id"]: r for r in await fetch(points_dsn, "SELECT hold_id, status, amount FROM holds")}
    assert {o["state"] for o in orders.values()} <= {"fulfilled", "cancelled"}
    for order_id, o in orders.items():
        hold = holds.get(o["hold_id"])
        if o["state"] == "fulfilled":
            assert hold is not None, f"{order_id} fulfilled without a hold"
            assert hold["status"] == "posted", f"{order_id} fulfilled but not paid"
            assert hold["amount"] == o["unit_points"] * o["quantity"]
        else:
            assert hold is None or hold["status"] == "voided", f"{order_id} cancelled but its points were taken"
    delivered_products = {i for i, o in orders.items() if o["kind"] == "product" and o["state"] == "fulfilled"}
    assert partner.delivered & set(orders) == delivered_products, "a partner that delivered was paid, and only then"
    stock = {
        r["offer_id"]: r
        for r in await fetch(redemption_dsn, "SELECT offer_id, units_reserved, units_sold FROM catalog")
    }
    for offer_id in ("voucher", "gadget"):
        sold = sum(o["quantity"] for o in orders.values() if o["offer_id"] == offer_id and o["state"] == "fulfilled")
        assert (stock[offer_id]["units_reserved"], stock[offer_id]["units_sold"]) == (0, sold)
    spent = sum(o["unit_points"] * o["quantity"] for o in orders.values() if o["state"] == "fulfilled")
    balances = await fetch(
        points_dsn, "SELECT sum(credits_posted - debits_posted) AS total FROM accounts WHERE kind = 'member'"
    )
    assert balances[0]["total"] == MEMBERS * 200 - spent
    assert await verify_ledger(points_dsn) == []
    assert sum(o["state"] == "fulfilled" for o in orders.values()) > 0
    assert sum(o["state"] == "cancelled" for o in orders.values()) > 0
