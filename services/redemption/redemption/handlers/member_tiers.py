"""Keep each member's tier as the points service announces it, for the catalog's member prices."""

from __future__ import annotations

from collections.abc import Sequence

from contracts.envelope import Event
from contracts.events.tiers import TierChanged
from loyalty_runtime.inbox import first_copies
from redemption.adapters.member_tiers_store import MemberTiersStore
from redemption.domain.prices import TierNews, latest_per_member


class NotATierEventError(ValueError):
    """A message on the tiers topic that is no TierChanged; it goes to the dead-letter topic."""


def to_news(event: Event) -> TierNews:
    """What a tier event means to the catalog; raises NotATierEventError for another kind of event."""
    if not isinstance(event, TierChanged):
        raise NotATierEventError(f"member tiers come from TierChanged events, not {type(event).__name__}")
    p = event.payload
    return TierNews(event.event_id, p.member_id, p.to_tier, p.changed_at)


async def apply_tier_batch(store: MemberTiersStore, topic: str, news: Sequence[TierNews]) -> int:
    """One transaction: the inbox claim, then the latest change of each member; an older one changes nothing.

    Returns how many members' rows it offered to update.
    """
    async with store.transaction() as tx:
        fresh = await tx.claim_inbox(topic, [n.event_id for n in news])
        latest = latest_per_member(first_copies(news, fresh, lambda n: n.event_id))
        await tx.save(latest)
    return len(latest)
