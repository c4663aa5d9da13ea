"""Daily earnings: members read their recent days by source, make share cards of a day and revoke them; anyone with a
card's link reads the card; ops summarise a finished day now."""

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from loyalty_runtime.auth import Principal, require_ops, resolve_member
from points.adapters.store import PointsStore
from points.api.members import READ_RESPONSES
from points.domain.daily_earnings import WINDOW_DAYS
from points.domain.share_cards import (
    MAX_LIVE_CARDS,
    MAX_NAME,
    CardIdReusedError,
    ShareCardRefusedError,
    TooManyCardsError,
)
from points.handlers import daily_earnings as earnings
from points.handlers import share_cards as cards
from points.handlers.daily_earnings import DayNotFinishedError
from points.handlers.expiry_runs import requested_by_ops

NO_STORE = {"Cache-Control": "no-store"}


class BySource(BaseModel):
    """Net points (earned minus taken back) by where they came from."""

    partner: int
    card: int
    activity: int
    gift: int
    tier: int
    other: int


class DayOut(BaseModel):
    date: dt.date = Field(description="A calendar day in the programme's zone (`time_zone`).")
    earned: int = Field(description="Points credited that day (counted when they reached the member).")
    taken_back: int = Field(description="Points refunds and reversals posted that day took back.")
    net: int = Field(description="earned - taken_back; below 0 when refunds of earlier days outweighed the day.")
    by_source: BySource
    by_partner: dict[str, int] = Field(description="Net points by partner id, for the partners that moved any.")


class TotalsOut(BaseModel):
    month_to_date: int = Field(description="Net points of this calendar month (in `time_zone`) so far.")
    lifetime: int = Field(description="Net points since the member joined.")


class DailyEarningsOut(BaseModel):
    member_id: uuid.UUID
    time_zone: str
    as_of: dt.datetime
    days: list[DayOut] = Field(description="Newest first, today included.")
    totals: TotalsOut


class ShareCardIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    card_id: uuid.UUID | None = Field(
        default=None, description="Chosen by the client, so that sending the card again makes it once; new if omitted."
    )
    date: dt.date = Field(description=f"A day of the last {WINDOW_DAYS}, today included.")
    display_name: str | None = Field(
        default=None, max_length=200,
        description=f"Shown on the card: 1 to {MAX_NAME} characters, no control characters; null shows no name.",
    )  # fmt: skip
    show_sources: bool = Field(default=False, description="Whether the card shows the sources of the day's points.")


class ShareCardOut(BaseModel):
    card_id: uuid.UUID
    date: dt.date
    display_name: str | None
    points: int = Field(description="The day's net points when the card was made (frozen).")
    sources: dict[str, int] | None = Field(description="The sources that brought them, if the member chose to show.")
    created_at: dt.datetime


class MadeCardOut(ShareCardOut):
    url_token: str | None = Field(
        description="The link's token (/v1/share-cards/{url_token}), shown only to the request that made the card: "
        "it is not stored. null when the card_id was sent before: make another card for a new link."
    )


class ShareCardsOut(BaseModel):
    items: list[ShareCardOut] = Field(description="Live cards, newest first, without their links (shown once).")


class SharedCardOut(BaseModel):
    programme: str
    date: dt.date
    points: int
    display_name: str | None
    sources: dict[str, int] | None


class SummaryRunOut(BaseModel):
    date: dt.date
    time_zone: str
    members: int = Field(description="Members with earnings that day that had no summary yet.")
    emitted: int = Field(description="DailyEarningsSummarised this run put in the outbox.")


REFUSALS: dict[type[Exception], int] = {
    TooManyCardsError: status.HTTP_409_CONFLICT,
    CardIdReusedError: status.HTTP_409_CONFLICT,
    ShareCardRefusedError: status.HTTP_422_UNPROCESSABLE_CONTENT,
    DayNotFinishedError: status.HTTP_422_UNPROCESSABLE_CONTENT,
}


async def _refused(_request: Request, error: Exception) -> JSONResponse:
    code = next(code for kind, code in REFUSALS.items() if isinstance(error, kind))
    return JSONResponse({"detail": str(error), "reason": getattr(error, "reason", "refused")}, status_code=code)


async def _not_found(_request: Request, error: Exception) -> JSONResponse:
    headers = NO_STORE if isinstance(error, cards.SharedCardNotFoundError) else {}
    return JSONResponse({"detail": str(error)}, status_code=status.HTTP_404_NOT_FOUND, headers=headers)


def install(app: FastAPI) -> None:
    """Refusals answer with their status, the message and a `reason` for programs; unknown cards with 404."""
    for kind in REFUSALS:
        app.add_exception_handler(kind, _refused)
    for missing in (cards.CardNotFoundError, cards.SharedCardNotFoundError):
        app.add_exception_handler(missing, _not_found)


def router(
    store: Callable[[], PointsStore],
    authenticate: Callable[..., Principal],
    clock: Callable[[], dt.datetime],
    zone: ZoneInfo,
    programme: str,
    topic_prefix: str,
) -> APIRouter:
    api = APIRouter()
    Caller = Annotated[Principal, Depends(authenticate)]
    Store = Annotated[PointsStore, Depends(store)]
    MemberRef = Annotated[str, Path(description="A member id, or `me` for the caller's own.")]

    @api.get(
        "/v1/members/{member_ref}/daily-earnings", response_model=DailyEarningsOut, responses=READ_RESPONSES,
        tags=["members"],
    )  # fmt: skip
    async def daily_earnings(
        member_ref: MemberRef, caller: Caller, points: Store,
        days: Annotated[int, Query(ge=2, le=WINDOW_DAYS, description="How many days, today included.")] = 7,
    ) -> dict[str, Any]:  # fmt: skip
        """What the member earned each day (in the programme's zone) by source, and its month to date and lifetime
        totals. A day counts the points that reached the member that day, minus the refunds posted that day."""
        return await earnings.member_earnings(points, resolve_member(caller, member_ref), days, clock(), zone)

    @api.post(
        "/v1/members/me/share-cards", status_code=status.HTTP_201_CREATED, response_model=MadeCardOut,
        tags=["members"],
        responses={
            200: {"description": "The card_id was sent before: the card, without its token."},
            400: {"description": "Not a member's token."},
            409: {"description": f"{MAX_LIVE_CARDS} live cards already, or the card_id names another card."},
            422: {"description": "A day out of range or without points, or a display name that cannot be shown."},
        },
    )  # fmt: skip
    async def make_card(body: ShareCardIn, caller: Caller, points: Store, response: Response) -> dict[str, Any]:
        """Make a card of one day's points that anyone with its link can see: the day's net points, the sources if
        asked, the display name if given; never the balance or any identifier. The link is shown once, here."""
        member = resolve_member(caller, "me")
        request = cards.CardRequest(body.card_id or uuid.uuid4(), body.date, body.display_name, body.show_sources)
        made = await cards.make_card(points, member, request, clock(), zone)
        if made.url_token is None:
            response.status_code = status.HTTP_200_OK
        response.headers.update(NO_STORE)
        return _card_out(made.card) | {"url_token": made.url_token}

    @api.get("/v1/members/me/share-cards", response_model=ShareCardsOut, tags=["members"])
    async def list_cards(caller: Caller, points: Store) -> dict[str, Any]:
        """The member's live cards, newest first. Their links are not kept: a member who lost one makes another."""
        items = await cards.live_cards(points, resolve_member(caller, "me"))
        return {"items": [_card_out(c) for c in items]}

    @api.delete(
        "/v1/members/me/share-cards/{card_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["members"],
        responses={404: {"description": "The member has no such card."}},
    )  # fmt: skip
    async def revoke(card_id: uuid.UUID, caller: Caller, points: Store) -> Response:
        """Revoke a card: its link answers 404 from now on. Revoking again changes nothing."""
        await cards.revoke_card(points, resolve_member(caller, "me"), card_id, clock())
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @api.get(
        "/v1/share-cards/{token}", response_model=SharedCardOut, tags=["share cards"],
        responses={404: {"description": "No live card at this link (never made, or revoked: the same answer)."}},
    )  # fmt: skip
    async def shared(token: str, points: Store, response: Response) -> dict[str, Any]:
        """A share card, for anyone holding its link (no token needed): only what its member chose to show."""
        card = await cards.shared_card(points, token)
        response.headers.update(NO_STORE | {"X-Robots-Tag": "noindex"})
        return {"programme": programme, "date": card["day"], "points": card["points"],
                "display_name": card["display_name"], "sources": card["sources"]}  # fmt: skip

    @api.post(
        "/v1/ops/daily-summaries", response_model=SummaryRunOut, tags=["ops"],
        responses={422: {"description": "The day is not over yet (today, a day to come, or just after midnight)."}},
    )  # fmt: skip
    async def summarise(
        caller: Caller, points: Store,
        date: Annotated[dt.date, Query(description="A finished day (YYYY-MM-DD) in the programme's zone.")],
    ) -> SummaryRunOut:  # fmt: skip
        """Summarise a finished day now (ops): one DailyEarningsSummarised per member with earnings that day and no
        summary yet. Asking again emits nothing twice."""
        require_ops(caller)
        topic = earnings.earnings_topic(topic_prefix)
        run = await earnings.summarise_day_now(points, topic, date, zone, clock, requested_by_ops(caller.subject))
        return SummaryRunOut(date=run.day, time_zone=zone.key, members=run.members, emitted=run.emitted)

    return api


def _card_out(card: dict[str, Any]) -> dict[str, Any]:
    return {"card_id": card["card_id"], "date": card["day"], "display_name": card["display_name"],
            "points": card["points"], "sources": card["sources"], "created_at": card["created_at"]}  # fmt: skip
