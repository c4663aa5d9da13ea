"""The cast of a chaos run: partners with contracts and a voucher each, members linked to them and to cards,
and a limited give-away. Ids derive from the seed, so a run is easy to find again in the databases."""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tools.chaos.api import Partner, Platform, SetupError, expect

log = logging.getLogger("chaos.setup")

PARTNERS = ("chaos-mall", "chaos-air", "chaos-mart")
MEMBERS = 40
OFFER_ID = "voucher-1"
VOUCHER_POINTS = 150
CLAIM_POINTS = 50
CONTRACT: dict[str, Any] = {
    "valid_from": "2020-01-01",
    "currency": "CNY",
    "points_per_unit": "1",
    "category_rates": {},
    "issue_price_minor_per_point": "0.5",
    "redemption_price_minor_per_point": "0.4",
}


@dataclass(frozen=True)
class Member:
    member_id: uuid.UUID
    customer_ref: str
    """The member's customer reference at every partner."""
    card_token: str


@dataclass(frozen=True)
class Offer:
    partner_id: str
    offer_id: str
    stock: int


@dataclass(frozen=True)
class Cast:
    partners: list[Partner]
    members: list[Member]
    offers: list[Offer]
    activity_id: str
    claim_cap: int


def members_for(seed: int) -> list[Member]:
    rng = random.Random(f"members:{seed}")
    return [
        Member(uuid.UUID(int=rng.getrandbits(128), version=4), f"cust-{seed}-{n:03d}", f"tok_chaos{seed}x{n:04d}")
        for n in range(MEMBERS)
    ]


async def set_up(platform: Platform, seed: int, stock: int, claim_cap: int) -> Cast:
    partners = [await platform.register_partner(p, CONTRACT) for p in PARTNERS]
    offers = [await publish_voucher(platform, partner, stock) for partner in partners]
    members = members_for(seed)
    await in_parallel([functools.partial(register, platform, m, partners) for m in members])
    activity_id = await giveaway(platform, claim_cap)
    await wait_listed(platform, offers)
    log.info("cast ready", extra={"partners": len(partners), "members": len(members), "offers": len(offers)})
    return Cast(partners, members, offers, activity_id, claim_cap)


async def publish_voucher(platform: Platform, partner: Partner, stock: int) -> Offer:
    now = datetime.now(UTC)
    body = {
        "kind": "voucher", "title": f"{partner.partner_id} voucher", "category": "vouchers",
        "price_points": VOUCHER_POINTS, "stock": stock,
        "valid_from": (now - timedelta(days=1)).isoformat(), "valid_until": (now + timedelta(days=30)).isoformat(),
    }  # fmt: skip
    expect(await platform.put_offer(partner, OFFER_ID, body), 201, f"publish {partner.partner_id}'s voucher")
    return Offer(partner.partner_id, OFFER_ID, stock)


async def register(platform: Platform, member: Member, partners: list[Partner]) -> None:
    expect(await platform.create_member(member.member_id, member.customer_ref), 201, "register a member")
    for partner in partners:
        identifier = {"kind": "partner", "partner_id": partner.partner_id, "customer_ref": member.customer_ref}
        expect(await platform.link(member.member_id, identifier), 201, "link a customer reference")
    expect(await platform.link(member.member_id, {"kind": "card", "card_token": member.card_token}), 201, "link a card")


async def giveaway(platform: Platform, claim_cap: int) -> str:
    """A limited claim: the first `claim_cap` claims get CLAIM_POINTS each, one per member."""
    made = await platform.create_activity(
        {"name": "chaos give-away", "kind": "limited_claim", "rules": {"claim_points": CLAIM_POINTS},
         "budget_points": CLAIM_POINTS * claim_cap, "quantity_cap": claim_cap, "per_member_cap": CLAIM_POINTS}
    )  # fmt: skip
    activity_id = str(made["activity_id"])
    await platform.activate(activity_id, datetime.now(UTC) + timedelta(days=1))
    return activity_id


async def wait_listed(platform: Platform, offers: list[Offer], timeout: float = 60.0) -> None:
    """Offers reach the catalog through Kafka; orders for an offer not listed yet would be refused."""
    deadline = asyncio.get_running_loop().time() + timeout
    for offer in offers:
        while not await platform.offer_listed(offer.partner_id, offer.offer_id):
            if asyncio.get_running_loop().time() > deadline:
                raise SetupError(f"{offer.partner_id}'s {offer.offer_id} did not reach the catalog in {timeout:.0f} s")
            await asyncio.sleep(0.2)


async def in_parallel(calls: list[Callable[[], Awaitable[None]]], width: int = 8) -> None:
    gate = asyncio.Semaphore(width)

    async def one(call: Callable[[], Awaitable[None]]) -> None:
        async with gate:
            await call()

    await asyncio.gather(*(one(call) for call in calls))
