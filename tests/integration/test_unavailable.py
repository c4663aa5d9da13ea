"""While PostgreSQL is unreachable every endpoint answers 503 with Retry-After, and the service recovers by itself."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import pytest

from contracts.topics import PARTNER_PURCHASES
from tests.support.ledger import OPS, link, member_headers, new_member, publish, purchase
from tests.support.proxy import Proxy
from tests.support.services import http, points_service, running
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


def through(proxy: Proxy, dsn: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}"))


async def test_points_answers_503_while_its_database_is_unreachable_and_recovers_by_itself(
    infra, topic_prefix, database
):
    dsn = await database("points")
    parts = urlsplit(dsn)
    proxy = await Proxy(parts.hostname or "127.0.0.1", parts.port or 5432).start()
    try:
        async with running(points_service(infra.kafka, through(proxy, dsn), topic_prefix)) as shell, http(shell) as api:
            member = await new_member(api)
            await link(api, member, partner_id="skymall", customer_ref="outage-1")

            await proxy.cut()
            calls = [
                api.get(f"/v1/members/{member}/balance", headers=member_headers(member)),
                api.get(f"/v1/members/{member}/history", headers=member_headers(member)),
                api.post("/v1/members", json={"display_name": "Bob"}, headers=OPS),
                api.get("/v1/ops/dead-letters", headers=OPS),
            ]
            for call in calls:
                answer = await call
                assert answer.status_code == 503, answer.text
                assert answer.headers["Retry-After"].isdigit()
                assert "the database is unreachable" in answer.json()["detail"]
            assert (await api.get("/ready")).status_code == 503
            # Kafka is fine: a purchase arrives meanwhile, and waits for the database without being dead-lettered.
            await publish(infra.kafka, PARTNER_PURCHASES.qualified(topic_prefix), [purchase("outage-1", "o-1", 900, 9)])

            await proxy.restore()

            async def balance_back() -> int | None:
                answer = await api.get(f"/v1/members/{member}/balance", headers=member_headers(member))
                return answer.json()["posted"] if answer.status_code == 200 and answer.json()["posted"] else None

            assert await eventually(balance_back, timeout=30, what="the balance after the outage") == 9
            assert (await api.get("/ready")).status_code == 200
            assert (await api.get("/v1/ops/dead-letters", headers=OPS)).json()["items"] == []
    finally:
        await proxy.stop()
