"""The earn stream: partner purchases, refunds and card purchases as the partners service and the card
system publish them, for members of the bench database, and what the ledger writes for each."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from aiokafka import AIOKafkaProducer

from bench.seed import Members
from contracts.envelope import Event
from contracts.events.cards import CardPurchasePayload, CardPurchasePosted
from contracts.events.partners import PartnerPurchaseRecorded, PartnerRefundRecorded, PurchasePayload, RefundPayload
from contracts.money import Money
from tools.cardfeed import MERCHANTS

PURCHASE_SHARE = 0.60
REFUND_SHARE = 0.05
UNLINKED_SHARE = 0.05
"""Events for identifiers nobody linked yet: their points wait in unclaimed accounts."""
CARD_RATES = {"5411": Decimal(2), "5812": Decimal(2), "4511": Decimal(3), "7011": Decimal(3), "5541": Decimal("0.5")}
"""The rates the points migrations install (per yuan; any other category earns 1)."""


@dataclass(frozen=True)
class Applied:
    """What the ledger writes for one event: enough to write the same rows with COPY (the limit)."""

    event_id: uuid.UUID
    topic: str
    earn: bool
    """A purchase (a credit with its lot and earning) or a refund (a debit back to the issuer)."""
    source_key: str
    identifier: str
    holder: str
    issuer: str
    amount_minor: int
    points: int
    occurred_at: datetime
    channel: str
    partner_id: str | None
    mcc: str | None


@dataclass
class EarnStream:
    partner: list[tuple[bytes, bytes]] = field(default_factory=list)
    """(key, value) records for loyalty.partner-purchases.v1, in order."""
    card: list[tuple[bytes, bytes]] = field(default_factory=list)
    applied: list[Applied] = field(default_factory=list)
    """The first events, with what the ledger writes for each (for the COPY limit)."""

    @property
    def total(self) -> int:
        return len(self.partner) + len(self.card)


def build(members: Members, count: int, *, keep_applied: int, seed: int = 6) -> EarnStream:
    """`count` events, mixed like production: most partner purchases, some refunds, card purchases."""
    rng = random.Random(seed)
    stream = EarnStream()
    partner = members.partner_id
    issuer = f"partner:{partner}:issued"
    bought: list[tuple[str, str, int, str, int]] = []
    at = datetime.now(UTC) - timedelta(minutes=1)
    linked = len(members.ids)

    def holder(index: int | None, identifier: str) -> str:
        return members.account(index) if index is not None else f"unclaimed:{identifier}"

    for n in range(count):
        roll = rng.random()
        at += timedelta(microseconds=50)
        event_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        index: int | None = rng.randrange(linked) if rng.random() >= UNLINKED_SHARE else None
        event: Event
        if roll < REFUND_SHARE and bought:
            ref, purchase_id, amount, holder_account, points = bought.pop(rng.randrange(len(bought)))
            refunded = amount if rng.random() < 0.5 else amount // 2
            event = PartnerRefundRecorded(
                event_id=event_id, occurred_at=at, source="partners", correlation_id=event_id,
                payload=RefundPayload(partner_id=partner, customer_ref=ref, refund_id=f"r-{n}",
                                      purchase_id=purchase_id, amount=Money(amount_minor=refunded, currency="CNY")),
            )  # fmt: skip
            stream.partner.append((f"{partner}:{ref}".encode(), event.model_dump_json().encode()))
            if n < keep_applied:
                stream.applied.append(Applied(
                    event_id, "partner", False, f"partner:{partner}:{purchase_id}", f"partner:{partner}:{ref}",
                    holder_account, issuer, refunded, points * refunded // amount, at, "partner", partner, None,
                ))  # fmt: skip
        elif roll < REFUND_SHARE + PURCHASE_SHARE:
            ref = members.customer_ref(index) if index is not None else f"u{rng.randrange(linked // 10 + 1):07d}"
            amount = int(1_000 * 500 ** rng.random())
            purchase_id = f"o-{n}"
            identifier = f"partner:{partner}:{ref}"
            event = PartnerPurchaseRecorded(
                event_id=event_id, occurred_at=at, source="partners", correlation_id=event_id,
                payload=PurchasePayload(partner_id=partner, customer_ref=ref, purchase_id=purchase_id,
                                        amount=Money(amount_minor=amount, currency="CNY"), points=amount // 100),
            )  # fmt: skip
            stream.partner.append((f"{partner}:{ref}".encode(), event.model_dump_json().encode()))
            if len(bought) < 10_000:
                bought.append((ref, purchase_id, amount, holder(index, identifier), amount // 100))
            if n < keep_applied:
                stream.applied.append(Applied(
                    event_id, "partner", True, f"partner:{partner}:{purchase_id}", identifier,
                    holder(index, identifier), issuer, amount, amount // 100, at, "partner", partner, None,
                ))  # fmt: skip
        else:
            token = members.card_token(index) if index is not None else f"tok_unlinked{rng.randrange(linked):08d}"
            mcc, names, low, high = rng.choice(MERCHANTS)
            amount = int(low * (high / low) ** rng.random())
            transaction_id = f"ctx-{event_id.hex[:20]}"
            event = CardPurchasePosted(
                event_id=event_id, occurred_at=at, source="card-system", correlation_id=event_id,
                payload=CardPurchasePayload(card_token=token, transaction_id=transaction_id,
                                            amount=Money(amount_minor=amount, currency="CNY"),
                                            merchant_category_code=mcc, merchant_name=rng.choice(names)),
            )  # fmt: skip
            stream.card.append((token.encode(), event.model_dump_json().encode()))
            if n < keep_applied:
                points = int(amount * CARD_RATES.get(mcc, Decimal(1)) // 100)
                identifier = f"card:{token}"
                stream.applied.append(Applied(
                    event_id, "card", True, f"card:{transaction_id}", identifier, holder(index, identifier),
                    "card:issued", amount, points, at, "card", None, mcc,
                ))  # fmt: skip
    return stream


async def produce(
    kafka: str, topics: dict[str, list[tuple[bytes, bytes]]], on_progress: Callable[[int], None] | None = None
) -> None:
    """Publish every record, in order per topic, with the services' own producer settings (acks=all, idempotent)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka, acks="all", enable_idempotence=True, linger_ms=20, max_batch_size=512 * 1024
    )
    await producer.start()
    try:
        done = 0
        for topic, records in topics.items():
            pending = []
            for key, value in records:
                pending.append(await producer.send(topic, value, key=key))
                if len(pending) >= 20_000:
                    await asyncio.gather(*pending)
                    done += len(pending)
                    pending.clear()
                    if on_progress:
                        on_progress(done)
            await asyncio.gather(*pending)
            done += len(pending)
            if on_progress:
                on_progress(done)
    finally:
        await producer.stop()
