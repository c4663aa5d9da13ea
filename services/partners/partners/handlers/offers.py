"""A partner publishes, revises and withdraws its reward offers; each change leaves through the outbox."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from contracts.events.offers import OfferPublished, OfferWithdrawn
from contracts.topics import OFFERS
from loyalty_runtime.outbox import OutboxMessage
from loyalty_runtime.telemetry import inject_context
from partners.domain import offers
from partners.domain.errors import PartnersError
from partners.domain.offers import Change, Offer, OfferNotFoundError, OfferTerms


class OfferChanges(Protocol):
    """The statements of one database transaction."""

    async def lock(self, partner_id: str, offer_id: str) -> Offer | None:
        """The offer, locked until the transaction ends (also when it does not exist yet)."""

    async def save(self, offer: Offer) -> None: ...

    async def enqueue(self, message: OutboxMessage) -> None: ...


class OfferRepository(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[OfferChanges]: ...

    async def find(self, partner_id: str, offer_id: str) -> Offer | None: ...

    async def page(self, partner_id: str, after_offer_id: str, limit: int) -> Sequence[Offer]:
        """Offers of the partner whose id sorts after `after_offer_id`, in that order."""


class OfferEvents:
    """Where offer events go: loyalty.offers.v1, keyed by partner (contracts.topics.OFFERS)."""

    def __init__(self, topic_prefix: str) -> None:
        self.topic = OFFERS.qualified(topic_prefix)

    def message(self, event: OfferPublished | OfferWithdrawn) -> OutboxMessage:
        headers = inject_context({"type": event.type})
        return OutboxMessage(self.topic, event.payload.partner_id, event.model_dump_json().encode(), headers)


class BadOfferCursorError(PartnersError):
    def __init__(self) -> None:
        super().__init__("cursor is not one this API returned; start again without it")


@dataclass(frozen=True)
class OfferPage:
    items: Sequence[Offer]
    next_cursor: str | None


async def publish_offer(
    repository: OfferRepository,
    events: OfferEvents,
    partner_id: str,
    offer_id: str,
    terms: OfferTerms,
    now: datetime,
) -> Change:
    """Create or revise the offer; the new revision and its OfferPublished commit together."""
    async with repository.transaction() as tx:
        change = offers.publish(await tx.lock(partner_id, offer_id), partner_id, offer_id, terms, now)
        await _save(tx, events, change)
    return change


async def withdraw_offer(
    repository: OfferRepository, events: OfferEvents, partner_id: str, offer_id: str, now: datetime
) -> Change:
    async with repository.transaction() as tx:
        change = offers.withdraw(await tx.lock(partner_id, offer_id), partner_id, offer_id, now)
        await _save(tx, events, change)
    return change


async def get_offer(repository: OfferRepository, partner_id: str, offer_id: str) -> Offer:
    found = await repository.find(partner_id, offer_id)
    if found is None:
        raise OfferNotFoundError(partner_id, offer_id)
    return found


async def list_offers(repository: OfferRepository, partner_id: str, cursor: str | None, limit: int) -> OfferPage:
    """The partner's offers, withdrawn ones included, by offer id."""
    after = _decode_cursor(cursor) if cursor else ""
    found = await repository.page(partner_id, after, limit + 1)
    items = found[:limit]
    more = len(found) > limit
    return OfferPage(items, _encode_cursor(items[-1].offer_id) if more and items else None)


async def _save(tx: OfferChanges, events: OfferEvents, change: Change) -> None:
    if change.event is None:
        return
    await tx.save(change.offer)
    await tx.enqueue(events.message(change.event))


def _encode_cursor(offer_id: str) -> str:
    return base64.urlsafe_b64encode(offer_id.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        offer_id = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, ValueError) as error:
        raise BadOfferCursorError() from error
    if not re.fullmatch(offers.OFFER_ID_PATTERN, offer_id):
        raise BadOfferCursorError()
    return offer_id
