"""A member's erasure (GDPR art. 17, PIPL art. 47), from the points service's outbox (services/points/.../erasure.py).

The event names the member and what each other service needs to find its own copies, and never a personal
value: not the original identifiers (the topic is kept forever, and sending them would spread them further),
not a mapping from original to pseudonym. What it carries instead is what those services already hold:

- `purchase_event_ids`: the ids of the partner purchase events recorded under an erased identifier; the partners
  service finds its intake rows by these ids, and from them the customer reference to replace everywhere.
- `transfer_ids`: the ledger transfers that touched the erased identifier's unclaimed account; the partners
  service renames that account in its settlement copies of these transfers to `unclaimed:<pseudonym>`.

An erasure with many purchases is split into parts (`part` of `parts`, each with the same `erasure_id`); a
consumer applies each part on its own, and applying one twice changes nothing.
"""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import Field

from contracts.envelope import Contract, Event, UtcDatetime
from contracts.ids import PartnerId


class ErasedIdentifier(Contract):
    pseudonym: str = Field(
        max_length=200,
        description="What replaced the identifier everywhere: `partner:<partner_id>:erased-<hex>` or "
        "`card:erased-<hex>`. Random per erasure: it cannot be traced back to the original.",
    )
    kind: Literal["partner", "card"]
    partner_id: PartnerId | None = Field(default=None, description="Partner identifiers: whose customer it was.")
    purchase_event_ids: list[uuid.UUID] = Field(
        default_factory=list, max_length=1000, description="Partner purchase events recorded under it (this part)."
    )
    transfer_ids: list[uuid.UUID] = Field(
        default_factory=list,
        max_length=1000,
        description="Ledger transfers that touched its unclaimed account, now `unclaimed:<pseudonym>` (this part).",
    )


class MemberErasedPayload(Contract):
    erasure_id: uuid.UUID = Field(description="One per erasure; every part of it carries the same.")
    member_id: uuid.UUID = Field(description="The member stays, as a pseudonymous account with its points.")
    erased_at: UtcDatetime
    part: int = Field(ge=1)
    parts: int = Field(ge=1)
    identifiers: list[ErasedIdentifier] = Field(default_factory=list, max_length=1000)


class MemberErased(Event):
    """The points service replaced a member's personal data with pseudonyms; other services erase their copies."""

    type: Literal["MemberErased"] = "MemberErased"
    version: Literal[1] = 1
    payload: MemberErasedPayload
