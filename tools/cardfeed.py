"""Publish realistic card transactions, as the bank's card system would, for demos and tests.

    python -m tools.cardfeed --cards tok_demo0000001 --count 20
    python -m tools.cardfeed --random-cards 1000 --count 100000 --reversal-share 0.03

Purchases spread over common merchant categories with plausible amounts; a share of them is
later reversed in part or in full. Keyed by card token, like the real feed.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaProducer

from contracts.envelope import Event
from contracts.events.attribution import Attribution
from contracts.events.cards import CardPurchasePayload, CardPurchasePosted, CardReversalPayload, CardReversalPosted
from contracts.money import Money
from contracts.topics import CARD_TRANSACTIONS

SOURCE = "card-system"

# (merchant category code, merchant names, typical amount in CNY fen: low, high)
MERCHANTS: tuple[tuple[str, tuple[str, ...], int, int], ...] = (
    ("5411", ("Hema Fresh", "Carrefour", "Walmart Supercenter", "Yonghui"), 1_500, 60_000),
    ("5812", ("Haidilao", "Xibei", "Din Tai Fung", "Luckin Coffee"), 2_000, 40_000),
    ("4511", ("Air China", "China Eastern", "Cathay Pacific"), 50_000, 800_000),
    ("7011", ("Marriott", "Hilton", "Atour Hotel"), 30_000, 300_000),
    ("5541", ("Sinopec", "PetroChina"), 10_000, 60_000),
    ("5732", ("Apple Store", "Suning", "JD Electronics"), 20_000, 1_500_000),
    ("5691", ("Uniqlo", "Zara", "Anta"), 5_000, 120_000),
)


@dataclass(frozen=True)
class CardFeed:
    """A deterministic stream of card events for the given cards (same seed, same events)."""

    cards: Sequence[str]
    seed: int = 7
    reversal_share: float = 0.0
    currency: str = "CNY"
    start: datetime | None = None
    attribution: Attribution | None = None
    """Carried by every purchase: the channel, branch, staff member, campaign or share link behind the payments."""

    def events(self, count: int) -> Iterator[Event]:
        rng = random.Random(self.seed)
        at = self.start or datetime.now(UTC) - timedelta(minutes=5)
        for _ in range(count):
            mcc, names, low, high = rng.choice(MERCHANTS)
            amount = int(low * (high / low) ** rng.random())
            card = rng.choice(self.cards)
            transaction_id = f"ctx-{uuid.UUID(int=rng.getrandbits(128)).hex[:20]}"
            at += timedelta(milliseconds=rng.randint(1, 50))
            event_id = uuid.UUID(int=rng.getrandbits(128), version=4)
            yield CardPurchasePosted(
                event_id=event_id,
                occurred_at=at,
                source=SOURCE,
                correlation_id=event_id,
                payload=CardPurchasePayload(
                    card_token=card,
                    transaction_id=transaction_id,
                    amount=Money(amount_minor=amount, currency=self.currency),
                    merchant_category_code=mcc,
                    merchant_name=rng.choice(names),
                    attribution=self.attribution,
                ),
            )
            if rng.random() < self.reversal_share:
                reversed_amount = amount if rng.random() < 0.5 else max(1, amount // rng.randint(2, 5))
                reversal_id = uuid.UUID(int=rng.getrandbits(128), version=4)
                yield CardReversalPosted(
                    event_id=reversal_id,
                    occurred_at=at + timedelta(seconds=1),
                    source=SOURCE,
                    correlation_id=event_id,
                    causation_id=event_id,
                    payload=CardReversalPayload(
                        card_token=card,
                        transaction_id=f"rev-{reversal_id.hex[:20]}",
                        original_transaction_id=transaction_id,
                        amount=Money(amount_minor=reversed_amount, currency=self.currency),
                    ),
                )


def random_cards(count: int, seed: int = 11) -> list[str]:
    rng = random.Random(seed)
    return [f"tok_{uuid.UUID(int=rng.getrandbits(128)).hex[:16]}" for _ in range(count)]


def card_of(event: Event) -> str:
    assert isinstance(event, CardPurchasePosted | CardReversalPosted)
    return event.payload.card_token


async def publish(bootstrap: str, topic: str, events: Sequence[Event], *, progress: bool = False) -> None:
    """Publish with an idempotent, acks=all producer, keyed by card token so each card stays in order."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5, max_batch_size=256 * 1024
    )
    await producer.start()
    try:
        pending = []
        for index, event in enumerate(events, 1):
            pending.append(await producer.send(topic, event.model_dump_json().encode(), key=card_of(event).encode()))
            if len(pending) >= 5_000:
                await asyncio.gather(*pending)
                pending.clear()
                if progress:
                    print(f"\r  published {index:,}/{len(events):,}", end="", file=sys.stderr, flush=True)
        await asyncio.gather(*pending)
        if progress:
            print(f"\r  published {len(events):,}/{len(events):,}", file=sys.stderr)
    finally:
        await producer.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", default="127.0.0.1:19092")
    parser.add_argument("--topic-prefix", default="")
    cards = parser.add_mutually_exclusive_group(required=True)
    cards.add_argument("--cards", help="comma-separated card tokens (tok_ followed by 8-64 letters or digits)")
    cards.add_argument("--random-cards", type=int, help="this many random card tokens")
    parser.add_argument("--count", type=int, default=20, help="purchases to publish")
    parser.add_argument("--reversal-share", type=float, default=0.0, help="share of purchases later reversed")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    for name in ("channel", "branch-id", "staff-id", "campaign-ref", "share-code"):
        parser.add_argument(f"--{name}", help=f"attribution: the {name.replace('-', ' ')} every purchase carries")
    args = parser.parse_args(argv)
    tokens = args.cards.split(",") if args.cards else random_cards(args.random_cards)
    said = {k: v for k in ("channel", "branch_id", "staff_id", "campaign_ref", "share_code") if (v := getattr(args, k))}
    attribution = Attribution.model_validate(said) if said else None
    feed = CardFeed(tokens, seed=args.seed, reversal_share=args.reversal_share, attribution=attribution)
    events = list(feed.events(args.count))
    topic = CARD_TRANSACTIONS.qualified(args.topic_prefix)
    started = time.monotonic()
    asyncio.run(publish(args.bootstrap, topic, events, progress=True))
    print(f"published {len(events):,} card events to {topic} in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
