"""Exchanges out to a partner's programme (points exchange): the points service asks, the partner decides once.

The points service holds a member's alliance points and asks the partner to credit its own units (miles) to
the member's membership number (`ExchangeRequested`). The partner confirms, with its own reference of the
credit, or refuses, with a reason; either decision is final. A second decision, a decision after the first,
or one after the hold expired changes nothing and is answered 409 with a `reason`
(already_confirmed, already_refused, expired). The points service then captures or releases the hold and
says so (`ExchangeSettled`); a hold nobody decided expires there on its own.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from partners.domain.errors import PartnersError


class ExchangeStatus(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    REFUSED = "refused"
    EXPIRED = "expired"
    """Never stored: a pending exchange past its hold's expiry."""


class Decision(StrEnum):
    CONFIRM = "confirm"
    REFUSE = "refuse"


class ExchangeNotFoundError(PartnersError):
    reason = "unknown_exchange"

    def __init__(self, partner_id: str, exchange_id: uuid.UUID) -> None:
        super().__init__(f"partner {partner_id!r} has no exchange {exchange_id}; list them with GET .../exchanges")


class DecisionConflictError(PartnersError):
    """The exchange was decided already, or its hold expired: nothing changes."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class ExchangeRequest:
    exchange_id: uuid.UUID
    partner_id: str
    member_id: uuid.UUID
    membership_number: str
    points: int
    units: int
    units_name: str
    units_per_point: Decimal
    requested_at: datetime
    expires_at: datetime
    status: ExchangeStatus = ExchangeStatus.PENDING
    partner_reference: str | None = None
    refuse_reason: str | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    settled: str | None = None
    """What the ledger did: captured, released (null until it says)."""
    settled_reason: str | None = None

    def status_at(self, now: datetime) -> ExchangeStatus:
        if self.status is ExchangeStatus.PENDING and now >= self.expires_at:
            return ExchangeStatus.EXPIRED
        return self.status


def decide(request: ExchangeRequest, decision: Decision, now: datetime) -> ExchangeStatus:
    """The status the decision leads to; raises DecisionConflictError when it would change a decided exchange."""
    current = request.status_at(now)
    if current is ExchangeStatus.CONFIRMED:
        raise DecisionConflictError(
            "already_confirmed", f"exchange {request.exchange_id} was confirmed already ({request.partner_reference})"
        )
    if current is ExchangeStatus.REFUSED:
        raise DecisionConflictError(
            "already_refused", f"exchange {request.exchange_id} was refused already ({request.refuse_reason})"
        )
    if current is ExchangeStatus.EXPIRED:
        raise DecisionConflictError(
            "expired",
            f"exchange {request.exchange_id} expired at {request.expires_at.isoformat()}; its points "
            "went back to the member, so credit nothing",
        )
    return ExchangeStatus.CONFIRMED if decision is Decision.CONFIRM else ExchangeStatus.REFUSED
