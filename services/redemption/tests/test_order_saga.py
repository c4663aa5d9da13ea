"""The saga's states: every path ends fulfilled (captured) or cancelled (released), never both."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from contracts.events.orders import OrderPaymentFailed
from contracts.topics import REDEMPTION_ORDERS
from redemption.domain.orders import Ask, Order, OrderState, hold_id_for, retry_delay, voucher_to_show
from redemption.handlers.orders import Saga

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


def test_a_voucher_is_captured_at_once_and_its_code_issued_only_once_the_capture_is_confirmed():
    o = order("voucher")
    o.held(stock_available=True, now=NOW)
    assert (o.state, o.asks) == (OrderState.CAPTURING, [Ask.CAPTURE])
    o.asks.clear()
    o.captured()
    assert (o.state, o.asks) == (OrderState.FULFILLED, [Ask.ISSUE_VOUCHER, Ask.SELL_STOCK, Ask.PUBLISH_FULFILLED])


def test_a_voucher_code_issued_before_the_capture_is_kept_not_issued_twice():
    o = order("voucher")
    o.held(stock_available=True, now=NOW)
    o.voucher_code = "AB12-CD34-EF56-0789"  # issued at the hold by an earlier version
    o.asks.clear()
    o.captured()
    assert (o.voucher_code, o.asks) == ("AB12-CD34-EF56-0789", [Ask.SELL_STOCK, Ask.PUBLISH_FULFILLED])


@pytest.mark.parametrize("kind", ["product", "voucher"])
def test_a_refused_capture_ends_payment_failed_returns_the_stock_and_issues_no_voucher(kind: str):
    o = order(kind)
    o.held(stock_available=True, now=NOW)
    if kind == "product":
        o.delivered(reference="SKY-1")
    o.asks.clear()
    o.capture_refused("hold_expired")
    assert (o.state, o.cancel_reason, o.stock_reserved) == (OrderState.PAYMENT_FAILED, "hold_expired", False)
    assert o.asks == [Ask.RETURN_STOCK, Ask.PUBLISH_PAYMENT_FAILED]
    assert o.voucher_code is None
    o.asks.clear()
    o.captured()  # a late or repeated answer changes nothing
    assert (o.state, o.asks) == (OrderState.PAYMENT_FAILED, [])


@pytest.mark.parametrize(
    ("state", "shown"),
    [(OrderState.FULFILLED, "AB12-CD34"), (OrderState.CAPTURING, None), (OrderState.PAYMENT_FAILED, None),
     ("cancelled", None), ("fulfilled", "AB12-CD34")],
)  # fmt: skip
def test_a_voucher_code_is_shown_only_for_a_fulfilled_order(state: OrderState | str, shown: str | None):
    assert voucher_to_show(state, "AB12-CD34") == shown


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
    assert (o.state, o.asks) == (OrderState.PAYMENT_FAILED, [Ask.RETURN_STOCK, Ask.PUBLISH_PAYMENT_FAILED])


def test_hold_ids_derive_from_order_ids():
    o = order()
    assert o.hold_id == hold_id_for(o.order_id) != hold_id_for(uuid.uuid4())


def test_a_refused_capture_publishes_order_payment_failed_with_its_reason():
    saga = Saga("t.", hold_ttl=timedelta(minutes=30), fulfilment_timeout=timedelta(minutes=2))
    o = order()
    o.held(stock_available=True, now=NOW)
    o.delivered(reference="SKY-1")
    o.asks.clear()
    o.capture_refused("hold_released")
    [message] = saga.messages(o)
    event = REDEMPTION_ORDERS.decode(message.payload)
    assert (message.topic, message.key) == (saga.orders, str(o.member_id))
    assert isinstance(event, OrderPaymentFailed)
    assert (event.payload.order_id, event.payload.reason, event.payload.delivered) == (
        o.order_id,
        "hold_released",
        True,
    )
    assert event.payload.points == 1_000
