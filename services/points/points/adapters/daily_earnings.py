"""PostgreSQL reads and writes of daily earnings: a member's movements by posting time, the summaries of finished
days, and share cards.

Which transfers count is points/domain/daily_earnings.py's rule, stated here once in SQL (EARNED, TAKEN_BACK) from the
domain's own reason lists. Every read of a member's movements is a range scan of the partial indexes of migration
0011 (their predicates, MEMBER_CREDITS and MEMBER_DEBITS, repeated verbatim), never a scan of its history.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import asyncpg
import orjson

from points.domain.daily_earnings import (
    EARNED_REASONS,
    NOT_EARNED,
    TAKEN_BACK_REASONS,
    TAKEN_BACK_SUFFIXES,
    Baseline,
    DaySummary,
    Direction,
    Movement,
    Source,
    Sums,
)
from points.domain.ledger import member_of

_REASON = re.compile(r"^[a-z0-9_]+$")


def _reasons(reasons: Iterable[str]) -> str:
    """A text[] literal of reason codes (checked: they are written into SQL)."""
    names = sorted(reasons)
    if not all(_REASON.match(n) for n in names):
        raise ValueError(f"reason codes are lower-case words: {names}")
    return "'{" + ",".join(names) + "}'::text[]"


def _like_suffixes() -> str:
    """`reason LIKE '%\\_reversal'` for each suffix (an underscore is LIKE's any-character: escaped)."""
    escaped = [suffix.replace("_", "\\_") for suffix in TAKEN_BACK_SUFFIXES]
    return " OR ".join(f"reason LIKE '%{suffix}'" for suffix in escaped)


MEMBER_CREDITS = "credit_account LIKE 'member:%'"
MEMBER_DEBITS = "(debit_account LIKE 'member:%' OR debit_account LIKE 'receivable:%')"
EARNED = f"reason <> ALL({_reasons(NOT_EARNED)})"
"""A credit to a member that is an earning (domain: is_earned)."""
TAKEN_BACK = f"(reason = ANY({_reasons(TAKEN_BACK_REASONS)}) OR {_like_suffixes()})"
"""A debit of a member or its receivable that takes earnings back (domain: is_taken_back)."""


def credit_source_sql() -> str:
    """The source of a credit to a member, as domain.daily_earnings.source_of names it (for `make verify`)."""
    _reasons(EARNED_REASONS)  # refuses a reason that could not be written into SQL as it is
    cases = [f"WHEN reason = '{r}' THEN '{s.value}'" for r, s in sorted(EARNED_REASONS.items())]
    cases += [
        "WHEN reason LIKE 'bonus\\_%' THEN 'activity'",
        "WHEN reason LIKE 'tier\\_%' THEN 'tier'",
        "WHEN reason = 'claim' AND debit_account LIKE 'unclaimed:partner:%' THEN 'partner'",
        "WHEN reason = 'claim' AND debit_account LIKE 'unclaimed:card:%' THEN 'card'",
        "WHEN reason = 'claim' AND debit_account LIKE 'unclaimed:activity:%' THEN 'activity'",
    ]
    return "CASE " + " ".join(cases) + " ELSE 'other' END"


MOVEMENTS = f"""
SELECT 'earned' AS direction, credit_account AS account, amount, reason, debit_account AS counterparty, posted_at
FROM transfers
WHERE credit_account = ANY($1::text[]) AND {MEMBER_CREDITS} AND posted_at >= $3 AND posted_at < $4 AND {EARNED}
UNION ALL
SELECT 'taken_back', debit_account, amount, reason, credit_account, posted_at
FROM transfers
WHERE debit_account = ANY($2::text[]) AND {MEMBER_DEBITS} AND posted_at >= $3 AND posted_at < $4 AND {TAKEN_BACK}
"""
"""$1: members' accounts, $2: their accounts and receivables, [$3, $4): the posting times."""

SUMS = f"""
SELECT m.member_id,
       (SELECT COALESCE(sum(amount), 0) FROM transfers
        WHERE credit_account = 'member:' || m.member_id::text AND {MEMBER_CREDITS}
          AND posted_at >= COALESCE(m.since, '-infinity') AND posted_at < $3 AND {EARNED})::bigint AS earned,
       (SELECT COALESCE(sum(amount), 0) FROM transfers
        WHERE debit_account IN ('member:' || m.member_id::text, 'receivable:' || m.member_id::text)
          AND {MEMBER_DEBITS}
          AND posted_at >= COALESCE(m.since, '-infinity') AND posted_at < $3 AND {TAKEN_BACK})::bigint AS taken_back
FROM unnest($1::uuid[], $2::timestamptz[]) AS m(member_id, since)
"""
"""Each member's earned and taken back from its own start ($2, NULL: ever) to $3."""

BASELINES = """
SELECT m.member_id, b.lifetime, b.ends_at
FROM unnest($1::uuid[]) AS m(member_id)
CROSS JOIN LATERAL (
    SELECT lifetime, ends_at FROM daily_summaries s
    WHERE s.member_id = m.member_id AND s.day < $2 ORDER BY s.day DESC LIMIT 1
) b
"""
"""Each member's latest summary of a day before $2, where its lifetime total continues from."""

_DAY_MOVERS = f"""
    SELECT split_part(credit_account, ':', 2)::uuid AS member_id FROM transfers
    WHERE posted_at >= $1 AND posted_at < $2 AND {MEMBER_CREDITS} AND {EARNED}
    UNION
    SELECT split_part(debit_account, ':', 2)::uuid FROM transfers
    WHERE posted_at >= $1 AND posted_at < $2 AND {MEMBER_DEBITS} AND {TAKEN_BACK}
"""

UNSUMMARISED_MEMBERS = f"""
SELECT member_id FROM ({_DAY_MOVERS}) moved
WHERE member_id > $3
  AND NOT EXISTS (SELECT 1 FROM daily_summaries s WHERE s.day = $4 AND s.member_id = moved.member_id)
ORDER BY member_id LIMIT $5
"""
"""Members with earnings posted in [$1, $2) and no summary of day $4 yet, after member $3, in id order."""

INSERT_SUMMARIES = """
INSERT INTO daily_summaries (day, starts_at, ends_at, summarised_at,
                             member_id, earned, taken_back, by_source, month_to_date, lifetime, event_id)
SELECT $1, $2, $3, $4, * FROM unnest(
    $5::uuid[], $6::bigint[], $7::bigint[], $8::jsonb[], $9::bigint[], $10::bigint[], $11::uuid[]
)
ON CONFLICT DO NOTHING
RETURNING member_id
"""
"""Only the rows no one wrote before come back: their events go to the outbox, the others' went already."""

FIRST_DAY_DONE = "SELECT min(day) FROM daily_summary_days"

DAYS_DONE_SINCE = "SELECT day FROM daily_summary_days WHERE day >= $1"

FINISH_DAY = """
INSERT INTO daily_summary_days (day, time_zone, finished_at, requested_by) VALUES ($1, $2, $3, $4)
ON CONFLICT (day) DO NOTHING
"""

SUMMARIES_OF_DAY = "SELECT count(*) FROM daily_summaries WHERE day = $1"

# --- share cards ---------------------------------------------------------------------------------------------

LOCK_MEMBERS_CARDS = "SELECT pg_advisory_xact_lock(hashtextextended('share-cards:' || $1::uuid::text, 0))"
"""Serialises the cards of one member (the live limit), without locking its row in `members`."""

CARD = """
SELECT card_id, member_id, day, display_name, points, sources, created_at, revoked_at
FROM share_cards WHERE card_id = $1
"""

LIVE_CARDS_COUNT = "SELECT count(*) FROM share_cards WHERE member_id = $1 AND revoked_at IS NULL"

INSERT_CARD = """
INSERT INTO share_cards (card_id, member_id, token_sha256, day, starts_at, ends_at, display_name, points, sources,
                         created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
"""

LIVE_CARDS = """
SELECT card_id, day, display_name, points, sources, created_at FROM share_cards
WHERE member_id = $1 AND revoked_at IS NULL ORDER BY created_at DESC, card_id LIMIT $2
"""

REVOKE_CARD = """
UPDATE share_cards SET revoked_at = $3 WHERE card_id = $1 AND member_id = $2 AND revoked_at IS NULL RETURNING card_id
"""

MEMBERS_CARD = "SELECT 1 FROM share_cards WHERE card_id = $1 AND member_id = $2"

SHARED_CARD = """
SELECT day, display_name, points, sources FROM share_cards WHERE token_sha256 = $1 AND revoked_at IS NULL
"""


def _sources_json(sources: dict[Source, int]) -> str:
    return orjson.dumps({s.value: n for s, n in sources.items()}).decode()


def _sources_of(raw: str | None) -> dict[str, int] | None:
    return None if raw is None else dict(orjson.loads(raw))


@dataclass(frozen=True)
class NewCard:
    card_id: uuid.UUID
    member_id: uuid.UUID
    token_sha256: str
    day: date
    starts_at: datetime
    ends_at: datetime
    display_name: str | None
    points: int
    sources: dict[Source, int] | None
    created_at: datetime


class EarningsSql:
    """The statements of daily earnings, on the caller's connection (inside its transaction, if any)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def movements(
        self, members: Sequence[uuid.UUID], start: datetime, end: datetime
    ) -> dict[uuid.UUID, list[Movement]]:
        """The members' earnings and take-backs posted in [start, end), by member."""
        accounts = [f"member:{m}" for m in members]
        debited = accounts + [f"receivable:{m}" for m in members]
        found: dict[uuid.UUID, list[Movement]] = {m: [] for m in members}
        for r in await self.conn.fetch(MOVEMENTS, accounts, debited, start, end):
            found[member_of(r["account"])].append(
                Movement(Direction(r["direction"]), r["amount"], r["reason"], r["counterparty"], r["posted_at"])
            )
        return found

    async def sums(self, since: dict[uuid.UUID, datetime | None], end: datetime) -> dict[uuid.UUID, Sums]:
        """Each member's earned and taken back from its own start (None: ever) to `end`."""
        members = list(since)
        rows = await self.conn.fetch(SUMS, members, [since[m] for m in members], end)
        return {r["member_id"]: Sums(r["earned"], r["taken_back"]) for r in rows}

    async def baselines(self, members: Sequence[uuid.UUID], before: date) -> dict[uuid.UUID, Baseline]:
        rows = await self.conn.fetch(BASELINES, list(members), before)
        return {r["member_id"]: Baseline(r["lifetime"], r["ends_at"]) for r in rows}

    async def unsummarised_members(
        self, day: date, start: datetime, end: datetime, after: uuid.UUID, limit: int
    ) -> list[uuid.UUID]:
        rows = await self.conn.fetch(UNSUMMARISED_MEMBERS, start, end, after, day, limit)
        return [r["member_id"] for r in rows]

    async def insert_summaries(self, summaries: Sequence[DaySummary], at: datetime) -> set[uuid.UUID]:
        """Record the summaries; returns the members whose summary of the day is new (the others' existed)."""
        if not summaries:
            return set()
        first = summaries[0]
        rows = await self.conn.fetch(
            INSERT_SUMMARIES, first.earnings.day, first.starts_at, first.ends_at, at,
            [s.member_id for s in summaries], [s.earnings.earned for s in summaries],
            [s.earnings.taken_back for s in summaries], [_sources_json(dict(s.earnings.by_source)) for s in summaries],
            [s.totals.month_to_date for s in summaries], [s.totals.lifetime for s in summaries],
            [s.event_id for s in summaries],
        )  # fmt: skip
        return {r["member_id"] for r in rows}

    async def days_done(self, since: date) -> tuple[date | None, set[date]]:
        """The first day ever summarised, and the days summarised since `since`."""
        first: date | None = await self.conn.fetchval(FIRST_DAY_DONE)
        return first, {r["day"] for r in await self.conn.fetch(DAYS_DONE_SINCE, since)}

    async def finish_day(self, day: date, zone: str, at: datetime, requested_by: str) -> None:
        await self.conn.execute(FINISH_DAY, day, zone, at, requested_by)

    async def summaries_of_day(self, day: date) -> int:
        count: int = await self.conn.fetchval(SUMMARIES_OF_DAY, day)
        return count

    # --- share cards -------------------------------------------------------------------------------------------

    async def lock_members_cards(self, member_id: uuid.UUID) -> None:
        await self.conn.execute(LOCK_MEMBERS_CARDS, member_id)

    async def card(self, card_id: uuid.UUID) -> dict[str, Any] | None:
        row = await self.conn.fetchrow(CARD, card_id)
        return None if row is None else {**dict(row), "sources": _sources_of(row["sources"])}

    async def live_cards_count(self, member_id: uuid.UUID) -> int:
        count: int = await self.conn.fetchval(LIVE_CARDS_COUNT, member_id)
        return count

    async def insert_card(self, card: NewCard) -> None:
        c = card
        sources = None if c.sources is None else _sources_json(c.sources)
        await self.conn.execute(
            INSERT_CARD, c.card_id, c.member_id, c.token_sha256, c.day, c.starts_at, c.ends_at, c.display_name,
            c.points, sources, c.created_at,
        )  # fmt: skip

    async def live_cards(self, member_id: uuid.UUID, limit: int) -> list[dict[str, Any]]:
        rows = await self.conn.fetch(LIVE_CARDS, member_id, limit)
        return [{**dict(r), "sources": _sources_of(r["sources"])} for r in rows]

    async def revoke_card(self, card_id: uuid.UUID, member_id: uuid.UUID, at: datetime) -> bool:
        """Revoke the member's card; False when it has no such card (revoked already counts as its own)."""
        if await self.conn.fetchval(REVOKE_CARD, card_id, member_id, at) is not None:
            return True
        return await self.conn.fetchval(MEMBERS_CARD, card_id, member_id) is not None

    async def shared_card(self, token_sha256: str) -> dict[str, Any] | None:
        row = await self.conn.fetchrow(SHARED_CARD, token_sha256)
        return None if row is None else {**dict(row), "sources": _sources_of(row["sources"])}
