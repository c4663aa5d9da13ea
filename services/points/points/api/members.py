"""Members read their points and link their identifiers; ops may act for any member."""

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.ids import CardToken, ExternalRef, PartnerId
from loyalty_runtime.auth import Principal, Role, require_member_access, require_ops
from points.adapters.store import PointsStore
from points.handlers import queries
from points.handlers.earn import card_identifier, partner_identifier
from points.handlers.gifts import give
from points.handlers.ledger_events import LedgerEventWriter
from points.handlers.members import link_identifier, register_member


class NewMember(BaseModel):
    model_config = ConfigDict(extra="forbid")

    member_id: uuid.UUID | None = Field(default=None, description="The bank's id for the member; new if omitted.")
    display_name: str = Field(default="", max_length=200)


class MemberCreated(BaseModel):
    member_id: uuid.UUID
    created: bool


class Balance(BaseModel):
    member_id: uuid.UUID
    posted: int = Field(description="Points held: posted credits minus posted debits.")
    pending: int = Field(description="Points reserved by holds.")
    available: int = Field(description="Points that can be spent: posted minus pending.")
    owed: int = Field(description="Points owed after a refund reversed points already spent (repaid from earnings).")
    expiring_soon: int = Field(description="Points that expire within `expiring_within_days`.")
    expiring_within_days: int


class LotOut(BaseModel):
    lot_id: uuid.UUID
    amount: int
    remaining: int
    earned_at: datetime
    expires_at: datetime


class LotsPage(BaseModel):
    items: list[LotOut]
    next_cursor: str | None


class HistoryEntry(BaseModel):
    seq: int
    transfer_id: uuid.UUID
    direction: Literal["credit", "debit"]
    amount: int
    counterparty: str
    reason: str
    cause_event_id: uuid.UUID
    occurred_at: datetime
    posted_at: datetime
    expires_at: datetime | None
    memo: dict[str, Any]


class HistoryPage(BaseModel):
    items: list[HistoryEntry]
    next_cursor: str | None


class IdentifierIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["partner", "card"]
    partner_id: PartnerId | None = None
    customer_ref: ExternalRef | None = None
    card_token: CardToken | None = None

    @model_validator(mode="after")
    def _complete(self) -> "IdentifierIn":
        if self.kind == "partner" and (self.partner_id is None or self.customer_ref is None or self.card_token):
            raise ValueError("a partner identifier needs partner_id and customer_ref (and no card_token)")
        if self.kind == "card" and (self.card_token is None or self.partner_id or self.customer_ref):
            raise ValueError("a card identifier needs card_token (and no partner_id or customer_ref)")
        return self

    @property
    def identifier(self) -> str:
        if self.kind == "card":
            assert self.card_token is not None
            return card_identifier(self.card_token)
        assert self.partner_id is not None
        assert self.customer_ref is not None
        return partner_identifier(self.partner_id, self.customer_ref)


class Linked(BaseModel):
    identifier: str
    claimed_points: int = Field(description="Unclaimed points that moved to the member with this link.")


class GiftIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gift_id: uuid.UUID = Field(description="Chosen by the client; sending the same gift again gives it once.")
    to_member_id: uuid.UUID
    amount: int = Field(gt=0, le=10**9)
    message: str = Field(default="", max_length=200)


class GiftOut(BaseModel):
    gift_id: uuid.UUID
    amount: int
    given_at: datetime


class IdentifierOut(BaseModel):
    identifier: str
    linked_at: datetime


def router(
    store: Callable[[], PointsStore],
    events: LedgerEventWriter,
    authenticate: Callable[..., Principal],
    gift_daily_limit: int,
) -> APIRouter:
    api = APIRouter(prefix="/v1/members", tags=["members"])
    Caller = Annotated[Principal, Depends(authenticate)]
    Store = Annotated[PointsStore, Depends(store)]
    MemberRef = Annotated[str, Path(description="A member id, or `me` for the caller's own.")]

    def resolve(caller: Principal, member_ref: str) -> uuid.UUID:
        if member_ref == "me":
            if caller.role is not Role.MEMBER:
                raise HTTPException(status.HTTP_400_BAD_REQUEST, "`me` needs a member token; ops name the member id")
            member_ref = caller.subject
        try:
            member_id = uuid.UUID(member_ref)
        except ValueError:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"{member_ref!r} is not a member id") from None
        require_member_access(caller, member_id)
        return member_id

    @api.post("", status_code=status.HTTP_201_CREATED, response_model=MemberCreated)
    async def create_member(body: NewMember, caller: Caller, points: Store, response: Response) -> MemberCreated:
        """Register a member (ops). Idempotent for a given member_id."""
        require_ops(caller)
        member_id = body.member_id or uuid.uuid4()
        created = await register_member(points, member_id, body.display_name)
        if not created:
            response.status_code = status.HTTP_200_OK
        return MemberCreated(member_id=member_id, created=created)

    @api.get("/{member_ref}/balance", response_model=Balance)
    async def get_balance(member_ref: MemberRef, caller: Caller, points: Store) -> dict[str, Any]:
        return await queries.balance(points, resolve(caller, member_ref))

    @api.get("/{member_ref}/lots", response_model=LotsPage)
    async def get_lots(
        member_ref: MemberRef,
        caller: Caller,
        points: Store,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> LotsPage:
        """Live lots, soonest expiry first."""
        page = await queries.lots(points, resolve(caller, member_ref), cursor, limit)
        return LotsPage.model_validate({"items": page.items, "next_cursor": page.next_cursor})

    @api.get("/{member_ref}/history", response_model=HistoryPage)
    async def get_history(
        member_ref: MemberRef,
        caller: Caller,
        points: Store,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> HistoryPage:
        """Every transfer in or out of the member's account, newest first."""
        page = await queries.history(points, resolve(caller, member_ref), cursor, limit)
        return HistoryPage.model_validate({"items": page.items, "next_cursor": page.next_cursor})

    @api.post(
        "/{member_ref}/identifiers",
        status_code=status.HTTP_201_CREATED,
        response_model=Linked,
        responses={409: {"description": "Linked to another member."}, 404: {"description": "No such member."}},
    )
    async def post_identifier(
        member_ref: MemberRef, body: IdentifierIn, caller: Caller, points: Store, response: Response
    ) -> Linked:
        """Link a partner customer reference or a card token; its unclaimed points move to the member, once."""
        member_id = resolve(caller, member_ref)
        outcome = await link_identifier(points, events, member_id, body.identifier)
        if not outcome.newly_linked:
            response.status_code = status.HTTP_200_OK
        return Linked(identifier=outcome.identifier, claimed_points=outcome.claimed_points)

    @api.post(
        "/{member_ref}/gifts",
        status_code=status.HTTP_201_CREATED,
        response_model=GiftOut,
        responses={409: {"description": "gift_id used for another gift."}, 422: {"description": "Refused."}},
    )
    async def post_gift(
        member_ref: MemberRef, body: GiftIn, caller: Caller, points: Store, response: Response
    ) -> GiftOut:
        """Give points to another member; both histories show the gift. Limited per UTC day."""
        sender = resolve(caller, member_ref)
        outcome = await give(
            points, events, body.gift_id, sender, body.to_member_id, body.amount, body.message, gift_daily_limit
        )
        if not outcome.new:
            response.status_code = status.HTTP_200_OK
        return GiftOut(gift_id=outcome.gift_id, amount=outcome.amount, given_at=outcome.given_at)

    @api.get("/{member_ref}/identifiers", response_model=list[IdentifierOut])
    async def get_identifiers(member_ref: MemberRef, caller: Caller, points: Store) -> list[dict[str, Any]]:
        return await queries.identifiers(points, resolve(caller, member_ref))

    return api
