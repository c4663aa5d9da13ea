"""Link codes: issued here for ops and the card system, or by partners through loyalty.link-codes.v1."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from contracts.events.links import LinkCodeIssued
from contracts.link_codes import code_hash, new_code
from loyalty_runtime.inbox import first_copies
from points.adapters.store import PointsStore
from points.domain.link_codes import LinkCode
from points.handlers.earn import UnprocessableEventError, card_identifier, partner_identifier


@dataclass(frozen=True)
class IssuedLinkCode:
    """The clear code, for the caller to show its customer once; only its hash is kept."""

    link_code: str
    identifier: str
    expires_at: datetime


async def issue_link_code(store: PointsStore, identifier: str, issued_by: str, ttl: timedelta) -> IssuedLinkCode:
    now = datetime.now(UTC)
    code = new_code()
    async with store.transaction() as tx:
        await tx.add_link_codes([LinkCode(code_hash(code), identifier, issued_by, now, now + ttl)])
    return IssuedLinkCode(code, identifier, now + ttl)


def issued_code(event: LinkCodeIssued) -> LinkCode:
    """What a LinkCodeIssued event means here: a code for a partner's customer, or for a card."""
    p = event.payload
    if p.card_token is not None:
        return LinkCode(p.code_sha256, card_identifier(p.card_token), event.source, event.occurred_at, p.expires_at)
    if p.partner_id is None or p.customer_ref is None:
        raise UnprocessableEventError("a link code names a card_token, or a partner_id and a customer_ref")
    return LinkCode(
        p.code_sha256, partner_identifier(p.partner_id, p.customer_ref), f"partner:{p.partner_id}",
        event.occurred_at, p.expires_at,
    )  # fmt: skip


async def accept_issued_codes(store: PointsStore, topic: str, codes: Sequence[tuple[uuid.UUID, LinkCode]]) -> int:
    """Store each issued code once (the inbox drops redeliveries), in one transaction; the number stored."""
    async with store.transaction() as tx:
        fresh = await tx.claim_inbox(topic, [event_id for event_id, _ in codes])
        new = [code for _, code in first_copies(codes, fresh, lambda c: c[0])]
        await tx.add_link_codes(new)
    return len(new)
