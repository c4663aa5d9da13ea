"""Drive one purchase through the running platform and say what happened at each hop.

Run by `make demo` after `make up`.
"""

from __future__ import annotations

import sys
import time
import uuid
from datetime import UTC, datetime

import httpx

PARTNERS = "http://127.0.0.1:8101"
POINTS = "http://127.0.0.1:8102"


def step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def wait_for_event(client: httpx.Client, event_id: str, timeout: float = 15.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = client.get(f"{POINTS}/v1/events/{event_id}")
        if answer.status_code == 200:
            found: dict[str, object] = answer.json()
            return found
        if answer.status_code != 404:
            answer.raise_for_status()
        time.sleep(0.05)
    raise SystemExit(f"points did not apply event {event_id} within {timeout:.0f} s; see .local/logs/points.log")


def main() -> int:
    run = uuid.uuid4().hex[:8]
    purchase = {
        "idempotency_key": f"demo-{run}",
        "customer_ref": "cust-1001",
        "purchase_id": f"order-{run}",
        "amount_minor": 25_800,
        "currency": "CNY",
        "category": "electronics",
        "occurred_at": datetime.now(UTC).isoformat(),
    }
    with httpx.Client(timeout=10) as client:
        step("A partner (skymall) posts a purchase of 258.00 CNY over HTTP")
        started = time.monotonic()
        answer = client.post(f"{PARTNERS}/v1/partners/skymall/purchases", json=purchase)
        if answer.status_code != 202:
            print(f"partners answered {answer.status_code}: {answer.text}", file=sys.stderr)
            return 1
        event_id = answer.json()["event_id"]
        print(f"    partners: 202 Accepted, event {event_id} confirmed by Kafka")

        step("points consumes loyalty.partner-purchases.v1 and stores it with its inbox entry")
        applied = wait_for_event(client, event_id)
        print(f"    points:   applied after {1000 * (time.monotonic() - started):.0f} ms")
        for key in ("topic", "kind", "partner_id", "customer_ref", "external_id", "amount_minor", "currency"):
            print(f"              {key:<13} {applied[key]}")

        step("The partner retries the same request (same idempotency key)")
        again = client.post(f"{PARTNERS}/v1/partners/skymall/purchases", json=purchase)
        same = again.json()["event_id"] == event_id
        print(f"    partners: {again.status_code}, same event id: {same}")
        time.sleep(1.0)  # give a duplicate the time to arrive before looking
        recorded = client.get(f"{POINTS}/v1/events/{event_id}").json()
        print(f"    points:   still one record, received at {recorded['received_at']} (the inbox dropped the copy)")

    step("Where to look next")
    print(f"    API docs:      {PARTNERS}/docs  {POINTS}/docs  http://127.0.0.1:8103/docs")
    print(f"    AsyncAPI:      {PARTNERS}/asyncapi.json  {POINTS}/asyncapi.json")
    print("    logs:          .local/logs/*.log (JSON lines with trace ids)")
    print("    stop it all:   make down")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
