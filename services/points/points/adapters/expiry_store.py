"""The expiry run's SQL: which accounts have lots due, their due lots, and one set-based write per transaction.

The rule of what a lot gives to breakage stays in the domain (domain/lifecycle.py `expiry_amounts`); the
database only finds the due lots of the accounts a transaction locked, and writes what the rule decided in
one statement (lots, transfers, lot debits, the accounts' debits and the outbox rows of the ledger events).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import orjson

from points.domain.ledger import BREAKAGE, Lot, Transfer

DUE_ACCOUNTS = """
WITH first AS (
    SELECT DISTINCT account_id FROM (
        SELECT account_id FROM lots
        WHERE remaining > 0 AND expires_at <= $1 AND account_id NOT LIKE 'packet:%' AND account_id <> ALL($3::text[])
          AND (hashtext(account_id) & 2147483647) % $4 = $5
        ORDER BY expires_at LIMIT $2
    ) next_lots
), counted AS (
    SELECT account_id, n, sum(n) OVER (ORDER BY account_id) AS upto FROM (
        SELECT f.account_id, (SELECT count(*) FROM lots l
                              WHERE l.account_id = f.account_id AND l.remaining > 0 AND l.expires_at <= $1) AS n
        FROM first f
    ) c
)
SELECT account_id FROM counted WHERE upto - n < $2 ORDER BY account_id
"""
"""The accounts of the next `$2` due lots (the `lots_due` index), as many as hold about `$2` due lots in all (the
first always), leaving out those the run found reserved and those of other workers (`hashtext % $4 = $5`; the
hash is masked to be non-negative, as abs() overflows on the smallest integer).

A red packet's lots wait (at most 7 days) and expire where they land, with their own dates (domain/packets.py).
"""

DUE_LOTS = """
SELECT lot_id, account_id, amount, remaining, earned_at, expires_at, issuer
FROM lots WHERE account_id = ANY($1::text[]) AND remaining > 0 AND expires_at <= $2
"""
"""Read after the accounts were locked, in a statement of its own, so that it sees what a concurrent run committed."""

_UTC_TEXT = """to_char({0} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
    || CASE WHEN extract(microseconds FROM {0}) % 1000000 = 0 THEN '' ELSE to_char({0} AT TIME ZONE 'UTC', '.US') END
    || '+00:00'"""
"""A timestamptz as orjson writes an aware UTC datetime (what the ledger events of the Python writer carry)."""

WRITE_EXPIRY = f"""
WITH x AS (
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::uuid[], $5::uuid[])
        WITH ORDINALITY AS x(transfer_id, lot_id, amount, posted_id, debited_id, n)
), l AS (
    UPDATE lots SET remaining = lots.remaining - x.amount FROM x
    WHERE lots.lot_id = x.lot_id AND lots.remaining >= x.amount
    RETURNING x.n, x.transfer_id, x.posted_id, x.debited_id, lots.lot_id, lots.account_id, x.amount, lots.expires_at,
              NULLIF(lots.issuer, '') AS issuer
), t AS (
    INSERT INTO transfers
        (transfer_id, debit_account, credit_account, amount, reason, cause_event_id, occurred_at, memo, posted_at)
    SELECT transfer_id, account_id, $6, amount, 'expiry', lot_id, expires_at,
           CASE WHEN issuer IS NULL THEN '{{}}'::jsonb ELSE jsonb_build_object('issuer', issuer) END, $7
    FROM l ORDER BY n
), d AS (
    INSERT INTO lot_debits (transfer_id, lot_id, amount) SELECT transfer_id, lot_id, amount FROM l
), a AS (
    UPDATE accounts SET debits_posted = accounts.debits_posted + s.total
    FROM (SELECT account_id, sum(amount) AS total FROM l GROUP BY account_id) s
    WHERE accounts.account_id = s.account_id
), o AS (
    INSERT INTO outbox (topic, key, payload, headers)
    SELECT topic, key, convert_to(body::text, 'UTF8'), $11::jsonb FROM (
        SELECT n, 0 AS k, $9 AS topic, 'ledger' AS key, json_build_object(
            'event_id', posted_id, 'type', 'TransferPosted', 'version', 1, 'occurred_at', $8::text,
            'source', 'points', 'correlation_id', lot_id, 'causation_id', lot_id,
            'payload', json_build_object(
                'transfer_id', transfer_id, 'amount', amount, 'reason', 'expiry', 'cause_event_id', lot_id,
                'debit_account', account_id, 'credit_account', $6, 'issuer_account', issuer)
        ) AS body FROM l
        UNION ALL
        SELECT n, 1, $10, substr(account_id, 8)::uuid::text, json_build_object(
            'event_id', debited_id, 'type', 'PointsDebited', 'version', 1,
            'occurred_at', {_UTC_TEXT.format("expires_at")},
            'source', 'points', 'correlation_id', lot_id, 'causation_id', lot_id,
            'payload', json_build_object(
                'transfer_id', transfer_id, 'amount', amount, 'reason', 'expiry', 'cause_event_id', lot_id,
                'member_id', substr(account_id, 8)::uuid, 'counterparty_account', $6)
        ) FROM l WHERE account_id LIKE 'member:%'
    ) events ORDER BY n, k
)
SELECT count(*), pg_notify('outbox', '') FROM l
"""
"""Each transfer is the domain's (`expiry_transfer`: id, memo, dates), posted in the order given, and reported as
handlers/ledger_events.py does (TransferPosted; PointsDebited when a member's), built here rather than in Python:
the outbox rows are most of what an expiry run writes (a test compares both writers' events)."""


@dataclass(frozen=True)
class ExpiryEvents:
    """What the ledger events of a transaction's expiry transfers need besides the transfers."""

    posted_ids: list[uuid.UUID]
    debited_ids: list[uuid.UUID]
    """Event ids of each transfer's TransferPosted and PointsDebited (the second unused for an unclaimed account)."""
    posted_at: str
    """As the events write it (orjson's form of an aware datetime)."""
    transfers_topic: str
    events_topic: str
    headers: Mapping[str, str]


async def due_accounts(
    conn: asyncpg.Connection, as_of: datetime, lots: int, leave_out: Sequence[str], worker: tuple[int, int] = (0, 1)
) -> list[str]:
    """The accounts of the next `lots` due lots, in id order (the order they are locked in); `worker` is
    (this worker, of how many): each worker takes its own accounts."""
    rows = await conn.fetch(DUE_ACCOUNTS, as_of, lots, list(leave_out), worker[1], worker[0])
    return [r["account_id"] for r in rows]


async def due_lots(conn: asyncpg.Connection, account_ids: Sequence[str], as_of: datetime) -> list[Lot]:
    rows = await conn.fetch(DUE_LOTS, list(account_ids), as_of)
    return [
        Lot(r["lot_id"], r["account_id"], r["amount"], r["remaining"], r["earned_at"], r["expires_at"], r["issuer"])
        for r in rows
    ]


async def write_expiry(
    conn: asyncpg.Connection, transfers: Sequence[Transfer], posted_at: datetime, events: ExpiryEvents
) -> None:
    """Post expiry transfers to breakage (each from the lot its `cause_event_id` names) with their lot debits, the
    debtors' totals and their ledger events; breakage's total (a shared account) is the caller's to add at the end
    of its transaction."""
    if not transfers:
        return
    written = await conn.fetchval(
        WRITE_EXPIRY,
        [t.transfer_id for t in transfers],
        [t.cause_event_id for t in transfers],
        [t.amount for t in transfers],
        events.posted_ids,
        events.debited_ids,
        BREAKAGE,
        posted_at,
        events.posted_at,
        events.transfers_topic,
        events.events_topic,
        orjson.dumps(events.headers).decode(),
    )
    if written != len(transfers):  # the lots are locked through their accounts: only a bug gets here
        raise RuntimeError(f"expiry wrote {written} of {len(transfers)} transfers")
