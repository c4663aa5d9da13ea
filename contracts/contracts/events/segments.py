"""Segments' members as the points service lists them when ops publish a segment, for member prices.

A publication lists every member of the segment at `as_of`, in parts of at most MAX_MEMBERS_PER_PART member ids
(an empty segment is one part with none), all keyed by the segment id so that they stay in order. A reader
takes a publication once it has all its parts; the latest complete one (by `as_of`) is the segment's members.
"""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import Field, model_validator

from contracts.envelope import Contract, Event, UtcDatetime

MAX_MEMBERS_PER_PART = 1_000


class SegmentMembersPayload(Contract):
    segment_id: uuid.UUID
    publication_id: uuid.UUID = Field(description="One publication of the segment; its parts share it.")
    as_of: UtcDatetime = Field(description="When the segment was evaluated; a later publication replaces it.")
    members: int = Field(ge=0, description="Members of the whole publication, over all its parts.")
    part: int = Field(ge=1, description="This part's number, from 1.")
    parts: int = Field(ge=1, description="How many parts the publication has.")
    member_ids: list[uuid.UUID] = Field(max_length=MAX_MEMBERS_PER_PART)

    @model_validator(mode="after")
    def _consistent(self) -> SegmentMembersPayload:
        if self.part > self.parts:
            raise ValueError(f"part {self.part} of {self.parts}: a part cannot come after the last")
        return self


class SegmentMembersListed(Event):
    """A part of the members of a segment that ops published."""

    type: Literal["SegmentMembersListed"] = "SegmentMembersListed"
    version: Literal[1] = 1
    payload: SegmentMembersPayload
