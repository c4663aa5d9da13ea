"""Settlement: record the ledger's transfers, read statements, finalise a month."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from partners.adapters.settlement_store import FinalisedRun, SettlementStore
from partners.adapters.webhooks_store import enqueue_messages
from partners.domain.earn import EarnContract
from partners.domain.registry import UnknownPartnerError
from partners.domain.settlement import (
    DailyPoints,
    Entry,
    LedgerTransfer,
    PartitionPosition,
    Period,
    Statement,
    Watermark,
    check_finalisable,
    contracts_in_force,
    entries_of,
    gifted_points,
    partners_with_points,
    statement_for,
)
from partners.handlers.webhooks import statement_messages

log = logging.getLogger(__name__)


class ContractSource(Protocol):
    async def contracts_of(self, partner_id: str) -> Sequence[EarnContract]: ...


class TopicEnds(Protocol):
    async def end_offsets(self) -> dict[int, int]: ...


@dataclass(frozen=True)
class ReceivedTransfer:
    event_id: uuid.UUID
    transfer: LedgerTransfer
    entries: tuple[Entry, ...]

    @classmethod
    def of(cls, event_id: uuid.UUID, transfer: LedgerTransfer) -> ReceivedTransfer:
        """Raises UnsettleableTransferError when the transfer names a partner account settlement cannot read."""
        return cls(event_id, transfer, entries_of(transfer))


@dataclass(frozen=True)
class RecordOutcome:
    fresh_events: int
    stored_transfers: int
    late_for: tuple[str, ...] = ()
    """Finalised months that a newly stored transfer belongs to: reconciliation will report them."""


async def record_ledger_transfers(
    store: SettlementStore,
    topic: str,
    received: Sequence[ReceivedTransfer],
    positions: Sequence[PartitionPosition],
) -> RecordOutcome:
    """One transaction per batch: inbox claim, the transfers settlement needs with their entries, the watermark."""
    # A batch may carry one event twice, or one transfer in two events: each counts once.
    by_event = {r.event_id: r for r in reversed(received)}
    async with store.transaction() as tx:
        fresh = await tx.claim_inbox(topic, list(by_event)) if by_event else set()
        by_transfer = {r.transfer.transfer_id: r for r in reversed(received) if r.event_id in fresh and r.entries}
        relevant = [(r.transfer, r.entries) for r in by_transfer.values()]
        stored = await tx.save_transfers(relevant)
        late: list[str] = []
        if relevant:
            posted = [t.posted_at for t, _ in relevant]
            late = await tx.finalised_periods_between(min(posted), max(posted))
        await tx.advance(topic, positions)
    if late:
        # Not an error of this batch: the statements stay as finalised, and `make verify` reports the gap.
        log.warning("transfers arrived for finalised months", extra={"periods": late, "topic": topic})
    return RecordOutcome(len(fresh), stored, tuple(late))


@dataclass(frozen=True)
class Settlement:
    """The statements of a period: finalised (stored, immutable) or provisional (computed now from what arrived)."""

    period: Period
    statements: tuple[Statement, ...]
    gifted_points: int
    run: FinalisedRun | None = None

    @property
    def final(self) -> bool:
        return self.run is not None


async def statement_of(
    store: SettlementStore, contracts: ContractSource, period: Period, partner_id: str
) -> Settlement:
    """One partner's statement: the finalised one if the month is finalised, else computed now."""
    run = await store.finalised(period, partner_id)
    if run is not None:
        if not run.statements:  # the partner's contract started after the month: nothing to settle
            await _known_partner(contracts, partner_id)
            return Settlement(period, (Statement(partner_id, period, ()),), run.gifted_points, run)
        return Settlement(period, run.statements, run.gifted_points, run)
    terms = await _known_partner(contracts, partner_id)
    daily = await store.daily_points(period, partner_id)
    return Settlement(period, (statement_for(partner_id, period, daily, terms),), 0)


async def statements_of_all(store: SettlementStore, contracts: ContractSource, period: Period) -> Settlement:
    run = await store.finalised(period)
    if run is not None:
        return Settlement(period, run.statements, run.gifted_points, run)
    daily = await store.daily_points(period)
    return await _compute(contracts, period, daily, await store.partner_ids())


async def finalise(
    store: SettlementStore,
    contracts: ContractSource,
    ends: TopicEnds,
    topic: str,
    period: Period,
    now: datetime,
    margin: timedelta,
    *,
    force: bool,
    by: str,
) -> tuple[Settlement, bool]:
    """Store the month's statements once; a later call answers the stored ones. True when stored now."""
    stored = await store.finalised(period)
    if stored is not None:
        return Settlement(period, stored.statements, stored.gifted_points, stored), False
    # Positions before end offsets: a position read later can only be further on (see check_finalisable).
    positions = await store.positions(topic)
    watermark = Watermark(now, positions, await ends.end_offsets(), margin)
    check_finalisable(period, watermark, force=force)
    async with store.transaction() as tx:
        daily = await tx.daily_points(period)
        computed = await _compute(contracts, period, daily, await tx.partner_ids())
        evidence = {**watermark.evidence(), "forced": force}
        created = await tx.insert_run(period, computed.gifted_points, force, evidence, by, computed.statements)
        if created:  # the partners' statement.finalised webhooks, in the run's own transaction
            await enqueue_messages(tx.conn, statement_messages(computed.statements, now), now)
    run = await store.finalised(period)
    assert run is not None, "the month was finalised in this call or by a concurrent one"
    if created:
        log.info("settlement finalised", extra={"period": period.label, "partners": len(run.statements)})
    return Settlement(period, run.statements, run.gifted_points, run), created


async def _compute(
    contracts: ContractSource,
    period: Period,
    daily: Sequence[DailyPoints],
    registered: Sequence[str],
) -> Settlement:
    """A statement for every partner whose contract was in force during the period or who has points in it."""
    by_partner: dict[str | None, list[DailyPoints]] = {}
    for item in daily:
        by_partner.setdefault(item.partner_id, []).append(item)
    with_points = partners_with_points(daily)
    statements: list[Statement] = []
    for partner_id in sorted(set(registered) | with_points):
        terms = await contracts.contracts_of(partner_id)
        if partner_id in with_points or contracts_in_force(terms, period):
            statements.append(statement_for(partner_id, period, by_partner.get(partner_id, []), terms))
    return Settlement(period, tuple(statements), gifted_points(daily))


async def _known_partner(contracts: ContractSource, partner_id: str) -> Sequence[EarnContract]:
    terms = await contracts.contracts_of(partner_id)
    if not terms:  # every registered partner has a contract: none means no such partner
        raise UnknownPartnerError(partner_id)
    return terms
