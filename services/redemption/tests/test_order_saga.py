"""The saga's states: every path ends fulfilled (captured) or cancelled (released), never both."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from redemption.domain.orders import Ask, Order, OrderState, hold_id_for, retry_delay

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


def order(kind: str = "product") -> Order:
    return Order(
        uuid.uuid4(), uuid.uuid4(), "skyair", "lounge", kind, 2, 500,
        hold_expires_at=NOW + timedelta(minutes=30), fulfilment_deadline=NOW + timedelta(minutes=2),
    )  # fmt: skip


def test_a_product_is_captured_only_after_the_partner_delivered():
    o = order()
    o.held(stock_available=True, now=NOW)
    assert (o.state, o.stock_reserved, o.asks) == (OrderState.FULFILLING, True, [])
    o.delivered(reference="SKY-1")
    assert (o.state, o.asks) == (OrderState.CAPTURING, [Ask.CAPTURE])
    o.asks.clear()
    o.captured()
    assert (o.state, o.asks, o.stock_reserved) == (OrderState.FULFILLED, [Ask.SELL_STOCK, Ask.PUBLISH_FULFILLED], False)
    assert o.points == 1_000


def test_a_voucher_is_issued_and_captured_at_once():
    o = order("voucher")
    o.held(stock_available=True, now=NOW)
    assert o.state is OrderState.CAPTURING
    assert o.asks == [Ask.ISSUE_VOUCHER, Ask.CAPTURE]


def test_no_stock_releases_the_hold_and_ends_cancelled_after_the_release():
    o = order()
    o.held(stock_available=False, now=NOW)
    assert (o.state, o.asks, o.cancel_reason) == (OrderState.CANCELLING, [Ask.RELEASE], "out_of_stock")
    o.asks.clear()
    o.released("out_of_stock")
    assert (o.state, o.asks) == (OrderState.CANCELLED, [Ask.PUBLISH_CANCELLED])


def test_a_declined_order_gives_back_points_and_stock():
    o = order()
    o.held(stock_available=True, now=NOW)
    o.declined("partner_declined_409")
    assert (o.state, o.asks, o.stock_reserved) == (OrderState.CANCELLING, [Ask.RELEASE, Ask.RETURN_STOCK], False)


def test_retries_stop_at_the_deadline():
    o = order()
    o.held(stock_available=True, now=NOW)
    o.retry_later(NOW, retry_delay(1), in_doubt=False)
    assert (o.state, o.next_attempt_at) == (OrderState.FULFILLING, NOW + timedelta(seconds=1))
    assert not o.should_call(NOW + timedelta(minutes=3))
    o.retry_later(NOW + timedelta(seconds=119), retry_delay(5), in_doubt=False)
    assert (o.state, o.cancel_reason) == (OrderState.CANCELLING, "fulfilment_timeout")


def test_an_order_in_doubt_is_asked_again_after_the_deadline_never_cancelled_for_it():
    o = order()
    o.held(stock_available=True, now=NOW)
    late = NOW + timedelta(minutes=3)
    o.retry_later(late, retry_delay(3), in_doubt=True)  # the call timed out: it may have reached the partner
    assert o.state is OrderState.FULFILLING
    assert o.should_call(late)
    o.delivered(reference="late but delivered")
    assert o.state is OrderState.CAPTURING


def test_asking_stops_before_the_hold_expires():
    o = order()
    o.held(stock_available=True, now=NOW)
    o.retry_later(NOW + timedelta(minutes=25), retry_delay(5), in_doubt=True)
    assert (o.state, o.cancel_reason) == (OrderState.CANCELLING, "fulfilment_unconfirmed")


def test_a_refused_hold_cancels_without_a_release():
    o = order()
    o.hold_refused("insufficient_points")
    assert (o.state, o.asks, o.cancel_reason) == (OrderState.CANCELLED, [Ask.PUBLISH_CANCELLED], "insufficient_points")


@pytest.mark.parametrize("late", ["held", "captured", "delivered", "declined", "released"])
def test_final_states_ignore_late_or_repeated_messages(late: str):
    o = order()
    o.hold_refused("insufficient_points")
    o.asks.clear()
    getattr(o, late)(*{"held": (True, NOW), "delivered": (None,), "declined": ("x",), "released": ("x",)}.get(late, ()))
    assert (o.state, o.asks) == (OrderState.CANCELLED, [])


def test_a_release_while_capturing_waits_for_the_capture_answer():
    o = order()
    o.held(stock_available=True, now=NOW)
    o.delivered(reference=None)
    o.asks.clear()
    o.released("expired")
    assert (o.state, o.asks) == (OrderState.CAPTURING, [])
    o.capture_refused("hold_expired")
    assert o.state is OrderState.PAYMENT_FAILED


def test_hold_ids_derive_from_order_ids():
    o = order()
    assert o.hold_id == hold_id_for(o.order_id) != hold_id_for(uuid.uuid4())
