"""FastStream subscribers of the facts partners are told by webhook: orders, refused purchases, offers out of stock.

Each batch is one transaction: the inbox claim and a delivery per subscribed endpoint (handlers.webhooks).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from faststream import Context
from faststream.kafka.message import KafkaMessage

from contracts.envelope import Event
from contracts.events.orders import OrderCancelled, OrderFulfilled, OrderPaymentFailed, OrderPlaced
from contracts.events.outcomes import PurchaseRefused
from contracts.events.stock import OfferOutOfStock
from contracts.topics import OFFER_STOCK, PURCHASE_OUTCOMES, REDEMPTION_ORDERS, Topic
from loyalty_runtime.consumer import BatchConsumer, Delivery
from loyalty_runtime.service import ServiceShell
from partners.adapters.webhooks_store import WebhookStore
from partners.handlers.webhooks import Clock, record_source_events

SOURCES: tuple[Topic, ...] = (REDEMPTION_ORDERS, PURCHASE_OUTCOMES, OFFER_STOCK)


class WebhookSourceConsumer(BatchConsumer[Event]):
    span_name = "webhooks from"

    def __init__(self, shell: ServiceShell, topic: Topic, group_id: str, store: WebhookStore, clock: Clock) -> None:
        super().__init__(shell, topic, group_id)
        self.store = store
        self.clock = clock

    async def apply(self, deliveries: Sequence[Delivery[Event]]) -> None:
        await record_source_events(self.store, self.name, [d.event for d in deliveries], self.clock())


def register(shell: ServiceShell, group_id: str, store: WebhookStore, clock: Clock) -> list[WebhookSourceConsumer]:
    orders, refused, stock = (WebhookSourceConsumer(shell, topic, group_id, store, clock) for topic in SOURCES)

    @shell.broker.subscriber(orders.name, **orders.subscriber_options())  # type: ignore[call-overload]
    async def on_orders_for_webhooks(
        batch: list[OrderPlaced | OrderFulfilled | OrderCancelled | OrderPaymentFailed],
        message: Annotated[KafkaMessage, Context("message")],
    ) -> None:
        await orders.consume(batch, message)

    @shell.broker.subscriber(refused.name, **refused.subscriber_options())  # type: ignore[call-overload]
    async def on_refused_purchases(
        batch: list[PurchaseRefused], message: Annotated[KafkaMessage, Context("message")]
    ) -> None:
        await refused.consume(batch, message)

    @shell.broker.subscriber(stock.name, **stock.subscriber_options())  # type: ignore[call-overload]
    async def on_offers_out_of_stock(
        batch: list[OfferOutOfStock], message: Annotated[KafkaMessage, Context("message")]
    ) -> None:
        await stock.consume(batch, message)

    return [orders, refused, stock]
