"""Share cards (points/domain/share_cards.py): made, listed and revoked by their member, read via their link."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from points.adapters.daily_earnings import EarningsSql, NewCard
from points.adapters.store import PointsStore
from points.domain.daily_earnings import tally
from points.domain.days import day_of, day_window
from points.domain.share_cards import (
    MAX_LIVE_CARDS,
    TOKEN_BYTES,
    CardIdReusedError,
    NothingToShareError,
    TooManyCardsError,
    check_day,
    display_name,
    looks_like_token,
    token_sha256,
)
from points.handlers.members import MemberNotFoundError


class CardNotFoundError(LookupError):
    def __init__(self, card_id: uuid.UUID) -> None:
        super().__init__(f"you have no share card {card_id}")


class SharedCardNotFoundError(LookupError):
    """Unknown and revoked links answer alike, so a link says nothing about cards that were."""

    def __init__(self) -> None:
        super().__init__("no share card at this link: it may have been revoked by its owner")


@dataclass(frozen=True)
class CardRequest:
    card_id: uuid.UUID
    """Chosen by the client: sending the same card again makes it once."""
    day: date
    display_name: str | None
    show_sources: bool


@dataclass(frozen=True)
class MadeCard:
    card: dict[str, Any]
    url_token: str | None
    """The link's token, only when this request made the card (it is never stored, so never shown again)."""


async def make_card(
    store: PointsStore, member_id: uuid.UUID, request: CardRequest, now: datetime, zone: ZoneInfo
) -> MadeCard:
    """Freeze the day's net points (and sources, if asked) into a new card; a repeat of its card_id answers the card
    without its token."""
    check_day(request.day, day_of(now, zone))
    name = display_name(request.display_name)
    if not await store.member_exists(member_id):
        raise MemberNotFoundError(member_id)
    async with store.transaction() as tx:
        sql = EarningsSql(tx.conn)
        await sql.lock_members_cards(member_id)
        existing = await sql.card(request.card_id)
        if existing is not None:
            return MadeCard(_same_card(existing, member_id, request, name), None)
        if await sql.live_cards_count(member_id) >= MAX_LIVE_CARDS:
            raise TooManyCardsError()
        start, end = day_window(request.day, zone)
        earnings = tally(request.day, (await sql.movements([member_id], start, end))[member_id])
        if earnings.net <= 0:
            raise NothingToShareError(request.day, earnings.net)
        token = secrets.token_urlsafe(TOKEN_BYTES)
        card = NewCard(
            request.card_id, member_id, token_sha256(token), request.day, start, end, name, earnings.net,
            earnings.sources_earned if request.show_sources else None, now,
        )  # fmt: skip
        await sql.insert_card(card)
    return MadeCard(_shown(card), token)


def _same_card(
    existing: dict[str, Any], member_id: uuid.UUID, request: CardRequest, name: str | None
) -> dict[str, Any]:
    """The card a repeated request made; refused when the card_id names another card (or another member's)."""
    same = (
        existing["member_id"] == member_id and existing["day"] == request.day and existing["display_name"] == name
        and (existing["sources"] is not None) == request.show_sources and existing["revoked_at"] is None
    )  # fmt: skip
    if not same:
        raise CardIdReusedError()
    return {k: existing[k] for k in ("card_id", "day", "display_name", "points", "sources", "created_at")}


def _shown(card: NewCard) -> dict[str, Any]:
    sources = None if card.sources is None else {s.value: n for s, n in card.sources.items()}
    return {"card_id": card.card_id, "day": card.day, "display_name": card.display_name, "points": card.points,
            "sources": sources, "created_at": card.created_at}  # fmt: skip


async def live_cards(store: PointsStore, member_id: uuid.UUID) -> list[dict[str, Any]]:
    """The member's cards not revoked, newest first (without their links: those were shown once)."""
    if not await store.member_exists(member_id):
        raise MemberNotFoundError(member_id)
    async with store.pool.acquire() as conn:
        return await EarningsSql(conn).live_cards(member_id, MAX_LIVE_CARDS)


async def revoke_card(store: PointsStore, member_id: uuid.UUID, card_id: uuid.UUID, now: datetime) -> None:
    """Revoke one of the member's cards (again: nothing changes); another member's card is not found."""
    async with store.pool.acquire() as conn:
        if not await EarningsSql(conn).revoke_card(card_id, member_id, now):
            raise CardNotFoundError(card_id)


async def shared_card(store: PointsStore, token: str) -> dict[str, Any]:
    """What a live card's link shows; SharedCardNotFoundError for anything else, malformed tokens included."""
    if not looks_like_token(token):
        raise SharedCardNotFoundError()
    async with store.pool.acquire() as conn:
        card = await EarningsSql(conn).shared_card(token_sha256(token))
    if card is None:
        raise SharedCardNotFoundError()
    return card
