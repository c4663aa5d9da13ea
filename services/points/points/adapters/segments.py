"""Segments in SQL: rules compiled to one parameterised query, targets frozen, activity reports read.

A value from a rule never enters the SQL text: each one is a `$n` parameter. The text holds only
expressions this module chooses by condition kind (see points/domain/segments.py for what each means).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import asyncpg
import orjson

from points.domain.reports import VersionSpan
from points.domain.segments import (
    CardUsage,
    Inactive,
    LastActivity,
    MemberList,
    PartnersUsed,
    SegmentRules,
    Spend,
    TierIs,
    window_since,
)

# A purchase's net spend, channel and partner; older rows without channel or partner derive them
# from the identifier ('card:<token>', 'partner:<partner>:<customer ref>').
NET = "(e.amount_minor - e.refunded_minor)"
CHANNEL = "COALESCE(e.channel, CASE WHEN e.identifier LIKE 'card:%' THEN 'card' ELSE 'partner' END)"
PARTNER = "COALESCE(e.partner_id, CASE WHEN e.identifier LIKE 'partner:%' THEN split_part(e.identifier, ':', 2) END)"

# A member's tier at a moment: its latest change by then; without one, the base tier of the tier set then.
TIER_AT = (
    "(COALESCE((SELECT ARRAY[h.to_tier] FROM tier_history h WHERE h.member_id = m.member_id AND h.at <= {at} "
    "ORDER BY h.at DESC, h.seq DESC LIMIT 1), "
    "ARRAY[(SELECT s.base_code FROM tier_sets s WHERE s.effective_from <= {at} ORDER BY s.version DESC LIMIT 1)]))[1]"
)

SAMPLE = """
SELECT count(*) OVER () AS matched, seg.member_id FROM ({members}) seg ORDER BY seg.member_id LIMIT {limit}
"""

FREEZE_TARGETS = """
WITH targets AS (
    INSERT INTO activity_targets (activity_id, member_id, holdout)
    SELECT $1::uuid, seg.member_id,
           (hashtextextended(CAST($1::uuid AS text) || seg.member_id::text, 0) & 1023) < $2::numeric * 1024
    FROM ({members}) seg
    RETURNING holdout
)
SELECT count(*) FILTER (WHERE NOT holdout) AS targeted, count(*) FILTER (WHERE holdout) AS held_out FROM targets
"""

INSERT_SEGMENT = """
INSERT INTO segments (segment_id, name, rules) VALUES ($1, $2, $3::jsonb)
ON CONFLICT (segment_id) DO NOTHING RETURNING segment_id, name, rules, created_at
"""

SEGMENT = "SELECT segment_id, name, rules, created_at FROM segments WHERE segment_id = $1"

SEGMENTS_PAGE = """
SELECT segment_id, name, rules, created_at FROM segments
WHERE (created_at, segment_id) < ($1, $2) ORDER BY created_at DESC, segment_id DESC LIMIT $3
"""

ACTIVITY = """
SELECT a.activity_id, a.name, a.kind, a.budget_points, a.points_granted, a.points_reversed, a.holdout_share,
       a.packet_points, a.packet_points_returned,
       (SELECT b.credits_posted - b.debits_posted FROM accounts b WHERE b.account_id = $2) AS budget_left,
       (SELECT count(*) FROM activity_members m WHERE m.activity_id = a.activity_id AND m.grants > 0)
           AS members_granted
FROM activities a WHERE a.activity_id = $1
"""

ACTIVITY_VERSIONS = """
SELECT state, effective_from, window_start, window_end FROM activity_versions WHERE activity_id = $1 ORDER BY version
"""

TARGET_GROUPS = """
SELECT count(*) FILTER (WHERE NOT t.holdout) AS targeted,
       count(*) FILTER (WHERE t.holdout) AS holdout,
       count(*) FILTER (WHERE NOT t.holdout AND am.grants > 0) AS responded
FROM activity_targets t
LEFT JOIN activity_members am ON am.activity_id = t.activity_id AND am.member_id = t.member_id
WHERE t.activity_id = $1
"""

GROUP_SPEND = """
SELECT e.currency,
       COALESCE(sum(e.amount_minor - e.refunded_minor) FILTER (WHERE NOT t.holdout), 0) AS targeted,
       COALESCE(sum(e.amount_minor - e.refunded_minor) FILTER (WHERE t.holdout), 0) AS holdout,
       COALESCE(sum(e.amount_minor - e.refunded_minor) FILTER (WHERE NOT t.holdout AND am.grants > 0), 0)
           AS responders
FROM activity_targets t
JOIN identifiers i ON i.member_id = t.member_id
JOIN earnings e ON e.identifier = i.identifier AND e.occurred_at >= $2 AND e.occurred_at < $3
LEFT JOIN activity_members am ON am.activity_id = t.activity_id AND am.member_id = t.member_id
WHERE t.activity_id = $1
GROUP BY e.currency
"""


@dataclass
class _Parameters:
    values: list[object] = field(default_factory=list)

    def add(self, value: object, cast: str) -> str:
        self.values.append(value)
        return f"${len(self.values)}::{cast}"


def compile_members(rules: SegmentRules | None, as_of: datetime, params: list[object]) -> str:
    """A query of `member_id` for every member matching `rules` (all members for None) as of `as_of`.

    Its values are appended to `params` (which may hold the enclosing query's first ones). Every
    purchase condition is one aggregate over a single scan of the widest window, grouped by member.
    """
    if rules is None:
        return "SELECT m.member_id FROM members m"
    p = _Parameters(params)
    aggregates: list[str] = []
    predicates: list[str] = []
    listed: list[str] = []
    for number, condition in enumerate(rules.all):
        if isinstance(condition, MemberList):
            listed.append(p.add(list(condition.member_ids), "uuid[]"))
            predicates.append(f"m.member_id = ANY({listed[-1]})")
            continue
        if isinstance(condition, TierIs):
            at = p.add(as_of, "timestamptz")
            predicates.append(f"{TIER_AT.format(at=at)} = ANY({p.add(list(condition.codes), 'text[]')})")
            continue
        column = f"s.c{number}"
        filters = [f"e.occurred_at > {p.add(window_since(condition, as_of), 'timestamptz')}"]
        if isinstance(condition, Spend):
            aggregate = f"sum({NET})"
            filters.append(f"e.currency = {p.add(condition.currency, 'text')}")
            if condition.channel is not None:
                filters.append(f"{CHANNEL} = {p.add(condition.channel, 'text')}")
            if condition.partner_id is not None:
                filters.append(f"{PARTNER} = {p.add(condition.partner_id, 'text')}")
            if condition.category is not None:
                filters.append(f"e.category = {p.add(condition.category, 'text')}")
            if condition.mcc is not None:
                filters.append(f"e.mcc = {p.add(condition.mcc, 'text')}")
            predicate = f"COALESCE({column}, 0) >= {p.add(condition.min_minor, 'bigint')}"
        else:
            filters.append(f"{NET} > 0")  # a purchase refunds took back entirely is no purchase
            if isinstance(condition, PartnersUsed):
                aggregate = f"count(DISTINCT {PARTNER})"
                filters.append(f"{CHANNEL} = 'partner'")
                predicate = f"COALESCE({column}, 0) >= {p.add(condition.min, 'bigint')}"
            elif isinstance(condition, CardUsage):
                aggregate = "count(*)"
                filters.append(f"{CHANNEL} = 'card'")
                predicate = f"COALESCE({column}, 0) >= {p.add(condition.min_transactions, 'bigint')}"
            elif isinstance(condition, LastActivity):
                aggregate = "count(*)"
                predicate = f"COALESCE({column}, 0) > 0"
            else:
                assert isinstance(condition, Inactive)
                aggregate = "count(*)"
                predicate = f"COALESCE({column}, 0) = 0"
        aggregates.append(f"{aggregate} FILTER (WHERE {' AND '.join(filters)}) AS c{number}")
        predicates.append(predicate)
    where = " AND ".join(predicates)
    widest = rules.widest_window_days
    if widest is None:
        return f"SELECT m.member_id FROM members m WHERE {where}"
    # Listed members narrow the scan of purchases too.
    narrowed = "".join(f" AND i.member_id = ANY({ids})" for ids in listed)
    since = as_of - timedelta(days=widest)
    return (
        "SELECT m.member_id FROM members m LEFT JOIN ("
        f"SELECT i.member_id, {', '.join(aggregates)} "
        "FROM earnings e JOIN identifiers i ON i.identifier = e.identifier "
        f"WHERE i.member_id IS NOT NULL{narrowed} "
        f"AND e.occurred_at > {p.add(since, 'timestamptz')} AND e.occurred_at <= {p.add(as_of, 'timestamptz')} "
        f"GROUP BY i.member_id) s ON s.member_id = m.member_id WHERE {where}"
    )


async def freeze_targets(
    conn: asyncpg.Connection,
    activity_id: uuid.UUID,
    rules: SegmentRules | None,
    holdout_share: Decimal,
    as_of: datetime,
) -> tuple[int, int]:
    """Insert every member matching `rules` (every member for None) into activity_targets, in one statement.

    A member is held out when `(hashtextextended(activity_id::text || member_id::text, 0) & 1023)
    < holdout_share * 1024`: about `holdout_share` of them, the same members every time for the
    same activity. Returns (targeted, held_out): members who take part, and members held out
    (together, the whole segment). Runs in the caller's transaction; call it once per activity
    (a second call violates the primary key rather than mixing two snapshots).
    """
    if not Decimal(0) <= holdout_share <= Decimal(1):
        raise ValueError(f"holdout_share must be between 0 and 1, not {holdout_share}")
    params: list[object] = [activity_id, holdout_share]
    sql = FREEZE_TARGETS.format(members=compile_members(rules, as_of, params))
    row = await conn.fetchrow(sql, *params)
    assert row is not None
    return int(row["targeted"]), int(row["held_out"])


@dataclass(frozen=True)
class Preview:
    count: int
    sample: list[uuid.UUID]


@dataclass(frozen=True)
class StoredSegment:
    segment_id: uuid.UUID
    name: str
    rules: object
    """As stored (JSON); parse with segment_rules_from_json."""
    created_at: datetime


def _segment(row: asyncpg.Record) -> StoredSegment:
    return StoredSegment(row["segment_id"], row["name"], orjson.loads(row["rules"]), row["created_at"])


class SegmentStore:
    """Borrows a pool it does not own."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def preview(self, rules: SegmentRules, as_of: datetime, sample_size: int) -> Preview:
        params: list[object] = []
        members = compile_members(rules, as_of, params)
        limit = _Parameters(params).add(sample_size, "bigint")
        rows = await self._pool.fetch(SAMPLE.format(members=members, limit=limit), *params)
        return Preview(rows[0]["matched"] if rows else 0, [r["member_id"] for r in rows])

    async def insert(self, segment_id: uuid.UUID, name: str, rules: SegmentRules) -> StoredSegment | None:
        """The new segment, or None when the id exists already."""
        row = await self._pool.fetchrow(INSERT_SEGMENT, segment_id, name, orjson.dumps(rules.to_json()).decode())
        return None if row is None else _segment(row)

    async def get(self, segment_id: uuid.UUID) -> StoredSegment | None:
        row = await self._pool.fetchrow(SEGMENT, segment_id)
        return None if row is None else _segment(row)

    async def page(self, before: tuple[datetime, uuid.UUID], limit: int) -> list[StoredSegment]:
        """Segments created before `before` (created_at, segment_id), newest first."""
        return [_segment(r) for r in await self._pool.fetch(SEGMENTS_PAGE, before[0], before[1], limit)]

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[ReportReader]:
        """One consistent, read-only view for a report."""
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            yield ReportReader(conn)


class ReportReader:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def activity(self, activity_id: uuid.UUID, budget_account: str) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await self.conn.fetchrow(ACTIVITY, activity_id, budget_account)
        return row

    async def versions(self, activity_id: uuid.UUID) -> list[VersionSpan]:
        rows = await self.conn.fetch(ACTIVITY_VERSIONS, activity_id)
        return [VersionSpan(r["state"], r["effective_from"], r["window_start"], r["window_end"]) for r in rows]

    async def groups(self, activity_id: uuid.UUID) -> tuple[int, int, int]:
        """(targeted, holdout, responded)."""
        row = await self.conn.fetchrow(TARGET_GROUPS, activity_id)
        assert row is not None
        return row["targeted"], row["holdout"], row["responded"]

    async def group_spend(
        self, activity_id: uuid.UUID, start: datetime, end: datetime
    ) -> list[tuple[str, int, int, int]]:
        """(currency, targeted, holdout, responders) net spend within [start, end)."""
        rows = await self.conn.fetch(GROUP_SPEND, activity_id, start, end)
        return [(r["currency"], int(r["targeted"]), int(r["holdout"]), int(r["responders"])) for r in rows]
