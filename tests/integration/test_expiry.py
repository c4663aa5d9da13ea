"""The expiry run against PostgreSQL: what it takes, what holds keep, reruns, concurrent runs, and its locks.

A run expires in short transactions, each locking the accounts of the next due lots in id order; the
member accounts of a transaction are its only long locks (breakage, shared, is locked by its last
statement), and a second run at the same time waits on the same accounts, then finds nothing left.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson
import pytest

from points.adapters.store import PointsStore
from points.domain.holds import Hold
from points.domain.ledger import BREAKAGE, Book, Transfer, member_account, transfer_id
from points.handlers import expiry
from points.handlers.expiry import ExpiryOutcome, run_expiry
from points.handlers.ledger_events import LedgerEventWriter
from points.handlers.verify import verify_ledger
from tests.support.earn_batches import points_store

pytestmark = pytest.mark.integration
Database = Callable[[str], Awaitable[str]]
ISSUER = "partner:skymall:issued"
REDEEMED = "partner:skymall:redeemed"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
EVENTS = LedgerEventWriter("test.")


@pytest.fixture
async def store(database: Database):
    dsn = await database("points")
    async with points_store(dsn, 4) as points:
        yield points, dsn


async def member_with(
    points: PointsStore, lots: list[tuple[int, int]], *, spent: int = 0, held: int = 0
) -> tuple[str, list[uuid.UUID]]:
    """A member with lots of (points, days from NOW to their expiry), `spent` of them redeemed, `held` on hold."""
    member = uuid.uuid4()
    account = member_account(member)
    async with points.transaction() as tx:
        await tx.create_member(member, "test", account)
        await tx.ensure_accounts([ISSUER, REDEEMED])
        book = Book(await tx.lock_accounts([account, ISSUER, REDEEMED]))
        book.mark_lots_loaded([account])
        made = [
            book.transfer(
                transfer_id=uuid.uuid4(), debit=ISSUER, credit=account, amount=amount, reason="partner_purchase",
                cause_event_id=uuid.uuid4(), occurred_at=NOW - timedelta(days=800 - n),
                lot_expires_at=NOW + timedelta(days=days), lot_issuer=ISSUER,
            ).transfer_id
            for n, (amount, days) in enumerate(lots)
        ]  # fmt: skip
        if spent:
            book.transfer(
                transfer_id=uuid.uuid4(), debit=account, credit=REDEEMED, amount=spent, reason="redemption",
                cause_event_id=uuid.uuid4(), occurred_at=NOW - timedelta(days=10),
            )  # fmt: skip
        if held:
            book.reserve(account, REDEEMED, held)
            hold = Hold(uuid.uuid4(), member, uuid.uuid4(), account, REDEEMED, held, NOW + timedelta(days=1))
            await tx.insert_holds([hold])
        await tx.write(book.changes(), NOW - timedelta(days=1))
    return account, made


async def unclaimed_with(points: PointsStore, identifier: str, amount: int, days: int) -> str:
    """An identifier nobody linked yet, with one lot in its unclaimed account."""
    account = f"unclaimed:{identifier}"
    async with points.transaction() as tx:
        await tx.lock_identifiers([identifier])
        await tx.ensure_accounts([account, ISSUER])
        book = Book(await tx.lock_accounts([account, ISSUER]))
        book.transfer(
            transfer_id=uuid.uuid4(), debit=ISSUER, credit=account, amount=amount, reason="partner_purchase",
            cause_event_id=uuid.uuid4(), occurred_at=NOW - timedelta(days=800),
            lot_expires_at=NOW + timedelta(days=days, microseconds=250),
        )  # fmt: skip
        await tx.write(book.changes(), NOW - timedelta(days=1))
    return account


async def posted(points: PointsStore, account: str) -> int:
    return int(await points.pool.fetchval("SELECT credits_posted - debits_posted FROM accounts WHERE account_id = $1",
                                          account))  # fmt: skip


async def expiries(points: PointsStore) -> dict[uuid.UUID, tuple[str, int]]:
    rows = await points.pool.fetch("SELECT transfer_id, debit_account, amount FROM transfers WHERE reason = 'expiry'")
    return {r["transfer_id"]: (r["debit_account"], r["amount"]) for r in rows}


async def test_a_run_takes_what_is_left_of_each_due_lot_and_leaves_what_holds_reserve(store):
    points, dsn = store
    plain, (a1, a2, _) = await member_with(points, [(100, -3), (50, -1), (30, 30)])
    partly_spent, (b1,) = await member_with(points, [(60, -2)], spent=25)
    held, (c1, _) = await member_with(points, [(100, -2), (40, 30)], held=120)

    outcome = await run_expiry(points, EVENTS, NOW)

    assert outcome == ExpiryOutcome(lots=4, points=100 + 50 + 35 + 20)
    assert await expiries(points) == {
        transfer_id(a1, "expiry:0"): (plain, 100),
        transfer_id(a2, "expiry:0"): (plain, 50),
        transfer_id(b1, "expiry:25"): (partly_spent, 35),  # the leg is named by what was already taken
        transfer_id(c1, "expiry:0"): (held, 20),  # 120 of the 140 are held: only 20 were available
    }
    assert [await posted(points, a) for a in (plain, partly_spent, held)] == [30, 0, 120]
    assert await posted(points, BREAKAGE) == 205
    # Each expiry reports a TransferPosted and the member's PointsDebited.
    assert await points.pool.fetchval("SELECT count(*) FROM outbox") == 2 * 4
    assert await verify_ledger(dsn) == []


async def test_the_events_of_a_run_are_those_the_ledger_event_writer_makes_for_its_transfers(store, monkeypatch):
    points, dsn = store
    monkeypatch.setattr(expiry, "WORKERS", 1)  # one transaction after another: the outbox in their order
    await member_with(points, [(100, -3), (50, -1)])
    await member_with(points, [(60, -2)], spent=25)
    await unclaimed_with(points, "partner:skymall:nobody-yet", 40, -1)  # no member: no PointsDebited

    assert (await run_expiry(points, EVENTS, NOW)).lots == 4

    rows = await points.pool.fetch(
        "SELECT transfer_id, debit_account, credit_account, amount, reason, cause_event_id, occurred_at, memo,"
        " expires_at, posted_at FROM transfers WHERE reason = 'expiry' ORDER BY seq"
    )
    expected = [
        (m.topic, m.key, orjson.loads(m.payload), m.headers)
        for posted_at, group in itertools.groupby(rows, key=lambda r: r["posted_at"])
        for m in EVENTS.for_transfers(
            [Transfer(r["transfer_id"], r["debit_account"], r["credit_account"], r["amount"], r["reason"],
                      r["cause_event_id"], r["occurred_at"], orjson.loads(r["memo"]), r["expires_at"])
             for r in group],
            posted_at,
        )
    ]  # fmt: skip
    outbox = await points.pool.fetch("SELECT topic, key, payload, headers FROM outbox ORDER BY id")
    assert [(r["topic"], r["key"], orjson.loads(r["payload"]), orjson.loads(r["headers"])) for r in outbox] == expected
    assert len(expected) == 4 + 3
    assert await verify_ledger(dsn) == []


async def test_a_second_run_expires_nothing_more(store):
    points, dsn = store
    await member_with(points, [(100, -3), (50, -1)])
    await member_with(points, [(70, -1)], held=30)
    first = await run_expiry(points, EVENTS, NOW)

    assert first == ExpiryOutcome(lots=3, points=100 + 50 + 40)
    assert await run_expiry(points, EVENTS, NOW) == ExpiryOutcome()
    assert len(await expiries(points)) == 3
    assert await verify_ledger(dsn) == []


async def test_two_runs_at_once_expire_each_lot_once(store, monkeypatch):
    points, dsn = store
    monkeypatch.setattr(expiry, "LOTS_PER_TRANSACTION", 7)  # many short transactions that overlap
    accounts = [(await member_with(points, [(10, -3), (20, -2), (5, 10)]))[0] for _ in range(40)]

    runs = await asyncio.wait_for(asyncio.gather(*(run_expiry(points, EVENTS, NOW) for _ in range(2))), 60)

    assert sum(r.lots for r in runs) == 80
    assert sum(r.points for r in runs) == 40 * 30
    assert len(await expiries(points)) == 80
    assert {await posted(points, a) for a in accounts} == {5}
    assert await verify_ledger(dsn) == []


async def test_lots_that_holds_reserve_do_not_stop_the_run_from_the_ones_behind_them(store, monkeypatch):
    points, dsn = store
    monkeypatch.setattr(expiry, "LOTS_PER_TRANSACTION", 2)
    held = [(await member_with(points, [(50, -9)], held=50))[0] for _ in range(3)]  # the first due lots
    free = [(await member_with(points, [(10, -1)]))[0] for _ in range(5)]

    assert await run_expiry(points, EVENTS, NOW) == ExpiryOutcome(lots=5, points=50)
    assert [await posted(points, a) for a in held + free] == [50] * 3 + [0] * 5
    assert await verify_ledger(dsn) == []


async def test_a_transaction_of_the_run_locks_its_members_but_not_breakage_nor_other_members(store, monkeypatch):
    points, dsn = store
    expiring, _ = await member_with(points, [(10, -1)])
    other, _ = await member_with(points, [(10, 30)])
    writing, release = asyncio.Event(), asyncio.Event()
    write_expiry = expiry.write_expiry

    async def paused(*args: object) -> None:
        await write_expiry(*args)  # type: ignore[arg-type]
        writing.set()
        await release.wait()

    monkeypatch.setattr(expiry, "write_expiry", paused)
    run = asyncio.create_task(run_expiry(points, EVENTS, NOW))
    try:
        await asyncio.wait_for(writing.wait(), 10)
        async with points.pool.acquire() as conn, conn.transaction():
            lock = "SELECT 1 FROM accounts WHERE account_id = $1 FOR NO KEY UPDATE NOWAIT"
            await conn.execute("SET LOCAL lock_timeout = '1s'")
            assert await conn.fetchval(lock, BREAKAGE) == 1
            assert await conn.fetchval(lock, other) == 1
            with pytest.raises(asyncpg.LockNotAvailableError):
                await conn.fetchval(lock, expiring)
    finally:
        release.set()
        outcome = await asyncio.wait_for(run, 10)
    assert outcome == ExpiryOutcome(lots=1, points=10)
    assert await verify_ledger(dsn) == []
