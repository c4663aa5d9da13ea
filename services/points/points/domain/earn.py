"""Earn facts as the ledger sees them, whichever channel reported them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from uuid import UUID


@dataclass(frozen=True, slots=True)
class PartnerTransaction:
    """A purchase or refund a partner reported, in the partner's currency."""

    event_id: UUID
    kind: Literal["purchase", "refund"]
    partner_id: str
    customer_ref: str
    external_id: str
    purchase_id: str
    amount_minor: int
    currency: str
    category: str | None
    occurred_at: datetime

    @property
    def identifier(self) -> str:
        """How the ledger names the partner's customer before it is linked to a member."""
        return f"partner:{self.partner_id}:{self.customer_ref}"
