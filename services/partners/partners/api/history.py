"""The partner's portal reads what its systems posted to intake: accepted and refused, newest first."""

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field

from contracts.ids import PartnerId
from loyalty_runtime.auth import TokenAuthority, principal_dependency
from partners.api.signed import OPS_STAFF_OR_PARTNER, PartnerCall, ops_or_signed_partner
from partners.handlers.authentication import PartnerAuthenticator
from partners.handlers.history import IntakeHistory, IntakeRecord, Outcome, PartnerLookup, list_intake


class IntakeLine(BaseModel):
    received_at: datetime
    kind: Literal["purchase", "refund"]
    outcome: Outcome
    reason: str | None = Field(description="Why it was refused; null when accepted.")
    idempotency_key: str | None
    purchase_id: str | None = Field(description="The purchase; for a refund, the purchase it reverses.")
    refund_id: str | None = Field(description="Refunds only.")
    customer_ref: str | None
    amount_minor: int | None = Field(description="In minor units of `currency`.")
    currency: str | None
    points: int | None = Field(description="Accepted purchases only: the points they earned.")
    event_id: uuid.UUID | None = Field(description="Accepted only: the event the ledger applies.")

    @classmethod
    def of(cls, record: IntakeRecord) -> "IntakeLine":
        facts = record.facts
        return cls(
            received_at=record.received_at,
            kind=record.kind,
            outcome=record.outcome,
            reason=record.reason,
            idempotency_key=facts.idempotency_key,
            purchase_id=facts.purchase_id,
            refund_id=facts.refund_id,
            customer_ref=facts.customer_ref,
            amount_minor=facts.amount_minor,
            currency=facts.currency,
            points=record.points,
            event_id=record.event_id,
        )


class IntakePageOut(BaseModel):
    items: list[IntakeLine]
    next_cursor: str | None = Field(description="Pass as `before` for the next (older) page; null on the last one.")


RESPONSES: dict[int | str, dict[str, Any]] = {
    **OPS_STAFF_OR_PARTNER,
    404: {"description": "No such partner."},
    422: {"description": "A malformed outcome, limit or cursor."},
}


def router(
    history: IntakeHistory, partners: PartnerLookup, authenticator: PartnerAuthenticator, tokens: TokenAuthority
) -> APIRouter:
    api = APIRouter(prefix="/v1/partners/{partner_id}", tags=["portal"])
    Caller = Annotated[PartnerCall, Depends(ops_or_signed_partner(authenticator, principal_dependency(lambda: tokens)))]

    @api.get("/purchases", responses=RESPONSES)
    async def list_purchases(
        partner_id: Annotated[PartnerId, Path()],
        _caller: Caller,
        outcome: Annotated[
            Outcome | None, Query(description="Only accepted, or only refused; both when omitted.")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 50,
        before: Annotated[str | None, Query(pattern=r"^[0-9]{1,18}$", description="A page's next_cursor.")] = None,
    ) -> IntakePageOut:
        """Purchases and refunds the partner posted, newest first: accepted ones, and refused ones with the reason.

        Refusals are kept for signed requests only (their body, the contract's rules, or a conflict with what was
        accepted before); a request that did not prove who sent it is not. The partner's staff or ops with a bearer
        token, or the partner itself with a signed request (only the path is signed, not the query).
        """
        page = await list_intake(history, partners, partner_id, outcome, int(before) if before else None, limit)
        cursor = str(page.next_before) if page.next_before is not None else None
        return IntakePageOut(items=[IntakeLine.of(r) for r in page.items], next_cursor=cursor)

    return api
