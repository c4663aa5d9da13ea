"""The redemption saga: an order's states and what each step asks of the ledger and the catalog.

    awaiting_hold -- PointsHeld, stock reserved --> fulfilling -- partner delivered --> capturing
    awaiting_hold -- PointsHeld, stock reserved, a voucher --> capturing
    capturing -- HoldCaptured --> fulfilled (a voucher's code is issued now)
    capturing -- HoldCaptureRefused --> payment_failed (stock returned)
    awaiting_hold -- PointsHeld, no stock --> cancelling -- HoldReleased --> cancelled
    fulfilling -- partner declined, or deadline passed --> cancelling
    awaiting_hold -- HoldRejected --> cancelled

Every order ends in exactly one of `fulfilled` (delivered, points captured, stock sold) or
`cancelled` (nothing delivered, points released, stock given back). A hold is only captured
after the partner delivered, and only released when nothing was or will be delivered.
The rare exception is `payment_failed`: the ledger refused a capture that came after the hold
expired and the member had spent the points meanwhile. The stock goes back, and a voucher's code,
issued only once its capture is confirmed, never exists; a partner that delivered a product was
not paid for it, which the OrderPaymentFailed event tells.

An order is *in doubt* while a call to the partner may have reached it without its answer
reaching us (a timeout, a crash between the call and recording its answer). An order in doubt
is never cancelled for a missed deadline: the partner is asked again (the call is idempotent
by order id) until it answers one way or the other, or the hold is about to expire.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

HOLD_SAFETY_MARGIN = timedelta(minutes=5)
"""Asking the partner stops this long before the hold expires, so that a delivery can still be captured."""

# Fixed forever: hold ids derive from order ids.
_HOLDS = uuid.UUID("0f4c9a7e-2b61-4d3a-9e85-6a1d3c2b7f90")


class OrderState(StrEnum):
    AWAITING_HOLD = "awaiting_hold"
    FULFILLING = "fulfilling"
    CAPTURING = "capturing"
    CANCELLING = "cancelling"
    FULFILLED = "fulfilled"
    CANCELLED = "cancelled"
    PAYMENT_FAILED = "payment_failed"

    @property
    def final(self) -> bool:
        return self in (OrderState.FULFILLED, OrderState.CANCELLED, OrderState.PAYMENT_FAILED)


class Ask(StrEnum):
    """What a transition asks the outside world to do, in the same transaction as the new state."""

    HOLD = "hold"
    CAPTURE = "capture"
    RELEASE = "release"
    RESERVE_STOCK = "reserve_stock"
    RETURN_STOCK = "return_stock"
    SELL_STOCK = "sell_stock"
    ISSUE_VOUCHER = "issue_voucher"
    PUBLISH_PLACED = "publish_placed"
    PUBLISH_FULFILLED = "publish_fulfilled"
    PUBLISH_CANCELLED = "publish_cancelled"
    PUBLISH_PAYMENT_FAILED = "publish_payment_failed"


class OrderRefusedError(ValueError):
    """An order the catalog does not allow; the message says why."""


@dataclass
class Order:
    order_id: uuid.UUID
    member_id: uuid.UUID
    partner_id: str
    offer_id: str
    kind: str
    quantity: int
    unit_points: int
    hold_expires_at: datetime
    fulfilment_deadline: datetime
    state: OrderState = OrderState.AWAITING_HOLD
    stock_reserved: bool = False
    attempts: int = 0
    next_attempt_at: datetime | None = None
    voucher_code: str | None = None
    partner_reference: str | None = None
    cancel_reason: str | None = None
    in_doubt: bool = False
    asks: list[Ask] = field(default_factory=list)

    @property
    def points(self) -> int:
        return self.unit_points * self.quantity

    @property
    def hold_id(self) -> uuid.UUID:
        return hold_id_for(self.order_id)

    def _cancel(self, reason: str) -> None:
        """Stop: release the hold and give back the stock, then wait for the release."""
        self.state = OrderState.CANCELLING
        self.cancel_reason = reason
        self.next_attempt_at = None
        self.asks.append(Ask.RELEASE)
        if self.stock_reserved:
            self.asks.append(Ask.RETURN_STOCK)
            self.stock_reserved = False

    def held(self, stock_available: bool, now: datetime) -> None:
        """The ledger reserved the points. `stock_available`: whether units could be reserved for it."""
        if self.state is not OrderState.AWAITING_HOLD:
            return
        if not stock_available:
            self._cancel("out_of_stock")
            return
        self.stock_reserved = True
        if self.kind == "voucher":
            # The programme delivers a voucher itself; its code is issued once the capture is confirmed.
            self.delivered(reference=None)
            return
        self.state = OrderState.FULFILLING
        self.next_attempt_at = now

    def hold_refused(self, reason: str) -> None:
        if self.state is OrderState.AWAITING_HOLD:
            self.state = OrderState.CANCELLED
            self.cancel_reason = reason
            self.asks.append(Ask.PUBLISH_CANCELLED)

    def delivered(self, reference: str | None) -> None:
        """The partner fulfilled the order (or its voucher was issued): take the points."""
        if self.state not in (OrderState.FULFILLING, OrderState.AWAITING_HOLD):
            return
        self.state = OrderState.CAPTURING
        self.partner_reference = reference
        self.next_attempt_at = None
        self.asks.append(Ask.CAPTURE)

    def declined(self, reason: str) -> None:
        """The partner will not fulfil the order (or did not in time): give everything back."""
        if self.state is OrderState.FULFILLING:
            self._cancel(reason)

    def should_call(self, now: datetime) -> bool:
        """Whether to call the partner now; False means the order is past its deadline and can be cancelled."""
        return now < self.fulfilment_deadline or self.in_doubt

    def retry_later(self, now: datetime, delay: timedelta, *, in_doubt: bool) -> None:
        """No answer that settles it; try again, unless the deadline passed and the partner surely did not deliver.

        `in_doubt`: the last call may have reached the partner (no answer came back).
        """
        if self.state is not OrderState.FULFILLING:
            return
        self.in_doubt = in_doubt
        if now + delay >= self.hold_expires_at - HOLD_SAFETY_MARGIN:
            self._cancel("fulfilment_unconfirmed" if in_doubt else "fulfilment_timeout")
        elif now + delay >= self.fulfilment_deadline and not in_doubt:
            self._cancel("fulfilment_timeout")
        else:
            self.next_attempt_at = now + delay

    def captured(self) -> None:
        if self.state is OrderState.CAPTURING:
            self.state = OrderState.FULFILLED
            if self.kind == "voucher" and self.voucher_code is None:
                self.asks.append(Ask.ISSUE_VOUCHER)
            self.asks += [Ask.SELL_STOCK, Ask.PUBLISH_FULFILLED]
            self.stock_reserved = False

    def released(self, reason: str) -> None:
        """The ledger voided the hold, on our request or because it expired."""
        if self.state is OrderState.CANCELLING:
            self.state = OrderState.CANCELLED
            self.asks.append(Ask.PUBLISH_CANCELLED)
        elif self.state in (OrderState.AWAITING_HOLD, OrderState.FULFILLING):
            # The hold expired before anything was delivered: nothing will be.
            self.state = OrderState.CANCELLED
            self.cancel_reason = f"hold_{reason}"
            self.next_attempt_at = None
            if self.stock_reserved:
                self.asks.append(Ask.RETURN_STOCK)
                self.stock_reserved = False
            self.asks.append(Ask.PUBLISH_CANCELLED)
        # capturing: a capture is on its way; the ledger answers it with HoldCaptured or a refusal.

    def capture_refused(self, reason: str) -> None:
        """The ledger took no points (the hold had expired or was released): give the stock back, issue nothing."""
        if self.state is OrderState.CAPTURING:
            self.state = OrderState.PAYMENT_FAILED
            self.cancel_reason = reason
            self.voucher_code = None
            if self.stock_reserved:
                self.asks.append(Ask.RETURN_STOCK)
                self.stock_reserved = False
            self.asks.append(Ask.PUBLISH_PAYMENT_FAILED)


def voucher_to_show(state: OrderState | str, voucher_code: str | None) -> str | None:
    """A voucher code is the member's only once the order is fulfilled (its points captured)."""
    return voucher_code if state == OrderState.FULFILLED else None


def hold_id_for(order_id: uuid.UUID) -> uuid.UUID:
    return uuid.uuid5(_HOLDS, str(order_id))


def retry_delay(attempts: int) -> timedelta:
    """1, 2, 4, 8, then 15 seconds between attempts to reach a partner."""
    return timedelta(seconds=min(2 ** max(attempts - 1, 0), 15))
