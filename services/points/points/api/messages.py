"""Targeted messages: the messaging systems' signed callbacks, members' preferred channel, an activity's messages."""

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from contracts.events.attribution import MessageChannel
from contracts.signing import KEY_HEADER, REPLAY_WINDOW_SECONDS, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from loyalty_runtime.auth import Principal, ops_dependency, resolve_member
from points.adapters.messages_store import NO_MEMBER, MessagesStore
from points.domain.messages import MAX_CALLBACKS, Callback, CallbackEvent
from points.handlers import messages as handle
from points.handlers.messages import SignatureReplayedError

ERRORS: dict[type[Exception], int] = {SignatureReplayedError: status.HTTP_409_CONFLICT}
"""The statuses of the handlers' refusals, mapped in app.py."""

MAX_BODY_BYTES = 256 * 1024

PROTOCOL = f"""The bank's messaging systems report what became of each MemberMessaged (loyalty.member-messages.v1).

Signed as partners sign their requests (contracts/contracts/signing.py), with the programme's messaging key:
`{KEY_HEADER}` (the key id, MESSAGING_CALLBACK_KEY_ID), `{TIMESTAMP_HEADER}` (unix seconds) and
`{SIGNATURE_HEADER}`: lowercase hex HMAC-SHA256 of MESSAGING_CALLBACK_SECRET over
`POST\\n/v1/messages/callbacks\\n<timestamp>\\n<sha256 hex of the body>`. A request is accepted within
{REPLAY_WINDOW_SECONDS} s of its timestamp, and each signature once (a retry is signed anew).

The body lists 1 to {MAX_CALLBACKS} callbacks `{{message_id, event, at}}`, event one of delivered, opened, clicked,
failed, in any order: each time kept is the earliest reported, and a click counts as opened and delivered (an open
as delivered), whatever arrives first. Sending a callback again changes nothing. An unknown message id is answered
`unknown` for that item; the others are recorded.
"""


class CallbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message_id: uuid.UUID
    event: CallbackEvent
    at: AwareDatetime = Field(description="When it happened, with its offset.")


class CallbacksIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    callbacks: list[CallbackIn] = Field(min_length=1, max_length=MAX_CALLBACKS)


class CallbackResult(BaseModel):
    message_id: uuid.UUID
    status: Literal["recorded", "unknown"]


class CallbacksOut(BaseModel):
    results: list[CallbackResult]


class PreferenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: MessageChannel | None = Field(
        description="Where to be told of activities; null: let the programme choose."
    )


class PreferenceOut(BaseModel):
    member_id: uuid.UUID
    channel: str | None


class MessageOut(BaseModel):
    message_id: uuid.UUID
    member_id: uuid.UUID
    channel: str
    chosen_by: str = Field(description="preference, history (the channel it answered best) or default.")
    state: str = Field(description="sent, delivered, opened, clicked or failed: the furthest step reported.")
    sent_at: datetime
    expires_at: datetime
    delivered_at: datetime | None
    opened_at: datetime | None
    clicked_at: datetime | None
    failed_at: datetime | None


class MessagesOut(BaseModel):
    items: list[MessageOut]
    next_after: uuid.UUID | None = Field(description="Pass as `after` for the next page; null at the end.")


_BODY: TypeAdapter[CallbacksIn] = TypeAdapter(CallbacksIn)


def router(
    store: Callable[[], MessagesStore],
    authenticate: Callable[..., Principal],
    key_id: str,
    secret: str,
    clock: Callable[[], datetime],
) -> APIRouter:
    api = APIRouter(tags=["messages"])
    Caller = Annotated[Principal, Depends(authenticate)]
    Ops = Annotated[Principal, Depends(ops_dependency(authenticate))]
    Store = Annotated[MessagesStore, Depends(store)]

    async def signed_body(request: Request) -> tuple[bytes, str, int]:
        """The body, its signature and timestamp, once the signature is the messaging key's and fresh."""
        body = await _read(request)
        key, stamp, signature = (request.headers.get(h) for h in (KEY_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER))
        if not key or not stamp or not signature:
            raise _unauthorized(f"sign the request: {KEY_HEADER}, {TIMESTAMP_HEADER} and {SIGNATURE_HEADER}")
        if key != key_id:
            raise _unauthorized(f"unknown key {key[:64]!r}: sign with the programme's messaging key")
        if not stamp.isdigit() or abs(int(stamp) - int(clock().timestamp())) > REPLAY_WINDOW_SECONDS:
            raise _unauthorized(f"{TIMESTAMP_HEADER} is not within {REPLAY_WINDOW_SECONDS} s of our clock")
        if not verify(secret, request.method, request.url.path, int(stamp), body, signature):
            raise _unauthorized("the signature does not match the request")
        return body, signature, int(stamp)

    @api.post(
        "/v1/messages/callbacks", response_model=CallbacksOut, description=PROTOCOL,
        openapi_extra={"requestBody": {"required": True,
                                       "content": {"application/json": {"schema": CallbacksIn.model_json_schema()}}}},
        responses={401: {"description": "Unsigned, unknown key, stale timestamp or wrong signature."},
                   409: {"description": "This signature was already used."}, 413: {"description": "Body too large."},
                   422: {"description": "The body is not a list of callbacks."}},
    )  # fmt: skip
    async def callbacks(request: Request, messages: Store) -> CallbacksOut:
        body, signature, stamp = await signed_body(request)
        try:
            parsed = _BODY.validate_json(body)
        except ValidationError as error:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, _problems(error)) from None
        items = [Callback(c.message_id, c.event, c.at) for c in parsed.callbacks]
        signed_at = datetime.fromtimestamp(stamp, UTC)
        known = await handle.record_callbacks(messages, signature, signed_at, items)
        return CallbacksOut(
            results=[CallbackResult(message_id=c.message_id, status="recorded" if ok else "unknown")
                     for c, ok in zip(items, known, strict=True)]
        )  # fmt: skip

    @api.get("/v1/members/{member_ref}/preferences", response_model=PreferenceOut, tags=["members"])
    async def preference(member_ref: str, caller: Caller, messages: Store) -> PreferenceOut:
        """The channel the member wants to be told of activities on (null: the programme chooses)."""
        member = resolve_member(caller, member_ref)
        return PreferenceOut(member_id=member, channel=await handle.preferred_channel(messages, member))

    @api.put("/v1/members/{member_ref}/preferences", response_model=PreferenceOut, tags=["members"])
    async def set_preference(member_ref: str, body: PreferenceIn, caller: Caller, messages: Store) -> PreferenceOut:
        """The member (or ops for it) chooses its channel; null gives the choice back to the programme."""
        member = resolve_member(caller, member_ref)
        return PreferenceOut(
            member_id=member, channel=await handle.set_preferred_channel(messages, member, body.channel)
        )

    @api.get("/v1/ops/activities/{activity_id}/messages", response_model=MessagesOut, tags=["activities"])
    async def activity_messages(
        activity_id: uuid.UUID, _ops: Ops, messages: Store, after: uuid.UUID | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> MessagesOut:  # fmt: skip
        """The messages an activity sent, by message id: where each went and what the callbacks reported."""
        rows = await messages.activity_messages(activity_id, after or NO_MEMBER, limit)
        items = [MessageOut.model_validate(dict(r)) for r in rows]
        return MessagesOut(items=items, next_after=items[-1].message_id if len(items) == limit else None)

    return api


def _unauthorized(reason: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, reason)


async def _read(request: Request) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"the body is larger than {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _problems(error: ValidationError) -> list[dict[str, Any]]:
    return [{"loc": ["body", *p["loc"]], "msg": p["msg"], "type": p["type"]} for p in error.errors(include_url=False)]
