"""FastStream subscribers: decode, call a handler. Offsets are committed after the handler's transaction."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Annotated, Any

import asyncpg
from aiokafka import ConsumerRecord
from faststream import Context
from faststream.kafka.message import KafkaMessage

from contracts.envelope import Event
from contracts.events.exchange import ExchangeRequested, ExchangeSettled
from contracts.events.ledger import TransferPosted
from contracts.topics import LEDGER_TRANSFERS, POINTS_EXCHANGES
from loyalty_runtime.consumer import BatchConsumer, Delivery
from loyalty_runtime.service import ServiceShell
from partners.adapters.exchanges_store import ExchangesStore
from partners.adapters.settlement_store import SettlementStore, SettlementTransaction
from partners.domain.settlement import LedgerTransfer, PartitionPosition, UnsettleableTransferError
from partners.handlers.exchanges import record_exchange_events
from partners.handlers.settlement import ReceivedTransfer, record_ledger_transfers
from partners.settings import Settings

log = logging.getLogger(__name__)


class LedgerTransfersConsumer(BatchConsumer[ReceivedTransfer]):
    """Consumes every posted ledger transfer in batches and keeps what settlement needs: one transaction per batch."""

    span_name = "settle"

    def __init__(self, shell: ServiceShell, settings: Settings, store: SettlementStore) -> None:
        super().__init__(shell, LEDGER_TRANSFERS, settings.consumer_group)
        self.store = store

    def prepare(self, event: Event) -> ReceivedTransfer:
        if not isinstance(event, TransferPosted):
            raise UnsettleableTransferError(f"settlement does not take {type(event).__name__} events")
        return ReceivedTransfer.of(event.event_id, to_transfer(event))

    async def apply(self, deliveries: Sequence[Delivery[ReceivedTransfer]]) -> None:
        # Every record read moves the watermark, whether it was settled, irrelevant or a duplicate.
        positions = partition_positions(
            [d.record for d in deliveries], [(d.record.partition, d.event) for d in deliveries]
        )
        outcome = await record_ledger_transfers(self.store, self.name, [d.item for d in deliveries], positions)
        log.debug(
            "ledger transfers recorded",
            extra={"topic": self.name, "fresh": outcome.fresh_events, "stored": outcome.stored_transfers},
        )

    async def skipped(self, conn: asyncpg.Connection, records: Sequence[ConsumerRecord[Any, Any]]) -> None:
        """A dead-lettered record was read too: the watermark moves past it."""
        await SettlementTransaction(conn).advance(self.name, partition_positions(records, []))


def to_transfer(event: TransferPosted) -> LedgerTransfer:
    p = event.payload
    return LedgerTransfer(
        transfer_id=p.transfer_id,
        event_id=event.event_id,
        debit_account=p.debit_account,
        credit_account=p.credit_account,
        amount=p.amount,
        reason=p.reason,
        posted_at=event.occurred_at,
        issuer_account=p.issuer_account,
    )


def partition_positions(
    records: Iterable[ConsumerRecord[Any, Any]], posted: Iterable[tuple[int, Event]]
) -> list[PartitionPosition]:
    """Per partition of the batch: the offset after the last record, and the newest posting time among its events."""
    next_offsets: dict[int, int] = {}
    for record in records:
        next_offsets[record.partition] = max(next_offsets.get(record.partition, 0), record.offset + 1)
    newest: dict[int, Any] = {}
    for partition, event in posted:
        if partition not in newest or event.occurred_at > newest[partition]:
            newest[partition] = event.occurred_at
    return [PartitionPosition(p, offset, newest.get(p)) for p, offset in sorted(next_offsets.items())]


def register(shell: ServiceShell, settings: Settings, store: SettlementStore) -> LedgerTransfersConsumer:
    transfers = LedgerTransfersConsumer(shell, settings, store)

    @shell.broker.subscriber(transfers.name, **transfers.subscriber_options())  # type: ignore[call-overload]
    async def on_ledger_transfers(
        batch: list[TransferPosted],
        message: Annotated[KafkaMessage, Context("message")],
    ) -> None:
        await transfers.consume(batch, message)

    return transfers


class ExchangesConsumer(BatchConsumer[Event]):
    """Exchanges the points service asked of partners, and what it did with their holds: one transaction per batch."""

    span_name = "record exchanges"

    def __init__(self, shell: ServiceShell, settings: Settings, store: ExchangesStore) -> None:
        super().__init__(shell, POINTS_EXCHANGES, settings.consumer_group)
        self.store = store

    async def apply(self, deliveries: Sequence[Delivery[Event]]) -> None:
        await record_exchange_events(self.store, self.name, [d.item for d in deliveries])


def register_exchanges(shell: ServiceShell, settings: Settings, store: ExchangesStore) -> None:
    exchanges = ExchangesConsumer(shell, settings, store)

    @shell.broker.subscriber(exchanges.name, **exchanges.subscriber_options())  # type: ignore[call-overload]
    async def on_points_exchanges(
        batch: list[ExchangeRequested | ExchangeSettled],
        message: Annotated[KafkaMessage, Context("message")],
    ) -> None:
        await exchanges.consume(batch, message)
