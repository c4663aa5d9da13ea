"""Hold commands as the redemption service sends them."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from contracts.events.holds import CaptureHold, HoldPoints, HoldRef, HoldRequest, ReleaseHold, ReleaseRequest
from tests.support.ledger import now


def hold(member: uuid.UUID, amount: int, *, partner: str = "skyair", ttl: timedelta = timedelta(minutes=30),
         hold_id: uuid.UUID | None = None) -> HoldPoints:  # fmt: skip
    hold_id = hold_id or uuid.uuid4()
    event_id = uuid.uuid4()
    return HoldPoints(
        event_id=event_id, occurred_at=now(), source="redemption", correlation_id=hold_id,
        payload=HoldRequest(hold_id=hold_id, member_id=member, order_id=hold_id, amount=amount, partner_id=partner,
                            expires_at=now() + ttl),
    )  # fmt: skip


def capture(request: HoldPoints, at: datetime | None = None) -> CaptureHold:
    p = request.payload
    return CaptureHold(
        event_id=uuid.uuid4(), occurred_at=at or now(), source="redemption", correlation_id=p.hold_id,
        payload=HoldRef(hold_id=p.hold_id, member_id=p.member_id, order_id=p.order_id),
    )  # fmt: skip


def release(request: HoldPoints, reason: str = "out_of_stock") -> ReleaseHold:
    p = request.payload
    return ReleaseHold(
        event_id=uuid.uuid4(), occurred_at=now(), source="redemption", correlation_id=p.hold_id,
        payload=ReleaseRequest(hold_id=p.hold_id, member_id=p.member_id, order_id=p.order_id, reason=reason),
    )  # fmt: skip
