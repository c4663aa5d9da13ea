"""The demo's webhooks step: SkyCafe's staff subscribe a receiver (a tiny HTTP server in this process) to its orders,
Ada places an order, and the receiver gets the signed order.placed, which it verifies as Standard Webhooks say."""

from __future__ import annotations

import queue
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from contracts import webhooks as wire
from loyalty_runtime.auth import Role

Received = tuple[dict[str, str], bytes]


def _receiver() -> tuple[ThreadingHTTPServer, queue.Queue[Received]]:
    """SkyCafe's endpoint: keeps what it receives and answers 204, on a free loopback port."""
    received: queue.Queue[Received] = queue.Queue()

    class Endpoint(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # the http.server interface
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            received.put(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_args: Any) -> None:  # quiet: the demo prints what matters
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    threading.Thread(target=server.serve_forever, name="webhook receiver", daemon=True).start()
    return server, received


def webhooks(client: httpx.Client, me: dict[str, str]) -> None:
    """`me`: Ada's headers. Needs SkyCafe and its coffee-year offer (redeem_at_another_partner made them)."""
    from deploy.local import demo  # here, not at the top: demo.py imports this module

    demo.step("SkyCafe's staff subscribe a webhook endpoint to their orders; its secret is shown once")
    server, received = _receiver()
    try:
        staff = {"Authorization": f"Bearer {demo.AUTHORITY.issue('cafe-staff', Role.PARTNER, partner_id='skycafe')}"}
        url = f"http://127.0.0.1:{server.server_address[1]}/loyalty/webhooks"
        answer = client.post(f"{demo.PARTNERS}/v1/partners/skycafe/webhook-endpoints", headers=staff,
                             json={"url": url, "event_types": ["order.placed", "order.settled"],
                                   "description": "demo receiver"})  # fmt: skip
        if answer.status_code != 201:
            demo.fail(answer, "subscribing the endpoint")
        endpoint = answer.json()
        print(f"    {url}  secret {endpoint['secret'][:12]}... (Standard Webhooks, whsec_ + base64)")

        demo.step("Ada orders another year of coffee: SkyCafe's endpoint is told, signed")
        placed = client.post(f"{demo.REDEMPTION}/v1/orders", headers=me, json={
            "partner_id": "skycafe", "offer_id": "coffee-year", "idempotency_key": uuid.uuid4().hex})  # fmt: skip
        if placed.status_code != 202:
            demo.fail(placed, "the order")
        headers, body = _first(received, "order.placed", timeout=30)
        message_id = wire.verify(endpoint["secret"], headers, body, datetime.now(UTC))
        print(f"    received {body.decode()[:96]}...")
        print(f"    webhook-id {message_id}: the signature verifies with the endpoint's secret")
        log = _delivered(client, staff, message_id)
        print(f"    the portal's delivery log: {log['status']} after {log['attempts']} attempt(s), "
              f"answer {log['last_status']}")  # fmt: skip
        print(
            f"    see it at {demo.CONSOLE}/portal/webhooks (as SkyCafe staff); replay from there keeps the webhook-id"
        )
    finally:
        server.shutdown()


def _first(received: queue.Queue[Received], event_type: str, timeout: float) -> Received:
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            headers, body = received.get(timeout=left)
        except queue.Empty:
            break
        if f'"type":"{event_type}"' in body.decode():
            return headers, body
    raise SystemExit(f"no {event_type} webhook within {timeout:.0f} s; see .local/logs/partners.log")


def _delivered(client: httpx.Client, staff: dict[str, str], message_id: str) -> dict[str, Any]:
    from deploy.local import demo

    deadline = time.monotonic() + 10
    while True:  # the dispatcher records the answer just after the receiver got the call
        answer = client.get(f"{demo.PARTNERS}/v1/partners/skycafe/webhook-deliveries", headers=staff)
        if answer.status_code != 200:
            demo.fail(answer, "reading the delivery log")
        found = next((d for d in answer.json()["deliveries"] if d["message_id"] == message_id), None)
        if (found and found["status"] == "delivered") or time.monotonic() > deadline:
            if found is None:
                raise SystemExit("the delivery is not in the log")
            return dict(found)
        time.sleep(0.2)
