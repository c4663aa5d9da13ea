"""The ledger events a committed transfer emits, written to the outbox in the same transaction."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from contracts.events.ledger import (
    CreditPayload,
    LedgerMovement,
    PointsCredited,
    PointsDebited,
    TransferPayload,
    TransferPosted,
)
from contracts.topics import LEDGER_EVENTS, LEDGER_TRANSFERS
from loyalty_runtime.outbox import OutboxMessage
from loyalty_runtime.telemetry import inject_context
from points.adapters.store import Transaction
from points.domain.ledger import AccountKind, Book, Changes, Transfer, kind_of, member_of, transfer_id

SOURCE = "points"


class LedgerEventWriter:
    def __init__(self, topic_prefix: str) -> None:
        self.topic = LEDGER_EVENTS.qualified(topic_prefix)
        self.transfers_topic = LEDGER_TRANSFERS.qualified(topic_prefix)

    @staticmethod
    def dead_letter_topic(topic: str) -> str:
        return f"{topic}.dlq"

    def for_transfers(
        self,
        transfers: Iterable[Transfer],
        posted_at: datetime,
        correlations: Mapping[uuid.UUID, uuid.UUID] | None = None,
    ) -> list[OutboxMessage]:
        """TransferPosted for every transfer; PointsCredited / PointsDebited for those touching a member."""
        headers = inject_context({})
        messages: list[OutboxMessage] = []
        for t in transfers:
            correlation = (correlations or {}).get(t.cause_event_id, t.cause_event_id)
            posted = TransferPosted(
                event_id=transfer_id(t.transfer_id, "posted"),
                occurred_at=posted_at,
                source=SOURCE,
                correlation_id=correlation,
                causation_id=t.cause_event_id,
                payload=TransferPayload(
                    transfer_id=t.transfer_id, debit_account=t.debit_account, credit_account=t.credit_account,
                    amount=t.amount, reason=t.reason, cause_event_id=t.cause_event_id,
                    issuer_account=t.memo.get("issuer"),
                ),
            )  # fmt: skip
            messages.append(
                OutboxMessage(self.transfers_topic, settlement_key(t), posted.model_dump_json().encode(), headers)
            )
            correlation = (correlations or {}).get(t.cause_event_id, t.cause_event_id)
            common = {
                "occurred_at": t.occurred_at,
                "source": SOURCE,
                "correlation_id": correlation,
                "causation_id": t.cause_event_id,
            }
            if kind_of(t.credit_account) is AccountKind.MEMBER:
                member = member_of(t.credit_account)
                credited = PointsCredited(
                    event_id=transfer_id(t.transfer_id, "credited"),
                    payload=CreditPayload(
                        member_id=member, transfer_id=t.transfer_id, amount=t.amount,
                        counterparty_account=t.debit_account, reason=t.reason, cause_event_id=t.cause_event_id,
                        expires_at=t.expires_at,
                    ),
                    **common,  # type: ignore[arg-type]
                )  # fmt: skip
                messages.append(OutboxMessage(self.topic, str(member), credited.model_dump_json().encode(), headers))
            if kind_of(t.debit_account) is AccountKind.MEMBER:
                member = member_of(t.debit_account)
                debited = PointsDebited(
                    event_id=transfer_id(t.transfer_id, "debited"),
                    payload=LedgerMovement(
                        member_id=member, transfer_id=t.transfer_id, amount=t.amount,
                        counterparty_account=t.credit_account, reason=t.reason, cause_event_id=t.cause_event_id,
                    ),
                    **common,  # type: ignore[arg-type]
                )  # fmt: skip
                messages.append(OutboxMessage(self.topic, str(member), debited.model_dump_json().encode(), headers))
        return messages


def settlement_key(transfer: Transfer) -> str:
    """The partner a transfer concerns, so that one partner's transfers stay in order; 'ledger' if none."""
    for account in (transfer.debit_account, transfer.credit_account):
        if account.startswith("partner:"):
            return account.split(":")[1]
    return "ledger"


async def post_changes(
    tx: Transaction,
    book: Book,
    events: LedgerEventWriter,
    *,
    correlations: Mapping[uuid.UUID, uuid.UUID] | None = None,
    extra: Iterable[OutboxMessage] = (),
) -> Changes:
    """Write what `book` did and the events that report it, in the caller's transaction."""
    changes = book.changes()
    posted_at = datetime.now(UTC)
    await tx.write(changes, posted_at)
    await tx.enqueue([*events.for_transfers(changes.transfers, posted_at, correlations), *extra])
    return changes
