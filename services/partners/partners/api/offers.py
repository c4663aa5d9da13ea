"""Partners publish, revise and withdraw their reward offers, signed or through their staff; ops may too."""

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import AnyHttpUrl, AwareDatetime, BaseModel, ConfigDict, Field

from contracts.events.offers import MAX_TIER_PRICES, OfferKind
from contracts.ids import Category, TierCode
from loyalty_runtime.auth import TokenAuthority, principal_dependency
from partners.api.intake import PORTAL_RESPONSES, documented, parse
from partners.api.signed import PartnerCall, ops_or_signed_partner
from partners.domain.errors import PartnersError
from partners.domain.offers import OFFER_ID_PATTERN, InvalidOfferError, Offer, OfferNotFoundError, OfferTerms
from partners.handlers import offers as handlers
from partners.handlers.authentication import Clock, PartnerAuthenticator
from partners.handlers.offers import BadOfferCursorError, OfferEvents, OfferRepository

Points = Annotated[int, Field(strict=True, gt=0, le=10**9, description="What one unit costs, in points.")]
Units = Annotated[int, Field(strict=True, ge=0, le=10**9, description="Units offered in total over the offer's life.")]


class TierPriceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tier: TierCode
    price_points: Points


class SegmentPriceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    segment_id: uuid.UUID = Field(description="A segment ops published (GET /v1/segments/published on points).")
    price_points: Points


class OfferIn(BaseModel):
    """An offer as contracts.events.offers.OfferPayload has it, without partner_id, offer_id and revision."""

    model_config = ConfigDict(extra="forbid")

    kind: OfferKind
    title: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$", description="One line.")
    description: str = Field(default="", max_length=2000, pattern=r"^[^\x00]*$")
    category: Category
    price_points: Points
    stock: Units
    valid_from: AwareDatetime
    valid_until: AwareDatetime = Field(description="After valid_from, and in the future.")
    fulfilment_url: AnyHttpUrl | None = Field(
        default=None,
        description="Where the programme asks you to fulfil an order; needed for products and discounts.",
    )
    tier_prices: list[TierPriceIn] = Field(
        default_factory=list,
        max_length=MAX_TIER_PRICES,
        description="What a member at each of these tiers pays instead of price_points (GET /v1/tiers names them).",
    )
    segment_prices: list[SegmentPriceIn] = Field(
        default_factory=list,
        max_length=MAX_TIER_PRICES,
        description="What a member of each of these published segments pays; a member to whom several prices apply "
        "pays the lowest.",
    )
    tiers_only: list[TierCode] = Field(
        default_factory=list,
        max_length=MAX_TIER_PRICES,
        description="Only members at one of these tiers see and may order the offer; empty: every member.",
    )

    def terms(self) -> OfferTerms:
        fields = self.model_dump(exclude={"fulfilment_url", "tier_prices", "tiers_only", "segment_prices"})
        url = str(self.fulfilment_url) if self.fulfilment_url is not None else None
        prices = tuple((price.tier, price.price_points) for price in self.tier_prices)
        by_segment = tuple((str(price.segment_id), price.price_points) for price in self.segment_prices)
        return OfferTerms(**fields, fulfilment_url=url, tier_prices=prices, tiers_only=tuple(self.tiers_only),
                          segment_prices=by_segment)  # fmt: skip


class OfferOut(BaseModel):
    partner_id: str
    offer_id: str
    revision: int = Field(description="Grows with every change, withdrawal included.")
    kind: OfferKind
    title: str
    description: str
    category: str
    price_points: int
    stock: int
    valid_from: datetime
    valid_until: datetime
    fulfilment_url: str | None
    tier_prices: list[TierPriceIn]
    segment_prices: list[SegmentPriceIn]
    tiers_only: list[str]
    withdrawn_at: datetime | None
    updated_at: datetime

    @classmethod
    def of(cls, offer: Offer) -> "OfferOut":
        terms = offer.terms
        return cls(
            partner_id=offer.partner_id,
            offer_id=offer.offer_id,
            revision=offer.revision,
            kind=terms.kind,
            title=terms.title,
            description=terms.description,
            category=terms.category,
            price_points=terms.price_points,
            stock=terms.stock,
            valid_from=terms.valid_from,
            valid_until=terms.valid_until,
            fulfilment_url=terms.fulfilment_url,
            tier_prices=[TierPriceIn(tier=tier, price_points=points) for tier, points in terms.tier_prices],
            segment_prices=[
                SegmentPriceIn(segment_id=uuid.UUID(segment), price_points=points)
                for segment, points in terms.segment_prices
            ],
            tiers_only=list(terms.tiers_only),
            withdrawn_at=offer.withdrawn_at,
            updated_at=offer.updated_at,
        )


class OffersPage(BaseModel):
    items: list[OfferOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last one.")


OfferIdPath = Annotated[
    str,
    Path(
        pattern=OFFER_ID_PATTERN,
        description="Your id for the offer: 1 to 128 letters, digits and . _ ~ : -, starting with a letter or digit.",
    ),
]

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "You have no offer with this id."}}


def router(
    repository: OfferRepository,
    events: OfferEvents,
    authenticator: PartnerAuthenticator,
    tokens: TokenAuthority,
    clock: Clock,
) -> APIRouter:
    api = APIRouter(prefix="/v1/partners/{partner_id}/offers", tags=["offers"])
    Caller = Annotated[PartnerCall, Depends(ops_or_signed_partner(authenticator, principal_dependency(lambda: tokens)))]

    @api.put(
        "/{offer_id}",
        status_code=status.HTTP_200_OK,
        responses={**PORTAL_RESPONSES, 201: {"description": "Created (revision 1)."}},
        openapi_extra=documented(OfferIn),
    )
    async def put_offer(offer_id: OfferIdPath, call: Caller, response: Response) -> OfferOut:
        """Publish an offer or change it: every change is a new revision, published as OfferPublished.

        The same terms again change nothing (a retry is safe); a withdrawn offer is published again.
        The partner signed, its staff or ops with a bearer token.
        """
        body = parse(OfferIn, call.body)
        change = await handlers.publish_offer(repository, events, call.partner_id, offer_id, body.terms(), clock())
        if change.created:
            response.status_code = status.HTTP_201_CREATED
        return OfferOut.of(change.offer)

    @api.delete("/{offer_id}", status_code=status.HTTP_204_NO_CONTENT, responses={**PORTAL_RESPONSES, **NOT_FOUND})
    async def delete_offer(offer_id: OfferIdPath, call: Caller) -> Response:
        """Withdraw an offer (OfferWithdrawn, a new revision); orders already placed complete."""
        await handlers.withdraw_offer(repository, events, call.partner_id, offer_id, clock())
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @api.get("", responses=PORTAL_RESPONSES)
    async def list_offers(
        partner_id: Annotated[str, Path()],
        _caller: Caller,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> OffersPage:
        """Your offers, withdrawn ones included, by offer id. The partner signed, its staff or ops with a token."""
        page = await handlers.list_offers(repository, partner_id, cursor, limit)
        return OffersPage(items=[OfferOut.of(o) for o in page.items], next_cursor=page.next_cursor)

    @api.get("/{offer_id}", responses={**PORTAL_RESPONSES, **NOT_FOUND})
    async def get_offer(partner_id: Annotated[str, Path()], offer_id: OfferIdPath, _caller: Caller) -> OfferOut:
        return OfferOut.of(await handlers.get_offer(repository, partner_id, offer_id))

    return api


STATUS: dict[type[PartnersError], int] = {
    OfferNotFoundError: status.HTTP_404_NOT_FOUND,
    InvalidOfferError: status.HTTP_422_UNPROCESSABLE_CONTENT,
    BadOfferCursorError: status.HTTP_400_BAD_REQUEST,
}


async def _answer(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, PartnersError)
    code = next(code for kind, code in STATUS.items() if isinstance(error, kind))
    detail: Any = error.message
    if isinstance(error, InvalidOfferError):
        detail = [{"loc": ["body", error.field], "msg": error.message, "type": type(error).__name__}]
    return JSONResponse({"detail": detail}, status_code=code)


def install(app: FastAPI) -> None:
    """The offer errors' statuses; Starlette picks these over the PartnersError handler of partners.api.errors."""
    for kind in STATUS:
        app.add_exception_handler(kind, _answer)
