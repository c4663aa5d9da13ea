"""The ledger's answers applied to orders on a real database, a batch at a time: stock changes once per batch.

The stock counters of a batch's offers are read under lock and written in one statement; these tests
hold them to what one conditional update per order gave: never more reserved than the stock, the last
unit taken once (one OfferOutOfStock), captures sell, releases give back, a repeated batch changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from contracts.envelope import Event
from contracts.events.holds import CapturedPayload, HeldPayload, HoldCaptured, HoldReleased, PointsHeld
from contracts.events.holds import ReleasedPayload as Released
from contracts.topics import OFFER_STOCK
from redemption.adapters.catalog_store import CatalogStore
from redemption.adapters.orders_store import OrdersStore
from redemption.domain.fulfilment_urls import PERMISSIVE
from redemption.domain.orders import Order, OrderState
from redemption.handlers.catalog import apply_offer_batch, to_change
from redemption.handlers.orders import Saga, apply_hold_results, place_order
from tests.support.offers import published

pytestmark = pytest.mark.integration

PREFIX = "t."
PRICE = 100


@dataclass(frozen=True)
class Saga_:
    pool: asyncpg.Pool
    saga: Saga

    @property
    def store(self) -> OrdersStore:
        return OrdersStore(self.pool)

    async def order(self, offer_id: str) -> Order:
        order, _ = await place_order(self.store, self.saga, uuid.uuid4(), "skymall", offer_id, 1, uuid.uuid4().hex)
        return order

    async def answer(self, results: Sequence[Event]) -> int:
        """What the hold-results consumer does with one batch."""
        return await apply_hold_results(self.store, self.saga, "t.hold-results", results)

    async def states(self, orders: Sequence[Order]) -> list[OrderState]:
        rows = await self.pool.fetch(
            "SELECT order_id, state FROM orders WHERE order_id = ANY($1::uuid[])", [o.order_id for o in orders]
        )
        by_id = {r["order_id"]: OrderState(r["state"]) for r in rows}
        return [by_id[o.order_id] for o in orders]

    async def units(self, offer_id: str) -> tuple[int, int]:
        row = await self.pool.fetchrow("SELECT units_reserved, units_sold FROM catalog WHERE offer_id = $1", offer_id)
        return row["units_reserved"], row["units_sold"]

    async def out_of_stock(self) -> int:
        return await self.pool.fetchval("SELECT count(*) FROM outbox WHERE topic = $1", OFFER_STOCK.qualified(PREFIX))


@pytest.fixture
async def saga(database) -> AsyncIterator[Saga_]:
    pool = await asyncpg.create_pool(await database("redemption"), min_size=1, max_size=2)
    try:
        offers = [published("skymall", "scarce", 1, price_points=PRICE, stock=3),
                  published("skymall", "plenty", 1, price_points=PRICE, stock=1_000)]  # fmt: skip
        await apply_offer_batch(CatalogStore(pool), "t.offers", [to_change(e, PERMISSIVE) for e in offers])
        yield Saga_(pool, Saga(PREFIX, timedelta(minutes=30), timedelta(minutes=2)))
    finally:
        await pool.close()


def _event(kind: type[Event], payload: object, order: Order) -> Event:
    return kind(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC), source="points", correlation_id=order.order_id,
                payload=payload)  # fmt: skip


def held(order: Order) -> Event:
    payload = HeldPayload(hold_id=order.hold_id, member_id=order.member_id, order_id=order.order_id,
                          amount=order.points, expires_at=order.hold_expires_at)  # fmt: skip
    return _event(PointsHeld, payload, order)


def captured(order: Order) -> Event:
    payload = CapturedPayload(hold_id=order.hold_id, member_id=order.member_id, order_id=order.order_id,
                              amount=order.points, transfer_id=uuid.uuid4())  # fmt: skip
    return _event(HoldCaptured, payload, order)


def released(order: Order) -> Event:
    payload = Released(hold_id=order.hold_id, member_id=order.member_id, order_id=order.order_id,
                       amount=order.points, reason="released")  # fmt: skip
    return _event(HoldReleased, payload, order)


async def test_holds_in_one_batch_reserve_no_more_than_the_stock_and_the_last_unit_goes_once(saga: Saga_):
    orders = [await saga.order("scarce") for _ in range(5)]
    others = [await saga.order("plenty") for _ in range(2)]
    await saga.answer([held(o) for o in [orders[0], others[0], *orders[1:], others[1]]])
    assert await saga.states(orders) == [OrderState.CAPTURING] * 3 + [OrderState.CANCELLING] * 2
    assert await saga.states(others) == [OrderState.CAPTURING] * 2
    assert await saga.units("scarce") == (3, 0)
    assert await saga.units("plenty") == (2, 0)
    assert await saga.out_of_stock() == 1


async def test_captures_sell_and_releases_give_back_the_stock_in_the_batch_that_answers_them(saga: Saga_):
    orders = [await saga.order("scarce") for _ in range(2)]
    await saga.answer([held(o) for o in orders])
    answers = [captured(orders[0]), captured(orders[1])]
    await saga.answer(answers)
    assert await saga.units("scarce") == (0, 2)
    await saga.answer(answers)  # the same batch again: its events were applied once
    assert await saga.units("scarce") == (0, 2)
    late = await saga.order("scarce")
    await saga.answer([held(late)])  # the last unit: reserved, and the offer is out of stock
    assert await saga.units("scarce") == (1, 2)
    assert await saga.states([late]) == [OrderState.CAPTURING]
    assert await saga.out_of_stock() == 1


async def test_a_hold_without_stock_left_cancels_and_its_release_moves_no_counter(saga: Saga_):
    orders = [await saga.order("scarce") for _ in range(4)]
    await saga.answer([held(o) for o in orders[:3]])
    await saga.answer([held(orders[3])])
    assert await saga.states(orders[3:]) == [OrderState.CANCELLING]
    await saga.answer([released(orders[3]), captured(orders[0])])
    assert await saga.states([orders[3], orders[0]]) == [OrderState.CANCELLED, OrderState.FULFILLED]
    assert await saga.units("scarce") == (2, 1)
