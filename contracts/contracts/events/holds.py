"""Two-phase transfers for redemption: commands the redemption service sends, results the ledger answers.

A hold reserves points (a pending transfer from the member to the partner it is redeemed
with); a capture posts it, a release voids it; a hold nobody settles expires and is released.
"""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import Field

from contracts.envelope import Contract, Event, UtcDatetime
from contracts.ids import PartnerId


class HoldRef(Contract):
    hold_id: uuid.UUID = Field(description="Chosen by the requester; the same id always names the same hold.")
    member_id: uuid.UUID
    order_id: uuid.UUID


class HoldRequest(HoldRef):
    amount: int = Field(gt=0, le=10**9)
    partner_id: PartnerId = Field(description="The partner the points are redeemed with.")
    expires_at: UtcDatetime = Field(description="When the ledger releases the hold if nobody settled it.")


class ReleaseRequest(HoldRef):
    reason: str = Field(min_length=1, max_length=64)


class HoldPoints(Event):
    """Command: reserve points for an order."""

    type: Literal["HoldPoints"] = "HoldPoints"
    version: Literal[1] = 1
    payload: HoldRequest


class CaptureHold(Event):
    """Command: post a hold; the points leave the member for good."""

    type: Literal["CaptureHold"] = "CaptureHold"
    version: Literal[1] = 1
    payload: HoldRef


class ReleaseHold(Event):
    """Command: void a hold; the points are the member's again."""

    type: Literal["ReleaseHold"] = "ReleaseHold"
    version: Literal[1] = 1
    payload: ReleaseRequest


class HeldPayload(HoldRef):
    amount: int = Field(gt=0)
    expires_at: UtcDatetime


class RejectedPayload(HoldRef):
    reason: Literal["insufficient_points", "unknown_member", "hold_id_reused", "redemption_limit"] = Field(
        description="redemption_limit: the velocity rules allow the member no more redemptions today."
    )
    available: int = Field(ge=0, description="What the member had available when the hold was refused.")


class CapturedPayload(HoldRef):
    amount: int = Field(gt=0)
    transfer_id: uuid.UUID


class ReleasedPayload(HoldRef):
    amount: int = Field(gt=0)
    reason: str = Field(description="'released' on request, 'expired' when nobody settled it in time.")


class CaptureRefusedPayload(HoldRef):
    reason: Literal["hold_released", "hold_expired", "unknown_hold"]


class PointsHeld(Event):
    type: Literal["PointsHeld"] = "PointsHeld"
    version: Literal[1] = 1
    payload: HeldPayload


class HoldRejected(Event):
    type: Literal["HoldRejected"] = "HoldRejected"
    version: Literal[1] = 1
    payload: RejectedPayload


class HoldCaptured(Event):
    type: Literal["HoldCaptured"] = "HoldCaptured"
    version: Literal[1] = 1
    payload: CapturedPayload


class HoldReleased(Event):
    type: Literal["HoldReleased"] = "HoldReleased"
    version: Literal[1] = 1
    payload: ReleasedPayload


class HoldCaptureRefused(Event):
    """A capture came for a hold that was already released or expired; nothing moved."""

    type: Literal["HoldCaptureRefused"] = "HoldCaptureRefused"
    version: Literal[1] = 1
    payload: CaptureRefusedPayload
