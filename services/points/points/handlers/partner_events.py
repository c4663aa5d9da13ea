"""Apply a batch of partner purchases and refunds in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from contracts.envelope import Event
from contracts.events.partners import PartnerPurchaseRecorded, PartnerRefundRecorded
from points.adapters.store import PointsStore
from points.domain.earn import PartnerTransaction


@dataclass(frozen=True)
class BatchOutcome:
    applied: int
    duplicates: int


def to_transaction(event: Event) -> PartnerTransaction:
    if isinstance(event, PartnerPurchaseRecorded):
        p = event.payload
        return PartnerTransaction(
            event.event_id, "purchase", p.partner_id, p.customer_ref, p.purchase_id, p.purchase_id,
            p.amount.amount_minor, p.amount.currency, p.category, event.occurred_at,
        )  # fmt: skip
    if isinstance(event, PartnerRefundRecorded):
        r = event.payload
        return PartnerTransaction(
            event.event_id, "refund", r.partner_id, r.customer_ref, r.refund_id, r.purchase_id,
            r.amount.amount_minor, r.amount.currency, None, event.occurred_at,
        )  # fmt: skip
    raise TypeError(f"not a partner event: {type(event).__name__}")


async def apply_partner_events(store: PointsStore, topic: str, events: Sequence[Event]) -> BatchOutcome:
    """Record each event once: the inbox claim and the effects share one transaction."""
    async with store.transaction() as tx:
        fresh = await tx.claim_inbox(topic, [e.event_id for e in events])
        transactions = [to_transaction(e) for e in events if e.event_id in fresh]
        await tx.insert_partner_transactions(transactions)
    return BatchOutcome(applied=len(transactions), duplicates=len(events) - len(transactions))
