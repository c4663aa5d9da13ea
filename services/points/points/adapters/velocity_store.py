"""PostgreSQL reads and writes of the velocity rules, their counts and the earnings held for review.

The earn batch adds at most three statements, and only while an earning rule is on (or a review is involved):
one read of the counts its purchases need (COUNTS), one upsert of what it counted (ADD_COUNTS, the
transaction's last but one statement, so hot partner rows are held only for the moment of the commit), and one
insert of the reviews it opened (OPEN_REVIEWS) when it held any.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import orjson

from points.domain.velocity import Count, VelocityRules

LATEST_RULES = "SELECT version, rules, set_by, set_at FROM velocity_rules ORDER BY version DESC LIMIT 1"

LOCK_RULES = "SELECT pg_advisory_xact_lock(hashtextextended('velocity_rules', 0))"

INSERT_RULES = "INSERT INTO velocity_rules (version, rules, set_by) VALUES ($1, $2::jsonb, $3) RETURNING set_at"

COUNTS = """
SELECT scope, span, bucket, points, purchases, amount_minor FROM velocity_counts
WHERE scope = ANY($1::text[]) AND ((span = 'day' AND bucket = ANY($2::timestamptz[]))
                                   OR (span = 'hour' AND bucket = ANY($3::timestamptz[])))
UNION ALL
SELECT scope, 'trailing', NULL, 0, sum(purchases), sum(amount_minor) FROM velocity_counts
WHERE scope = ANY($4::text[]) AND span = 'day' AND bucket >= $5 AND bucket < $6 GROUP BY scope
UNION ALL
SELECT 'member:' || member_id, 'joined', created_at, 0, 0, 0 FROM members WHERE member_id = ANY($7::uuid[])
"""
"""The day and hour counts of the batch's scopes, the usual amounts (days before today) and when members joined."""

ADD_COUNTS = """
INSERT INTO velocity_counts AS c (scope, span, bucket, points, purchases, amount_minor)
SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::bigint[], $5::bigint[], $6::bigint[])
ON CONFLICT (scope, span, bucket) DO UPDATE
SET points = c.points + excluded.points, purchases = c.purchases + excluded.purchases,
    amount_minor = c.amount_minor + excluded.amount_minor
"""

OPEN_REVIEWS = """
INSERT INTO earning_reviews
    (review_id, source_key, event_id, identifier, member_id, partner_id, issuer_account, amount_minor, currency,
     points, rule, detail, earned_at, lot_expires_at)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::uuid[], $6::text[], $7::text[],
                     $8::bigint[], $9::text[], $10::bigint[], $11::text[], $12::text[], $13::timestamptz[],
                     $14::timestamptz[])
ON CONFLICT (source_key) DO NOTHING
"""

CANCEL_REVIEWS = """
UPDATE earning_reviews SET status = 'cancelled', decided_by = 'refund', decided_at = $2, decided_points = 0
WHERE source_key = ANY($1::text[]) AND status = 'open'
RETURNING review_id, member_id, identifier, event_id
"""

REVIEW_COLUMNS = """
r.review_id, r.source_key, r.event_id, r.identifier, r.member_id, r.partner_id, r.issuer_account, r.amount_minor,
r.currency, r.points, e.points - e.points_reversed AS points_pending, r.rule, r.detail, r.earned_at,
r.lot_expires_at, r.status, r.opened_at, r.decided_by, r.decided_at, r.note, r.decided_points, r.transfer_id
"""

FIND_REVIEW = f"SELECT {REVIEW_COLUMNS} FROM earning_reviews r JOIN earnings e USING (source_key) WHERE review_id = $1"

LOCK_REVIEW = f"""
SELECT {REVIEW_COLUMNS} FROM earning_reviews r JOIN earnings e USING (source_key)
WHERE review_id = $1 FOR UPDATE OF r
"""

LIST_REVIEWS = f"""
SELECT {REVIEW_COLUMNS} FROM earning_reviews r JOIN earnings e USING (source_key)
WHERE r.status = $1 AND ($2::uuid IS NULL OR r.member_id = $2)
ORDER BY r.opened_at DESC, r.review_id LIMIT $3
"""

DECIDE_REVIEW = """
UPDATE earning_reviews SET status = $2, decided_by = $3, decided_at = $4, note = $5, decided_points = $6,
       transfer_id = $7
WHERE review_id = $1 AND status = 'open'
"""

MOVE_EARNING = "UPDATE earnings SET holder_account = $2 WHERE source_key = $1"

PENDING_OF_MEMBER = """
SELECT COALESCE(sum(e.points - e.points_reversed), 0) FROM earning_reviews r JOIN earnings e USING (source_key)
WHERE r.member_id = $1 AND r.status = 'open'
"""

GIFTS_TODAY = "SELECT count(*) FROM gifts WHERE sender = $1 AND given_at >= $2"

HOLDS_TODAY = """
SELECT member_id, count(*) AS n FROM holds WHERE member_id = ANY($1::uuid[]) AND created_at >= $2 GROUP BY 1
"""


@dataclass(frozen=True)
class LoadedCounts:
    counts: dict[tuple[str, str, datetime], Count]
    trailing: dict[str, Count]
    joined: dict[uuid.UUID, datetime]


@dataclass(frozen=True)
class NewReview:
    review_id: uuid.UUID
    source_key: str
    event_id: uuid.UUID
    identifier: str
    member_id: uuid.UUID | None
    partner_id: str | None
    issuer_account: str
    amount_minor: int
    currency: str
    points: int
    rule: str
    detail: str
    earned_at: datetime
    lot_expires_at: datetime


class VelocitySql:
    def __init__(self, conn: asyncpg.Connection | asyncpg.Pool) -> None:
        self.conn = conn

    async def latest_rules(self) -> tuple[VelocityRules, str | None, datetime | None]:
        row = await self.conn.fetchrow(LATEST_RULES)
        if row is None:
            return VelocityRules(), None, None
        return VelocityRules.from_json(orjson.loads(row["rules"]), row["version"]), row["set_by"], row["set_at"]

    async def lock_rules(self) -> None:
        await self.conn.execute(LOCK_RULES)

    async def insert_rules(self, rules: VelocityRules, by: str) -> datetime:
        at: datetime = await self.conn.fetchval(INSERT_RULES, rules.version, orjson.dumps(rules.to_json()).decode(), by)
        return at

    async def counts(
        self, scopes: Sequence[str], days: Sequence[datetime], hours: Sequence[datetime],
        amount_scopes: Sequence[str], trailing: tuple[datetime, datetime], members: Sequence[uuid.UUID],
    ) -> LoadedCounts:  # fmt: skip
        rows = await self.conn.fetch(COUNTS, scopes, days, hours, amount_scopes, *trailing, members)
        loaded = LoadedCounts({}, {}, {})
        for r in rows:
            if r["span"] == "joined":
                loaded.joined[uuid.UUID(r["scope"].removeprefix("member:"))] = r["bucket"]
            elif r["span"] == "trailing":
                loaded.trailing[r["scope"]] = Count(0, int(r["purchases"]), int(r["amount_minor"]))
            else:
                loaded.counts[(r["scope"], r["span"], r["bucket"])] = Count(
                    r["points"], r["purchases"], r["amount_minor"]
                )
        return loaded

    async def add_counts(self, added: dict[tuple[str, str, datetime], Count]) -> None:
        keys = sorted(added, key=lambda k: (k[0], k[1], k[2]))  # rows locked in one order: no deadlock
        if keys:
            await self.conn.execute(
                ADD_COUNTS, [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys],
                [added[k].points for k in keys], [added[k].purchases for k in keys],
                [added[k].amount_minor for k in keys],
            )  # fmt: skip

    async def open_reviews(self, reviews: Sequence[NewReview]) -> None:
        if reviews:
            columns = [list(c) for c in zip(*(vars(r).values() for r in reviews), strict=True)]
            await self.conn.execute(OPEN_REVIEWS, *columns)

    async def cancel_reviews(self, source_keys: Sequence[str], at: datetime) -> list[asyncpg.Record]:
        if not source_keys:
            return []
        rows: list[asyncpg.Record] = await self.conn.fetch(CANCEL_REVIEWS, list(source_keys), at)
        return rows

    async def find_review(self, review_id: uuid.UUID, *, lock: bool = False) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await self.conn.fetchrow(LOCK_REVIEW if lock else FIND_REVIEW, review_id)
        return row

    async def list_reviews(self, status: str, member_id: uuid.UUID | None, limit: int) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await self.conn.fetch(LIST_REVIEWS, status, member_id, limit)
        return rows

    async def decide(self, review_id: uuid.UUID, decision: str, by: str, at: datetime, note: str | None,
                     points: int, transfer: uuid.UUID) -> None:  # fmt: skip
        await self.conn.execute(DECIDE_REVIEW, review_id, decision, by, at, note, points, transfer)

    async def move_earning(self, source_key: str, holder: str) -> None:
        await self.conn.execute(MOVE_EARNING, source_key, holder)

    async def pending_of(self, member_id: uuid.UUID) -> int:
        return int(await self.conn.fetchval(PENDING_OF_MEMBER, member_id))

    async def gifts_since(self, sender: uuid.UUID, since: datetime) -> int:
        return int(await self.conn.fetchval(GIFTS_TODAY, sender, since))

    async def holds_since(self, members: Sequence[uuid.UUID], since: datetime) -> dict[uuid.UUID, int]:
        if not members:
            return {}
        return {r["member_id"]: r["n"] for r in await self.conn.fetch(HOLDS_TODAY, list(members), since)}
