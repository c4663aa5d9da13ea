"""Link codes that an identifier's owner issued, so that the points service can accept them (contracts.link_codes)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from contracts.envelope import Contract, Event, UtcDatetime
from contracts.ids import CardToken, ExternalRef, PartnerId


class LinkCodePayload(Contract):
    """The identifier a code is for (a partner's customer reference, or a card token), never the code itself."""

    partner_id: PartnerId | None = Field(default=None, description="With customer_ref: the partner's customer.")
    customer_ref: ExternalRef | None = Field(default=None, description="The partner's own id for its customer.")
    card_token: CardToken | None = Field(default=None, description="Instead of partner_id and customer_ref.")
    code_sha256: str = Field(
        pattern=r"^[0-9a-f]{64}$", description="contracts.link_codes.code_hash of the code shown to the customer."
    )
    expires_at: UtcDatetime = Field(description="After this moment the code links nothing.")

    @model_validator(mode="after")
    def _one_identifier(self) -> LinkCodePayload:
        partner = self.partner_id is not None and self.customer_ref is not None
        card = self.card_token is not None
        if partner == card or (not partner and (self.partner_id or self.customer_ref)):
            raise ValueError("a link code is for partner_id and customer_ref, or for a card_token")
        return self


class LinkCodeIssued(Event):
    """An identifier's owner issued a one-time link code to its customer, valid until `expires_at`."""

    type: Literal["LinkCodeIssued"] = "LinkCodeIssued"
    version: Literal[1] = 1
    payload: LinkCodePayload
