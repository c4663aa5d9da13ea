"""Fulfilment callbacks through real Kafka and PostgreSQL: signed per partner, and never sent into our own network."""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

import redemption.app
import redemption.settings
from contracts.events.holds import HeldPayload, PointsHeld
from contracts.signing import KEY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from contracts.topics import HOLD_RESULTS, OFFERS
from loyalty_runtime.auth import Role, TokenAuthority
from redemption.domain.fulfilment_urls import Address
from redemption.domain.orders import hold_id_for
from tests.support.kafka import read_all
from tests.support.ledger import OPS, member_headers, publish
from tests.support.offers import published
from tests.support.services import http, redemption_service, running
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


@dataclass
class Partners:
    """Every partner's fulfilment endpoint: remembers each callback, delivers."""

    requests: list[httpx.Request] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, json={"reference": "REF"})

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    async def callback_for(self, order_id: str) -> httpx.Request:
        async def arrived() -> httpx.Request | None:
            return next((r for r in self.requests if r.headers["Idempotency-Key"] == order_id), None)

        return await eventually(arrived, what=f"the fulfilment callback of {order_id}")


def verifies(request: httpx.Request, secret: str) -> bool:
    timestamp = int(request.headers[TIMESTAMP_HEADER])
    return verify(secret, "POST", request.url.path, timestamp, request.content, request.headers[SIGNATURE_HEADER])


def held(member: uuid.UUID, order_id: str, amount: int) -> PointsHeld:
    ref = {"hold_id": hold_id_for(uuid.UUID(order_id)), "member_id": member, "order_id": uuid.UUID(order_id)}
    return PointsHeld(
        event_id=uuid.uuid4(), occurred_at=datetime.now(UTC), source="points", correlation_id=ref["order_id"],
        payload=HeldPayload(**ref, amount=amount, expires_at=datetime.now(UTC) + timedelta(minutes=30)),
    )  # fmt: skip


@dataclass(frozen=True)
class Redemption:
    api: httpx.AsyncClient
    partners: Partners
    kafka: str
    prefix: str
    headers: dict[str, str]
    """An ops token this service accepts."""

    async def offer(self, partner_id: str, offer_id: str, url: str) -> None:
        offer = published(partner_id, offer_id, 1, kind="product", price_points=100, stock=10, fulfilment_url=url)
        await publish(self.kafka, OFFERS.qualified(self.prefix), [offer], key=partner_id.encode())

        async def listed() -> bool:
            return (await self.api.get(f"/v1/catalog/{partner_id}/{offer_id}", headers=self.headers)).status_code == 200

        await eventually(listed, what=f"offer {offer_id} in the catalog")

    async def ordered_and_held(self, member: uuid.UUID, member_token: dict[str, str], partner_id: str, offer_id: str):
        """An order whose points the ledger held (as the points service would answer), so the partner is called."""
        body = {"partner_id": partner_id, "offer_id": offer_id, "idempotency_key": uuid.uuid4().hex}
        answer = await self.api.post("/v1/orders", json=body, headers=member_token)
        assert answer.status_code == 202, answer.text
        order_id: str = answer.json()["order_id"]
        await publish(self.kafka, HOLD_RESULTS.qualified(self.prefix), [held(member, order_id, 100)])
        return order_id

    async def order(self, partner_id: str, offer_id: str) -> str:
        member = uuid.uuid4()
        return await self.ordered_and_held(member, member_headers(member), partner_id, offer_id)

    async def issue_key(self, partner_id: str, **body: Any) -> dict[str, Any]:
        answer = await self.api.post(f"/v1/ops/fulfilment-keys/{partner_id}", json=body or None, headers=self.headers)
        assert answer.status_code == 201, answer.text
        issued: dict[str, Any] = answer.json()
        return issued

    async def keys(self, partner_id: str) -> dict[str, Any]:
        answer = await self.api.get(f"/v1/ops/fulfilment-keys/{partner_id}", headers=self.headers)
        assert answer.status_code == 200, answer.text
        found: dict[str, Any] = answer.json()
        return found


@pytest.fixture
async def service(infra, topic_prefix, database) -> AsyncIterator[Redemption]:
    partners = Partners()
    dsn = await database("redemption")
    async with (
        running(redemption_service(infra.kafka, dsn, topic_prefix, partners=partners.transport)) as shell,
        http(shell) as api,
    ):
        yield Redemption(api, partners, infra.kafka, topic_prefix, OPS)


async def test_each_partner_s_callbacks_carry_its_own_key_and_verify_only_with_its_own_secret(service: Redemption):
    skyair = await service.issue_key("skyair")
    assert (skyair["key_id"], skyair["version"], skyair["issued"]) == ("fk_skyair_v1", 1, True)
    await service.offer("skyair", "lounge", "https://skyair.example/fulfil")
    await service.offer("skymall", "mug", "https://skymall.example/fulfil")

    to_skyair = await service.partners.callback_for(await service.order("skyair", "lounge"))
    to_skymall = await service.partners.callback_for(await service.order("skymall", "mug"))

    assert to_skyair.headers[KEY_HEADER] == "fk_skyair_v1"
    assert verifies(to_skyair, skyair["secret"])
    assert to_skymall.headers[KEY_HEADER] == "fk_skymall_v1", "a partner without a key got one at its first callback"
    assert not verifies(to_skymall, skyair["secret"])
    made = await service.keys("skymall")
    assert made["current_key_id"] == "fk_skymall_v1"
    assert [(k["key_id"], k["issued"]) for k in made["keys"]] == [("fk_skymall_v1", False)]
    assert "secret" not in str(made), "a secret is shown once, when it is issued"

    skymall = await service.issue_key("skymall")  # its first key was never shown: the issued one signs at once
    assert (skymall["key_id"], skymall["signing_until_then"]) == ("fk_skymall_v2", None)
    to_skymall = await service.partners.callback_for(await service.order("skymall", "mug"))
    assert to_skymall.headers[KEY_HEADER] == "fk_skymall_v2"
    assert verifies(to_skymall, skymall["secret"])
    assert not verifies(to_skymall, skyair["secret"])


async def test_a_rotation_changes_the_signature_once_its_grace_is_over(service: Redemption):
    first = await service.issue_key("skyair")
    await service.offer("skyair", "lounge", "https://skyair.example/fulfil")
    before = await service.partners.callback_for(await service.order("skyair", "lounge"))

    pending = await service.issue_key("skyair")  # the default grace: a day for the partner to install it
    assert (pending["key_id"], pending["signing_until_then"]) == ("fk_skyair_v2", "fk_skyair_v1")
    assert datetime.fromisoformat(pending["active_from"]) > datetime.now(UTC) + timedelta(hours=23)
    assert (await service.keys("skyair"))["current_key_id"] == "fk_skyair_v1"
    during = await service.partners.callback_for(await service.order("skyair", "lounge"))
    assert during.headers[KEY_HEADER] == "fk_skyair_v1"
    assert verifies(during, first["secret"])

    now = await service.issue_key("skyair", grace_seconds=0)  # e.g. a leaked secret
    assert (await service.keys("skyair"))["current_key_id"] == now["key_id"] == "fk_skyair_v3"
    after = await service.partners.callback_for(await service.order("skyair", "lounge"))

    assert (before.headers[KEY_HEADER], after.headers[KEY_HEADER]) == ("fk_skyair_v1", "fk_skyair_v3")
    assert len({first["secret"], pending["secret"], now["secret"]}) == 3
    assert verifies(after, now["secret"])
    assert not verifies(after, first["secret"])


async def test_fulfilment_keys_are_for_ops_only(service: Redemption):
    path = "/v1/ops/fulfilment-keys/skyair"
    member = member_headers(uuid.uuid4())
    for method in ("POST", "GET"):
        nobody = await service.api.request(method, path)
        assert nobody.status_code == 401
        assert "missing bearer token" in nobody.json()["detail"]
        refused = await service.api.request(method, path, headers=member)
        assert (refused.status_code, refused.json()["detail"]) == (403, "this endpoint needs an ops token")
    unknown = await service.api.get("/v1/ops/fulfilment-keys/nokeys", headers=OPS)
    assert unknown.status_code == 404
    assert "POST /v1/ops/fulfilment-keys/nokeys" in unknown.json()["detail"]
    too_long = await service.api.post(path, json={"grace_seconds": 31 * 86_400}, headers=OPS)
    assert too_long.status_code == 422


PRODUCTION_JWT = "a-production-jwt-secret-of-more-than-32-chars"


async def test_a_production_service_refuses_offers_and_calls_that_lead_into_our_network(infra, topic_prefix, database):
    dsn = await database("redemption")
    settings = redemption.settings.Settings(
        environment="production", database_url=dsn, kafka_bootstrap_servers=infra.kafka,
        kafka_topic_prefix=topic_prefix, consumer_group=f"redemption-{uuid.uuid4().hex[:8]}",
        jwt_secret=PRODUCTION_JWT, fulfilment_signing_secret="a-production-fulfilment-master-secret-32+",
        fulfilment_allowed_hosts="10.20.0.0/16",
    )  # fmt: skip
    dns: dict[str, str] = {"skyair.example": "93.184.216.34"}

    async def resolver(host: str, port: int) -> list[Address]:
        return [ipaddress.ip_address(dns[host])]

    partners = Partners()
    shell = redemption.app.build(settings, fulfilment_transport=partners.transport, resolver=resolver)
    tokens = TokenAuthority(PRODUCTION_JWT)
    ops = {"Authorization": f"Bearer {tokens.issue('ops-test', Role.OPS)}"}
    async with running(shell), http(shell) as api:
        service = Redemption(api, partners, infra.kafka, topic_prefix, ops)
        refused = [
            published("skyair", "loopback", 1, kind="product", fulfilment_url="http://127.0.0.1/fulfil"),
            published("skyair", "private", 1, kind="product", fulfilment_url="https://10.0.0.5/fulfil"),
        ]
        await publish(infra.kafka, OFFERS.qualified(topic_prefix), refused, key=b"skyair")
        await service.offer("skyair", "allowed", "https://10.20.0.7/fulfil")
        await service.offer("skyair", "public", "https://skyair.example/fulfil")

        dead = await read_all(infra.kafka, topic_prefix + OFFERS.dead_letter, expected=2)
        reasons = sorted(dict(r.headers)["dlq-reason"].decode() for r in dead)
        assert reasons == [
            "payload.fulfilment_url: 'http://127.0.0.1/fulfil' is not https; in production partners are called "
            "over https only",
            "payload.fulfilment_url: 10.0.0.5 is a private address; fulfilment URLs must reach the partner over "
            "the internet (ops may allow it: FULFILMENT_ALLOWED_HOSTS)",
        ]
        assert await catalog_ids(dsn) == ["allowed", "public"]

        dns["skyair.example"] = "10.0.0.9"  # the partner's DNS changed after the offer was taken
        member = uuid.uuid4()
        member_token = {"Authorization": f"Bearer {tokens.issue(str(member), Role.MEMBER)}"}
        order_id = await service.ordered_and_held(member, member_token, "skyair", "public")

        async def cancelling() -> dict[str, Any] | None:
            found: dict[str, Any] = (await api.get(f"/v1/orders/{order_id}", headers=member_token)).json()
            return found if found["state"] == "cancelling" else None

        declined = await eventually(cancelling, what="the order to be declined")
        assert declined["cancel_reason"] == "fulfilment_url_refused"
        assert partners.requests == [], "nothing was sent to the private address"


async def catalog_ids(dsn: str) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        return [r["offer_id"] for r in await conn.fetch("SELECT offer_id FROM catalog ORDER BY offer_id")]
    finally:
        await conn.close()
