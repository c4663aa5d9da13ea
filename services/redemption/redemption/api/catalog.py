"""Members browse the reward offers of every partner; any valid member or ops token may read."""

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field

from contracts.events.offers import OfferKind
from contracts.ids import Category, ExternalRef, PartnerId
from loyalty_runtime.auth import Principal, Role
from redemption.adapters.catalog_store import CatalogStore
from redemption.api.dependencies import on_loop
from redemption.domain.catalog import CatalogFilter, Status
from redemption.domain.prices import EVERYTHING, Reader
from redemption.handlers import catalog as handlers
from redemption.handlers.catalog import Listed

MAX_PAGE = 100


class CatalogOffer(BaseModel):
    partner_id: str
    offer_id: str
    revision: int
    kind: OfferKind
    title: str
    description: str
    category: str
    price_points: int = Field(description="What one unit costs you, in points: your tier's price if it has one.")
    base_price_points: int = Field(description="What one unit costs a member without a tier price.")
    tier_prices: dict[str, int] = Field(description="Prices for members at these tiers.")
    segment_prices: dict[str, int] = Field(description="Prices for members of these published segments (by id).")
    tiers_only: list[str] = Field(description="Only members at one of these tiers see it; empty: every member.")
    stock: int = Field(description="Units the partner offers in total.")
    available: int = Field(description="Units left to redeem: stock minus units reserved and sold, at least 0.")
    valid_from: datetime
    valid_until: datetime
    status: Status = Field(description="on_sale, upcoming (before valid_from), ended (from valid_until) or withdrawn.")

    @classmethod
    def of(cls, listed: Listed) -> "CatalogOffer":
        e = listed.entry
        return cls(
            partner_id=e.partner_id,
            offer_id=e.offer_id,
            revision=e.revision,
            kind=e.kind,
            title=e.title,
            description=e.description,
            category=e.category,
            price_points=e.unit_points,
            base_price_points=e.price_points,
            tier_prices=dict(e.tier_prices),
            segment_prices=dict(e.segment_prices),
            tiers_only=list(e.tiers_only),
            stock=e.stock,
            available=e.available,
            valid_from=e.valid_from,
            valid_until=e.valid_until,
            status=listed.status,
        )


class CatalogPage(BaseModel):
    tier: str | None = Field(description="The tier whose prices you see; null for none (or for ops and staff).")
    items: list[CatalogOffer]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last one.")


UNAUTHORISED = {401: {"description": "No valid bearer token."}}


async def reader_of(catalog: CatalogStore, caller: Principal) -> Reader:
    """A member reads at its tier; ops and partner staff read every offer at its price for everyone."""
    if caller.role is Role.MEMBER:
        return await catalog.reader(uuid.UUID(caller.subject))
    return EVERYTHING


def router(
    store: Callable[[], CatalogStore],
    authenticate: Callable[..., Principal],
    clock: Callable[[], datetime],
) -> APIRouter:
    api = APIRouter(prefix="/v1/catalog", tags=["catalog"])
    Caller = Annotated[Principal, Depends(on_loop(authenticate))]
    Store = Annotated[CatalogStore, Depends(on_loop(store))]

    @api.get("", responses={**UNAUTHORISED, 400: {"description": "A cursor this API did not return."}})
    async def browse(
        caller: Caller,
        catalog: Store,
        partner_id: Annotated[PartnerId | None, Query(description="Only this partner's offers.")] = None,
        category: Annotated[Category | None, Query()] = None,
        kind: Annotated[OfferKind | None, Query()] = None,
        in_stock: Annotated[bool, Query(description="Leave out offers with nothing left.")] = False,
        cursor: Annotated[str | None, Query(max_length=400)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 20,
    ) -> CatalogPage:
        """Offers on sale now (valid, not withdrawn, open to your tier), cheapest for you first.

        A member sees its own prices (its tier's, where the offer has one); ops and partner staff see every offer
        at its price for everyone. Sold-out offers show `available` 0.
        """
        where = CatalogFilter(partner_id=partner_id, category=category, kind=kind, in_stock=in_stock)
        reader = await reader_of(catalog, caller)
        page = await handlers.browse(catalog, reader, where, cursor, limit, clock())
        items = [CatalogOffer.of(i) for i in page.items]
        return CatalogPage(tier=reader.tier, items=items, next_cursor=page.next_cursor)

    @api.get("/{partner_id}/{offer_id:path}", responses={**UNAUTHORISED, 404: {"description": "No such offer."}})
    async def get_offer(
        partner_id: Annotated[PartnerId, Path()],
        offer_id: Annotated[ExternalRef, Path()],
        caller: Caller,
        catalog: Store,
    ) -> CatalogOffer:
        """One offer, also when it is upcoming, ended or withdrawn (see `status`), at your price."""
        reader = await reader_of(catalog, caller)
        return CatalogOffer.of(await handlers.offer(catalog, reader, partner_id, offer_id, clock()))

    return api
