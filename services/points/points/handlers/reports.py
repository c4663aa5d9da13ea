"""Activity reports: reach, response, points and budget, and spend against the holdout."""

from __future__ import annotations

import uuid
from datetime import datetime

from points.adapters.attribution_store import AttributionReader
from points.adapters.segments import SegmentStore
from points.domain.activities import budget_account
from points.domain.reports import ActivityReport, measurement_window, spend_by_currency
from points.handlers.activities import ActivityNotFoundError


async def activity_report(store: SegmentStore, activity_id: uuid.UUID, now: datetime) -> ActivityReport:
    """Every figure read from one snapshot, so that they agree with each other."""
    async with store.snapshot() as read:
        activity = await read.activity(activity_id, budget_account(activity_id))
        if activity is None:
            raise ActivityNotFoundError(activity_id)
        window = measurement_window(await read.versions(activity_id), now)
        targeted, holdout, responded = await read.groups(activity_id)
        totals = await read.group_spend(activity_id, window.start, window.end) if window else []
        by_channel = AttributionReader(read.conn)  # per-channel response of the messaged members and the holdout
        channels = await by_channel.channel_groups(activity_id, window.start, window.end) if window else []
    return ActivityReport(
        activity_id=activity_id,
        name=activity["name"],
        kind=activity["kind"],
        holdout_share=activity["holdout_share"],
        generated_at=now,
        window=window,
        targeted=targeted,
        holdout=holdout,
        responded=responded,
        members_granted=activity["members_granted"],
        points_granted=activity["points_granted"],
        points_reversed=activity["points_reversed"],
        packet_points=activity["packet_points"],
        packet_points_returned=activity["packet_points_returned"],
        budget_points=activity["budget_points"],
        budget_left=activity["budget_left"],
        spend=spend_by_currency(targeted, holdout, responded, totals),
        channels=tuple(channels),
    )
