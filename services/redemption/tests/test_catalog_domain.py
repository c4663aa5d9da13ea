"""The catalog's rules, without a database."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from redemption.domain.catalog import (
    START,
    BadCursorError,
    Position,
    PublishedOffer,
    UnusableOfferError,
    WithdrawnOffer,
    check_storable,
    latest_per_offer,
    status_of,
)
from redemption.domain.fulfilment_urls import PERMISSIVE
from redemption.handlers.catalog import to_change
from tests.support.offers import published, withdrawn

T0 = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


def offer(offer_id: str, revision: int, partner_id: str = "skymall", **changes: object) -> PublishedOffer:
    fields: dict[str, object] = {
        "event_id": uuid.uuid4(),
        "partner_id": partner_id,
        "offer_id": offer_id,
        "revision": revision,
        "kind": "voucher",
        "title": "Voucher",
        "description": "",
        "category": "vouchers",
        "price_points": 100,
        "stock": 5,
        "valid_from": T0,
        "valid_until": T0 + timedelta(days=1),
        "fulfilment_url": None,
        "published_at": T0,
    }
    fields.update(changes)
    return PublishedOffer(**fields)  # type: ignore[arg-type]


def withdrawal(offer_id: str, revision: int, partner_id: str = "skymall") -> WithdrawnOffer:
    return WithdrawnOffer(uuid.uuid4(), partner_id, offer_id, revision)


def test_a_batch_keeps_only_the_highest_revision_of_each_offer_in_lock_order():
    changes = [offer("b", 2), offer("a", 1), offer("b", 3), offer("b", 1), offer("a", 1, partner_id="air")]
    latest = latest_per_offer(changes)
    assert [(c.partner_id, c.offer_id, c.revision) for c in latest] == [
        ("air", "a", 1),
        ("skymall", "a", 1),
        ("skymall", "b", 3),
    ]


def test_a_withdrawal_wins_over_a_publication_of_the_same_or_a_lower_revision():
    same = withdrawal("a", 2)
    assert latest_per_offer([offer("a", 2), same]) == [same]
    assert latest_per_offer([same, offer("a", 2)]) == [same]
    gone = withdrawal("a", 3)
    assert latest_per_offer([gone, offer("a", 2)]) == [gone]
    newer = offer("a", 4)
    assert latest_per_offer([gone, newer]) == [newer]


@pytest.mark.parametrize(
    ("moment", "withdrawn_", "expected"),
    [
        (T0 - timedelta(seconds=1), False, "upcoming"),
        (T0, False, "on_sale"),
        (T0 + timedelta(days=1) - timedelta(microseconds=1), False, "on_sale"),
        (T0 + timedelta(days=1), False, "ended"),
        (T0, True, "withdrawn"),
    ],
)
def test_an_offer_is_on_sale_from_valid_from_until_just_before_valid_until(moment, withdrawn_, expected):
    assert status_of(withdrawn_, T0, T0 + timedelta(days=1), moment) == expected


def test_a_position_survives_its_cursor_and_orders_by_price_partner_offer():
    position = Position(1_500, "skymall", "v/100?x")
    assert Position.decode(position.encode()) == position
    assert START < Position(1, "", "") < Position(1, "a", "") < Position(1, "a", "b") < Position(2, "", "")


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64!",
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
        base64.urlsafe_b64encode(b'["1", "a", "b"]').decode(),
        base64.urlsafe_b64encode(b'[1.5, "a", "b"]').decode(),
        base64.urlsafe_b64encode(b'[-1, "a", "b"]').decode(),
        base64.urlsafe_b64encode(b'[true, "a", "b"]').decode(),
        base64.urlsafe_b64encode(b'[1, "a\\u0000", "b"]').decode(),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
)
def test_a_cursor_this_api_did_not_write_is_refused(cursor: str):
    with pytest.raises(BadCursorError, match="start again without it"):
        Position.decode(cursor)


def test_offer_events_become_catalog_changes():
    event = published("skymall", "p-1", 3, kind="product", fulfilment_url="https://skymall.example/f")
    change = to_change(event, PERMISSIVE)
    assert isinstance(change, PublishedOffer)
    assert (change.event_id, change.revision, change.fulfilment_url) == (event.event_id, 3, "https://skymall.example/f")
    assert change.published_at == event.occurred_at
    gone = withdrawn("skymall", "p-1", 4)
    assert to_change(gone, PERMISSIVE) == WithdrawnOffer(gone.event_id, "skymall", "p-1", 4)


def test_what_postgresql_cannot_store_is_refused_for_the_dead_letter_topic():
    with pytest.raises(UnusableOfferError, match=r"payload\.title: contains a NUL character"):
        to_change(published("skymall", "v-1", 1, title="bad\x00title"), PERMISSIVE)
    with pytest.raises(UnusableOfferError, match=r"payload\.revision"):
        check_storable(withdrawal("a", 2**63))
    assert check_storable(withdrawal("a", 2**63 - 1)).revision == 2**63 - 1
