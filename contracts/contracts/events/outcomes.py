"""What became of a partner's purchase or refund in the ledger, when it did not earn or reverse points."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import Field

from contracts.envelope import Contract, Event
from contracts.ids import ExternalRef, PartnerId
from contracts.money import Money


class PurchaseRefusedPayload(Contract):
    partner_id: PartnerId
    customer_ref: ExternalRef
    purchase_id: ExternalRef
    refund_id: ExternalRef | None = Field(default=None, description="Set when the refused report was a refund.")
    kind: Literal["purchase", "refund"]
    amount: Money
    reason: str = Field(min_length=1, max_length=500, description="Why the ledger refused it, for a person.")
    refused_event_id: uuid.UUID = Field(description="The event_id of the refused PartnerPurchaseRecorded/Refund.")


class PurchaseRefused(Event):
    """The points service could not apply a partner's purchase or refund: it went to the dead-letter topic.

    Ops may replay the dead letter once the cause is fixed; nothing was credited or reversed meanwhile.
    """

    type: Literal["PurchaseRefused"] = "PurchaseRefused"
    version: Literal[1] = 1
    payload: PurchaseRefusedPayload
