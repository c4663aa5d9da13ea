"""Daily earnings: a member's recent days and running totals, and the summary of each finished day.

The summary of a day runs in chunks of members, each chunk one transaction: its summaries are inserted with
ON CONFLICT DO NOTHING and only the rows that are new put their DailyEarningsSummarised in the outbox, in the same
transaction. So two points processes, a restart half-way or ops asking for the same day again emit each member's
summary of a day once.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from contracts.events.earnings import DailyEarningsPayload, DailyEarningsSummarised, PointsBySource
from contracts.topics import DAILY_EARNINGS
from loyalty_runtime.outbox import OutboxMessage
from loyalty_runtime.telemetry import inject_context
from points.adapters.daily_earnings import EarningsSql
from points.adapters.store import PointsStore
from points.domain.daily_earnings import (
    MOST_DAYS_BEHIND,
    DayEarnings,
    DaySummary,
    by_day,
    days_to_summarise,
    is_finished,
    latest_finished_day,
    month_start,
    recent_days,
    tally,
    totals,
)
from points.domain.days import day_of, day_window
from points.handlers.members import MemberNotFoundError

SOURCE = "points"
SCHEDULER = "scheduler"
CHUNK = 500
"""Members per transaction of a summary."""
DISCOVERY_PAGE = 20 * CHUNK
"""Members found per read of a day's transfers (each read scans the day once)."""
log = logging.getLogger(__name__)


class DayNotFinishedError(Exception):
    """A day that cannot be summarised yet: today, a day to come, or the minutes just after midnight."""

    reason = "day_not_finished"

    def __init__(self, day: date, zone: ZoneInfo) -> None:
        super().__init__(
            f"{day.isoformat()} is not over in {zone.key} yet: a day is summarised from 00:05 of the next day"
        )


# --- what a member reads -------------------------------------------------------------------------------------


def day_json(earnings: DayEarnings) -> dict[str, Any]:
    return {
        "date": earnings.day, "earned": earnings.earned, "taken_back": earnings.taken_back, "net": earnings.net,
        "by_source": {s.value: n for s, n in earnings.by_source.items()}, "by_partner": dict(earnings.by_partner),
    }  # fmt: skip


async def member_earnings(
    store: PointsStore, member_id: uuid.UUID, days: int, now: datetime, zone: ZoneInfo
) -> dict[str, Any]:
    """The member's last `days` days (newest first, today included), its month to date and lifetime, from one
    snapshot of the ledger."""
    if not await store.member_exists(member_id):
        raise MemberNotFoundError(member_id)
    today = day_of(now, zone)
    wanted = recent_days(today, days)
    start, end = day_window(wanted[-1], zone)[0], day_window(today, zone)[1]
    async with store.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        sql = EarningsSql(conn)
        moved = (await sql.movements([member_id], start, end))[member_id]
        baseline = (await sql.baselines([member_id], today)).get(member_id)
        since = await sql.sums({member_id: baseline.as_of if baseline else None}, end)
        month = await sql.sums({member_id: day_window(month_start(today), zone)[0]}, end)
    running = totals(baseline, since[member_id], month[member_id])
    return {
        "member_id": member_id, "time_zone": zone.key, "as_of": now,
        "days": [day_json(d) for d in by_day(moved, wanted, zone)],
        "totals": {"month_to_date": running.month_to_date, "lifetime": running.lifetime},
    }  # fmt: skip


# --- the summary of finished days ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DayRun:
    day: date
    members: int
    """Members found with earnings that had no summary of the day yet."""
    emitted: int
    """DailyEarningsSummarised this run put in the outbox (another process may have emitted some of the others)."""


def summary_event(summary: DaySummary, zone: ZoneInfo, topic: str) -> OutboxMessage:
    e = summary.earnings
    event = DailyEarningsSummarised(
        event_id=summary.event_id, occurred_at=summary.ends_at, source=SOURCE, correlation_id=summary.event_id,
        payload=DailyEarningsPayload(
            member_id=summary.member_id, date=e.day, time_zone=zone.key, earned=e.earned, taken_back=e.taken_back,
            net=e.net, by_source=PointsBySource(**{s.value: n for s, n in e.by_source.items()}),
            month_to_date=summary.totals.month_to_date, lifetime=summary.totals.lifetime,
        ),
    )  # fmt: skip
    return OutboxMessage(topic, str(summary.member_id), event.model_dump_json().encode(), inject_context({}))


async def summarise_chunk(
    store: PointsStore, topic: str, day: date, zone: ZoneInfo, members: Sequence[uuid.UUID], at: datetime
) -> int:
    """Summarise the day of these members in one transaction; returns how many summaries were new (and emitted)."""
    start, end = day_window(day, zone)
    async with store.transaction() as tx:
        sql = EarningsSql(tx.conn)
        moved = await sql.movements(members, start, end)
        baselines = await sql.baselines(members, day)
        since = await sql.sums({m: b.as_of if (b := baselines.get(m)) else None for m in members}, end)
        month = await sql.sums(dict.fromkeys(members, day_window(month_start(day), zone)[0]), end)
        summaries = [
            DaySummary(m, earnings, totals(baselines.get(m), since[m], month[m]), start, end)
            for m in members
            if (earnings := tally(day, moved[m])).any
        ]
        new = await sql.insert_summaries(summaries, at)
        await tx.enqueue([summary_event(s, zone, topic) for s in summaries if s.member_id in new])
    return len(new)


async def summarise_day(
    store: PointsStore, topic: str, day: date, zone: ZoneInfo, clock: Callable[[], datetime], requested_by: str
) -> DayRun:
    """Summarise every member with earnings on `day` not summarised yet, chunk by chunk; then record the day."""
    start, end = day_window(day, zone)
    after, found, emitted = uuid.UUID(int=0), 0, 0
    while True:
        async with store.pool.acquire() as conn:
            page = await EarningsSql(conn).unsummarised_members(day, start, end, after, DISCOVERY_PAGE)
        for first in range(0, len(page), CHUNK):
            emitted += await summarise_chunk(store, topic, day, zone, page[first : first + CHUNK], clock())
        found += len(page)
        if page:
            log.info("daily summaries", extra={"day": day.isoformat(), "members": found, "emitted": emitted})
        if len(page) < DISCOVERY_PAGE:
            break
        after = page[-1]
    async with store.pool.acquire() as conn:
        await EarningsSql(conn).finish_day(day, zone.key, clock(), requested_by)
    return DayRun(day, found, emitted)


async def summarise_finished_days(
    store: PointsStore, topic: str, zone: ZoneInfo, clock: Callable[[], datetime]
) -> list[DayRun]:
    """The scheduler's run: every finished day not summarised yet (only yesterday the first time)."""
    now = clock()
    async with store.pool.acquire() as conn:
        first, done = await EarningsSql(conn).days_done(latest_finished_day(now, zone) - timedelta(MOST_DAYS_BEHIND))
    runs = []
    for day in days_to_summarise(now, zone, first, done):
        run = await summarise_day(store, topic, day, zone, clock, SCHEDULER)
        log.info("day summarised", extra={"day": day.isoformat(), "members": run.members, "emitted": run.emitted})
        runs.append(run)
    return runs


async def summarise_day_now(
    store: PointsStore, topic: str, day: date, zone: ZoneInfo, clock: Callable[[], datetime], requested_by: str
) -> DayRun:
    """Ops ask for one finished day now; refused for today, a day to come, or just after midnight."""
    if not is_finished(day, clock(), zone):
        raise DayNotFinishedError(day, zone)
    return await summarise_day(store, topic, day, zone, clock, requested_by)


def earnings_topic(prefix: str) -> str:
    return DAILY_EARNINGS.qualified(prefix)
