"""Share links (made, read, opened, listed), claims' attribution, and the attribution report."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from points.adapters.attribution_store import AttributionStore, StoredLink
from points.domain.attribution import (
    Attribution,
    AttributionReport,
    AttributionRuleError,
    ChannelCohort,
    Grouping,
    Period,
    Sharer,
    ShareTarget,
    attribution_rows,
    incremental_by_channel,
    new_share_link,
    open_day,
    open_minute,
)
from points.domain.reports import measurement_window
from points.handlers.activities import ActivityNotFoundError

CLAIM_WITHIN = timedelta(hours=1)
"""How long after an anonymous open the member who signs in may claim it as its own."""


class ShareLinkNotFoundError(LookupError):
    def __init__(self) -> None:
        super().__init__("no share link has this code: ask whoever shared it for the link again")


class LinkIdReusedError(ValueError):
    def __init__(self, link_id: uuid.UUID) -> None:
        super().__init__(
            f"link_id {link_id} already names another share link (made by someone else, or for another target); "
            "send a new link_id, or the original request unchanged to read that link again"
        )


async def create_share_link(
    store: AttributionStore, link_id: uuid.UUID, sharer: Sharer, target: ShareTarget, channel: str | None,
    campaign_ref: str | None, window_days: int, now: datetime,
) -> tuple[StoredLink, bool]:  # fmt: skip
    """(the link, whether it is new); the same link id and request again answers the link made the first time."""
    if target.activity_id is not None and not await store.activity_exists(target.activity_id):
        raise ActivityNotFoundError(target.activity_id)
    link = new_share_link(link_id, secrets.token_urlsafe(16), sharer, target, channel, campaign_ref, window_days, now)
    stored = await store.insert_link(link)
    if stored.link.request_sha256 != link.request_sha256:
        raise LinkIdReusedError(link_id)
    return stored, stored.link.code == link.code


async def read_share_link(store: AttributionStore, code: str) -> StoredLink:
    found = await store.link(code)
    if found is None:
        raise ShareLinkNotFoundError()
    return found


async def open_share_link(
    store: AttributionStore, code: str, member_id: uuid.UUID | None, claim: uuid.UUID | None, now: datetime,
    zone: ZoneInfo, per_minute: int,
) -> tuple[StoredLink, uuid.UUID | None]:  # fmt: skip
    """The link and the open kept for it: a new one, the member's earlier one of today, an anonymous one it just
    claimed, or None when the link's opens of this minute reached the limit (a flood: it is answered all the same)."""
    link = await read_share_link(store, code)
    kept = await store.record_open(
        code, uuid.uuid4(), now, open_day(now, zone), member_id, claim, per_minute, open_minute(now), CLAIM_WITHIN
    )
    return link, kept


async def check_attribution(store: AttributionStore, attribution: Attribution | None) -> None:
    """A claim's attribution may name a share link only by a code that exists."""
    code = attribution.share_code if attribution is not None else None
    if code is not None and not await store.link_exists(code):
        raise AttributionRuleError("attribution.share_code names no share link: send the code of the link followed")


async def attribution_report(
    store: AttributionStore, grouping: Grouping, period: Period, now: datetime
) -> AttributionReport:
    """Every figure from one snapshot; incremental spend for the channel rows of messages against holdouts."""
    async with store.snapshot() as read:
        figures = await read.figures(grouping, period.start, period.end)
        cohorts: list[ChannelCohort] = []
        if grouping is Grouping.CHANNEL:
            for activity_id in await read.messaged_activities_with_holdout(period.start, period.end):
                window = measurement_window(await read.versions(activity_id), now)
                if window is not None:
                    cohorts += await read.channel_cohorts(activity_id, window.start, window.end)
    return AttributionReport(grouping, period, now, attribution_rows(figures, incremental_by_channel(cohorts)))
