"""The same event twice in one batch (a producer's retried publish) is applied once, by every handler.

Both copies pass the inbox claim together (it is one statement), so each handler keeps only the first
copy of each claimed event; the consumers drop copies before the handler too, and these tests call the
handlers directly so that the handler's own guard is what is proven.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from contracts.events.holds import HoldPoints, HoldRequest
from points.handlers.holds import HoldResults, apply_hold_commands
from points.handlers.ledger_events import LedgerEventWriter
from points.handlers.verify import verify_ledger
from tests.support.earn_batches import bought, ledger, refunded

pytestmark = pytest.mark.integration
Database = Callable[[str], Awaitable[str]]


async def test_a_refund_delivered_twice_in_one_batch_reverses_once(database: Database):
    dsn = await database("points")
    async with ledger(dsn) as books:
        member = await books.member("dup-1")
        await books.apply(bought("dup-1", "order-1", 10_000, 100))
        half = refunded("order-1", 5_000)
        outcome = await books.apply(half, half)
        assert outcome.counts.get("duplicate_delivery", 0) + outcome.counts.get("applied", 0) >= 1
        assert await books.posted(f"member:{member}") == 50
        earning = await books.row("SELECT refunded_minor, points_reversed FROM earnings")
        assert (earning["refunded_minor"], earning["points_reversed"]) == (5_000, 50)
    assert await verify_ledger(dsn) == []


async def test_a_purchase_delivered_twice_in_one_batch_earns_once(database: Database):
    dsn = await database("points")
    async with ledger(dsn) as books:
        member = await books.member("dup-2")
        twice = bought("dup-2", "order-2", 7_000, 70)
        await books.apply(twice, twice)
        assert await books.posted(f"member:{member}") == 70
    assert await verify_ledger(dsn) == []


async def test_a_hold_command_delivered_twice_in_one_batch_holds_once(database: Database):
    dsn = await database("points")
    async with ledger(dsn) as books:
        member = await books.member("dup-3")
        await books.apply(bought("dup-3", "order-3", 50_000, 500))
        order = uuid.uuid4()
        command = HoldPoints(
            event_id=uuid.uuid4(), occurred_at=datetime.now(UTC), source="redemption", correlation_id=order,
            payload=HoldRequest(hold_id=uuid.uuid4(), member_id=member, order_id=order, amount=200,
                                partner_id="skymall", expires_at=datetime.now(UTC) + timedelta(minutes=30)),
        )  # fmt: skip
        results = HoldResults("test.")
        applied = await apply_hold_commands(
            books.store, "test.hold-commands", [command, command], LedgerEventWriter("test."), results
        )
        assert applied == 1
        assert len(results.messages) == 1  # one PointsHeld, not two
        pending = await books.row("SELECT debits_pending FROM accounts WHERE account_id = $1", f"member:{member}")
        assert pending["debits_pending"] == 200
    assert await verify_ledger(dsn) == []
