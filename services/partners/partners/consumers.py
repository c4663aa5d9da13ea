"""FastStream subscribers: decode, call a handler. Offsets are committed after the handler's transaction."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Annotated, Any

from aiokafka import ConsumerRecord
from faststream import Context
from faststream.kafka.message import KafkaMessage

from contracts.envelope import Event
from contracts.events.ledger import TransferPosted
from contracts.topics import LEDGER_TRANSFERS
from loyalty_runtime.kafka import BatchConsumer, Rejected, accepted, rejected
from loyalty_runtime.service import ServiceShell
from loyalty_runtime.telemetry import message_spans
from partners.adapters.settlement_store import SettlementStore
from partners.domain.settlement import LedgerTransfer, PartitionPosition, UnsettleableTransferError
from partners.handlers.settlement import ReceivedTransfer, record_ledger_transfers
from partners.settings import Settings

log = logging.getLogger(__name__)


class LedgerTransfersConsumer(BatchConsumer):
    """Consumes every posted ledger transfer in batches and keeps what settlement needs: one transaction per batch."""

    def __init__(self, shell: ServiceShell, settings: Settings, store: SettlementStore) -> None:
        super().__init__(shell, LEDGER_TRANSFERS, settings.consumer_group)
        self.store = store

    async def consume(self, events: Sequence[Event], message: KafkaMessage) -> None:
        refused = rejected(message)
        origins = accepted(message)
        received: list[ReceivedTransfer] = []
        headers: list[dict[str, str]] = []
        for event, origin in zip(events, origins, strict=True):
            if not isinstance(event, TransferPosted):
                refused.append(Rejected(origin.record, f"settlement does not take {type(event).__name__} events"))
                continue
            try:
                received.append(ReceivedTransfer.of(event.event_id, to_transfer(event)))
                headers.append(origin.headers)
            except UnsettleableTransferError as error:
                refused.append(Rejected(origin.record, error.message))
        await self.dead_letter(refused)
        # Every record read moves the watermark, whether it was settled, irrelevant, a duplicate or refused.
        positions = partition_positions(
            [o.record for o in origins] + [r.record for r in refused],
            [(o.record.partition, e) for o, e in zip(origins, events, strict=True)],
        )
        with message_spans(self.shell.tracer, f"partners settle {LEDGER_TRANSFERS.name}", headers):
            outcome = await record_ledger_transfers(self.store, self.name, received, positions)
        log.debug(
            "ledger transfers recorded",
            extra={"topic": self.name, "fresh": outcome.fresh_events, "stored": outcome.stored_transfers},
        )


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
