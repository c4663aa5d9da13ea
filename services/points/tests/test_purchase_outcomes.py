"""A partner purchase or refund the ledger refuses becomes one PurchaseRefused for its partner (webhooks)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from contracts.events.outcomes import PurchaseRefused
from contracts.events.partners import PartnerPurchaseRecorded, PartnerRefundRecorded, PurchasePayload, RefundPayload
from contracts.money import Money
from contracts.topics import PURCHASE_OUTCOMES
from loyalty_runtime.dead_letters import Letter
from points.handlers.purchase_outcomes import refusal_messages

AT = datetime(2026, 11, 2, 8, tzinfo=UTC)


def letter(value: bytes, reason: str = "purchase without points") -> Letter:
    return Letter("p.loyalty.partner-purchases.v1", 0, 7, 0, b"skymall:c-1", value, (), reason, "UnprocessableEvent")


def purchase() -> PartnerPurchaseRecorded:
    payload = PurchasePayload(partner_id="skymall", customer_ref="c-1", purchase_id="p-9",
                              amount=Money(amount_minor=1299, currency="CNY"))  # fmt: skip
    return PartnerPurchaseRecorded(event_id=uuid.uuid4(), occurred_at=AT, source="partners",
                                   correlation_id=uuid.uuid4(), payload=payload)  # fmt: skip


def test_a_refused_purchase_is_told_to_its_partner_once_whatever_the_number_of_reads():
    event = purchase()
    first, again = (refusal_messages([letter(event.model_dump_json().encode())], "p.") for _ in range(2))
    assert [m.topic for m in first] == [PURCHASE_OUTCOMES.qualified("p.")]
    assert first[0].key == "skymall"
    told = PURCHASE_OUTCOMES.decode(first[0].payload)
    assert isinstance(told, PurchaseRefused)
    assert (told.payload.purchase_id, told.payload.kind, told.payload.reason) == (
        "p-9",
        "purchase",
        "purchase without points",
    )
    assert told.payload.refused_event_id == event.event_id
    assert told.event_id == PURCHASE_OUTCOMES.decode(again[0].payload).event_id, "a repeat is one fact"


def test_a_refused_refund_names_its_refund_and_a_broken_record_is_told_to_nobody():
    payload = RefundPayload(partner_id="skymall", customer_ref="c-1", refund_id="r-1", purchase_id="p-9",
                            amount=Money(amount_minor=100, currency="CNY"))  # fmt: skip
    refund = PartnerRefundRecorded(event_id=uuid.uuid4(), occurred_at=AT, source="partners",
                                   correlation_id=uuid.uuid4(), payload=payload)  # fmt: skip
    messages = refusal_messages([letter(refund.model_dump_json().encode(), "currency"), letter(b"{not json")], "")
    [told] = [PURCHASE_OUTCOMES.decode(m.payload) for m in messages]
    assert (told.payload.kind, told.payload.refund_id, told.payload.reason) == ("refund", "r-1", "currency")
