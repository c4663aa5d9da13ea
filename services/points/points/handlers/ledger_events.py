"""The ledger events a committed transfer emits, written to the outbox in the same transaction."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping

from contracts.events.ledger import CreditPayload, LedgerMovement, PointsCredited, PointsDebited
from contracts.topics import LEDGER_EVENTS
from loyalty_runtime.telemetry import inject_context
from points.adapters.store import OutboxMessage
from points.domain.ledger import AccountKind, Transfer, kind_of, member_of, transfer_id

SOURCE = "points"


class LedgerEventWriter:
    def __init__(self, topic_prefix: str) -> None:
        self.topic = LEDGER_EVENTS.qualified(topic_prefix)

    @staticmethod
    def dead_letter_topic(topic: str) -> str:
        return f"{topic}.dlq"

    def for_transfers(
        self, transfers: Iterable[Transfer], correlations: Mapping[uuid.UUID, uuid.UUID] | None = None
    ) -> list[OutboxMessage]:
        """PointsCredited / PointsDebited for every transfer that touches a member's account."""
        headers = inject_context({})
        messages: list[OutboxMessage] = []
        for t in transfers:
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
