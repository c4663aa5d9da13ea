"""Members read their points and link their identifiers with their owners' link codes; ops link, unlink, act for any."""

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.ids import CardToken, ExternalRef, PartnerId
from loyalty_runtime.auth import Principal, Role, require_ops, resolve_member
from points.adapters.store import PointsStore
from points.domain.link_codes import (
    LinkCodeExhaustedError,
    LinkCodeExpiredError,
    LinkCodeMismatchError,
    LinkCodeNotKnownError,
    LinkCodeRequiredError,
    LinkCodeUsedError,
    LinkRefusedError,
    MalformedCodeError,
)
from points.handlers import queries
from points.handlers.earn import card_identifier, partner_identifier
from points.handlers.gifts import give
from points.handlers.ledger_events import LedgerEventWriter
from points.handlers.members import Actor, link_identifier, register_member, unlink_identifier


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
    next_expiry_at: datetime | None = Field(
        description="When the next of the member's points expire: the earliest expiry of its lots with points left."
    )
    next_expiry_points: int = Field(
        description="Points left in the lots that expire on the UTC date of `next_expiry_at`; 0 when none."
    )
    pending_review: int = Field(
        default=0, description="Points of purchases held for review (velocity rules): not in posted, not spendable."
    )


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
    kind: Literal["transfer", "identifier"] = Field(
        description="A transfer of points in or out, or an identifier linked or unlinked (no points move with it; "
        "the points a link claims are their own `claim` transfers)."
    )
    transfer_id: uuid.UUID | None
    direction: Literal["credit", "debit"] | None = Field(description="Transfers only.")
    amount: int = Field(description="Points moved; 0 for identifier entries.")
    counterparty: str | None = Field(description="Transfers only: the other account.")
    reason: str = Field(description="Why points moved, or `identifier_linked` / `identifier_unlinked`.")
    cause_event_id: uuid.UUID | None
    occurred_at: datetime
    posted_at: datetime
    expires_at: datetime | None
    memo: dict[str, Any] = Field(
        description="Details; for identifier entries `actor_role`, `via` (`link_code` or `ops`) and `code_issued_by`."
    )
    identifier: str | None = Field(default=None, description="Identifier entries: the identifier.")
    actor: str | None = Field(default=None, description="Identifier entries: who did it (the member, or ops staff).")


class HistoryPage(BaseModel):
    items: list[HistoryEntry]
    next_cursor: str | None


class IdentifierRef(BaseModel):
    """A partner customer reference or a card token."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["partner", "card"]
    partner_id: PartnerId | None = None
    customer_ref: ExternalRef | None = None
    card_token: CardToken | None = None

    @model_validator(mode="after")
    def _complete(self) -> "IdentifierRef":
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


class IdentifierIn(IdentifierRef):
    link_code: str | None = Field(
        default=None,
        min_length=1,
        max_length=40,
        description="The one-time code the identifier's owner issued (the partner's app for a customer reference, "
        "the bank's card app for a card). Members need one; ops may link without.",
    )


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


class Unlinked(BaseModel):
    identifier: str
    unlinked_at: datetime


class MemberOut(BaseModel):
    member_id: uuid.UUID
    display_name: str
    created_at: datetime
    identifiers: list[IdentifierOut] = Field(description="As GET /v1/members/{member_ref}/identifiers lists them.")


class GiftEntry(BaseModel):
    gift_id: uuid.UUID
    direction: Literal["sent", "received"]
    counterparty_member_id: uuid.UUID = Field(description="The recipient of a gift sent, the giver of one received.")
    points: int
    message: str | None = Field(description="The giver's message; null when it wrote none.")
    at: datetime


class GiftsPage(BaseModel):
    items: list[GiftEntry]


LINK_REFUSALS: dict[type[LinkRefusedError], int] = {
    LinkCodeRequiredError: status.HTTP_403_FORBIDDEN,
    MalformedCodeError: status.HTTP_422_UNPROCESSABLE_CONTENT,
    LinkCodeNotKnownError: status.HTTP_409_CONFLICT,
    LinkCodeMismatchError: status.HTTP_422_UNPROCESSABLE_CONTENT,
    LinkCodeUsedError: status.HTTP_409_CONFLICT,
    LinkCodeExhaustedError: status.HTTP_410_GONE,
    LinkCodeExpiredError: status.HTTP_410_GONE,
}
RETRY_UNKNOWN_CODE_AFTER_SECONDS = 2
"""A partner's code reaches this service through Kafka: an unknown one may only be in flight."""


async def _refused(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, LinkRefusedError)
    code = next(code for kind, code in LINK_REFUSALS.items() if isinstance(error, kind))
    headers = {"Retry-After": str(RETRY_UNKNOWN_CODE_AFTER_SECONDS)} if isinstance(error, LinkCodeNotKnownError) else {}
    return JSONResponse({"detail": str(error), "reason": error.reason}, status_code=code, headers=headers)


def install(app: FastAPI) -> None:
    """Refused links answer with their status, the message, and a `reason` for programs."""
    for kind in LINK_REFUSALS:
        app.add_exception_handler(kind, _refused)


READ_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "`me` with a token that is not a member's: name the member id."},
    401: {"description": "No valid bearer token."},
    403: {"description": "A member asking about another member, or a partner's staff: members read their own."},
    404: {"description": "No such member: check the id, or register it first."},
    422: {"description": "The member reference is not a member id, or a query parameter is out of range."},
}
"""Answers of the reads of one member (the member itself or ops)."""

UNLINK_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"description": "Only ops unlink."},
    404: {"description": "No such member, or the identifier is not linked to it."},
}


def actor_of(caller: Principal) -> Actor:
    return Actor(caller.subject, is_ops=caller.role is Role.OPS)


def router(
    store: Callable[[], PointsStore],
    events: LedgerEventWriter,
    authenticate: Callable[..., Principal],
    gift_daily_limit: int,
    link_code_max_wrong_attempts: int,
) -> APIRouter:
    api = APIRouter(prefix="/v1/members", tags=["members"])
    Caller = Annotated[Principal, Depends(authenticate)]
    Store = Annotated[PointsStore, Depends(store)]
    MemberRef = Annotated[str, Path(description="A member id, or `me` for the caller's own.")]

    resolve = resolve_member

    @api.post("", status_code=status.HTTP_201_CREATED, response_model=MemberCreated)
    async def create_member(body: NewMember, caller: Caller, points: Store, response: Response) -> MemberCreated:
        """Register a member (ops). Idempotent for a given member_id."""
        require_ops(caller)
        member_id = body.member_id or uuid.uuid4()
        created = await register_member(points, member_id, body.display_name)
        if not created:
            response.status_code = status.HTTP_200_OK
        return MemberCreated(member_id=member_id, created=created)

    @api.get("/{member_ref}", response_model=MemberOut, responses=READ_RESPONSES)
    async def get_member(member_ref: MemberRef, caller: Caller, points: Store) -> dict[str, Any]:
        """The member (itself, or ops): its name, when it joined and its linked identifiers."""
        return await queries.member(points, resolve(caller, member_ref))

    @api.get("/{member_ref}/balance", response_model=Balance, responses=READ_RESPONSES)
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
        responses={
            403: {"description": "A member without a link code: ask the partner's or the card app for one."},
            404: {"description": "No such member."},
            409: {"description": "Linked to another member; the code was used; or not known yet (retry shortly)."},
            410: {"description": "The code expired, or too many wrong codes were tried: ask for a new one."},
            422: {"description": "The code is malformed, or was issued for another identifier."},
        },
    )
    async def post_identifier(
        member_ref: MemberRef, body: IdentifierIn, caller: Caller, points: Store, response: Response
    ) -> Linked:
        """Link a partner customer reference or a card token, with a link code from its owner (ops need none).

        Its unclaimed points move to the member, once; the link shows in the member's history.
        """
        member_id = resolve(caller, member_ref)
        outcome = await link_identifier(
            points, events, member_id, body.identifier, actor_of(caller), body.link_code, link_code_max_wrong_attempts
        )
        if not outcome.newly_linked:
            response.status_code = status.HTTP_200_OK
        return Linked(identifier=outcome.identifier, claimed_points=outcome.claimed_points)

    async def unlink(caller: Principal, member_ref: str, identifier: str, points: PointsStore) -> Unlinked:
        if caller.role is not Role.OPS:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, "only ops unlink an identifier: ask the programme's customer service"
            )
        member_id = resolve(caller, member_ref)
        at = await unlink_identifier(points, member_id, identifier, actor_of(caller))
        return Unlinked(identifier=identifier, unlinked_at=at)

    @api.delete("/{member_ref}/identifiers/card/{card_token}", response_model=Unlinked, responses=UNLINK_RESPONSES)
    async def delete_card(
        member_ref: MemberRef, card_token: Annotated[CardToken, Path()], caller: Caller, points: Store
    ) -> Unlinked:
        """Unlink a card (ops): points it brought stay with the member; later earnings wait unclaimed again."""
        return await unlink(caller, member_ref, card_identifier(card_token), points)

    @api.delete(
        "/{member_ref}/identifiers/partner/{partner_id}/{customer_ref:path}",
        response_model=Unlinked,
        responses=UNLINK_RESPONSES,
    )
    async def delete_partner_ref(
        member_ref: MemberRef,
        partner_id: Annotated[PartnerId, Path()],
        customer_ref: Annotated[ExternalRef, Path(description="Percent-encoded where it holds reserved characters.")],
        caller: Caller,
        points: Store,
    ) -> Unlinked:
        """Unlink a partner customer reference (ops), as for a card."""
        return await unlink(caller, member_ref, partner_identifier(partner_id, customer_ref), points)

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

    @api.get("/{member_ref}/gifts", response_model=GiftsPage, responses=READ_RESPONSES)
    async def get_gifts(
        member_ref: MemberRef,
        caller: Caller,
        points: Store,
        limit: Annotated[int, Query(ge=1, le=100)] = 50,
    ) -> GiftsPage:
        """Gifts the member gave and received, newest first."""
        items = await queries.gifts(points, resolve(caller, member_ref), limit)
        return GiftsPage.model_validate({"items": items})

    @api.get("/{member_ref}/identifiers", response_model=list[IdentifierOut])
    async def get_identifiers(member_ref: MemberRef, caller: Caller, points: Store) -> list[dict[str, Any]]:
        return await queries.identifiers(points, resolve(caller, member_ref))

    return api
