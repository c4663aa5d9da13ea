"""Recording ledger transfers for settlement, on the real database: once each, with a watermark that only grows."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest

from loyalty_runtime import db
from partners.adapters.settlement_store import SettlementStore
from partners.adapters.store import PartnerStore
from partners.domain.earn import EarnContract
from partners.domain.settlement import DailyPoints, LedgerTransfer, Measure, PartitionPosition, month_period
from partners.handlers.settlement import ReceivedTransfer, finalise, record_ledger_transfers, statements_of_all

pytestmark = pytest.mark.integration

TOPIC = "loyalty.ledger-transfers.v1"
SEPTEMBER = month_period("2026-09")
MEMBER = f"member:{uuid.uuid4()}"


@pytest.fixture
async def pool(database) -> AsyncIterator[asyncpg.Pool]:
    created = await db.create_pool(await database("partners"), min_size=1, max_size=4)
    yield created
    await created.close()


def received(amount: int, at: str, *, event_id: uuid.UUID | None = None, transfer_id: uuid.UUID | None = None):
    transfer = LedgerTransfer(
        transfer_id or uuid.uuid4(),
        event_id or uuid.uuid4(),
        "partner:skymall:issued",
        MEMBER,
        amount,
        "partner_purchase",
        datetime.fromisoformat(at),
    )
    return ReceivedTransfer.of(transfer.event_id, transfer)


class FixedEnds:
    def __init__(self, ends: dict[int, int]) -> None:
        self.ends = ends

    async def end_offsets(self) -> dict[int, int]:
        return self.ends


async def test_one_event_twice_or_one_transfer_in_two_events_counts_once_even_in_one_batch(pool):
    store = SettlementStore(lambda: pool)
    first = received(100, "2026-09-03T10:00:00+00:00")
    again = ReceivedTransfer(first.event_id, first.transfer, first.entries)
    other_event = ReceivedTransfer(uuid.uuid4(), first.transfer, first.entries)
    second = received(40, "2026-09-04T10:00:00+00:00")
    positions = [PartitionPosition(0, 4, second.transfer.posted_at)]

    outcome = await record_ledger_transfers(store, TOPIC, [first, again, other_event, second], positions)
    assert (outcome.fresh_events, outcome.stored_transfers) == (3, 2)
    redelivered = await record_ledger_transfers(store, TOPIC, [first, again, other_event, second], positions)
    assert (redelivered.fresh_events, redelivered.stored_transfers) == (0, 0)

    assert sorted(await store.daily_points(SEPTEMBER), key=lambda d: d.day) == [
        DailyPoints("skymall", Measure.ISSUED, date(2026, 9, 3), 100),
        DailyPoints("skymall", Measure.ISSUED, date(2026, 9, 4), 40),
    ]


async def test_the_watermark_never_moves_back(pool):
    store = SettlementStore(lambda: pool)
    late = datetime(2026, 10, 2, tzinfo=UTC)
    await record_ledger_transfers(store, TOPIC, [], [PartitionPosition(3, 10, late), PartitionPosition(1, 2, None)])
    await record_ledger_transfers(store, TOPIC, [], [PartitionPosition(3, 7, late - timedelta(days=9))])
    positions = await store.positions(TOPIC)
    assert positions == {1: PartitionPosition(1, 2, None), 3: PartitionPosition(3, 10, late)}
    assert await store.positions("another.topic") == {}


async def test_a_transfer_arriving_after_its_month_was_finalised_leaves_the_statement_as_it_was(pool):
    store, registry = SettlementStore(lambda: pool), PartnerStore(lambda: pool)
    terms = EarnContract("skymall", date(2020, 1, 1), "CNY", Decimal(1), Decimal("0.5"), Decimal("0.4"))
    await registry.create_partner("skymall", "Sky Mall", terms, "pk_" + "a" * 24)
    await record_ledger_transfers(
        store, TOPIC, [received(100, "2026-09-03T10:00:00+00:00")], [PartitionPosition(0, 1, None)]
    )
    now = datetime(2026, 11, 20, tzinfo=UTC)
    settled, created = await finalise(
        store, registry, FixedEnds({0: 1}), TOPIC, SEPTEMBER, now, timedelta(minutes=5), force=True, by="ops-1"
    )
    assert created
    assert [(s.partner_id, s.points_issued, s.totals[0].net_minor) for s in settled.statements] == [
        ("skymall", 100, -50)
    ]

    outcome = await record_ledger_transfers(
        store, TOPIC, [received(7, "2026-09-30T23:00:00+00:00")], [PartitionPosition(0, 2, None)]
    )
    assert (outcome.stored_transfers, outcome.late_for) == (1, ("2026-09",))
    stored = await statements_of_all(store, registry, SEPTEMBER)
    assert stored.final
    assert [s.points_issued for s in stored.statements] == [100]


async def test_a_month_is_refused_while_the_consumer_is_behind_and_nothing_is_stored(pool):
    store, registry = SettlementStore(lambda: pool), PartnerStore(lambda: pool)
    horizon = SEPTEMBER.end + timedelta(minutes=5)
    await record_ledger_transfers(store, TOPIC, [], [PartitionPosition(0, 5, horizon), PartitionPosition(1, 3, None)])
    now = datetime(2026, 11, 20, tzinfo=UTC)
    args = (store, registry, FixedEnds({0: 9, 1: 4}), TOPIC, SEPTEMBER, now, timedelta(minutes=5))
    with pytest.raises(Exception, match=r"partition 1 \(read to offset 3 of 4\)"):
        await finalise(*args, force=False, by="ops-1")
    assert await store.finalised(SEPTEMBER) is None
    _, created = await finalise(*args[:3], TOPIC, SEPTEMBER, now, timedelta(minutes=5), force=True, by="ops-1")
    assert created
