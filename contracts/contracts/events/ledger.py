"""Facts that the ledger publishes after it committed a transfer."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import Field

from contracts.envelope import Contract, Event, UtcDatetime


class LedgerMovement(Contract):
    member_id: uuid.UUID
    transfer_id: uuid.UUID = Field(description="Derived from the cause, so a replay never moves points twice.")
    amount: int = Field(gt=0, description="Points moved; always a positive integer.")
    counterparty_account: str = Field(description="The other side of the double entry, e.g. 'partner:skyair:issued'.")
    reason: str = Field(min_length=1, max_length=64, description="Why the points moved, e.g. 'partner_purchase'.")
    cause_event_id: uuid.UUID = Field(description="The event that caused this transfer.")


class CreditPayload(LedgerMovement):
    expires_at: UtcDatetime | None = Field(default=None, description="When the credited lot expires.")


class PointsCredited(Event):
    """Points were posted to a member's account."""

    type: Literal["PointsCredited"] = "PointsCredited"
    version: Literal[1] = 1
    payload: CreditPayload


class PointsDebited(Event):
    """Points were taken from a member's account."""

    type: Literal["PointsDebited"] = "PointsDebited"
    version: Literal[1] = 1
    payload: LedgerMovement


class TransferPayload(Contract):
    transfer_id: uuid.UUID
    debit_account: str
    credit_account: str
    amount: int = Field(gt=0)
    reason: str = Field(min_length=1, max_length=64)
    cause_event_id: uuid.UUID
    issuer_account: str | None = Field(
        default=None,
        description="For points leaving a member's lots (expiry, gifts): the account that issued them, "
        "e.g. 'partner:skymall:issued', so settlement can attribute breakage.",
    )


class TransferPosted(Event):
    """Every posted transfer of the ledger, for settlement and reconciliation."""

    type: Literal["TransferPosted"] = "TransferPosted"
    version: Literal[1] = 1
    payload: TransferPayload
