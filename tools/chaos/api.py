"""Every call the chaos run makes to the platform, in one module, so that an API change is adapted here only.

What it relies on (README "Using it" and the routers in services/*/*/api/):

- partners: ops register a partner (`POST /v1/partners`, 201 with the key's secret, once); a partner
  signs every request (contracts.signing: each signature is taken once, so a retry is signed again
  with a later timestamp). `PUT /v1/partners/{id}/offers/{offer_id}` publishes an offer (201/200).
  `POST /v1/partners/{id}/purchases` and `/refunds` answer 202 once Kafka confirmed, the same answer
  for the same idempotency key and body again, 409/422 for a refusal, 503 for "not taken, retry".
- points: ops register members (`POST /v1/members`, 201/200) and link identifiers without a link code
  (`POST /v1/members/{id}/identifiers` with an ops token, 201/200); a member gives points with
  `POST /v1/members/{id}/gifts` (201 new, 200 the same gift again, 409/422 refused) and claims a
  give-away with `POST /v1/members/{id}/activities/{activity}/claims` (201/200, 409 refused); ops
  create and activate activities under `/v1/ops/activities`.
- redemption: a member orders with `POST /v1/orders` and its own token (202 new, 200 the same
  idempotency key again, 409 refused); `GET /v1/catalog/{partner}/{offer}` is 200 once listed.
- partners' settlement: `GET /v1/ops/statements?from=&to=` (ops) sums what its consumer took in.
- the card system publishes CardPurchasePosted to loyalty.card-transactions.v1, keyed by card token,
  with an idempotent acks=all producer; the event id is what makes a resend harmless.

Calls answer an `Answer` whatever the status; only "no answer at all" (a refused or reset connection,
a timeout) raises `Unavailable`. Deciding what a status means is the caller's business.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from contracts.events.cards import CardPurchasePosted
from contracts.signing import REPLAY_WINDOW_SECONDS, signed_headers
from contracts.topics import CARD_TRANSACTIONS
from loyalty_runtime.auth import Role, TokenAuthority

TIMEOUT = httpx.Timeout(5.0, connect=2.0)
SEND_TIMEOUT_SECONDS = 15.0


class Unavailable(Exception):
    """No answer: the request may or may not have been applied; send the very same request again later."""


class SetupError(RuntimeError):
    """A set-up call was refused; the message has the call and the answer."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any

    def detail(self) -> str:
        if isinstance(self.body, dict) and "detail" in self.body:
            return json.dumps(self.body["detail"])[:300]
        return json.dumps(self.body)[:300]


@dataclass
class Partner:
    partner_id: str
    key_id: str
    secret: str
    _stamps: dict[str, int] = field(default_factory=dict, repr=False)

    def sign(self, method: str, path: str, body: bytes) -> dict[str, str]:
        """Headers for one attempt; a request sent again within its second gets a later timestamp."""
        now = int(time.time())
        if len(self._stamps) > 50_000:
            self._stamps = {k: t for k, t in self._stamps.items() if t > now - REPLAY_WINDOW_SECONDS}
        request = f"{method}\n{path}\n{hashlib.sha256(body).hexdigest()}"
        stamp = max(now, self._stamps.get(request, now - 1) + 1)
        self._stamps[request] = stamp
        return signed_headers(self.key_id, self.secret, method, path, body, stamp)


class Platform:
    """HTTP clients of the three services, with an ops token and members' own tokens."""

    def __init__(self, urls: Mapping[str, str], jwt_secret: str) -> None:
        self._http = {name: httpx.AsyncClient(base_url=url, timeout=TIMEOUT) for name, url in urls.items()}
        self._authority = TokenAuthority(jwt_secret)
        self._ops = self._bearer(self._authority.issue("ops-chaos", Role.OPS))
        self._member_tokens: dict[uuid.UUID, dict[str, str]] = {}

    async def close(self) -> None:
        for client in self._http.values():
            await client.aclose()

    # --- set-up, by ops and partners -------------------------------------------------------------

    async def register_partner(self, partner_id: str, contract: Mapping[str, Any]) -> Partner:
        body = {"partner_id": partner_id, "name": partner_id.title(), "contract": dict(contract)}
        made = expect(await self._json("partners", "POST", "/v1/partners", body, self._ops), 201, "register partner")
        return Partner(made["partner_id"], made["key_id"], made["secret"])

    async def put_offer(self, partner: Partner, offer_id: str, offer: Mapping[str, Any]) -> Answer:
        path = f"/v1/partners/{partner.partner_id}/offers/{offer_id}"
        return await self._signed(partner, "PUT", path, offer)

    async def create_member(self, member_id: uuid.UUID, name: str) -> Answer:
        return await self._json("points", "POST", "/v1/members", {"member_id": str(member_id), "display_name": name})

    async def link(self, member_id: uuid.UUID, identifier: Mapping[str, str]) -> Answer:
        """Link as ops do, without a link code: {"kind": "partner", "partner_id", "customer_ref"} or a card."""
        return await self._json("points", "POST", f"/v1/members/{member_id}/identifiers", dict(identifier))

    async def create_activity(self, activity: Mapping[str, Any]) -> dict[str, Any]:
        made = expect(await self._json("points", "POST", "/v1/ops/activities", dict(activity)), 201, "create activity")
        return dict(made)

    async def activate(self, activity_id: str, ends_at: datetime) -> None:
        path = f"/v1/ops/activities/{activity_id}/activate"
        expect(await self._json("points", "POST", path, {"ends_at": ends_at.isoformat()}), 200, "activate activity")

    async def offer_listed(self, partner_id: str, offer_id: str) -> bool:
        try:
            answer = await self._json("redemption", "GET", f"/v1/catalog/{partner_id}/{offer_id}")
        except Unavailable:
            return False
        return answer.status == 200

    async def statements(self, start: datetime, end: datetime) -> Answer:
        query = httpx.QueryParams({"from": start.isoformat(), "to": end.isoformat()})
        return await self._json("partners", "GET", f"/v1/ops/statements?{query}")

    # --- the load: partners' systems and members' apps -------------------------------------------

    async def purchase(self, partner: Partner, item: Mapping[str, Any]) -> Answer:
        return await self._signed(partner, "POST", f"/v1/partners/{partner.partner_id}/purchases", item)

    async def refund(self, partner: Partner, item: Mapping[str, Any]) -> Answer:
        return await self._signed(partner, "POST", f"/v1/partners/{partner.partner_id}/refunds", item)

    async def gift(self, sender: uuid.UUID, gift: Mapping[str, Any]) -> Answer:
        return await self._json("points", "POST", f"/v1/members/{sender}/gifts", dict(gift), self._member(sender))

    async def claim(self, member: uuid.UUID, activity_id: str, claim_id: str) -> Answer:
        path = f"/v1/members/{member}/activities/{activity_id}/claims"
        return await self._json("points", "POST", path, {"claim_id": claim_id}, self._member(member))

    async def order(self, member: uuid.UUID, order: Mapping[str, Any]) -> Answer:
        return await self._json("redemption", "POST", "/v1/orders", dict(order), self._member(member))

    # --- plumbing --------------------------------------------------------------------------------

    async def _json(
        self, service: str, method: str, path: str, body: Any = None, headers: Mapping[str, str] | None = None
    ) -> Answer:
        content = json.dumps(body).encode() if body is not None else b""
        return await self._send(service, method, path, content, {**(headers or self._ops), **JSON})

    async def _signed(self, partner: Partner, method: str, path: str, body: Any) -> Answer:
        content = json.dumps(body).encode()
        return await self._send("partners", method, path, content, {**JSON, **partner.sign(method, path, content)})

    async def _send(self, service: str, method: str, path: str, content: bytes, headers: Mapping[str, str]) -> Answer:
        try:
            response = await self._http[service].request(method, path, content=content, headers=headers)
        except httpx.TransportError as error:
            raise Unavailable(f"{service}: {type(error).__name__}") from error
        try:
            body = response.json()
        except ValueError:
            body = response.text[:500]
        return Answer(response.status_code, body)

    def _member(self, member: uuid.UUID) -> dict[str, str]:
        if member not in self._member_tokens:
            self._member_tokens[member] = self._bearer(self._authority.issue(str(member), Role.MEMBER))
        return self._member_tokens[member]

    @staticmethod
    def _bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


JSON = {"Content-Type": "application/json"}


def expect(answer: Answer, status: int, what: str) -> Any:
    if answer.status not in (status, 200):
        raise SetupError(f"{what}: answered {answer.status}: {answer.detail()}")
    return answer.body


class CardSystem:
    """The bank's card system as Kafka sees it: one idempotent acks=all producer, keyed by card token."""

    def __init__(self, bootstrap: str) -> None:
        self._bootstrap = bootstrap
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()
        self.topic = CARD_TRANSACTIONS.name

    async def publish(self, event: CardPurchasePosted) -> None:
        """Returns once the in-sync replicas have the event; raises Unavailable otherwise (send it again)."""
        producer = await self._started()
        try:
            async with asyncio.timeout(SEND_TIMEOUT_SECONDS):
                sent = await producer.send(
                    self.topic, event.model_dump_json().encode(), key=event.payload.card_token.encode()
                )
                await sent
        except (KafkaError, TimeoutError) as error:
            raise Unavailable(f"kafka: {type(error).__name__}: {error}") from error

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def _started(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self._bootstrap, acks="all", enable_idempotence=True, linger_ms=5,
                    request_timeout_ms=10_000,
                )  # fmt: skip
                try:
                    await producer.start()
                except KafkaError as error:
                    await producer.stop()
                    raise Unavailable(f"kafka: {type(error).__name__}: {error}") from error
                self._producer = producer
            return self._producer
