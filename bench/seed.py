"""Set-up data written straight into a bench points database with SQL (never the measured path).

The rows are the ones the ledger itself would hold: members with their accounts and linked
identifiers, credits as transfers with their lots, and issuer accounts debited to match, so
that the invariant checks of `make verify` would hold on them too.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

ISSUER = "partner:benchmall:issued"

ENSURE_ISSUER = "INSERT INTO accounts (account_id, kind) VALUES ($1, 'partner_issued') ON CONFLICT DO NOTHING"

# One credit per member: a transfer from the issuer, its lot, and both balances.
FUND = """
WITH t AS (
    INSERT INTO transfers (transfer_id, debit_account, credit_account, amount, reason, cause_event_id, occurred_at,
                           expires_at, memo)
    SELECT gen_random_uuid(), $2, 'member:' || m, $3, 'partner_purchase', gen_random_uuid(), now(),
           now() + interval '700 days', '{"seeded_by": "bench"}'
    FROM unnest($1::uuid[]) AS m
    RETURNING transfer_id, credit_account, amount, occurred_at, expires_at
), l AS (
    INSERT INTO lots (lot_id, account_id, amount, remaining, earned_at, expires_at, issuer)
    SELECT transfer_id, credit_account, amount, amount, occurred_at, expires_at, $2 FROM t
    RETURNING account_id
)
UPDATE accounts SET credits_posted = credits_posted + $3 WHERE account_id IN (SELECT account_id FROM l)
"""

# A member's history of `$3` transfers: earn and redeem in turn (the spent lots are left out: the balance
# query reads lots only through the partial index of live lots), then `$4` live earns at the end.
# Ids grow with k so that the indexes take them at their right edge, as they take real, time-ordered ones.
HISTORY = """
INSERT INTO transfers (transfer_id, debit_account, credit_account, amount, reason, cause_event_id, occurred_at,
                       expires_at, memo)
SELECT (left(md5($1::text), 8) || lpad(to_hex(k), 24, '0'))::uuid,
       CASE WHEN k > $3::bigint - $4::bigint OR k % 2 = 1 THEN $5 ELSE $2 END,
       CASE WHEN k > $3::bigint - $4::bigint OR k % 2 = 1 THEN $2 ELSE $6 END,
       10,
       CASE WHEN k > $3::bigint - $4::bigint OR k % 2 = 1 THEN 'partner_purchase' ELSE 'redemption' END,
       (left(md5($1::text || 'cause'), 8) || lpad(to_hex(k), 24, '0'))::uuid,
       now() - interval '1 second' * ($3 - k) / 100,
       CASE WHEN k > $3::bigint - $4::bigint OR k % 2 = 1 THEN now() + interval '1 day' * (k % 700) END,
       '{"partner_id": "benchmall"}'
FROM generate_series($7::bigint, $8::bigint) AS k
"""

LIVE_LOTS = """
INSERT INTO lots (lot_id, account_id, amount, remaining, earned_at, expires_at, issuer)
SELECT transfer_id, credit_account, amount, amount, occurred_at, expires_at, debit_account
FROM transfers WHERE credit_account = $1 AND seq > (SELECT max(seq) FROM transfers) - $2
"""

CREDIT = "UPDATE accounts SET credits_posted = credits_posted + $2 WHERE account_id = $1"
DEBIT = "UPDATE accounts SET debits_posted = debits_posted + $2 WHERE account_id = $1"

# `$2` lots per member for `$1` new members, all expired a day ago and untouched.
EXPIRING = """
WITH m AS (
    INSERT INTO members (member_id, display_name) SELECT gen_random_uuid(), $4 FROM generate_series(1, $1::int)
    RETURNING member_id
), a AS (
    INSERT INTO accounts (account_id, kind, member_id, credits_posted)
    SELECT 'member:' || member_id, 'member', member_id, $2::bigint * $3::bigint FROM m RETURNING account_id
), t AS (
    INSERT INTO transfers (transfer_id, debit_account, credit_account, amount, reason, cause_event_id, occurred_at,
                           expires_at, memo)
    SELECT gen_random_uuid(), $5, a.account_id, $3, 'partner_purchase', gen_random_uuid(),
           now() - interval '731 days', now() - interval '1 day', '{"seeded_by": "bench"}'
    FROM a CROSS JOIN generate_series(1, $2::int)
    RETURNING transfer_id, credit_account, amount, occurred_at, expires_at
)
INSERT INTO lots (lot_id, account_id, amount, remaining, earned_at, expires_at, issuer)
SELECT transfer_id, credit_account, amount, amount, occurred_at, expires_at, $5 FROM t
"""


@dataclass(frozen=True)
class Members:
    ids: list[uuid.UUID]
    partner_id: str

    def customer_ref(self, index: int) -> str:
        return f"c{index:07d}"

    def card_token(self, index: int) -> str:
        return f"tok_bench{index:010d}"

    def account(self, index: int) -> str:
        return f"member:{self.ids[index]}"


async def members(conn: asyncpg.Connection, count: int, partner_id: str = "benchmall") -> Members:
    """`count` members, each linked to one customer of `partner_id` and one card token."""
    made = Members([uuid.uuid4() for _ in range(count)], partner_id)
    now = datetime.now(UTC)
    await conn.copy_records_to_table(
        "members", records=[(m, "") for m in made.ids], columns=["member_id", "display_name"]
    )
    await conn.copy_records_to_table(
        "accounts",
        records=[(f"member:{m}", "member", m) for m in made.ids],
        columns=["account_id", "kind", "member_id"],
    )
    identifiers = [(f"partner:{partner_id}:{made.customer_ref(i)}", m, now) for i, m in enumerate(made.ids)]
    identifiers += [(f"card:{made.card_token(i)}", m, now) for i, m in enumerate(made.ids)]
    await conn.copy_records_to_table(
        "identifiers", records=identifiers, columns=["identifier", "member_id", "linked_at"]
    )
    await conn.execute("ANALYZE members; ANALYZE accounts; ANALYZE identifiers")
    return made


async def fund(conn: asyncpg.Connection, member_ids: list[uuid.UUID], points_each: int) -> None:
    """Give each member `points_each` points, earned at benchmall today."""
    async with conn.transaction():
        await conn.execute(ENSURE_ISSUER, ISSUER)
        await conn.execute(FUND, member_ids, ISSUER, points_each)
        await conn.execute(DEBIT, ISSUER, points_each * len(member_ids))


async def history(
    conn: asyncpg.Connection,
    member_id: uuid.UUID,
    entries: int,
    live: int = 100,
    on_progress: Callable[[int], None] | None = None,
) -> None:
    """A member whose account has `entries` transfers, the last `live` of them earns with live lots."""
    account = f"member:{member_id}"
    await conn.execute(ENSURE_ISSUER, ISSUER)
    await conn.execute(
        "INSERT INTO accounts (account_id, kind) VALUES ('partner:benchmall:redeemed', 'partner_redeemed')"
        " ON CONFLICT DO NOTHING"
    )
    chunk = 1_000_000
    for first in range(1, entries + 1, chunk):
        await conn.execute(
            HISTORY, str(member_id), account, entries, live, ISSUER, "partner:benchmall:redeemed",
            first, min(entries, first + chunk - 1),
        )  # fmt: skip
        if on_progress:
            on_progress(min(entries, first + chunk - 1))
    await conn.execute(LIVE_LOTS, account, live)
    alternating = entries - live
    earned, redeemed = 10 * (live + (alternating + 1) // 2), 10 * (alternating // 2)
    await conn.execute(CREDIT, account, earned)
    await conn.execute(DEBIT, ISSUER, earned)
    await conn.execute(DEBIT, account, redeemed)
    await conn.execute(CREDIT, "partner:benchmall:redeemed", redeemed)


async def expiring_lots(conn: asyncpg.Connection, lots: int, per_member: int = 10, points: int = 50) -> None:
    """`lots` lots that expired yesterday, `per_member` to a member, on new members."""
    async with conn.transaction():
        await conn.execute(ENSURE_ISSUER, ISSUER)
        count = max(1, lots // per_member)
        await conn.execute(EXPIRING, count, per_member, points, f"bench-expiry-{lots}", ISSUER)
        await conn.execute(DEBIT, ISSUER, count * per_member * points)
