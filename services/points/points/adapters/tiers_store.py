"""PostgreSQL persistence of tiers: tier set versions, qualifying points per day, members' tiers and their history.

The earn batch reads its members' tier history and qualifying points in one statement each (`unnest` of its
members) and adds its qualifying points in one upsert. What is written for a member is written under the lock
of its account (points/handlers/tiers.py says who takes it).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

import asyncpg
import orjson

from points.domain.ledger import member_account, member_of
from points.domain.tiers import Direction, Reason, TierChange, TierSet, TierSets, TierState, tier_set_from_json

TIER_SET_LOCK = "hashtextextended('tier-set', 0)"

LOCK_TIER_SET_SHARED = f"SELECT pg_advisory_xact_lock_shared({TIER_SET_LOCK})"
"""Every writer of members' tiers, before its member locks: a new tier set waits for them, and they for it."""

LOCK_TIER_SET = f"SELECT pg_advisory_xact_lock({TIER_SET_LOCK})"

_SET_COLUMNS = "version, effective_from, qualification, grace_days, downgrade_policy, tiers, caught_up_at"

VERSIONS_SINCE = f"""
SELECT {_SET_COLUMNS} FROM tier_sets
WHERE version >= COALESCE((SELECT max(version) FROM tier_sets WHERE effective_from <= $1), 1)
ORDER BY version
"""
"""The version in force at $1 and every later one."""

LATEST = f"SELECT {_SET_COLUMNS} FROM tier_sets ORDER BY version DESC LIMIT 1"

INSERT_TIER_SET = """
INSERT INTO tier_sets (version, effective_from, qualification, grace_days, downgrade_policy, tiers, base_code, put_by)
VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8)
"""

MARK_CAUGHT_UP = "UPDATE tier_sets SET caught_up_at = $2 WHERE version = $1 AND caught_up_at IS NULL"

HOLDERS = "SELECT tier_code, count(*) AS members FROM member_tiers WHERE tier_code = ANY($1::text[]) GROUP BY 1"

WITHOUT_ROW = "SELECT (SELECT count(*) FROM members) - (SELECT count(*) FROM member_tiers)"
"""Members whose tier never changed: they hold the base tier."""

_CHANGE_COLUMNS = (
    "member_id, from_tier, to_tier, direction, reason, qualifying_points, at, valid_until, tier_set_version"
)

TIMELINES = f"""
SELECT h.* FROM unnest($1::uuid[]) AS m(member_id) CROSS JOIN LATERAL (
    (SELECT seq, {_CHANGE_COLUMNS} FROM tier_history
     WHERE member_id = m.member_id AND at <= $2 ORDER BY at DESC, seq DESC LIMIT 1)
    UNION ALL
    (SELECT seq, {_CHANGE_COLUMNS} FROM tier_history WHERE member_id = m.member_id AND at > $2)
) h
ORDER BY h.member_id, h.at, h.seq
"""
"""Per member, its tier at $2 (its latest change by then) and every change since, oldest first."""

WINDOW_SUMS = """
SELECT r.member_id, r.first_day, r.last_day, COALESCE(sum(d.points), 0)::bigint AS points
FROM unnest($1::uuid[], $2::date[], $3::date[]) AS r(member_id, first_day, last_day)
LEFT JOIN member_qualifying_days d ON d.member_id = r.member_id AND d.day BETWEEN r.first_day AND r.last_day
GROUP BY r.member_id, r.first_day, r.last_day
"""

ADD_DAYS = """
WITH d AS (SELECT * FROM unnest($1::uuid[], $2::date[], $3::bigint[]) AS d(member_id, day, points)),
added AS (
    UPDATE member_qualifying_days q SET points = q.points + d.points
    FROM d WHERE q.member_id = d.member_id AND q.day = d.day
    RETURNING q.member_id, q.day
)
INSERT INTO member_qualifying_days (member_id, day, points)
SELECT d.member_id, d.day, d.points FROM d
WHERE NOT EXISTS (SELECT 1 FROM added a WHERE a.member_id = d.member_id AND a.day = d.day)
"""
"""Not an upsert: PostgreSQL checks `points >= 0` on the row an upsert proposes, before it finds the conflict,
so a refund's negative points would be refused. No other transaction writes these rows meanwhile (the lock)."""

INSERT_HISTORY = f"""
INSERT INTO tier_history (event_id, {_CHANGE_COLUMNS})
SELECT * FROM unnest(
    $1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::timestamptz[],
    $9::date[], $10::int[]
)
"""

SAVE_STATES = """
INSERT INTO member_tiers AS t
    (member_id, tier_code, since, changed_at, valid_until, tier_set_version, qualifying_points, reason)
SELECT u.member_id, u.tier_code, COALESCE(u.since, u.changed_at), u.changed_at, u.valid_until, u.version, u.points,
       u.reason
FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::date[], $6::int[], $7::bigint[],
            $8::text[]) AS u(member_id, tier_code, since, changed_at, valid_until, version, points, reason)
ON CONFLICT (member_id) DO UPDATE
SET tier_code = EXCLUDED.tier_code,
    since = CASE WHEN t.member_id = ANY($9::uuid[]) THEN t.since ELSE EXCLUDED.since END,
    changed_at = EXCLUDED.changed_at, valid_until = EXCLUDED.valid_until, tier_set_version = EXCLUDED.tier_set_version,
    qualifying_points = EXCLUDED.qualifying_points, reason = EXCLUDED.reason
"""
"""$9: the members whose changes here only confirmed the tier they held: they keep `since`."""

STATES = """
SELECT member_id, tier_code, since, valid_until, tier_set_version, changed_at FROM member_tiers
WHERE member_id = ANY($1::uuid[])
"""

DUE = """
SELECT member_id FROM member_tiers WHERE valid_until < $1 ORDER BY valid_until, member_id LIMIT $2
"""
"""Members whose review is due: their valid_until plus the grace days is before today ($1 = today - grace)."""

LOCK_MEMBER_ACCOUNTS = """
SELECT account_id FROM accounts WHERE account_id = ANY($1::text[]) ORDER BY account_id FOR UPDATE
"""

LOCK_FREE_MEMBER_ACCOUNTS = """
SELECT account_id FROM accounts WHERE account_id = ANY($1::text[]) ORDER BY account_id FOR UPDATE SKIP LOCKED
"""

REACHING = """
SELECT member_id, sum(points)::bigint AS points FROM member_qualifying_days
WHERE member_id > $1 AND day BETWEEN $2 AND $3
GROUP BY member_id HAVING sum(points) >= $4
ORDER BY member_id LIMIT $5
"""
"""Members after $1 (in id order) whose points in the window [$2, $3] reach $4."""

WITHOUT_TIER = """
SELECT member_id, 0::bigint AS points FROM member_tiers WHERE member_id > $1 AND tier_code IS NULL
ORDER BY member_id LIMIT $2
"""

HISTORY_OF = f"""
SELECT seq, {_CHANGE_COLUMNS} FROM tier_history WHERE member_id = $1 ORDER BY at DESC, seq DESC LIMIT $2
"""

SUMMARY = """
SELECT (SELECT count(*) FROM members) AS members,
       COALESCE((SELECT jsonb_object_agg(COALESCE(tier_code, ''), n)
                 FROM (SELECT tier_code, count(*) AS n FROM member_tiers GROUP BY 1) c), '{}') AS by_tier
"""
"""Every member, and those with a tier row by code ('' for no tier); the others hold the base tier."""


def _tier_set(row: asyncpg.Record) -> TierSet:
    return tier_set_from_json(
        {"qualification": row["qualification"], "grace_days": row["grace_days"],
         "downgrade_policy": row["downgrade_policy"], "tiers": orjson.loads(row["tiers"])},
        row["version"], row["effective_from"],
    )  # fmt: skip


def _change(row: asyncpg.Record) -> TierChange:
    return TierChange(
        row["member_id"], row["from_tier"], row["to_tier"], Direction(row["direction"]), Reason(row["reason"]),
        row["qualifying_points"], row["at"], row["valid_until"], row["tier_set_version"],
    )  # fmt: skip


class TiersSql:
    """The statements of tiers inside a caller's transaction (or on a pool, for reads)."""

    def __init__(self, conn: asyncpg.Connection | asyncpg.Pool) -> None:
        self.conn = conn

    async def lock_tier_set_shared(self) -> None:
        await self.conn.execute(LOCK_TIER_SET_SHARED)

    async def lock_tier_set(self) -> None:
        await self.conn.execute(LOCK_TIER_SET)

    async def versions_since(self, moment: datetime) -> TierSets:
        return TierSets(tuple(_tier_set(r) for r in await self.conn.fetch(VERSIONS_SINCE, moment)))

    async def latest(self) -> tuple[TierSet, bool] | None:
        """The tier set in force now, and whether its catch-up is done."""
        row = await self.conn.fetchrow(LATEST)
        return None if row is None else (_tier_set(row), row["caught_up_at"] is not None)

    async def insert_tier_set(self, tier_set: TierSet, by: str) -> None:
        body = orjson.dumps([t.to_json() for t in tier_set.tiers]).decode()
        await self.conn.execute(
            INSERT_TIER_SET, tier_set.version, tier_set.effective_from, tier_set.qualification.value,
            tier_set.grace_days, tier_set.downgrade_policy.value, body, tier_set.base_code, by,
        )  # fmt: skip

    async def mark_caught_up(self, version: int, at: datetime) -> None:
        await self.conn.execute(MARK_CAUGHT_UP, version, at)

    async def holders(self, codes: Sequence[str]) -> dict[str, int]:
        """How many members hold each of these codes now."""
        return {r["tier_code"]: r["members"] for r in await self.conn.fetch(HOLDERS, list(codes))}

    async def without_row(self) -> int:
        return int(await self.conn.fetchval(WITHOUT_ROW))

    async def timelines(self, members: Sequence[uuid.UUID], since: datetime) -> dict[uuid.UUID, list[TierChange]]:
        found: dict[uuid.UUID, list[TierChange]] = {}
        for row in await self.conn.fetch(TIMELINES, list(members), since):
            found.setdefault(row["member_id"], []).append(_change(row))
        return found

    async def window_sums(
        self, ranges: Sequence[tuple[uuid.UUID, date, date]]
    ) -> dict[tuple[uuid.UUID, date, date], int]:
        """Qualifying points of each (member, first day, last day)."""
        if not ranges:
            return {}
        rows = await self.conn.fetch(
            WINDOW_SUMS, [r[0] for r in ranges], [r[1] for r in ranges], [r[2] for r in ranges]
        )
        return {(r["member_id"], r["first_day"], r["last_day"]): int(r["points"]) for r in rows}

    async def add_days(self, days: Mapping[tuple[uuid.UUID, date], int]) -> None:
        """Add qualifying points per member and day (negative for refunds), in one statement, in key order."""
        keys = sorted(k for k, v in days.items() if v)
        if keys:
            await self.conn.execute(ADD_DAYS, [k[0] for k in keys], [k[1] for k in keys], [days[k] for k in keys])

    async def save_changes(self, changes: Sequence[TierChange]) -> None:
        """Append the changes to the history and make each member's latest one its tier now."""
        if not changes:
            return
        c = changes
        await self.conn.execute(
            INSERT_HISTORY, [x.event_id for x in c], [x.member_id for x in c], [x.from_tier for x in c],
            [x.to_tier for x in c], [x.direction.value for x in c], [x.reason.value for x in c],
            [x.qualifying_points for x in c], [x.at for x in c], [x.valid_until for x in c],
            [x.tier_set_version for x in c],
        )  # fmt: skip
        latest: dict[uuid.UUID, TierChange] = {}
        since: dict[uuid.UUID, datetime | None] = {}
        for x in c:  # in order: the last change of each member wins; a confirmation keeps when it moved there
            since[x.member_id] = since.get(x.member_id) if x.direction is Direction.CONFIRMED else x.at
            latest[x.member_id] = x
        s = [latest[m] for m in sorted(latest)]
        confirmed = [m for m in sorted(latest) if since[m] is None]
        await self.conn.execute(
            SAVE_STATES, [x.member_id for x in s], [x.to_tier for x in s], [since[x.member_id] for x in s],
            [x.at for x in s], [x.valid_until for x in s], [x.tier_set_version for x in s],
            [x.qualifying_points for x in s], [x.reason.value for x in s], confirmed,
        )  # fmt: skip

    async def states(self, members: Iterable[uuid.UUID]) -> dict[uuid.UUID, TierState]:
        rows = await self.conn.fetch(STATES, list(members))
        return {
            r["member_id"]: TierState(
                r["tier_code"], r["since"], r["valid_until"], r["tier_set_version"], r["changed_at"]
            )
            for r in rows
        }

    async def due(self, before: date, limit: int) -> list[uuid.UUID]:
        return [r["member_id"] for r in await self.conn.fetch(DUE, before, limit)]

    async def lock_members(self, members: Iterable[uuid.UUID], *, skip_locked: bool) -> list[uuid.UUID]:
        """Lock the members' accounts in id order; with `skip_locked`, those another transaction holds are left out."""
        accounts = sorted({member_account(m) for m in members})
        rows = await self.conn.fetch(LOCK_FREE_MEMBER_ACCOUNTS if skip_locked else LOCK_MEMBER_ACCOUNTS, accounts)
        return [member_of(r["account_id"]) for r in rows]

    async def reaching(
        self, after: uuid.UUID, window: tuple[date, date], points: int, limit: int
    ) -> list[tuple[uuid.UUID, int]]:
        rows = await self.conn.fetch(REACHING, after, window[0], window[1], points, limit)
        return [(r["member_id"], int(r["points"])) for r in rows]

    async def without_tier(self, after: uuid.UUID, limit: int) -> list[tuple[uuid.UUID, int]]:
        return [(r["member_id"], 0) for r in await self.conn.fetch(WITHOUT_TIER, after, limit)]

    async def history(self, member_id: uuid.UUID, limit: int) -> list[TierChange]:
        """Newest first."""
        return [_change(r) for r in await self.conn.fetch(HISTORY_OF, member_id, limit)]

    async def summary(self) -> tuple[int, dict[str, int]]:
        """(every member, members with a tier row by code, '' for no tier)."""
        row = await self.conn.fetchrow(SUMMARY)
        assert row is not None
        by_tier: dict[str, Any] = orjson.loads(row["by_tier"])
        return int(row["members"]), {k: int(v) for k, v in by_tier.items()}
