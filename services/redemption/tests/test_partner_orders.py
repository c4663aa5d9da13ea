"""Partner staff list and read the orders placed with their partner, without voucher codes; ops read any."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from loyalty_runtime.auth import Role, principal_dependency
from redemption.adapters.catalog_store import CatalogStore
from redemption.adapters.orders_store import OrdersStore
from redemption.api.orders import router
from redemption.domain.fulfilment_urls import PERMISSIVE
from redemption.domain.orders import Order, OrderState
from redemption.handlers.catalog import apply_offer_batch, to_change
from redemption.handlers.orders import Saga
from redemption.handlers.queries import StateFilter
from redemption.settings import Settings
from tests.support.ledger import AUTHORITY, OPS, member_headers
from tests.support.offers import published

pytestmark = pytest.mark.integration

ALICE, BOB = uuid.UUID("7a1c0000-0000-4000-8000-000000000001"), uuid.UUID("7a1c0000-0000-4000-8000-000000000002")
CODE = "AB12-CD34-EF56-0789"


def staff(partner_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {AUTHORITY.issue(f'staff-of-{partner_id}', Role.PARTNER, partner_id=partner_id)}"}


@dataclass(frozen=True)
class Orders:
    """Alice's and Bob's orders at skyair and skymall, placed one after the other, behind the orders API."""

    client: httpx.AsyncClient
    ids: dict[str, uuid.UUID]

    async def list(self, headers: dict[str, str], **query: Any) -> httpx.Response:
        return await self.client.get("/v1/orders", params=query, headers=headers)

    async def names(self, headers: dict[str, str], **query: Any) -> list[str]:
        answer = await self.list(headers, **query)
        assert answer.status_code == 200, answer.text
        by_id = {str(v): k for k, v in self.ids.items()}
        return [by_id[o["order_id"]] for o in answer.json()["items"]]


async def place(store: OrdersStore, member: uuid.UUID, partner_id: str, offer_id: str, state: OrderState) -> uuid.UUID:
    """An order placed, then left in `state` as the saga leaves it (a fulfilled voucher has its code)."""
    now = datetime.now(UTC)
    kind = "product" if offer_id == "lounge" else "voucher"
    order = Order(
        uuid.uuid4(), member, partner_id, offer_id, kind, 1, 500, hold_expires_at=now + timedelta(hours=1),
        fulfilment_deadline=now + timedelta(minutes=30),
    )  # fmt: skip
    async with store.transaction() as tx:  # one transaction each: created_at orders them
        await tx.insert(order, idempotency_key=order.order_id.hex)
        order.state = state
        order.voucher_code = CODE if state is OrderState.FULFILLED and kind == "voucher" else None
        order.cancel_reason = "out_of_stock" if state is OrderState.CANCELLED else None
        await tx.save([order])
    return order.order_id


@pytest.fixture
async def orders(database) -> AsyncIterator[Orders]:
    """The orders API as app.py mounts it, on a database of its own; listing and reading need no broker."""
    pool = await asyncpg.create_pool(await database("redemption"), min_size=1, max_size=2)
    offers = [
        published("skyair", "lounge", 1, kind="product", fulfilment_url="https://skyair.example/fulfil"),
        published("skyair", "v-50", 1),
        published("skymall", "v-100", 1),
    ]
    await apply_offer_batch(CatalogStore(pool), "test-offers", [to_change(e, PERMISSIVE) for e in offers])
    store = OrdersStore(pool)
    ids = {}
    for name, member, partner, offer, state in [
        ("air-fulfilled", ALICE, "skyair", "v-50", OrderState.FULFILLED),
        ("air-fulfilling", BOB, "skyair", "lounge", OrderState.FULFILLING),
        ("mall-fulfilled", ALICE, "skymall", "v-100", OrderState.FULFILLED),
        ("air-capturing", ALICE, "skyair", "v-50", OrderState.CAPTURING),
        ("air-cancelled", BOB, "skyair", "lounge", OrderState.CANCELLED),
    ]:
        ids[name] = await place(store, member, partner, offer, state)
    settings = Settings(environment="test")
    app = FastAPI()
    authenticate = principal_dependency(lambda: AUTHORITY)
    app.include_router(router(lambda: store, Saga("", settings.hold_ttl, settings.fulfilment_timeout), authenticate))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://redemption") as client:
            yield Orders(client, ids)
    finally:
        await pool.close()


async def test_partner_staff_list_their_partner_s_orders_newest_first_without_voucher_codes(orders: Orders):
    skyair = ["air-cancelled", "air-capturing", "air-fulfilling", "air-fulfilled"]
    assert await orders.names(staff("skyair")) == skyair
    assert await orders.names(staff("skyair"), partner_id="skyair") == skyair
    answer = (await orders.list(staff("skyair"))).json()["items"]
    assert {o["voucher_code"] for o in answer} == {None}  # the fulfilled order has a code: the member's only
    assert [o["member_id"] for o in answer] == [str(BOB), str(ALICE), str(BOB), str(ALICE)]

    first = (await orders.list(staff("skyair"), limit=3)).json()
    second = (await orders.list(staff("skyair"), limit=3, cursor=first["next_cursor"])).json()
    assert [len(first["items"]), len(second["items"]), second["next_cursor"]] == [3, 1, None]
    assert await orders.names(staff("skyair"), member_id=str(ALICE)) == ["air-capturing", "air-fulfilled"]

    refused = await orders.list(staff("skyair"), partner_id="skymall")
    assert refused.status_code == 403
    assert "their own partner" in refused.json()["detail"]
    assert await orders.names(staff("skymall")) == ["mall-fulfilled"]


async def test_orders_filter_by_state_and_awaiting_fulfilment_names_the_held_but_unfulfilled(orders: Orders):
    skyair = staff("skyair")
    assert await orders.names(skyair, state="awaiting_fulfilment") == ["air-capturing", "air-fulfilling"]
    assert await orders.names(skyair, state="fulfilled") == ["air-fulfilled"]
    assert await orders.names(skyair, state="cancelled") == ["air-cancelled"]
    assert await orders.names(skyair, state="awaiting_hold") == []
    assert await orders.names(member_headers(ALICE), state="fulfilled") == ["mall-fulfilled", "air-fulfilled"]
    assert await orders.names(OPS, partner_id="skyair", state="awaiting_fulfilment") == [
        "air-capturing", "air-fulfilling",
    ]  # fmt: skip
    unknown = await orders.list(skyair, state="shipped")
    assert unknown.status_code == 422
    assert "awaiting_fulfilment" in unknown.text  # the answer lists what may be asked for


def test_every_order_state_can_be_asked_for():
    assert {s.value for s in OrderState} <= {f.value for f in StateFilter}
    assert {s for f in StateFilter for s in f.states} == set(OrderState)


async def test_a_member_lists_only_its_own_orders_and_ops_name_a_member_or_a_partner(orders: Orders):
    alice = member_headers(ALICE)
    assert await orders.names(alice) == ["air-capturing", "mall-fulfilled", "air-fulfilled"]
    assert {o["voucher_code"] for o in (await orders.list(alice, state="fulfilled")).json()["items"]} == {CODE}
    assert (await orders.list(alice, partner_id="skyair")).status_code == 403
    assert (await orders.list(alice, member_id=str(BOB))).status_code == 403

    assert await orders.names(OPS, partner_id="skymall") == ["mall-fulfilled"]
    assert await orders.names(OPS, member_id=str(BOB)) == ["air-cancelled", "air-fulfilling"]
    assert await orders.names(OPS, member_id=str(BOB), partner_id="skymall") == []
    unbounded = await orders.list(OPS)
    assert unbounded.status_code == 400
    assert "?partner_id=" in unbounded.json()["detail"]
    assert (await orders.client.get("/v1/orders", params={"partner_id": "skyair"})).status_code == 401


async def test_one_order_is_read_by_its_member_its_partner_s_staff_without_the_code_and_ops(orders: Orders):
    path = f"/v1/orders/{orders.ids['air-fulfilled']}"
    by_member = await orders.client.get(path, headers=member_headers(ALICE))
    by_staff = await orders.client.get(path, headers=staff("skyair"))
    by_ops = await orders.client.get(path, headers=OPS)
    assert [r.status_code for r in (by_member, by_staff, by_ops)] == [200, 200, 200]
    assert [r.json()["voucher_code"] for r in (by_member, by_staff, by_ops)] == [CODE, None, CODE]
    assert by_staff.json()["state"] == "fulfilled"

    assert (await orders.client.get(path, headers=staff("skymall"))).status_code == 403
    assert (await orders.client.get(path, headers=member_headers(BOB))).status_code == 403
    assert (await orders.client.get(f"/v1/orders/{uuid.uuid4()}", headers=staff("skyair"))).status_code == 404
