"""Helpers for ledger tests: tokens, events as partners and the card system send them, publishing."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import httpx
from aiokafka import AIOKafkaProducer

from contracts.envelope import Event
from contracts.events.cards import CardPurchasePayload, CardPurchasePosted
from contracts.events.partners import PartnerPurchaseRecorded, PartnerRefundRecorded, PurchasePayload, RefundPayload
from contracts.money import Money
from loyalty_runtime.auth import Role, TokenAuthority
from loyalty_runtime.settings import LOCAL_JWT_SECRET

AUTHORITY = TokenAuthority(LOCAL_JWT_SECRET)
OPS = {"Authorization": f"Bearer {AUTHORITY.issue('ops-test', Role.OPS)}"}


def member_headers(member_id: uuid.UUID | str) -> dict[str, str]:
    return {"Authorization": f"Bearer {AUTHORITY.issue(str(member_id), Role.MEMBER)}"}


def now() -> datetime:
    return datetime.now(UTC)


def purchase(
    customer_ref: str, purchase_id: str, amount_minor: int, points: int, *, partner: str = "skymall",
    at: datetime | None = None, currency: str = "CNY",
) -> PartnerPurchaseRecorded:  # fmt: skip
    event_id = uuid.uuid4()
    return PartnerPurchaseRecorded(
        event_id=event_id, occurred_at=at or now(), source="partners", correlation_id=event_id,
        payload=PurchasePayload(
            partner_id=partner, customer_ref=customer_ref, purchase_id=purchase_id,
            amount=Money(amount_minor=amount_minor, currency=currency), points=points,
        ),
    )  # fmt: skip


def refund(
    customer_ref: str, purchase_id: str, amount_minor: int, *, partner: str = "skymall", refund_id: str | None = None,
    currency: str = "CNY",
) -> PartnerRefundRecorded:  # fmt: skip
    event_id = uuid.uuid4()
    return PartnerRefundRecorded(
        event_id=event_id, occurred_at=now(), source="partners", correlation_id=event_id,
        payload=RefundPayload(
            partner_id=partner, customer_ref=customer_ref, refund_id=refund_id or f"r-{event_id.hex[:8]}",
            purchase_id=purchase_id, amount=Money(amount_minor=amount_minor, currency=currency),
        ),
    )  # fmt: skip


def card_purchase(card_token: str, transaction_id: str, amount_minor: int, mcc: str = "5411") -> CardPurchasePosted:
    event_id = uuid.uuid4()
    return CardPurchasePosted(
        event_id=event_id, occurred_at=now(), source="card-system", correlation_id=event_id,
        payload=CardPurchasePayload(
            card_token=card_token, transaction_id=transaction_id,
            amount=Money(amount_minor=amount_minor, currency="CNY"), merchant_category_code=mcc,
            merchant_name="Hema Fresh",
        ),
    )  # fmt: skip


def key_of(event: Event) -> bytes:
    """The partition key the real producer uses: card token, member, or partner customer."""
    payload = event.payload  # type: ignore[attr-defined]
    if hasattr(payload, "card_token"):
        return str(payload.card_token).encode()
    if hasattr(payload, "member_id"):
        return str(payload.member_id).encode()
    return f"{payload.partner_id}:{payload.customer_ref}".encode()


async def publish(kafka: str, topic: str, events: Sequence[Event | bytes], key: bytes | None = None) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka, acks="all", enable_idempotence=True, linger_ms=5)
    await producer.start()
    try:
        futures = []
        for event in events:
            raw = event if isinstance(event, bytes) else event.model_dump_json().encode()
            message_key = key if key is not None or isinstance(event, bytes) else key_of(event)
            futures.append(await producer.send(topic, raw, key=message_key))
        for future in futures:
            await future
    finally:
        await producer.stop()


async def new_member(api: httpx.AsyncClient, name: str = "Ada") -> uuid.UUID:
    answer = await api.post("/v1/members", json={"display_name": name}, headers=OPS)
    assert answer.status_code == 201, answer.text
    return uuid.UUID(answer.json()["member_id"])


async def link(api: httpx.AsyncClient, member: uuid.UUID, **identifier: str) -> dict[str, object]:
    """Link as ops do, without a link code (a member needs one: tests/integration/test_link_codes.py)."""
    kind = "card" if "card_token" in identifier else "partner"
    answer = await api.post(f"/v1/members/{member}/identifiers", json={"kind": kind, **identifier}, headers=OPS)
    assert answer.status_code in (200, 201), answer.text
    result: dict[str, object] = answer.json()
    return result


async def balance(api: httpx.AsyncClient, member: uuid.UUID) -> dict[str, int]:
    answer = await api.get(f"/v1/members/{member}/balance", headers=member_headers(member))
    assert answer.status_code == 200, answer.text
    result: dict[str, int] = answer.json()
    return result
