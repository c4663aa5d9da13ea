"""A partner issues one-time link codes for its customers; only their hashes leave, through the outbox."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from contracts.events.links import LinkCodeIssued, LinkCodePayload
from contracts.link_codes import code_hash, new_code
from contracts.topics import LINK_CODES
from loyalty_runtime.outbox import OutboxMessage
from loyalty_runtime.telemetry import inject_context
from partners.domain.intake import partition_key

SOURCE = "partners"


class Outbox(Protocol):
    async def enqueue(self, messages: Sequence[OutboxMessage]) -> None:
        """Write the messages to the outbox, committed when this returns."""


class LinkCodeEvents:
    """Where issued codes go: loyalty.link-codes.v1, keyed by the partner's customer (contracts.topics.LINK_CODES)."""

    def __init__(self, topic_prefix: str) -> None:
        self.topic = LINK_CODES.qualified(topic_prefix)

    def message(self, event: LinkCodeIssued) -> OutboxMessage:
        headers = inject_context({"type": event.type})
        key = partition_key(event.payload.partner_id, event.payload.customer_ref)  # like the customer's purchases
        return OutboxMessage(self.topic, key, event.model_dump_json().encode(), headers)


@dataclass(frozen=True)
class IssuedLinkCode:
    """The clear code, shown once to the partner, for its customer; nothing here keeps it."""

    link_code: str
    expires_at: datetime


async def issue_link_code(
    outbox: Outbox, events: LinkCodeEvents, partner_id: str, customer_ref: str, now: datetime, ttl: timedelta
) -> IssuedLinkCode:
    """A code with which the partner's customer links `customer_ref` to their membership, once, until it expires."""
    code = new_code()
    event_id = uuid.uuid4()
    payload = LinkCodePayload(
        partner_id=partner_id, customer_ref=customer_ref, code_sha256=code_hash(code), expires_at=now + ttl
    )
    event = LinkCodeIssued(event_id=event_id, occurred_at=now, source=SOURCE, correlation_id=event_id, payload=payload)
    await outbox.enqueue([events.message(event)])
    return IssuedLinkCode(code, payload.expires_at)
