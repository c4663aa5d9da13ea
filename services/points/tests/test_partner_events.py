from __future__ import annotations

import uuid
from datetime import UTC, datetime

from contracts.events.partners import PartnerRefundRecorded, RefundPayload
from contracts.money import Money
from points.handlers.partner_events import to_transaction


def test_a_refund_is_recorded_against_its_purchase():
    event_id = uuid.uuid4()
    refund = PartnerRefundRecorded(
        event_id=event_id,
        occurred_at=datetime(2026, 11, 21, tzinfo=UTC),
        source="partners",
        correlation_id=event_id,
        payload=RefundPayload(
            partner_id="skymall",
            customer_ref="c-1",
            refund_id="r-1",
            purchase_id="o-1",
            amount=Money(amount_minor=500, currency="CNY"),
        ),
    )
    transaction = to_transaction(refund)
    assert (transaction.kind, transaction.external_id, transaction.purchase_id) == ("refund", "r-1", "o-1")
    assert transaction.amount_minor == 500
    assert transaction.identifier == "partner:skymall:c-1"
