"""Members' tiers as the points service decides them (services/points/points/domain/tiers.py).

Every change of a member's tier is one TierChanged, in order per member (the topic is keyed by member id):
an upgrade, a downgrade at a review, and a review that keeps the tier for another period (`confirmed`,
`from_tier` = `to_tier`). A member that never changed is at the tier set's base tier (its first tier, when
its threshold is 0) without any event. The topic is kept forever, so that a new consumer rebuilds every
member's tier from its start: the latest event of a member (by `changed_at`) is its tier.
"""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import Field

from contracts.envelope import Contract, Event, UtcDatetime
from contracts.ids import TierCode

TierDirection = Literal["upgrade", "downgrade", "confirmed"]
TierReason = Literal["qualified", "review_confirmed", "review_downgraded", "tier_set_changed"]


class TierChangedPayload(Contract):
    member_id: uuid.UUID
    from_tier: TierCode | None = Field(description="The tier before; null when the member had none.")
    to_tier: TierCode | None = Field(description="The tier now; null when the member has none any more.")
    direction: TierDirection = Field(description="upgrade, downgrade, or confirmed (the same tier for another period).")
    reason: TierReason = Field(
        description="qualified: its qualifying points reached the tier; review_confirmed / review_downgraded: the "
        "review at the end of its period; tier_set_changed: a new tier set made its points reach a higher tier."
    )
    qualifying_points: int = Field(ge=0, description="The qualifying points that decided it.")
    valid_until: UtcDatetime | None = Field(
        description="Until when the new tier holds before its next review: the end of the last day of its period "
        "in the programme's time zone. Null for the base tier, which is never reviewed, and for no tier."
    )
    changed_at: UtcDatetime = Field(description="When the tier changed; the latest change of a member wins.")
    tier_set_version: int = Field(ge=1, description="The version of the tier set that decided it.")
    review_at: UtcDatetime | None = Field(
        default=None,
        description="When the review is due: `valid_until` plus the tier set's grace period as it stood then.",
    )


class TierChanged(Event):
    """A member's tier changed (or was confirmed at its review); keyed by member id."""

    type: Literal["TierChanged"] = "TierChanged"
    version: Literal[1] = 1
    payload: TierChangedPayload
