"""Partners are told which of their purchases and refunds the ledger refused (loyalty.purchase-outcomes.v1).

A refused record is a dead letter (loyalty_runtime.dead_letters); in the same transaction, its partner's
PurchaseRefused goes to the outbox. The event id comes from the refused event's, so a batch read again (which
dead-letters the record once but calls this again) yields one fact for the consumers' inbox.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from pydantic import ValidationError

from contracts.events.outcomes import PurchaseRefused, PurchaseRefusedPayload
from contracts.events.partners import PartnerPurchaseRecorded, PartnerRefundRecorded
from contracts.topics import PARTNER_PURCHASES, PURCHASE_OUTCOMES
from loyalty_runtime.dead_letters import Letter
from loyalty_runtime.outbox import OutboxMessage
from loyalty_runtime.telemetry import inject_context

SOURCE = "points"


def refusal_of(letter: Letter) -> PurchaseRefused | None:
    """The fact to tell the partner, or None for a record too broken to name its partner and purchase."""
    try:
        event = PARTNER_PURCHASES.decode(letter.value or b"")
    except ValidationError:
        return None
    if isinstance(event, PartnerPurchaseRecorded):
        p = event.payload
        payload = PurchaseRefusedPayload(
            partner_id=p.partner_id, customer_ref=p.customer_ref, purchase_id=p.purchase_id, kind="purchase",
            amount=p.amount, reason=letter.reason[:500] or "refused", refused_event_id=event.event_id,
        )  # fmt: skip
    elif isinstance(event, PartnerRefundRecorded):
        r = event.payload
        payload = PurchaseRefusedPayload(
            partner_id=r.partner_id, customer_ref=r.customer_ref, purchase_id=r.purchase_id, refund_id=r.refund_id,
            kind="refund", amount=r.amount, reason=letter.reason[:500] or "refused", refused_event_id=event.event_id,
        )  # fmt: skip
    else:
        return None
    return PurchaseRefused(
        event_id=uuid.uuid5(event.event_id, "purchase-refused"), occurred_at=event.occurred_at, source=SOURCE,
        correlation_id=event.correlation_id, causation_id=event.event_id, payload=payload,
    )  # fmt: skip


def refusal_messages(letters: Sequence[Letter], topic_prefix: str) -> list[OutboxMessage]:
    topic = PURCHASE_OUTCOMES.qualified(topic_prefix)
    found = [r for r in (refusal_of(letter) for letter in letters) if r is not None]
    headers = inject_context({"type": PurchaseRefused.event_type})
    return [OutboxMessage(topic, r.payload.partner_id, r.model_dump_json().encode(), headers) for r in found]
