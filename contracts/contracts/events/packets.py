"""Red packets: created, grabbed, and what was left returned to its source (points/domain/packets.py).

The points themselves move as ledger transfers (loyalty.ledger-transfers.v1, reasons `red_packet_funding`,
`red_packet_grab`, `red_packet_return`); these events tell the packet's story, keyed by the packet.
"""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import Field

from contracts.envelope import Contract, Event, UtcDatetime


class RedPacketCreatedPayload(Contract):
    packet_id: uuid.UUID
    creator_member_id: uuid.UUID | None = Field(description="The member who funded it; null for an ops packet.")
    activity_id: uuid.UUID | None = Field(description="An ops packet: the activity whose budget funded it.")
    source_account: str = Field(description="Where the points came from and where what is left goes back.")
    points: int = Field(gt=0)
    shares: int = Field(ge=1, le=1_000)
    audience: Literal["segment", "friends", "link"]
    segment_id: uuid.UUID | None = None
    expires_at: UtcDatetime = Field(description="What nobody grabbed by then goes back to the source.")


class RedPacketCreated(Event):
    """A red packet was funded and opened to its audience."""

    type: Literal["RedPacketCreated"] = "RedPacketCreated"
    version: Literal[1] = 1
    payload: RedPacketCreatedPayload


class RedPacketGrabbedPayload(Contract):
    packet_id: uuid.UUID
    member_id: uuid.UUID
    grab_id: uuid.UUID = Field(description="The cause of the grab's transfers: one per member and packet.")
    points: int = Field(gt=0, description="The member's share.")
    share_number: int = Field(ge=1, description="Which of the packet's shares (1 is drawn first).")
    shares: int = Field(ge=1)


class RedPacketGrabbed(Event):
    """A member grabbed a share of a red packet."""

    type: Literal["RedPacketGrabbed"] = "RedPacketGrabbed"
    version: Literal[1] = 1
    payload: RedPacketGrabbedPayload


class RedPacketReturnedPayload(Contract):
    packet_id: uuid.UUID
    points: int = Field(gt=0, description="What nobody grabbed.")
    to_account: str = Field(description="The packet's source: the member's account or the activity's budget.")
    reason: Literal["expired", "closed"] = Field(description="The deadline passed, or the creator closed it.")


class RedPacketReturned(Event):
    """What was left of a red packet went back to its source."""

    type: Literal["RedPacketReturned"] = "RedPacketReturned"
    version: Literal[1] = 1
    payload: RedPacketReturnedPayload
