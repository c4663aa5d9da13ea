"""What the contracts accept and refuse on the wire."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from contracts.events.partners import PartnerPurchaseRecorded
from contracts.topics import ALL_TOPICS, PARTNER_PURCHASES


def purchase(**payload_changes: object) -> dict[str, object]:
    payload: dict[str, object] = {
        "partner_id": "skymall",
        "customer_ref": "c-1",
        "purchase_id": "o-1",
        "amount": {"amount_minor": 1999, "currency": "CNY"},
    }
    payload.update(payload_changes)
    return {
        "event_id": str(uuid.uuid4()),
        "type": "PartnerPurchaseRecorded",
        "version": 1,
        "occurred_at": "2026-11-20T09:30:00+08:00",
        "source": "partners",
        "correlation_id": str(uuid.uuid4()),
        "payload": payload,
    }


def test_topic_decodes_each_event_type_and_normalises_time_to_utc():
    event = PARTNER_PURCHASES.decode(json.dumps(purchase()))
    assert isinstance(event, PartnerPurchaseRecorded)
    assert event.occurred_at == datetime(2026, 11, 20, 1, 30, tzinfo=UTC)
    assert event.occurred_at.utcoffset() == timedelta(0)
    assert event.payload.amount.amount_minor == 1999


def test_fields_added_by_a_newer_producer_are_ignored():
    message = purchase()
    message["payload"]["loyalty_tier"] = "gold"  # type: ignore[index]
    assert PARTNER_PURCHASES.decode(json.dumps(message)).payload.partner_id == "skymall"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"amount": {"amount_minor": -5, "currency": "CNY"}}, "greater than 0"),
        ({"amount": {"amount_minor": 10, "currency": "XYZ"}}, "unknown currency 'XYZ'"),
        ({"amount": {"amount_minor": 10.5, "currency": "CNY"}}, "valid integer"),
        ({"partner_id": "Not A Slug"}, "should match pattern"),
    ],
)
def test_invalid_payloads_are_refused_with_a_reason(change: dict[str, object], reason: str):
    with pytest.raises(ValidationError, match=reason):
        PARTNER_PURCHASES.decode(json.dumps(purchase(**change)))


def test_naive_timestamps_are_refused():
    message = purchase()
    message["occurred_at"] = "2026-11-20T09:30:00"
    with pytest.raises(ValidationError, match="timezone"):
        PARTNER_PURCHASES.decode(json.dumps(message))


def test_an_event_type_of_another_topic_is_refused():
    message = purchase()
    message["type"] = "PointsCredited"
    with pytest.raises(ValidationError, match="does not match any of the expected tags"):
        PARTNER_PURCHASES.decode(json.dumps(message))


def test_topics_are_versioned_and_event_types_unique():
    names = [event.event_type for topic in ALL_TOPICS for event in topic.events]
    assert len(names) == len(set(names))
    for topic in ALL_TOPICS:
        assert topic.name.startswith("loyalty.")
        assert topic.name.rsplit(".", 1)[1].startswith("v")
        assert topic.dead_letter == f"{topic.name}.dlq"


def test_events_are_immutable():
    event = PARTNER_PURCHASES.decode(json.dumps(purchase()))
    with pytest.raises(ValidationError):
        event.source = "someone else"  # type: ignore[misc]
    assert event.occurred_at.utcoffset() == timedelta(0)
