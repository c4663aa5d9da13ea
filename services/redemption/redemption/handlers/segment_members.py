"""Keep each published segment's members as the points service lists them, for the catalog's segment prices."""

from __future__ import annotations

from collections.abc import Sequence

from contracts.envelope import Event
from contracts.events.segments import SegmentMembersListed
from loyalty_runtime.inbox import first_copies
from redemption.adapters.segment_members_store import SegmentMembersStore
from redemption.domain.prices import SegmentPart


class NotASegmentEventError(ValueError):
    """A message on the segment members topic that is no SegmentMembersListed; it goes to the dead-letter topic."""


def to_part(event: Event) -> SegmentPart:
    if not isinstance(event, SegmentMembersListed):
        raise NotASegmentEventError(f"segment members come from SegmentMembersListed, not {type(event).__name__}")
    p = event.payload
    return SegmentPart(event.event_id, p.segment_id, p.publication_id, p.as_of, p.part, p.parts, tuple(p.member_ids))


async def apply_segment_batch(store: SegmentMembersStore, topic: str, parts: Sequence[SegmentPart]) -> int:
    """One transaction: the inbox claim, then each new part; returns how many parts were new."""
    async with store.transaction() as tx:
        fresh = await tx.claim_inbox(topic, [p.event_id for p in parts])
        new = first_copies(parts, fresh, lambda p: p.event_id)
        await tx.add_parts(new)
    return len(new)
