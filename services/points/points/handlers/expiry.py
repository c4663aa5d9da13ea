"""Move expired lots to breakage, a bounded number of accounts per transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from points.adapters.store import PointsStore
from points.domain.ledger import BREAKAGE, Book
from points.domain.lifecycle import expire
from points.handlers.ledger_events import LedgerEventWriter, post_changes

LOTS_PER_TRANSACTION = 1_000


@dataclass
class ExpiryOutcome:
    lots: int = 0
    points: int = 0


async def run_expiry(store: PointsStore, events: LedgerEventWriter, as_of: datetime) -> ExpiryOutcome:
    outcome = ExpiryOutcome()
    while True:
        async with store.transaction() as tx:
            accounts = await tx.due_lot_accounts(as_of, LOTS_PER_TRANSACTION)
            if not accounts:
                return outcome
            book = Book(await tx.lock_accounts([*accounts, BREAKAGE]), await tx.live_lots(accounts))
            book.mark_lots_loaded(accounts)
            made = expire(book, accounts, as_of)
            await post_changes(tx, book, events)
        if not made:  # what is still due is reserved by holds
            return outcome
        outcome.lots += len(made)
        outcome.points += sum(t.amount for t in made)
