"""Each earn contract version leaves once for loyalty.partner-contracts.v1, keyed by its partner."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Protocol

from contracts.events.liability import EarnContractVersionAdded, EarnContractVersionPayload, contract_event_id
from contracts.topics import PARTNER_CONTRACTS
from loyalty_runtime.outbox import OutboxMessage
from loyalty_runtime.telemetry import inject_context

SOURCE = "partners"
BATCH = 500


@dataclass(frozen=True)
class UnpublishedVersion:
    partner_id: str
    valid_from: date
    currency: str
    issue_price_minor_per_point: Decimal
    redemption_price_minor_per_point: Decimal
    created_at: datetime


"""A version of a partner's earn contract whose event has not left yet."""


class Publications(Protocol):
    async def publish(
        self, limit: int, messages: Callable[[Sequence[UnpublishedVersion]], Sequence[OutboxMessage]]
    ) -> int: ...


class ContractEvents:
    def __init__(self, topic_prefix: str) -> None:
        self.topic = PARTNER_CONTRACTS.qualified(topic_prefix)

    def event(self, version: UnpublishedVersion) -> EarnContractVersionAdded:
        """The same version, the same event (its id derives from partner and valid_from)."""
        event_id = contract_event_id(version.partner_id, version.valid_from)
        payload = EarnContractVersionPayload(
            partner_id=version.partner_id,
            valid_from=version.valid_from,
            currency=version.currency,
            issue_price_minor_per_point=version.issue_price_minor_per_point,
            redemption_price_minor_per_point=version.redemption_price_minor_per_point,
        )
        return EarnContractVersionAdded(
            event_id=event_id, occurred_at=version.created_at, source=SOURCE, correlation_id=event_id, payload=payload
        )

    def messages(self, versions: Sequence[UnpublishedVersion]) -> list[OutboxMessage]:
        out = []
        for version in versions:
            event = self.event(version)
            headers = inject_context({"type": event.type})
            out.append(OutboxMessage(self.topic, version.partner_id, event.model_dump_json().encode(), headers))
        return out


async def publish_contract_versions(publications: Publications, events: ContractEvents) -> int:
    """Every version not yet published, in batches; the number published."""
    total = 0
    while published := await publications.publish(BATCH, events.messages):
        total += published
    return total
