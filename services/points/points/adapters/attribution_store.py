"""Share links, their opens, and the attribution report's reads (points/domain/attribution.py says what they mean).

The report reads one repeatable-read snapshot. Group keys are chosen from this module's own expressions, never
from the request's text; every value is a `$n` parameter.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import asyncpg

from points.adapters.segments import CHANNEL, PARTNER
from points.domain.attribution import ChannelCohort, Figure, Grouping, ShareLink, Sharer, ShareTarget
from points.domain.reports import ChannelResponse, VersionSpan

INSERT_LINK = """
INSERT INTO share_links (link_id, code, created_by, sharer_member, staff_id, branch_id, target_kind, activity_id,
                         partner_id, offer_id, channel, campaign_ref, window_days, request_sha256, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
ON CONFLICT (link_id) DO NOTHING RETURNING link_id
"""

LINK_COLUMNS = """
l.link_id, l.code, l.created_by, l.sharer_member, l.staff_id, l.branch_id, l.target_kind, l.activity_id,
l.partner_id, l.offer_id, l.channel, l.campaign_ref, l.window_days, l.request_sha256, l.created_at,
(SELECT a.name FROM activities a WHERE a.activity_id = l.activity_id) AS activity_name
"""

LINK_BY_ID = f"SELECT {LINK_COLUMNS} FROM share_links l WHERE l.link_id = $1"
LINK_BY_CODE = f"SELECT {LINK_COLUMNS} FROM share_links l WHERE l.code = $1"

# The transfers that carried a link's code: the predicate repeats transfers_by_share_code's (0013).
LINKS_OF = f"""
SELECT {LINK_COLUMNS},
       (SELECT count(*) FROM share_link_opens o WHERE o.code = l.code) AS opens,
       (SELECT count(DISTINCT o.member_id) FROM share_link_opens o WHERE o.code = l.code) AS openers,
       (SELECT count(*) FROM transfers t
        WHERE t.memo -> 'attribution' ? 'share_code' AND t.memo -> 'attribution' ->> 'share_code' = l.code) AS carried
FROM share_links l
WHERE ($1::uuid IS NULL OR l.sharer_member = $1) AND ($2::text IS NULL OR l.staff_id = $2)
ORDER BY l.created_at DESC, l.link_id LIMIT $3
"""

ACTIVITY_EXISTS = "SELECT 1 FROM activities WHERE activity_id = $1"
LINK_EXISTS = "SELECT 1 FROM share_links WHERE code = $1"

CLAIM_OPEN = """
UPDATE share_link_opens o SET member_id = $3
WHERE o.open_id = $1 AND o.code = $2 AND o.member_id IS NULL AND o.opened_at > $4
  AND NOT EXISTS (SELECT 1 FROM share_link_opens d WHERE d.code = o.code AND d.member_id = $3 AND d.day = o.day)
RETURNING o.open_id
"""

OPENED_TODAY = "SELECT open_id FROM share_link_opens WHERE code = $1 AND member_id = $2 AND day = $3"

COUNT_OPEN = """
INSERT INTO share_link_open_minutes (code, minute, opens) VALUES ($1, $2, 1)
ON CONFLICT (code, minute) DO UPDATE SET opens = share_link_open_minutes.opens + 1
WHERE share_link_open_minutes.opens < $3
RETURNING opens
"""

INSERT_OPEN = """
INSERT INTO share_link_opens (open_id, code, opened_at, day, member_id) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT DO NOTHING RETURNING open_id
"""

FORGET_OPEN_MINUTES = "DELETE FROM share_link_open_minutes WHERE minute < $1"

# --- the activity report's rows per channel ----------------------------------------------------------------------

LATEST_RULES = "(SELECT v.rules FROM activity_versions v WHERE v.activity_id = a.activity_id ORDER BY v.version DESC " \
    "LIMIT 1)"  # fmt: skip


def in_scope(act: str) -> str:
    """Whether earning `e` is a purchase in the scope of activity row `act` (its kind and latest rules), as SQL."""
    scope = f"{act}.rules -> 'scope'"
    matches = (
        f"({scope} ->> 'channel' IS NULL OR {scope} ->> 'channel' = {CHANNEL})"
        f" AND ({scope} ->> 'partner_id' IS NULL OR {scope} ->> 'partner_id' = {PARTNER})"
        f" AND ({scope} ->> 'category' IS NULL OR {scope} ->> 'category' = e.category)"
        f" AND ({scope} ->> 'mcc' IS NULL OR {scope} ->> 'mcc' = e.mcc)"
    )
    return (
        f"(CASE {act}.kind WHEN 'multiplier' THEN {matches}"
        f" WHEN 'spend_threshold' THEN {matches} AND e.currency = {act}.rules ->> 'currency'"
        f" WHEN 'first_purchase' THEN {PARTNER} = {act}.rules ->> 'partner_id' ELSE false END)"
    )


CHANNEL_PEOPLE = f"""
act AS (SELECT a.activity_id, a.kind, {LATEST_RULES} AS rules FROM activities a WHERE a.activity_id = $1),
people AS (
    SELECT t.member_id, t.holdout, CASE WHEN t.holdout THEN NULL ELSE m.channel END AS channel,
           m.delivered_at, m.opened_at, m.clicked_at
    FROM activity_targets t
    LEFT JOIN member_messages m ON m.activity_id = t.activity_id AND m.member_id = t.member_id
    WHERE t.activity_id = $1 AND (t.holdout OR m.message_id IS NOT NULL)
)
"""

CHANNEL_GROUPS = f"""
WITH {CHANNEL_PEOPLE},
responded AS (
    SELECT p.member_id FROM people p CROSS JOIN act
    WHERE EXISTS (SELECT 1 FROM activity_grants g WHERE g.activity_id = $1 AND g.member_id = p.member_id
                    AND g.occurred_at >= $2 AND g.occurred_at < $3)
       OR EXISTS (SELECT 1 FROM identifiers i JOIN earnings e ON e.identifier = i.identifier
                  WHERE i.member_id = p.member_id AND e.occurred_at >= $2 AND e.occurred_at < $3
                    AND e.amount_minor > e.refunded_minor AND {in_scope("act")})
)
SELECT p.channel, count(*) AS members, count(p.delivered_at) AS delivered, count(p.opened_at) AS opened,
       count(p.clicked_at) AS clicked, count(r.member_id) AS responders
FROM people p LEFT JOIN responded r USING (member_id)
GROUP BY p.channel ORDER BY p.channel NULLS LAST
"""
"""Per channel (NULL: the holdout): messaged members, how many were delivered, opened, clicked, and responded
(a grant of the activity, or a purchase in its scope, within [$2, $3)); the holdout can only buy."""

CHANNEL_SPEND = f"""
WITH {CHANNEL_PEOPLE}
SELECT p.channel, e.currency, sum(e.amount_minor - e.refunded_minor) AS spend
FROM people p JOIN identifiers i ON i.member_id = p.member_id
JOIN earnings e ON e.identifier = i.identifier AND e.occurred_at >= $2 AND e.occurred_at < $3
GROUP BY p.channel, e.currency
"""
"""Net spend within [$2, $3) of the messaged members per channel and of the holdout (NULL), by currency."""

MESSAGED_WITH_HOLDOUT = """
SELECT DISTINCT m.activity_id FROM member_messages m JOIN activities a USING (activity_id)
WHERE m.sent_at >= $1 AND m.sent_at < $2 AND a.holdout_share > 0
"""

VERSIONS = """
SELECT state, effective_from, window_start, window_end FROM activity_versions WHERE activity_id = $1 ORDER BY version
"""

# --- the attribution report --------------------------------------------------------------------------------------

GROUP_KEYS: dict[Grouping, tuple[str, str, str]] = {
    # (a message's, a link's, an attributed transfer's: its own field, else its link's)
    Grouping.CHANNEL: ("m.channel", "l.channel", "COALESCE(t.memo -> 'attribution' ->> 'channel', l.channel)"),
    Grouping.BRANCH: ("NULL::text", "l.branch_id", "COALESCE(t.memo -> 'attribution' ->> 'branch_id', l.branch_id)"),
    Grouping.STAFF: ("NULL::text", "l.staff_id", "COALESCE(t.memo -> 'attribution' ->> 'staff_id', l.staff_id)"),
}

REPORT = """
WITH touches AS (
    SELECT {message} AS gk, m.member_id, m.sent_at AS since, m.expires_at AS until, m.activity_id,
           NULL::text AS partner_id
    FROM member_messages m WHERE m.sent_at >= $1 AND m.sent_at < $2
    UNION ALL
    SELECT {link} AS gk, o.member_id, min(o.opened_at) AS since,
           min(o.opened_at) + make_interval(days => l.window_days) AS until, l.activity_id, l.partner_id
    FROM share_link_opens o JOIN share_links l ON l.code = o.code
    WHERE o.member_id IS NOT NULL AND o.opened_at >= $1 AND o.opened_at < $2
    GROUP BY l.link_id, o.member_id
), direct AS (
    SELECT {transfer} AS gk, t.reason, t.transfer_id, t.cause_event_id,
           CASE WHEN t.credit_account LIKE 'member:%' THEN substr(t.credit_account, 8)::uuid END AS member_id
    FROM transfers t LEFT JOIN share_links l ON l.code = t.memo -> 'attribution' ->> 'share_code'
    WHERE t.memo ? 'attribution' AND t.occurred_at >= $1 AND t.occurred_at < $2
      AND t.reason IN ('partner_purchase', 'card_purchase', 'bonus_limited_claim')
), act AS (
    SELECT a.activity_id, a.kind, {rules} AS rules FROM activities a
    WHERE a.activity_id IN (SELECT activity_id FROM touches)
), touch_grants AS (
    SELECT t.gk, t.member_id, g.activity_id, g.cause_id, g.points
    FROM touches t JOIN activity_grants g ON g.activity_id = t.activity_id AND g.member_id = t.member_id
     AND g.occurred_at >= t.since AND g.occurred_at < t.until
), touch_purchases AS (
    SELECT t.gk, t.member_id, e.source_key
    FROM touches t JOIN identifiers i ON i.member_id = t.member_id
    JOIN earnings e ON e.identifier = i.identifier AND e.occurred_at >= t.since AND e.occurred_at < t.until
    LEFT JOIN act ON act.activity_id = t.activity_id
    WHERE e.amount_minor > e.refunded_minor
      AND ((t.partner_id IS NOT NULL AND {partner} = t.partner_id) OR (act.activity_id IS NOT NULL AND {scope}))
), touch_redemptions AS (
    SELECT t.gk, t.member_id FROM touches t
    WHERE t.partner_id IS NOT NULL AND EXISTS (
        SELECT 1 FROM transfers r
        WHERE r.debit_account = 'member:' || t.member_id
          AND r.credit_account = 'partner:' || t.partner_id || ':redeemed'
          AND r.occurred_at >= t.since AND r.occurred_at < t.until)
), direct_grants AS (
    SELECT d.gk, d.member_id, g.activity_id, g.cause_id, g.points FROM direct d
    JOIN activity_grants g ON (d.reason = 'bonus_limited_claim' AND g.transfer_id = d.transfer_id)
                           OR (d.reason <> 'bonus_limited_claim' AND g.purchase_id = d.cause_event_id)
), direct_purchases AS (
    SELECT d.gk, e.source_key FROM direct d JOIN earnings e ON e.event_id = d.cause_event_id
    WHERE d.reason <> 'bonus_limited_claim'
), reached AS (
    SELECT gk, member_id FROM touches UNION SELECT gk, member_id FROM direct WHERE member_id IS NOT NULL
), responded AS (
    SELECT gk, member_id FROM touch_grants UNION SELECT gk, member_id FROM touch_purchases
    UNION SELECT gk, member_id FROM touch_redemptions UNION SELECT gk, member_id FROM direct WHERE member_id IS NOT NULL
), granted AS (
    SELECT gk, activity_id, cause_id, points FROM touch_grants
    UNION SELECT gk, activity_id, cause_id, points FROM direct_grants
), spent AS (
    SELECT gk, source_key FROM touch_purchases UNION SELECT gk, source_key FROM direct_purchases
), opens AS (
    SELECT {message} AS gk, count(*) AS n FROM member_messages m
    WHERE m.sent_at >= $1 AND m.sent_at < $2 AND m.opened_at IS NOT NULL GROUP BY 1
    UNION ALL
    SELECT {link} AS gk, count(*) AS n FROM share_link_opens o JOIN share_links l ON l.code = o.code
    WHERE o.opened_at >= $1 AND o.opened_at < $2 GROUP BY 1
)
SELECT 'reach' AS figure, gk, count(*) AS value, NULL::text AS currency FROM reached GROUP BY gk
UNION ALL SELECT 'responders', gk, count(*), NULL FROM responded GROUP BY gk
UNION ALL SELECT 'opens', gk, sum(n), NULL FROM opens GROUP BY gk
UNION ALL SELECT 'points', gk, sum(points), NULL FROM granted GROUP BY gk
UNION ALL SELECT 'spend', s.gk, sum(e.amount_minor - e.refunded_minor), e.currency
          FROM spent s JOIN earnings e USING (source_key) GROUP BY s.gk, e.currency
"""


def report_sql(grouping: Grouping) -> str:
    message, link, transfer = GROUP_KEYS[grouping]
    return REPORT.format(
        message=message, link=link, transfer=transfer, rules=LATEST_RULES, partner=PARTNER, scope=in_scope("act"),
    )  # fmt: skip


@dataclass(frozen=True)
class StoredLink:
    link: ShareLink
    activity_name: str | None
    opens: int = 0
    openers: int = 0
    carried: int = 0
    """Purchases and claims whose attribution names the link's code."""


def _link(row: asyncpg.Record) -> StoredLink:
    sharer = Sharer(row["created_by"], row["sharer_member"], row["staff_id"], row["branch_id"])
    target = ShareTarget(row["target_kind"], row["activity_id"], row["partner_id"], row["offer_id"])
    link = ShareLink(row["link_id"], row["code"], sharer, target, row["channel"], row["campaign_ref"],
                     row["window_days"], row["created_at"])  # fmt: skip
    counts = {k: int(row[k]) for k in ("opens", "openers", "carried") if k in row}
    return StoredLink(link, row["activity_name"], **counts)


class OpenRefusedError(Exception):
    """Rolls back an open that must not be kept (its member opened the link today already)."""


class AttributionStore:
    """Borrows a pool it does not own."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def activity_exists(self, activity_id: uuid.UUID) -> bool:
        return await self._pool.fetchval(ACTIVITY_EXISTS, activity_id) is not None

    async def link_exists(self, code: str) -> bool:
        return await self._pool.fetchval(LINK_EXISTS, code) is not None

    async def insert_link(self, link: ShareLink) -> StoredLink:
        """The link as stored: this one, or the one stored before under its link id (compare request_sha256)."""
        s, t = link.sharer, link.target
        await self._pool.fetchval(
            INSERT_LINK, link.link_id, link.code, s.created_by, s.member_id, s.staff_id, s.branch_id, t.kind,
            t.activity_id, t.partner_id, t.offer_id, link.channel, link.campaign_ref, link.window_days,
            link.request_sha256, link.created_at,
        )  # fmt: skip
        row = await self._pool.fetchrow(LINK_BY_ID, link.link_id)
        assert row is not None
        return _link(row)

    async def link(self, code: str) -> StoredLink | None:
        row = await self._pool.fetchrow(LINK_BY_CODE, code)
        return None if row is None else _link(row)

    async def links(self, member_id: uuid.UUID | None, staff_id: str | None, limit: int) -> list[StoredLink]:
        """A member's or a staff member's links, newest first; every link when both are None."""
        return [_link(r) for r in await self._pool.fetch(LINKS_OF, member_id, staff_id, limit)]

    async def record_open(
        self, code: str, open_id: uuid.UUID, at: datetime, day: date, member_id: uuid.UUID | None,
        claim: uuid.UUID | None, per_minute: int, minute: datetime, claim_within: timedelta,
    ) -> uuid.UUID | None:  # fmt: skip
        """The open kept (or claimed, or the member's of today), None when the flood limit dropped it."""
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                if member_id is not None:
                    if claim is not None:
                        claimed = await conn.fetchval(CLAIM_OPEN, claim, code, member_id, at - claim_within)
                        if claimed is not None:
                            return uuid.UUID(str(claimed))
                    earlier = await conn.fetchval(OPENED_TODAY, code, member_id, day)
                    if earlier is not None:
                        return uuid.UUID(str(earlier))
                if await conn.fetchval(COUNT_OPEN, code, minute, per_minute) is None:
                    return None
                if await conn.fetchval(INSERT_OPEN, open_id, code, at, day, member_id) is None:
                    raise OpenRefusedError()  # the same member at the same moment: keep the first, count once
                return open_id
        except (OpenRefusedError, asyncpg.UniqueViolationError):
            found = await self._pool.fetchval(OPENED_TODAY, code, member_id, day)
            return None if found is None else uuid.UUID(str(found))

    async def forget_open_minutes(self, before: datetime) -> None:
        await self._pool.execute(FORGET_OPEN_MINUTES, before)

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[AttributionReader]:
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            yield AttributionReader(conn)


class AttributionReader:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def figures(self, grouping: Grouping, start: datetime, end: datetime) -> list[Figure]:
        rows = await self.conn.fetch(report_sql(grouping), start, end)
        return [Figure(r["figure"], r["gk"], int(r["value"] or 0), r["currency"]) for r in rows]

    async def messaged_activities_with_holdout(self, start: datetime, end: datetime) -> list[uuid.UUID]:
        return [r["activity_id"] for r in await self.conn.fetch(MESSAGED_WITH_HOLDOUT, start, end)]

    async def versions(self, activity_id: uuid.UUID) -> list[VersionSpan]:
        rows = await self.conn.fetch(VERSIONS, activity_id)
        return [VersionSpan(r["state"], r["effective_from"], r["window_start"], r["window_end"]) for r in rows]

    async def channel_groups(self, activity_id: uuid.UUID, start: datetime, end: datetime) -> list[ChannelResponse]:
        """Per channel, then the holdout (channel None): members, delivered, opened, clicked, responders."""
        rows = await self.conn.fetch(CHANNEL_GROUPS, activity_id, start, end)
        return [
            ChannelResponse(
                r["channel"],
                int(r["members"]),
                int(r["delivered"]),
                int(r["opened"]),
                int(r["clicked"]),
                int(r["responders"]),
            )
            for r in rows
        ]

    async def channel_cohorts(self, activity_id: uuid.UUID, start: datetime, end: datetime) -> list[ChannelCohort]:
        """The messaged members per channel and the holdout, with their net spend within [start, end)."""
        groups = await self.channel_groups(activity_id, start, end)
        spend: dict[str | None, dict[str, int]] = {}
        for row in await self.conn.fetch(CHANNEL_SPEND, activity_id, start, end):
            spend.setdefault(row["channel"], {})[row["currency"]] = int(row["spend"])
        return [ChannelCohort(activity_id, g.channel, g.members, spend.get(g.channel, {})) for g in groups]
