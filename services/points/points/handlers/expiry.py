"""Move expired lots to breakage, a bounded number of accounts per short transaction.

Each transaction locks the accounts of the next due lots in id order (as the earn path does), reads their
due lots, lets the domain decide what each gives to breakage (what a hold reserves stays), and writes it
set-based (adapters/expiry_store.py); breakage, shared by every transaction, is locked only by its last
statement (`Transaction.apply_shared_deltas`). So an earn batch for one of those members waits at most
for one short transaction, and a second run at the same time waits on the same locks, then finds
nothing left to expire in them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from loyalty_runtime.telemetry import inject_context
from points.adapters.expiry_store import ExpiryEvents, due_accounts, due_lots, write_expiry
from points.adapters.store import PointsStore, Transaction
from points.domain.ledger import BREAKAGE, Changes, Transfer
from points.domain.lifecycle import expiry_amounts, expiry_transfer
from points.handlers.ledger_audit import audit_ops_move
from points.handlers.ledger_events import LedgerEventWriter, debited_event_id, posted_event_id

LOTS_PER_TRANSACTION = 1_000
"""About how many due lots one transaction takes (whole accounts, with all their due lots): what bounds how long
it holds its members' accounts, which their earn batches wait for."""
WORKERS = 2
"""Transactions at work at once, each on its own connection and its own accounts (a hash of the account id):
while one waits for the database, the next one is prepared."""


@dataclass
class ExpiryOutcome:
    lots: int = 0
    points: int = 0


async def run_expiry(store: PointsStore, events: LedgerEventWriter, as_of: datetime) -> ExpiryOutcome:
    """Expire every lot due by `as_of`, transaction after transaction, until none is left but reserved ones."""
    outcomes = await asyncio.gather(*(_expire_share(store, events, as_of, (k, WORKERS)) for k in range(WORKERS)))
    return ExpiryOutcome(sum(o.lots for o in outcomes), sum(o.points for o in outcomes))


async def _expire_share(
    store: PointsStore, events: LedgerEventWriter, as_of: datetime, worker: tuple[int, int]
) -> ExpiryOutcome:
    outcome = ExpiryOutcome()
    reserved: set[str] = set()
    """Accounts whose due lots holds still reserve: this run leaves them, a later one takes what holds release."""
    while True:
        async with store.transaction() as tx:
            accounts = await due_accounts(tx.conn, as_of, LOTS_PER_TRANSACTION, sorted(reserved), worker)
            if not accounts:
                return outcome
            made, left = await expire_accounts(tx, events, accounts, as_of)
        reserved |= left
        outcome.lots += len(made)
        outcome.points += sum(t.amount for t in made)


async def expire_accounts(
    tx: Transaction, events: LedgerEventWriter, accounts: list[str], as_of: datetime
) -> tuple[list[Transfer], set[str]]:
    """Expire the due lots of `accounts` in `tx`; returns the transfers and the accounts left with reserved lots."""
    available = {a.account_id: a.available for a in await tx.lock_accounts(accounts)}
    due = await due_lots(tx.conn, accounts, as_of)
    taken = expiry_amounts(available, due)
    made = [expiry_transfer(lot, amount) for lot, amount in taken]
    fully = {lot.lot_id for lot, amount in taken if amount == lot.remaining}
    left = {lot.account_id for lot in due if lot.lot_id not in fully}
    if made:
        posted_at = datetime.now(UTC)
        points = sum(t.amount for t in made)
        await write_expiry(tx.conn, made, posted_at, _events_of(events, made, posted_at))
        # Breakage is shared: its total joins the transaction's last statement (apply_shared_deltas).
        await tx.write(Changes([], [], {}, [], {BREAKAGE: (0, points, 0, 0)}), posted_at)
        await audit_ops_move(tx, Changes(made, [], {}, [], {}))
    return made, left


def _events_of(events: LedgerEventWriter, made: list[Transfer], posted_at: datetime) -> ExpiryEvents:
    """The ids and topics of the ledger events that report `made`, as LedgerEventWriter.for_transfers names them."""
    return ExpiryEvents(
        posted_ids=[posted_event_id(t.transfer_id) for t in made],
        debited_ids=[debited_event_id(t.transfer_id) for t in made],
        posted_at=orjson.dumps(posted_at).decode().strip('"'),
        transfers_topic=events.transfers_topic,
        events_topic=events.topic,
        headers=inject_context({}),
    )
