"""Shared accounts (a partner's issued account) are held for a commit, not for a whole batch.

Two consumers (the partner and the card topics, or two points processes) post from the same
issuer account all the time. A batch locks the accounts whose balance decides something (a
member's, an unclaimed identifier's) while it works, and adds its changes to the shared ones as
its last statement, so batches of other members do not queue behind it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from points.adapters.store import PointsStore, Transaction
from points.domain.ledger import BREAKAGE, Book, LedgerError
from points.handlers.verify import verify_ledger
from tests.support.earn_batches import points_store

pytestmark = pytest.mark.integration
Database = Callable[[str], Awaitable[str]]
ISSUER = "partner:skymall:issued"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


async def earn(tx: Transaction, holder: str, points: int, *, credit_only: bool = False) -> None:
    """Credit `holder` from the shared issuer account, as an earn batch does (an unclaimed holder's identifier too);
    `credit_only`: read the holder without its lock, as an earn batch does a holder it only credits."""
    if holder.startswith("unclaimed:"):
        await tx.lock_identifiers([holder.removeprefix("unclaimed:")])
    await tx.ensure_accounts([holder, ISSUER])
    book = Book(await tx.lock_accounts([holder, ISSUER], credit_only=[holder] if credit_only else []))
    book.transfer(
        transfer_id=uuid.uuid4(), debit=ISSUER, credit=holder, amount=points, reason="partner_purchase",
        cause_event_id=uuid.uuid4(), occurred_at=NOW, lot_expires_at=NOW + timedelta(days=365),
    )  # fmt: skip
    await tx.write(book.changes(), NOW)


@pytest.fixture
async def store(database: Database):
    dsn = await database("points")
    async with points_store(dsn, 3) as points:
        yield points, dsn


async def balances(store: PointsStore, *accounts: str) -> dict[str, int]:
    rows = await store.pool.fetch(
        "SELECT account_id, credits_posted - debits_posted AS posted FROM accounts WHERE account_id = ANY($1)",
        list(accounts),
    )
    return {r["account_id"]: r["posted"] for r in rows}


async def test_a_batch_in_progress_does_not_hold_the_issuer_account_it_shares(store):
    points, dsn = store
    async with points.transaction() as tx:  # the issuer exists from its first purchase on
        await tx.ensure_accounts([ISSUER])
    first_at_work, release_first = asyncio.Event(), asyncio.Event()

    async def long_batch() -> None:
        async with points.transaction() as tx:
            await earn(tx, "unclaimed:partner:skymall:ada", 100)
            first_at_work.set()
            await release_first.wait()

    async def other_batch(holder: str, amount: int) -> None:
        async with points.transaction() as tx:
            await earn(tx, holder, amount)

    first = asyncio.create_task(long_batch())
    same_holder: asyncio.Task[None] | None = None
    try:
        await asyncio.wait_for(first_at_work.wait(), 10)
        # Another member's batch on the same issuer commits while the first one is still at work.
        await asyncio.wait_for(other_batch("unclaimed:partner:skymall:bob", 30), 10)
        # A batch for the first batch's own holder waits for it: that account's balance decides overdrafts.
        same_holder = asyncio.create_task(other_batch("unclaimed:partner:skymall:ada", 7))
        done, _ = await asyncio.wait({same_holder}, timeout=0.5)
        assert not done, "a batch must wait for the holder account another batch locked"
    finally:
        release_first.set()
        await asyncio.wait_for(asyncio.gather(first, *([same_holder] if same_holder else [])), 10)

    assert await balances(points, ISSUER, "unclaimed:partner:skymall:ada", "unclaimed:partner:skymall:bob") == {
        ISSUER: -137,
        "unclaimed:partner:skymall:ada": 107,
        "unclaimed:partner:skymall:bob": 30,
    }
    assert await verify_ledger(dsn) == []


async def test_concurrent_batches_on_the_same_issuers_add_up_and_never_deadlock(store):
    points, dsn = store
    issuers = [ISSUER, "card:issued", "partner:travelco:issued"]

    async def batch(n: int) -> None:
        holder = f"unclaimed:card:tok_{n:04d}"
        async with points.transaction() as tx:
            # Every batch touches all three shared accounts, in an order of its own.
            order = issuers[n % 3 :] + issuers[: n % 3]
            await tx.lock_identifiers([holder.removeprefix("unclaimed:")])
            await tx.ensure_accounts([holder, *order])
            book = Book(await tx.lock_accounts([holder, *order]))
            for issuer in order:
                book.transfer(
                    transfer_id=uuid.uuid4(), debit=issuer, credit=holder, amount=1 + n % 5, reason="card_purchase",
                    cause_event_id=uuid.uuid4(), occurred_at=NOW, lot_expires_at=NOW + timedelta(days=365),
                )  # fmt: skip
            await tx.write(book.changes(), NOW)

    await asyncio.wait_for(asyncio.gather(*(batch(n) for n in range(60))), 60)

    expected = -sum(1 + n % 5 for n in range(60))
    assert await balances(points, *issuers) == {issuer: expected for issuer in issuers}
    assert await verify_ledger(dsn) == []


async def spend(tx: Transaction, holder: str, points: int, *, read_as_credit_only: bool = False) -> None:
    """Debit `holder` to breakage, as an expiry would: its account locked (unless `read_as_credit_only`, a bug that
    `Transaction.write` refuses), its lots loaded."""
    await tx.ensure_accounts([holder, BREAKAGE])
    credit_only = [holder] if read_as_credit_only else []
    book = Book(await tx.lock_accounts([holder, BREAKAGE], credit_only=credit_only), await tx.live_lots([holder]))
    book.mark_lots_loaded([holder])
    book.transfer(
        transfer_id=uuid.uuid4(), debit=holder, credit=BREAKAGE, amount=points, reason="expiry",
        cause_event_id=uuid.uuid4(), occurred_at=NOW,
    )  # fmt: skip
    await tx.write(book.changes(), NOW)


async def test_a_holder_read_as_only_credited_is_not_locked_and_its_credits_add_up_with_a_debit_meanwhile(store):
    """Two earn batches credit one holder while a third transaction debits it: none waits for the open batch."""
    points, dsn = store
    holder = "unclaimed:partner:skymall:eve"
    async with points.transaction() as tx:
        await earn(tx, holder, 100)
    first_at_work, release_first = asyncio.Event(), asyncio.Event()

    async def open_batch() -> None:
        async with points.transaction() as tx:
            await earn(tx, holder, 10, credit_only=True)
            first_at_work.set()
            await release_first.wait()

    first = asyncio.create_task(open_batch())
    try:
        await asyncio.wait_for(first_at_work.wait(), 10)
        async with points.transaction() as tx:
            await asyncio.wait_for(earn(tx, holder, 20, credit_only=True), 5)
        async with points.transaction() as tx:
            await asyncio.wait_for(spend(tx, holder, 50), 5)
    finally:
        release_first.set()
        await asyncio.wait_for(first, 10)

    assert await balances(points, holder) == {holder: 100 + 10 + 20 - 50}
    assert await verify_ledger(dsn) == []


async def test_a_transaction_that_debits_a_holder_it_read_as_only_credited_is_refused_and_rolled_back(store):
    points, dsn = store
    holder = "unclaimed:partner:skymall:mallory"
    async with points.transaction() as tx:
        await earn(tx, holder, 100)

    async def debit_unlocked() -> None:
        async with points.transaction() as tx:
            await spend(tx, holder, 30, read_as_credit_only=True)

    with pytest.raises(LedgerError, match="read without its lock"):
        await debit_unlocked()

    assert await balances(points, holder) == {holder: 100}, "nothing of the refused transaction stays"
    assert await verify_ledger(dsn) == []
