"""Exchanges asked of partners: record what the points service asked and settled; the partner decides once."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from datetime import datetime

from contracts.envelope import Event
from contracts.events.exchange import (
    ExchangeConfirmed,
    ExchangeConfirmedPayload,
    ExchangeRefused,
    ExchangeRefusedPayload,
    ExchangeRequested,
    ExchangeSettled,
)
from contracts.topics import EXCHANGE_DECISIONS
from loyalty_runtime.outbox import OutboxMessage
from loyalty_runtime.telemetry import inject_context
from partners.adapters.exchanges_store import ExchangesStore, Settled
from partners.domain.exchanges import Decision, ExchangeNotFoundError, ExchangeRequest, ExchangeStatus, decide

SOURCE = "partners"
_DECISION_IDS = uuid.UUID("6c3f1a2e-7d59-4b8e-9f01-2a4b6c8d0e13")


async def record_exchange_events(store: ExchangesStore, topic: str, events: Sequence[Event]) -> int:
    """Each event once: requests stored (pending), settlements noted on their request."""
    async with store.transaction() as tx:
        fresh = await tx.claim_inbox(topic, [e.event_id for e in events])
        events = [e for e in {e.event_id: e for e in events}.values() if e.event_id in fresh]
        await tx.add_requests([_request(e) for e in events if isinstance(e, ExchangeRequested)])
        settled = [e for e in events if isinstance(e, ExchangeSettled)]
        await tx.record_settled(
            [Settled(e.payload.exchange_id, e.payload.outcome, e.payload.reason, e.occurred_at) for e in settled]
        )
    return len(events)


def _request(event: ExchangeRequested) -> ExchangeRequest:
    p = event.payload
    return ExchangeRequest(p.exchange_id, p.partner_id, p.member_id, p.membership_number, p.points, p.units,
                           p.units_name, p.units_per_point, event.occurred_at, p.expires_at)  # fmt: skip


async def decide_exchange(
    store: ExchangesStore, topic_prefix: str, partner_id: str, exchange_id: uuid.UUID, decision: Decision,
    said: str, by: str, now: datetime,
) -> ExchangeRequest:  # fmt: skip
    """Confirm (`said`: the partner's reference) or refuse (`said`: the reason) once, and tell the ledger.

    Raises ExchangeNotFoundError, or DecisionConflictError when it was decided already or expired."""
    async with store.transaction() as tx:
        request = await tx.lock(partner_id, exchange_id)
        if request is None:
            raise ExchangeNotFoundError(partner_id, exchange_id)
        status = decide(request, decision, now)
        confirmed = status is ExchangeStatus.CONFIRMED
        decided = dataclasses.replace(
            request, status=status, partner_reference=said if confirmed else None,
            refuse_reason=None if confirmed else said, decided_by=by, decided_at=now,
        )  # fmt: skip
        await tx.save_decision(decided)
        await tx.enqueue([_decision_message(topic_prefix, decided, now)])
    return decided


def _decision_message(prefix: str, d: ExchangeRequest, now: datetime) -> OutboxMessage:
    ref = {"exchange_id": d.exchange_id, "partner_id": d.partner_id, "member_id": d.member_id}
    common = {"event_id": uuid.uuid5(_DECISION_IDS, str(d.exchange_id)), "occurred_at": now, "source": SOURCE,
              "correlation_id": d.exchange_id}  # fmt: skip
    event: Event
    if d.status is ExchangeStatus.CONFIRMED:
        assert d.partner_reference is not None
        event = ExchangeConfirmed(
            **common, payload=ExchangeConfirmedPayload(**ref, partner_reference=d.partner_reference)
        )
    else:
        assert d.refuse_reason is not None
        event = ExchangeRefused(**common, payload=ExchangeRefusedPayload(**ref, reason=d.refuse_reason))
    topic = EXCHANGE_DECISIONS.qualified(prefix)
    return OutboxMessage(topic, str(d.member_id), event.model_dump_json().encode(), inject_context({}))
