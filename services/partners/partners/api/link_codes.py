"""A partner issues link codes for its customers (signed, or by its staff), so that they can link their accounts."""

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, status
from pydantic import BaseModel, ConfigDict, Field

from contracts.ids import ExternalRef
from loyalty_runtime.auth import TokenAuthority, principal_dependency
from partners.api.intake import PORTAL_RESPONSES, documented, parse
from partners.api.signed import PartnerCall, ops_or_signed_partner
from partners.handlers.authentication import PartnerAuthenticator
from partners.handlers.link_codes import LinkCodeEvents, Outbox, issue_link_code


class LinkCodeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_ref: ExternalRef = Field(description="Your own id for the customer, as in your purchases.")


class LinkCodeOut(BaseModel):
    link_code: str = Field(description="Show it to your signed-in customer only; it is not kept anywhere.")
    customer_ref: str
    expires_at: datetime


def router(
    outbox: Outbox,
    events: LinkCodeEvents,
    authenticator: PartnerAuthenticator,
    tokens: TokenAuthority,
    clock: Callable[[], datetime],
    ttl: timedelta,
) -> APIRouter:
    api = APIRouter(prefix="/v1/partners/{partner_id}", tags=["link codes"])
    Caller = Annotated[PartnerCall, Depends(ops_or_signed_partner(authenticator, principal_dependency(lambda: tokens)))]

    @api.post(
        "/link-codes",
        status_code=status.HTTP_201_CREATED,
        responses=PORTAL_RESPONSES,
        openapi_extra=documented(LinkCodeIn),
    )
    async def post_link_code(call: Caller) -> LinkCodeOut:
        """A one-time code with which your customer links `customer_ref` to their membership in the member app.

        Issue it only to the customer signed in to your own app or desk: whoever holds it takes the points that
        wait for that reference. It works once, until `expires_at`, and within seconds of this answer.
        Signed by the partner's system, or by its staff at a counter (or ops) with a bearer token.
        """
        body = parse(LinkCodeIn, call.body)
        issued = await issue_link_code(outbox, events, call.partner_id, body.customer_ref, clock(), ttl)
        return LinkCodeOut(link_code=issued.link_code, customer_ref=body.customer_ref, expires_at=issued.expires_at)

    return api
