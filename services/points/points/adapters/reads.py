"""Reads for the web console (member wallet, ops console): members, gifts, claimable activities, the ops summary.

Each read is one statement on indexed columns (or one snapshot of a few), never a scan of history.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from points.adapters.activities_store import ActivitiesSql
from points.domain.activities import Activity, ActivityKind
from points.domain.ledger import Account, AccountKind, member_account
from points.domain.rewards import Standing

MEMBER = "SELECT member_id, display_name, created_at FROM members WHERE member_id = $1"

_MEMBER_ROWS = """
SELECT m.member_id, m.display_name, m.created_at,
       COALESCE(a.credits_posted - a.debits_posted - a.debits_pending, 0) AS available,
       ARRAY(SELECT i.identifier FROM identifiers i WHERE i.member_id = m.member_id
             ORDER BY i.linked_at, i.identifier) AS identifiers
FROM {found} f JOIN members m ON m.member_id = f.member_id
LEFT JOIN accounts a ON a.account_id = 'member:' || m.member_id::text
ORDER BY {order} LIMIT {limit}
"""
"""Members as the ops search lists them; `found` names the member ids (and `order` may use their rank)."""

NEWEST_MEMBERS = _MEMBER_ROWS.format(
    found="(SELECT member_id FROM members ORDER BY created_at DESC, member_id DESC LIMIT $1)",
    order="m.created_at DESC, m.member_id DESC",
    limit="$1",
)

# Exact hits (the member id, a linked identifier) rank before name matches; $3 is an ILIKE pattern or NULL.
SEARCH_MEMBERS = _MEMBER_ROWS.format(
    found="""(
    SELECT member_id, min(rank) AS rank FROM (
        SELECT member_id, 0 AS rank FROM members WHERE member_id = $1
        UNION ALL
        SELECT member_id, 0 FROM identifiers WHERE identifier = ANY($2::text[]) AND member_id IS NOT NULL
        UNION ALL
        (SELECT member_id, 1 FROM members WHERE $3::text IS NOT NULL AND display_name ILIKE $3
         ORDER BY created_at DESC, member_id DESC LIMIT $4)
    ) hits GROUP BY member_id
)""",
    order="f.rank, m.created_at DESC, m.member_id DESC",
    limit="$4",
)

GIFTS_OF = """
SELECT * FROM (
    (SELECT gift_id, 'sent' AS direction, recipient AS counterparty_member_id, amount AS points, message,
            given_at AS at
     FROM gifts WHERE sender = $1 ORDER BY given_at DESC LIMIT $2)
    UNION ALL
    (SELECT gift_id, 'received', sender, amount, message, given_at
     FROM gifts WHERE recipient = $1 ORDER BY given_at DESC LIMIT $2)
) both_ways ORDER BY at DESC, gift_id LIMIT $2
"""

CLAIMS_OF_MEMBER = """
SELECT activity_id, points, occurred_at FROM activity_grants
WHERE member_id = $1 AND claim_id IS NOT NULL ORDER BY occurred_at DESC LIMIT $2
"""

READ_ACCOUNTS = """
SELECT account_id, kind, debits_posted, credits_posted, debits_pending, credits_pending
FROM accounts WHERE account_id = ANY($1::text[])
"""

# The three predicates are those of the partial indexes of migrations 0009 and 0014 (issued), term for term
# (else they go unused). Issued: what reaches members from partners, the card, activity budgets, the programme
# (tier bonuses) and red packets an activity's budget funded.
ISSUED = """(credit_account LIKE 'member:%' OR credit_account LIKE 'unclaimed:%')
  AND (debit_account LIKE 'partner:%:issued' OR debit_account = 'card:issued' OR debit_account LIKE 'activity:%:budget'
       OR debit_account = 'programme'
       OR (debit_account LIKE 'packet:%' AND memo->>'issuer' LIKE 'activity:%:budget'))"""
REDEEMED = "debit_account LIKE 'member:%' AND credit_account LIKE 'partner:%:redeemed'"
EXPIRED = "credit_account = 'breakage'"

_MOVED = """(SELECT COALESCE(sum(amount) FILTER (WHERE posted_at >= $1), 0)::bigint AS today,
        COALESCE(sum(amount), 0)::bigint AS month
 FROM transfers WHERE posted_at >= $2 AND {predicate})"""

# $1: the start of today, $2: the start of this month (UTC). The ledger sums to zero, so what members and
# unclaimed identifiers hold is minus what the few other accounts hold (index accounts_system); points waiting
# in red packets count as outstanding too (they go to members, or back to where they came from).
SUMMARY = f"""
SELECT (SELECT count(*) FROM members) AS members_total,
       (SELECT count(*) FROM members WHERE created_at >= $1) AS members_today,
       (SELECT count(*) FROM members WHERE created_at >= $2) AS members_month,
       issued.today AS issued_today, issued.month AS issued_month,
       redeemed.today AS redeemed_today, redeemed.month AS redeemed_month,
       expired.today AS expired_today, expired.month AS expired_month,
       (SELECT -COALESCE(sum(credits_posted - debits_posted), 0)::bigint FROM accounts
        WHERE kind NOT IN ('member', 'unclaimed') AND kind <> 'packet') AS outstanding
FROM {_MOVED.format(predicate=ISSUED)} issued,
     {_MOVED.format(predicate=REDEEMED)} redeemed,
     {_MOVED.format(predicate=EXPIRED)} expired
"""

CLAIMS_LISTED = 100
"""The most claimed activities a member's list shows, newest claims first."""


async def member(pool: asyncpg.Pool, member_id: uuid.UUID) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await pool.fetchrow(MEMBER, member_id)
    return row


async def newest_members(pool: asyncpg.Pool, limit: int) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await pool.fetch(NEWEST_MEMBERS, limit)
    return rows


async def search_members(
    pool: asyncpg.Pool, member_id: uuid.UUID | None, identifiers: Sequence[str], name_pattern: str | None, limit: int
) -> list[asyncpg.Record]:
    """Members with this id, linked to one of these identifiers, or whose display name matches (ILIKE)."""
    rows: list[asyncpg.Record] = await pool.fetch(SEARCH_MEMBERS, member_id, list(identifiers), name_pattern, limit)
    return rows


async def gifts_of(pool: asyncpg.Pool, member_id: uuid.UUID, limit: int) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await pool.fetch(GIFTS_OF, member_id, limit)
    return rows


async def summary(pool: asyncpg.Pool, today: datetime, month: datetime) -> asyncpg.Record:
    row: asyncpg.Record | None = await pool.fetchrow(SUMMARY, today, month)
    assert row is not None
    return row


@dataclass(frozen=True)
class ClaimedGrant:
    activity_id: uuid.UUID
    points: int
    claimed_at: datetime


@dataclass(frozen=True)
class ClaimView:
    """What the domain's claim rule reads for one member, from one snapshot: the limited claims live now,
    the member's targeting and standing in them, the accounts a grant moves, and its claims so far."""

    activities: dict[uuid.UUID, Activity]
    """The open claims' and the claimed ones'."""
    open: list[uuid.UUID]
    targeted: set[tuple[uuid.UUID, uuid.UUID]]
    standings: dict[tuple[uuid.UUID, uuid.UUID], Standing]
    accounts: list[Account]
    claimed: list[ClaimedGrant]


async def claim_view(pool: asyncpg.Pool, member_id: uuid.UUID, now: datetime) -> ClaimView | None:
    """None when there is no such member. Locks nothing: a claim decides again under its locks."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        if await conn.fetchrow(MEMBER, member_id) is None:
            return None
        sql = ActivitiesSql(conn)
        live = await sql.live_between(now, now)
        claimed = [
            ClaimedGrant(r["activity_id"], r["points"], r["occurred_at"])
            for r in await conn.fetch(CLAIMS_OF_MEMBER, member_id, CLAIMS_LISTED)
        ]
        activities = await sql.read([*live, *(c.activity_id for c in claimed)])
        open_ids = sorted(a for a in live if activities[a].kind is ActivityKind.LIMITED_CLAIM)
        wanted = [member_account(member_id), *(activities[a].budget_account for a in open_ids)]
        accounts = [
            Account(r["account_id"], AccountKind.of(r["kind"]), r["debits_posted"], r["credits_posted"],
                    r["debits_pending"], r["credits_pending"])
            for r in await conn.fetch(READ_ACCOUNTS, wanted)
        ]  # fmt: skip
        return ClaimView(
            activities,
            open_ids,
            await sql.targeted(open_ids, [member_id]),
            await sql.standings(open_ids, [member_id]),
            accounts,
            claimed,
        )
