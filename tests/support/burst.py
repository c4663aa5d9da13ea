"""A large, mixed stream of earn events and the balances it must leave behind, computed independently.

Purchases at partners and with the card, full refunds of some purchases, and repeated
deliveries, spread over identifiers of which some are linked to members. Card purchases are
grocery spend (2 points per CNY) in whole yuan, so every expected figure is plain arithmetic.
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from dataclasses import dataclass, field

import asyncpg
import httpx

from contracts.envelope import Event
from contracts.topics import CARD_TRANSACTIONS, PARTNER_PURCHASES
from tests.support.ledger import card_purchase, link, new_member, publish, purchase, refund


@dataclass
class Burst:
    partner_events: list[Event] = field(default_factory=list)
    card_events: list[Event] = field(default_factory=list)
    expected: dict[str, int] = field(default_factory=dict)
    """Identifier -> the points it must hold at the end."""
    links: dict[str, int] = field(default_factory=dict)
    """Identifier -> index of the member it is linked to before the burst."""

    @property
    def unique_events(self) -> int:
        return len({e.event_id for e in self.partner_events + self.card_events})


def build_burst(total: int, *, customers: int = 2_000, cards: int = 500, members: int = 300, seed: int = 5) -> Burst:
    rng = random.Random(seed)
    burst = Burst()
    balances: dict[str, int] = defaultdict(int)
    bought: list[tuple[str, str, int, int]] = []
    customer_refs = [f"cust-{i}" for i in range(customers)]
    tokens = [f"tok_burst{i:08d}" for i in range(cards)]
    for index, ref in enumerate(rng.sample(customer_refs, members // 2)):
        burst.links[f"partner:skymall:{ref}"] = index
    for index, token in enumerate(rng.sample(tokens, members // 2)):
        burst.links[f"card:{token}"] = members // 2 + index

    produced = 0
    while produced < total:
        roll = rng.random()
        if roll < 0.55:
            ref = rng.choice(customer_refs)
            amount = rng.randint(100, 500_000)
            points = amount // 100
            purchase_id = f"o-{produced}"
            event: Event = purchase(ref, purchase_id, amount, points=points)
            balances[f"partner:skymall:{ref}"] += points
            bought.append((ref, purchase_id, amount, points))
            burst.partner_events.append(event)
        elif roll < 0.60 and bought:
            ref, purchase_id, amount, points = bought.pop(rng.randrange(len(bought)))
            event = refund(ref, purchase_id, amount)
            balances[f"partner:skymall:{ref}"] -= points
            burst.partner_events.append(event)
        elif roll < 0.99:
            token = rng.choice(tokens)
            yuan = rng.randint(1, 3_000)
            event = card_purchase(token, f"ctx-{uuid.UUID(int=rng.getrandbits(128)).hex[:16]}", yuan * 100, mcc="5411")
            balances[f"card:{token}"] += 2 * yuan
            burst.card_events.append(event)
        else:
            # The same message delivered again, as after a producer retry.
            stream = burst.partner_events if burst.partner_events and rng.random() < 0.5 else burst.card_events
            if not stream:
                continue
            stream.append(stream[rng.randrange(len(stream))])
        produced += 1
    burst.expected = dict(balances)
    return burst


def holder_balances(
    rows: list[tuple[str, int]], members: dict[int, uuid.UUID], links: dict[str, int]
) -> dict[str, int]:
    """Turn account balances back into identifier balances, to compare with `Burst.expected`."""
    by_account = dict(rows)
    found: dict[str, int] = {}
    for identifier in set(links) | {a.removeprefix("unclaimed:") for a in by_account if a.startswith("unclaimed:")}:
        if identifier in links:
            found[identifier] = by_account.get(f"member:{members[links[identifier]]}", 0)
        else:
            found[identifier] = by_account.get(f"unclaimed:{identifier}", 0)
    return found


async def balances(dsn: str) -> list[tuple[str, int]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT account_id, credits_posted - debits_posted AS posted FROM accounts"
            " WHERE kind IN ('member', 'unclaimed')"
        )
    finally:
        await conn.close()
    return [(r["account_id"], r["posted"]) for r in rows]


async def link_members(api: httpx.AsyncClient, burst: Burst) -> dict[int, uuid.UUID]:
    """Register the burst's members and link each to its identifier, through the points API."""
    members: dict[int, uuid.UUID] = {}
    for identifier, index in burst.links.items():
        members[index] = await new_member(api, f"member-{index}")
        kind, _, rest = identifier.partition(":")
        if kind == "card":
            await link(api, members[index], card_token=rest)
        else:
            partner, _, ref = rest.partition(":")
            await link(api, members[index], partner_id=partner, customer_ref=ref)
    return members


async def publish_burst(kafka: str, prefix: str, burst: Burst) -> None:
    await publish(kafka, PARTNER_PURCHASES.qualified(prefix), burst.partner_events)
    await publish(kafka, CARD_TRANSACTIONS.qualified(prefix), burst.card_events)
