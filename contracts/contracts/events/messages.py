"""Targeted messages for the bank's messaging systems (app push, SMS, WeChat, branch staff).

When a reward activity aimed at a segment starts, the points service writes one MemberMessaged per
targeted member (never for a member of the holdout) into its outbox, keyed by member id. The event says
what to tell the member and on which channel; the messaging system delivers it and posts back what
happened (POST /v1/messages/callbacks on the points service, signed as contracts.signing describes, with
the programme's messaging secret): delivered, opened, clicked or failed, by `message_id`.

`message_id` derives from the activity and the member, so an activity messages a member at most once,
whoever sends it and however often: a consumer that sees the same message_id again drops it.
"""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import Field

from contracts.envelope import Contract, Event, UtcDatetime
from contracts.events.attribution import AttributionId, MessageChannel


class MemberMessagedPayload(Contract):
    message_id: uuid.UUID = Field(description="One per activity and member; the key of the callbacks.")
    member_id: uuid.UUID
    activity_id: uuid.UUID
    channel: MessageChannel = Field(
        description="The member's preferred channel, else the one it answered best, else the programme's default."
    )
    campaign_ref: AttributionId = Field(description="The campaign the message belongs to (the activity's).")
    template: str = Field(
        min_length=1, max_length=64, description="Which message this is, for the messaging system's own wording."
    )
    title: str = Field(min_length=1, max_length=200, description="The activity's name.")
    body: str = Field(min_length=1, max_length=500, description="What the activity offers; never a balance.")
    deep_link: str = Field(min_length=1, max_length=500, description="The wallet page of the activity.")
    expires_at: UtcDatetime = Field(description="When the activity ends: after that the message is no longer true.")


class MemberMessaged(Event):
    """A targeted member is to be told about an activity, on one channel."""

    type: Literal["MemberMessaged"] = "MemberMessaged"
    version: Literal[1] = 1
    payload: MemberMessagedPayload
