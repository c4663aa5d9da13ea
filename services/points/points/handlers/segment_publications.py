"""Ops publish a segment for member prices: its members now, listed in parts on loyalty.segment-members.v1."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from contracts.events.segments import MAX_MEMBERS_PER_PART, SegmentMembersListed, SegmentMembersPayload
from loyalty_runtime.outbox import OutboxMessage
from loyalty_runtime.telemetry import inject_context
from points.adapters.segment_publications import Publication, PublicationStore
from points.adapters.segments import SegmentStore
from points.handlers.segments import get_segment

SOURCE = "points"


def parts_of(member_ids: Sequence[uuid.UUID]) -> list[Sequence[uuid.UUID]]:
    """The members in parts of at most MAX_MEMBERS_PER_PART; an empty segment is one empty part."""
    return [member_ids[i : i + MAX_MEMBERS_PER_PART] for i in range(0, len(member_ids), MAX_MEMBERS_PER_PART)] or [[]]


def listed(topic: str, publication: Publication, member_ids: Sequence[uuid.UUID]) -> list[OutboxMessage]:
    """One SegmentMembersListed per part, keyed by the segment, each with an id derived from its part."""
    parts = parts_of(member_ids)
    messages = []
    for number, part in enumerate(parts, start=1):
        event_id = uuid.uuid5(publication.publication_id, f"part:{number}")
        payload = SegmentMembersPayload(
            segment_id=publication.segment_id, publication_id=publication.publication_id, as_of=publication.as_of,
            members=len(member_ids), part=number, parts=len(parts), member_ids=list(part),
        )  # fmt: skip
        event = SegmentMembersListed(event_id=event_id, occurred_at=publication.as_of, source=SOURCE,
                                     correlation_id=publication.publication_id, payload=payload)  # fmt: skip
        messages.append(OutboxMessage(topic, str(publication.segment_id), event.model_dump_json().encode(),
                                      inject_context({})))  # fmt: skip
    return messages


async def publish_segment(
    segments: SegmentStore, publications: PublicationStore, topic: str, segment_id: uuid.UUID, by: str, now: datetime
) -> Publication:
    """The segment's members now, recorded and listed in one transaction (one snapshot of the ledger)."""
    segment = await get_segment(segments, segment_id)
    async with publications.transaction() as tx:
        members = await tx.members(segment.rules, now)
        publication = Publication(uuid.uuid4(), segment_id, now, len(members), len(parts_of(members)), by,
                                  segment.name)  # fmt: skip
        await tx.record(publication)
        await tx.enqueue(listed(topic, publication, members))
    return publication


async def latest_publications(publications: PublicationStore) -> list[Publication]:
    return await publications.latest()
