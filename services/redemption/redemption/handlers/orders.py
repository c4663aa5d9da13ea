"""The redemption saga's steps: place an order, apply the ledger's answers, fulfil with the partner."""

from __future__ import annotations

import asyncio
import logging
import secrets
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from contracts.envelope import Event
from contracts.events.holds import (
    CaptureHold,
    HoldCaptured,
    HoldCaptureRefused,
    HoldPoints,
    HoldRef,
    HoldRejected,
    HoldReleased,
    HoldRequest,
    PointsHeld,
    ReleaseHold,
    ReleaseRequest,
)
from contracts.events.orders import (
    CancelledPayload,
    OrderCancelled,
    OrderFulfilled,
    OrderPayload,
    OrderPaymentFailed,
    OrderPlaced,
    PaymentFailedPayload,
)
from contracts.events.stock import OfferOutOfStock, StockPayload
from contracts.topics import HOLD_COMMANDS, OFFER_STOCK, REDEMPTION_ORDERS
from loyalty_runtime.inbox import first_copies
from loyalty_runtime.outbox import OutboxMessage
from loyalty_runtime.telemetry import inject_context
from redemption.adapters.fulfilment import Fulfilment, PartnerFulfilment
from redemption.adapters.fulfilment_keys_store import FulfilmentKeysStore
from redemption.adapters.orders_store import OrdersStore, OrdersTransaction
from redemption.domain import prices
from redemption.domain.catalog import OfferNotFoundError
from redemption.domain.orders import Ask, Order, OrderRefusedError, OrderState, retry_delay
from redemption.handlers.fulfilment_keys import signing_keys

log = logging.getLogger(__name__)


async def _answer(fulfilment: Fulfilment) -> Fulfilment:
    return fulfilment


SOURCE = "redemption"
_EVENTS = uuid.UUID("6c0e9b3a-8f27-4d51-a4c6-1e7b2d9f3a08")


class Saga:
    """Settings of the saga, and the messages each step sends (commands to the ledger, order events)."""

    def __init__(self, topic_prefix: str, hold_ttl: timedelta, fulfilment_timeout: timedelta) -> None:
        if fulfilment_timeout >= hold_ttl:
            raise ValueError("the fulfilment deadline must come well before the hold expires")
        self.commands = HOLD_COMMANDS.qualified(topic_prefix)
        self.orders = REDEMPTION_ORDERS.qualified(topic_prefix)
        self.stock = OFFER_STOCK.qualified(topic_prefix)
        self.hold_ttl = hold_ttl
        self.fulfilment_timeout = fulfilment_timeout

    def _event(self, order: Order, ask: Ask, kind: type[Event], payload: object) -> Event:
        return kind(
            event_id=uuid.uuid5(_EVENTS, f"{order.order_id}:{ask.value}"),
            occurred_at=datetime.now(UTC),
            source=SOURCE,
            correlation_id=order.order_id,
            payload=payload,
        )

    def messages(self, order: Order) -> list[OutboxMessage]:
        """The outbox rows for what the order's last transitions asked."""
        ref = {"hold_id": order.hold_id, "member_id": order.member_id, "order_id": order.order_id}
        summary = {"order_id": order.order_id, "member_id": order.member_id, "partner_id": order.partner_id,
                   "offer_id": order.offer_id, "quantity": order.quantity, "points": order.points}  # fmt: skip
        built: list[tuple[str, Event]] = []
        for ask in order.asks:
            if ask is Ask.HOLD:
                payload = HoldRequest(**ref, amount=order.points, partner_id=order.partner_id,
                                      expires_at=order.hold_expires_at)  # fmt: skip
                built.append((self.commands, self._event(order, ask, HoldPoints, payload)))
            elif ask is Ask.CAPTURE:
                built.append((self.commands, self._event(order, ask, CaptureHold, HoldRef(**ref))))
            elif ask is Ask.RELEASE:
                payload = ReleaseRequest(**ref, reason=order.cancel_reason or "cancelled")
                built.append((self.commands, self._event(order, ask, ReleaseHold, payload)))
            elif ask is Ask.PUBLISH_PLACED:
                built.append((self.orders, self._event(order, ask, OrderPlaced, OrderPayload(**summary))))
            elif ask is Ask.PUBLISH_FULFILLED:
                built.append((self.orders, self._event(order, ask, OrderFulfilled, OrderPayload(**summary))))
            elif ask is Ask.PUBLISH_CANCELLED:
                payload = CancelledPayload(**summary, reason=order.cancel_reason or "cancelled")
                built.append((self.orders, self._event(order, ask, OrderCancelled, payload)))
            elif ask is Ask.PUBLISH_PAYMENT_FAILED:
                # Only a partner's own delivery (not a voucher) can have happened before a capture.
                payload = PaymentFailedPayload(**summary, reason=order.cancel_reason or "capture_refused",
                                               delivered=order.kind != "voucher")  # fmt: skip
                built.append((self.orders, self._event(order, ask, OrderPaymentFailed, payload)))
        headers = inject_context({})
        return [OutboxMessage(topic, str(order.member_id), e.model_dump_json().encode(), headers) for topic, e in built]

    async def carry_out(self, tx: OrdersTransaction, orders: Sequence[Order]) -> None:
        """Do what the transitions asked, in the caller's transaction: stock, vouchers, outbox."""
        messages: list[OutboxMessage] = []
        for order in orders:
            for ask in order.asks:
                if ask is Ask.RETURN_STOCK:
                    tx.return_stock(order)
                elif ask is Ask.SELL_STOCK:
                    tx.sell_stock(order)
                elif ask is Ask.ISSUE_VOUCHER:
                    order.voucher_code = "-".join(secrets.token_hex(2).upper() for _ in range(4))
            messages += self.messages(order)
            order.asks.clear()
        messages += self.out_of_stock(tx)
        await tx.write_stock()
        await tx.save(orders)
        await tx.enqueue(messages)

    def out_of_stock(self, tx: OrdersTransaction) -> list[OutboxMessage]:
        """OfferOutOfStock for each offer whose last unit an order of this transaction reserved."""
        found: list[OfferOutOfStock] = []
        for s in tx.sold_out:
            payload = StockPayload(partner_id=s.order.partner_id, offer_id=s.order.offer_id, stock=s.stock,
                                   units_reserved=s.units_reserved, units_sold=s.units_sold)  # fmt: skip
            event_id = uuid.uuid5(_EVENTS, f"{s.order.order_id}:out_of_stock")
            found.append(OfferOutOfStock(event_id=event_id, occurred_at=datetime.now(UTC), source=SOURCE,
                                         correlation_id=s.order.order_id, payload=payload))  # fmt: skip
        tx.sold_out.clear()
        headers = inject_context({})
        return [OutboxMessage(self.stock, e.payload.partner_id, e.model_dump_json().encode(), headers) for e in found]


async def place_order(
    store: OrdersStore,
    saga: Saga,
    member_id: uuid.UUID,
    partner_id: str,
    offer_id: str,
    quantity: int,
    idempotency_key: str,
    expected_unit_points: int | None = None,
) -> tuple[Order, bool]:
    """Create the order and ask the ledger for a hold, in one statement. The same key returns the same order.

    The order is charged the member's own price (domain/prices.py); `expected_unit_points`, the price the member
    was shown, refuses the order instead of charging another one.
    """
    now = datetime.now(UTC)
    # No transaction: one read, then one statement writes the order with its messages (both or neither).
    async with store.session() as tx:
        offer = await tx.offer(partner_id, offer_id, member_id, idempotency_key)
        if offer is None or offer["ordered_before"]:
            existing = await tx.by_key(member_id, idempotency_key)
            if existing is not None:
                return existing, False
        tier = _orderable(offer, partner_id, offer_id, quantity, now)
        reader = prices.Reader(tier, segments=offer["member_segments"])
        unit_points = prices.charge(offer["price_points"], offer["tier_prices"], reader, expected_unit_points,
                                    offer["segment_prices"])  # fmt: skip
        order = Order(
            uuid.uuid4(), member_id, partner_id, offer_id, offer["kind"], quantity, unit_points,
            hold_expires_at=now + saga.hold_ttl, fulfilment_deadline=now + saga.fulfilment_timeout,
        )  # fmt: skip
        order.asks += [Ask.HOLD, Ask.PUBLISH_PLACED]
        messages = saga.messages(order)
        order.asks.clear()
        if not await tx.place(order, idempotency_key, tier, offer["price_points"], messages):
            raced = await tx.by_key(member_id, idempotency_key)
            assert raced is not None
            return raced, False
    return order, True


def _orderable(
    offer: dict[str, Any] | None, partner_id: str, offer_id: str, quantity: int, now: datetime
) -> str | None:
    """The member's tier, once the offer may be ordered now by it in this quantity; else the refusal."""
    if offer is None or not prices.open_to(offer["tiers_only"], prices.Reader(offer["member_tier"])):
        raise OfferNotFoundError(partner_id, offer_id)
    if offer["withdrawn"]:
        raise OrderRefusedError("the partner withdrew this offer")
    if not offer["valid_from"] <= now < offer["valid_until"]:
        raise OrderRefusedError(f"the offer can be ordered from {offer['valid_from']} until {offer['valid_until']}")
    if offer["available"] < quantity:
        raise OrderRefusedError(f"only {offer['available']} left in stock")
    tier: str | None = offer["member_tier"]
    return tier


async def apply_hold_results(store: OrdersStore, saga: Saga, topic: str, results: Sequence[Event]) -> int:
    """Move each order on by the ledger's answer, once, in one transaction per batch."""
    now = datetime.now(UTC)
    async with store.transaction() as tx:
        fresh = await tx.claim_inbox(topic, [r.event_id for r in results])
        results = first_copies(results, fresh, lambda r: r.event_id)
        orders = await tx.lock(r.payload.order_id for r in results)  # type: ignore[attr-defined]
        await tx.lock_stock(orders.values())
        touched: dict[uuid.UUID, Order] = {}
        for result in results:
            order = orders.get(result.payload.order_id)  # type: ignore[attr-defined]
            if order is None:
                log.warning("hold result for an unknown order", extra={"event_id": str(result.event_id)})
                continue
            if isinstance(result, PointsHeld):
                reserved = order.state is OrderState.AWAITING_HOLD and tx.reserve_stock(order)
                order.held(reserved, now)
            elif isinstance(result, HoldRejected):
                order.hold_refused(result.payload.reason)
            elif isinstance(result, HoldCaptured):
                order.captured()
            elif isinstance(result, HoldReleased):
                order.released(result.payload.reason)
            elif isinstance(result, HoldCaptureRefused):
                order.capture_refused(result.payload.reason)
                log.error(
                    "capture refused; the order ends payment_failed",
                    extra={"order_id": str(order.order_id), "reason": result.payload.reason},
                )
            touched[order.order_id] = order
        await saga.carry_out(tx, list(touched.values()))
    return len(results)


async def fulfil_due(
    store: OrdersStore,
    saga: Saga,
    partners: PartnerFulfilment,
    keys: FulfilmentKeysStore,
    *,
    limit: int = 20,
    lease: timedelta = timedelta(seconds=30),
) -> int:
    """Ask partners to fulfil the orders that are due; record each answer. Returns how many were tried.

    A partner is only called before the order's fulfilment deadline, which comes long before its
    hold expires, so an order a partner delivered can always be paid for. Each call is signed with
    its partner's current fulfilment key.
    """
    now = datetime.now(UTC)
    async with store.transaction() as tx:
        claimed = await tx.claim_fulfilments(now, now + lease, limit)
    if not claimed:
        return 0
    answers = await _call_partners(partners, keys, claimed, now)
    await _record_answers(store, saga, claimed, answers)
    return len(claimed)


async def _call_partners(
    partners: PartnerFulfilment, keys: FulfilmentKeysStore, claimed: Sequence[tuple[Order, str]], now: datetime
) -> list[Fulfilment]:
    async with keys.transaction() as ktx:
        signing = await signing_keys(ktx, {order.partner_id for order, _ in claimed}, now)
    # Claiming put every order in doubt (a crash after the call would lose its answer); the answer decides.
    late = Fulfilment("retry", reason="past the fulfilment deadline; not called")
    return await asyncio.gather(
        *(
            partners.fulfil(order, url, signing[order.partner_id]) if order.should_call(now) else _answer(late)
            for order, url in claimed
        )
    )


async def _record_answers(
    store: OrdersStore, saga: Saga, claimed: Sequence[tuple[Order, str]], answers: Sequence[Fulfilment]
) -> None:
    now = datetime.now(UTC)
    async with store.transaction() as tx:
        orders = await tx.lock(order.order_id for order, _ in claimed)
        for (claim, _url), answer in zip(claimed, answers, strict=True):
            order = orders[claim.order_id]
            if answer.outcome == "delivered":
                order.delivered(answer.reference)
            elif answer.outcome == "declined":
                order.declined(answer.reason)
            else:
                order.retry_later(now, retry_delay(order.attempts), in_doubt=answer.in_doubt)
                log.info(
                    "partner not reached; will retry", extra={"order_id": str(order.order_id), "why": answer.reason}
                )
        await saga.carry_out(tx, list(orders.values()))
