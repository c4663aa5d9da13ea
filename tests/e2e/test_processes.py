"""The services as real processes, started the way `make up` starts them."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support.partner_client import SignedPartnerClient, bearer, ops_token, purchase_item, register_partner
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def service_process(name: str, env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", name, "serve"], env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


async def ready(client: httpx.AsyncClient, base: str) -> dict[str, object] | None:
    try:
        answer = await client.get(f"{base}/ready")
    except httpx.TransportError:
        return None
    return answer.json() if answer.status_code == 200 else None


async def test_services_as_processes_carry_a_purchase_and_stop_gracefully(
    infra, topic_prefix, database: Callable[[str], Awaitable[str]], tmp_path: Path
):
    ports = {"partners": free_port(), "points": free_port()}
    # The test mints the ops token and receives the partner's secret, so it sets both services' secrets.
    secrets = {"JWT_SECRET": f"e2e-jwt-secret-{topic_prefix}", "PARTNER_KEY_SECRET": f"e2e-partner-key-{topic_prefix}"}
    envs = {}
    for name, port in ports.items():
        envs[name] = {
            **os.environ,
            "DATABASE_URL": await database(name),
            "KAFKA_BOOTSTRAP_SERVERS": infra.kafka,
            "KAFKA_TOPIC_PREFIX": topic_prefix,
            "HTTP_PORT": str(port),
            "CONSUMER_GROUP": f"points-{topic_prefix}",
            **secrets,
        }
    partners_url, points_url = (f"http://127.0.0.1:{ports[n]}" for n in ("partners", "points"))
    logs = {name: tmp_path / f"{name}.log" for name in ports}

    with (
        service_process("partners", envs["partners"], logs["partners"]) as partners,
        service_process("points", envs["points"], logs["points"]) as points,
    ):
        async with httpx.AsyncClient(timeout=10) as client:
            for base in (partners_url, points_url):
                checks = await eventually(lambda b=base: ready(client, b), timeout=60, what=f"{base}/ready")
                assert checks["checks"] == {"database": "ok", "kafka": "ok"}
                assert (await client.get(f"{base}/health")).json()["status"] == "ok"

            token = ops_token(secrets["JWT_SECRET"])
            async with httpx.AsyncClient(base_url=partners_url, timeout=10) as partners_api:
                partner = SignedPartnerClient(
                    partners_api, await register_partner(partners_api, token, "skymall", currency="HKD")
                )
                answer = await partner.purchase(purchase_item("proc-1", 8_800, customer_ref="cust-5", currency="HKD"))
            assert answer.status_code == 202, answer.text
            assert answer.json()["points"] == 88
            event_id = answer.json()["event_id"]

            async def applied() -> dict[str, object] | None:
                found = await client.get(f"{points_url}/v1/events/{event_id}", headers=bearer(token))
                return found.json() if found.status_code == 200 else None

            recorded = await eventually(applied, what="points to apply the purchase")
            assert [t["amount"] for t in recorded["transfers"]] == [88]

            document = (await client.get(f"{points_url}/asyncapi.json")).json()
            assert any("loyalty.partner-purchases.v1" in name for name in json.dumps(document["channels"]).split('"'))

        for process in (partners, points):
            process.send_signal(signal.SIGTERM)
        codes = [await asyncio.to_thread(p.wait, 30) for p in (partners, points)]
        # uvicorn re-raises SIGTERM once its graceful shutdown is done; the logs below prove it finished.
        assert all(code in (0, -signal.SIGTERM) for code in codes), codes

    for name, log in logs.items():
        lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
        assert lines, f"{name} wrote no structured log lines"
        messages = [line["msg"] for line in lines]
        assert "service stopped" in messages, f"{name} did not finish its shutdown: {messages[-5:]}"
        assert all(line["service"] == name for line in lines)
