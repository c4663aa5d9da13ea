"""PostgreSQL persistence of reward activities: definitions, versions, standings, grants, referrals."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg
import orjson

from points.domain.activities import Activity, ActivityKind, Rules, State, Version
from points.domain.rewards import Grant, SpendCounted, Standing

INSERT_ACTIVITY = """
INSERT INTO activities (activity_id, name, kind, budget_points, quantity_cap, per_member_cap, segment_id, holdout_share)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
"""

LOCK_ACTIVITIES = """
SELECT activity_id, name, kind, budget_points, quantity_cap, per_member_cap, segment_id, holdout_share,
       grants_count, points_granted, targets_frozen_at IS NOT NULL AS targets_frozen, points_reversed,
       packet_points, packet_points_returned
FROM activities WHERE activity_id = ANY($1::uuid[]) ORDER BY activity_id FOR UPDATE
"""

READ_ACTIVITIES = """
SELECT activity_id, name, kind, budget_points, quantity_cap, per_member_cap, segment_id, holdout_share,
       grants_count, points_granted, targets_frozen_at IS NOT NULL AS targets_frozen, points_reversed,
       packet_points, packet_points_returned
FROM activities WHERE activity_id = ANY($1::uuid[])
"""

ALL_ACTIVITIES = """
SELECT activity_id, name, kind, budget_points, quantity_cap, per_member_cap, segment_id, holdout_share,
       grants_count, points_granted, targets_frozen_at IS NOT NULL AS targets_frozen, points_reversed,
       packet_points, packet_points_returned
FROM activities WHERE ($1::uuid IS NULL OR activity_id = $1) ORDER BY created_at DESC, activity_id LIMIT $2
"""

VERSIONS = """
SELECT activity_id, version, effective_from, state, rules, window_start, window_end, changed_by
FROM activity_versions WHERE activity_id = ANY($1::uuid[]) ORDER BY activity_id, version
"""

INSERT_VERSION = """
INSERT INTO activity_versions (activity_id, version, effective_from, state, rules, window_start, window_end, changed_by)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
"""

DROP_VERSIONS = "DELETE FROM activity_versions WHERE activity_id = $1 AND version = ANY($2::int[])"

LIVE_BETWEEN = """
SELECT DISTINCT activity_id FROM activity_versions
WHERE state = 'active' AND window_start <= $2 AND window_end > $1
"""

SAVE_COUNTERS = """
UPDATE activities a
SET grants_count = u.grants, points_granted = u.points, points_reversed = u.reversed, updated_at = now()
FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::bigint[]) AS u(activity_id, grants, points, reversed)
WHERE a.activity_id = u.activity_id
"""

ADD_BUDGET = "UPDATE activities SET budget_points = budget_points + $2, updated_at = now() WHERE activity_id = $1"

MARK_TARGETS_FROZEN = "UPDATE activities SET targets_frozen_at = $2 WHERE activity_id = $1"

TARGETED = """
SELECT activity_id, member_id FROM activity_targets
WHERE activity_id = ANY($1::uuid[]) AND member_id = ANY($2::uuid[]) AND NOT holdout
"""

STANDINGS = """
SELECT activity_id, member_id, grants, points, spend_minor, threshold_met FROM activity_members
WHERE activity_id = ANY($1::uuid[]) AND member_id = ANY($2::uuid[])
"""

SAVE_STANDINGS = """
INSERT INTO activity_members (activity_id, member_id, grants, points, spend_minor, threshold_met, first_grant_at)
SELECT u.activity_id, u.member_id, u.grants, u.points, u.spend, u.met, CASE WHEN u.grants > 0 THEN $7::timestamptz END
FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bool[])
    AS u(activity_id, member_id, grants, points, spend, met)
ON CONFLICT (activity_id, member_id) DO UPDATE
SET grants = EXCLUDED.grants, points = EXCLUDED.points, spend_minor = EXCLUDED.spend_minor,
    threshold_met = EXCLUDED.threshold_met,
    first_grant_at = COALESCE(activity_members.first_grant_at, EXCLUDED.first_grant_at)
"""

INSERT_GRANTS = """
INSERT INTO activity_grants
    (activity_id, cause_id, member_id, points, transfer_id, occurred_at, purchase_id, claim_id, points_reversed)
SELECT * FROM unnest(
    $1::uuid[], $2::uuid[], $3::uuid[], $4::bigint[], $5::uuid[], $6::timestamptz[], $7::uuid[], $8::uuid[],
    $9::bigint[]
)
"""

UPDATE_GRANTS_REVERSED = """
UPDATE activity_grants g SET points_reversed = u.reversed
FROM unnest($1::uuid[], $2::uuid[], $3::bigint[]) AS u(activity_id, cause_id, reversed)
WHERE g.activity_id = u.activity_id AND g.cause_id = u.cause_id
"""

CLAIM_GRANT = "SELECT points FROM activity_grants WHERE activity_id = $1 AND member_id = $2 AND claim_id = $3"

# The activities that granted a bonus for these purchases, or counted them towards a spend threshold.
ACTIVITIES_OF_PURCHASES = """
SELECT activity_id FROM activity_grants WHERE purchase_id = ANY($1::uuid[])
UNION
SELECT activity_id FROM activity_spend WHERE purchase_id = ANY($1::uuid[])
"""

GRANT_COLUMNS = (
    "activity_id, cause_id, member_id, points, transfer_id, occurred_at, purchase_id, claim_id, points_reversed"
)

# What refunds of these purchases may take back: their bonuses, and the spend-threshold bonus (not taken
# back yet) of every member whose threshold spend they counted towards. Read under the activities' locks.
GRANTS_FOR_REFUNDS = f"""
SELECT {GRANT_COLUMNS} FROM activity_grants WHERE purchase_id = ANY($1::uuid[])
UNION
SELECT {", ".join(f"g.{c}" for c in GRANT_COLUMNS.split(", "))}
FROM activity_spend s
JOIN activities a ON a.activity_id = s.activity_id AND a.kind = 'spend_threshold'
JOIN activity_grants g ON g.activity_id = s.activity_id AND g.member_id = s.member_id AND g.points_reversed < g.points
WHERE s.purchase_id = ANY($1::uuid[])
"""

SPEND_COUNTED = """
SELECT purchase_id, activity_id, member_id, amount_minor FROM activity_spend WHERE purchase_id = ANY($1::uuid[])
"""

INSERT_SPEND_COUNTED = """
INSERT INTO activity_spend (purchase_id, activity_id, member_id, amount_minor)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::bigint[])
"""

REFERRERS = """
SELECT referee, referrer FROM referrals WHERE referee = ANY($1::uuid[]) AND rewarded_at IS NULL
"""

MARK_REFERRALS = "UPDATE referrals SET rewarded_at = $2 WHERE referee = ANY($1::uuid[])"

INSERT_REFERRAL = """
INSERT INTO referrals (referee, referrer) VALUES ($1, $2) ON CONFLICT (referee) DO NOTHING RETURNING referrer
"""

REFERRER_OF = "SELECT referrer FROM referrals WHERE referee = $1"

# The earlier purchases (before this batch) of these members, by partner; one refunds took back entirely
# is no purchase.
EARLIER_PURCHASES = """
SELECT i.member_id, e.partner_id, count(*) AS purchases
FROM earnings e JOIN identifiers i ON i.identifier = e.identifier
WHERE i.member_id = ANY($1::uuid[]) AND NOT (e.event_id = ANY($2::uuid[])) AND e.refunded_minor < e.amount_minor
GROUP BY i.member_id, e.partner_id
"""


def _to_activity(row: asyncpg.Record, versions: Iterable[asyncpg.Record]) -> Activity:
    activity = Activity(
        row["activity_id"], row["name"], ActivityKind(row["kind"]), row["budget_points"], row["quantity_cap"],
        row["per_member_cap"], row["segment_id"], Decimal(row["holdout_share"]), row["grants_count"],
        row["points_granted"], row["targets_frozen"], row["points_reversed"], row["packet_points"],
        row["packet_points_returned"],
    )  # fmt: skip
    activity.versions = [
        Version(
            v["version"], v["effective_from"], State(v["state"]), Rules.from_json(orjson.loads(v["rules"])),
            v["window_start"], v["window_end"], v["changed_by"],
        )
        for v in versions
    ]  # fmt: skip
    return activity


class ActivitiesSql:
    """The statements on activities, run on the caller's connection (inside its transaction)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def insert(self, activity: Activity) -> None:
        a = activity
        await self.conn.execute(
            INSERT_ACTIVITY, a.activity_id, a.name, a.kind.value, a.budget_points, a.quantity_cap,
            a.per_member_cap, a.segment_id, a.holdout_share,
        )  # fmt: skip
        await self.save_versions(activity)

    async def save_versions(self, activity: Activity) -> None:
        """Insert the versions not stored yet, after dropping the scheduled ones a change replaced."""
        if activity.dropped_versions:
            await self.conn.execute(DROP_VERSIONS, activity.activity_id, activity.dropped_versions)
            activity.dropped_versions.clear()
        stored = {r["version"] for r in await self.conn.fetch(VERSIONS, [activity.activity_id])}
        for v in activity.versions:
            if v.version not in stored:
                await self.conn.execute(
                    INSERT_VERSION, activity.activity_id, v.version, v.effective_from, v.state.value,
                    orjson.dumps(v.rules.to_json()).decode(), v.window_start, v.window_end, v.changed_by,
                )  # fmt: skip

    async def lock(self, activity_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Activity]:
        """Lock and load the activities, in id order (before any account lock, everywhere)."""
        return await self._load(LOCK_ACTIVITIES, activity_ids)

    async def read(self, activity_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Activity]:
        """Load the activities without locking them (for reads; a decision locks them first)."""
        return await self._load(READ_ACTIVITIES, activity_ids)

    async def _load(self, query: str, activity_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Activity]:
        ids = sorted(set(activity_ids))
        if not ids:
            return {}
        rows = await self.conn.fetch(query, ids)
        versions = await self.conn.fetch(VERSIONS, ids)
        return {
            r["activity_id"]: _to_activity(r, [v for v in versions if v["activity_id"] == r["activity_id"]])
            for r in rows
        }

    async def live_between(self, first: datetime, last: datetime) -> list[uuid.UUID]:
        """Activities with an active window touching [first, last]: the only ones a batch can be judged by."""
        return [r["activity_id"] for r in await self.conn.fetch(LIVE_BETWEEN, first, last)]

    async def save_counters(self, activities: Sequence[Activity]) -> None:
        if activities:
            await self.conn.execute(
                SAVE_COUNTERS,
                [a.activity_id for a in activities],
                [a.grants_count for a in activities],
                [a.points_granted for a in activities],
                [a.points_reversed for a in activities],
            )

    async def add_budget(self, activity_id: uuid.UUID, points: int) -> None:
        await self.conn.execute(ADD_BUDGET, activity_id, points)

    async def mark_targets_frozen(self, activity_id: uuid.UUID, at: datetime) -> None:
        await self.conn.execute(MARK_TARGETS_FROZEN, activity_id, at)

    async def targeted(
        self, activity_ids: Iterable[uuid.UUID], member_ids: Iterable[uuid.UUID]
    ) -> set[tuple[uuid.UUID, uuid.UUID]]:
        rows = await self.conn.fetch(TARGETED, list(set(activity_ids)), list(set(member_ids)))
        return {(r["activity_id"], r["member_id"]) for r in rows}

    async def standings(
        self, activity_ids: Iterable[uuid.UUID], member_ids: Iterable[uuid.UUID]
    ) -> dict[tuple[uuid.UUID, uuid.UUID], Standing]:
        rows = await self.conn.fetch(STANDINGS, list(set(activity_ids)), list(set(member_ids)))
        return {
            (r["activity_id"], r["member_id"]): Standing(r["grants"], r["points"], r["spend_minor"], r["threshold_met"])
            for r in rows
        }

    async def save_standings(self, standings: dict[tuple[uuid.UUID, uuid.UUID], Standing], at: datetime) -> None:
        if standings:
            keys = sorted(standings)
            await self.conn.execute(
                SAVE_STANDINGS,
                [k[0] for k in keys],
                [k[1] for k in keys],
                [standings[k].grants for k in keys],
                [standings[k].points for k in keys],
                [standings[k].spend_minor for k in keys],
                [standings[k].threshold_met for k in keys],
                at,
            )

    async def save_grants(self, grants: Sequence[Grant], reversed_grants: Sequence[Grant] = ()) -> None:
        """Insert new grants (with what refunds in the same transaction took back) and update reversed ones."""
        if grants:
            await self.conn.execute(
                INSERT_GRANTS,
                [g.activity_id for g in grants],
                [g.cause_id for g in grants],
                [g.member_id for g in grants],
                [g.points for g in grants],
                [g.transfer_id for g in grants],
                [g.occurred_at for g in grants],
                [g.purchase_id for g in grants],
                [g.claim_id for g in grants],
                [g.points_reversed for g in grants],
            )
        if reversed_grants:
            await self.conn.execute(
                UPDATE_GRANTS_REVERSED,
                [g.activity_id for g in reversed_grants],
                [g.cause_id for g in reversed_grants],
                [g.points_reversed for g in reversed_grants],
            )

    async def claimed_points(self, activity_id: uuid.UUID, member_id: uuid.UUID, claim_id: uuid.UUID) -> int | None:
        """The points the member's claim with this id was granted; None if it made no grant."""
        found: int | None = await self.conn.fetchval(CLAIM_GRANT, activity_id, member_id, claim_id)
        return found

    async def activities_of_purchases(self, purchase_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
        """The activities whose grants or threshold spend refunds of these purchases touch."""
        if not purchase_ids:
            return []
        return [r["activity_id"] for r in await self.conn.fetch(ACTIVITIES_OF_PURCHASES, list(purchase_ids))]

    async def for_refunds(self, purchase_ids: Sequence[uuid.UUID]) -> tuple[list[Grant], list[SpendCounted]]:
        """What refunds of these purchases may take back; call with their activities locked."""
        if not purchase_ids:
            return [], []
        ids = list(purchase_ids)
        grants = [
            Grant(
                r["activity_id"], r["cause_id"], r["member_id"], r["points"], r["transfer_id"], r["occurred_at"],
                r["purchase_id"], r["claim_id"], r["points_reversed"],
            )
            for r in await self.conn.fetch(GRANTS_FOR_REFUNDS, ids)
        ]  # fmt: skip
        counted = [
            SpendCounted(r["purchase_id"], r["activity_id"], r["member_id"], r["amount_minor"])
            for r in await self.conn.fetch(SPEND_COUNTED, ids)
        ]
        return grants, counted

    async def save_spend_counted(self, counted: Sequence[SpendCounted]) -> None:
        if counted:
            await self.conn.execute(
                INSERT_SPEND_COUNTED,
                [c.purchase_id for c in counted],
                [c.activity_id for c in counted],
                [c.member_id for c in counted],
                [c.amount_minor for c in counted],
            )

    async def referrers(self, referees: Iterable[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
        rows = await self.conn.fetch(REFERRERS, list(set(referees)))
        return {r["referee"]: r["referrer"] for r in rows}

    async def mark_rewarded(self, referees: Sequence[uuid.UUID], at: datetime) -> None:
        if referees:
            await self.conn.execute(MARK_REFERRALS, list(referees), at)

    async def add_referral(self, referee: uuid.UUID, referrer: uuid.UUID) -> uuid.UUID:
        """The referrer on record for `referee` (the existing one if it was set before)."""
        made = await self.conn.fetchval(INSERT_REFERRAL, referee, referrer)
        if made is not None:
            return uuid.UUID(str(made))
        existing: Any = await self.conn.fetchval(REFERRER_OF, referee)
        return uuid.UUID(str(existing))

    async def earlier_partners(
        self, member_ids: Iterable[uuid.UUID], batch_events: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, dict[str | None, int]]:
        """Per member, how many purchases outside this batch (not refunded entirely) at each partner (None: card)."""
        rows = await self.conn.fetch(EARLIER_PURCHASES, list(set(member_ids)), list(batch_events))
        found: dict[uuid.UUID, dict[str | None, int]] = {}
        for r in rows:
            found.setdefault(r["member_id"], {})[r["partner_id"]] = r["purchases"]
        return found


async def list_activities(pool: asyncpg.Pool, activity_id: uuid.UUID | None, limit: int) -> list[Activity]:
    rows = await pool.fetch(ALL_ACTIVITIES, activity_id, limit)
    versions = await pool.fetch(VERSIONS, [r["activity_id"] for r in rows])
    return [_to_activity(r, [v for v in versions if v["activity_id"] == r["activity_id"]]) for r in rows]
