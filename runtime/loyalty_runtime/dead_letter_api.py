"""Ops API of a service's dead letters: list, show, replay. Every service mounts it (ServiceShell).

No `from __future__ import annotations` here: FastAPI must resolve the local `Ops` alias in the signatures.
"""

import base64
import datetime as dt
import uuid
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from loyalty_runtime import dead_letters
from loyalty_runtime.auth import Principal
from loyalty_runtime.dead_letters import DeadLetter, DeadLetterStore, letter_id

MAX_PAGE = 500


class DeadLetterOut(BaseModel):
    id: str = Field(description="`<service>:<number>`, as in the record's dlq-id header.")
    number: int
    service: str
    topic: str
    partition: int
    offset: int
    key: str | None
    event_id: uuid.UUID | None
    event_type: str | None
    reason: str
    error_class: str
    dead_at: dt.datetime
    replays: int
    last_replayed_at: dt.datetime | None


class DeadLetterDetail(DeadLetterOut):
    value: str = Field(description="The record's value: its text when it is UTF-8, else base64 (see value_encoding).")
    value_encoding: str = Field(description="`utf-8` or `base64`.")
    headers: dict[str, str]


class DeadLetterPage(BaseModel):
    items: list[DeadLetterOut]
    next_before: int | None = Field(description="Pass as `before` for the next (older) page; null on the last.")


class TopicCount(BaseModel):
    topic: str
    total: int
    waiting: int = Field(description="Dead letters never replayed.")
    newest: dt.datetime


class DeadLetterSummary(BaseModel):
    service: str
    topics: list[TopicCount]


class ReplayTopic(BaseModel):
    model_config = ConfigDict(extra="forbid")

    topic: str = Field(min_length=1, max_length=249, description="The original topic, as in the list.")
    include_replayed: bool = Field(default=False, description="Also those replayed before (the inbox drops repeats).")


class Replayed(BaseModel):
    replayed: list[str] = Field(description="Ids of the dead letters written back to their original topics.")


def _out(service: str, letter: DeadLetter) -> DeadLetterOut:
    listed = {k: v for k, v in vars(letter).items() if k not in ("id", "value", "headers")}
    return DeadLetterOut(id=letter_id(service, letter.id), number=letter.id, service=service, **listed)


def _detail(service: str, letter: DeadLetter) -> DeadLetterDetail:
    try:
        value, encoding = letter.value.decode(), "utf-8"
    except UnicodeDecodeError:
        value, encoding = base64.b64encode(letter.value).decode(), "base64"
    return DeadLetterDetail(
        **_out(service, letter).model_dump(), value=value, value_encoding=encoding, headers=letter.headers or {}
    )


def router(service: str, store: Callable[[], DeadLetterStore], ops: Callable[..., Principal]) -> APIRouter:
    api = APIRouter(prefix="/v1/ops/dead-letters", tags=["dead letters"])
    Ops = Annotated[Principal, Depends(ops)]

    @api.get("", summary="Dead letters, newest first, by topic, reason and time")
    async def list_letters(
        _caller: Ops,
        topic: str | None = None,
        reason: Annotated[str | None, Query(max_length=200, description="Part of the reason or error class.")] = None,
        since: AwareDatetime | None = None,
        until: AwareDatetime | None = None,
        waiting: Annotated[bool, Query(description="Only those never replayed.")] = False,
        before: Annotated[int | None, Query(ge=1, description="`next_before` of the previous page.")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    ) -> DeadLetterPage:
        query = dead_letters.Query(topic, reason, since, until, before, waiting, limit)
        found = await store().list(query)
        more = len(found) == limit
        return DeadLetterPage(items=[_out(service, f) for f in found], next_before=found[-1].id if more else None)

    @api.get("/summary", summary="How many dead letters each topic has, and how many wait for a replay")
    async def summary(_caller: Ops) -> DeadLetterSummary:
        topics = [TopicCount(**vars(t)) for t in await store().summary()]
        return DeadLetterSummary(service=service, topics=topics)

    @api.get("/{number}", summary="One dead letter with its value and headers", responses={404: {}})
    async def show(number: int, _caller: Ops) -> DeadLetterDetail:
        letter = await store().get(number)
        if letter is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no dead letter {letter_id(service, number)}")
        return _detail(service, letter)

    @api.post(
        "/{number}/replay", status_code=status.HTTP_202_ACCEPTED, responses={404: {}},
        summary="Write one dead letter back to its original topic, with its key and event id",
    )  # fmt: skip
    async def replay_one(number: int, _caller: Ops) -> Replayed:
        done = await store().replay([number])
        if not done:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no dead letter {letter_id(service, number)}")
        return Replayed(replayed=[letter_id(service, n) for n in done])

    @api.post(
        "/replay", status_code=status.HTTP_202_ACCEPTED,
        summary="Write every dead letter of a topic not replayed yet back to it",
    )  # fmt: skip
    async def replay_topic(body: ReplayTopic, _caller: Ops) -> Replayed:
        done = await store().replay_topic(body.topic, include_replayed=body.include_replayed)
        return Replayed(replayed=[letter_id(service, n) for n in done])

    return api
