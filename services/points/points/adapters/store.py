"""PostgreSQL persistence of the points service: hand-written SQL with array parameters.

Every write of a consumer batch is one statement per table (`unnest` of arrays), rows are
locked in sorted order, and the whole batch is one transaction (DESIGN.md, Performance model).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import orjson

from loyalty_runtime import inbox
from loyalty_runtime.db import copy_rows
from loyalty_runtime.outbox import OutboxMessage, enqueue
from points.domain.card_rates import CardRate
from points.domain.earning import Earn, Earning, Reverse
from points.domain.holds import Hold, HoldStatus
from points.domain.ledger import (
    Account,
    AccountKind,
    Changes,
    LedgerError,
    Lot,
    kind_of,
    member_account,
    member_of,
    receivable_account,
)
from points.domain.link_codes import IdentifierEvent, LinkCode

ENSURE_IDENTIFIERS = """
INSERT INTO identifiers (identifier) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING
"""

LOCK_IDENTIFIERS_SHARED = """
SELECT identifier, member_id FROM identifiers WHERE identifier = ANY($1::text[]) ORDER BY identifier FOR SHARE
"""

LOCK_IDENTIFIER = "SELECT identifier, member_id FROM identifiers WHERE identifier = $1 FOR UPDATE"

LINK_IDENTIFIER = "UPDATE identifiers SET member_id = $2, linked_at = $3 WHERE identifier = $1"

UNLINK_IDENTIFIER = "UPDATE identifiers SET member_id = NULL, linked_at = NULL WHERE identifier = $1"

INSERT_IDENTIFIER_EVENT = """
INSERT INTO identifier_events (member_id, identifier, action, actor, actor_role, via, code_issued_by, occurred_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
"""

# Not locked: every change of a code happens under the lock of its identifier's row (LOCK_IDENTIFIER).
FIND_LINK_CODE = """
SELECT code_hash, identifier, issued_by, issued_at, expires_at, wrong_attempts, used_at, used_by
FROM link_codes WHERE code_hash = $1 ORDER BY identifier = $2 DESC LIMIT 1
"""
"""The code issued for the identifier with this hash, else one issued for another identifier."""

INSERT_LINK_CODES = """
INSERT INTO link_codes (code_hash, identifier, issued_by, issued_at, expires_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[])
ON CONFLICT (code_hash, identifier) DO NOTHING
"""

USE_LINK_CODE = """
UPDATE link_codes SET used_at = $3, used_by = $4
WHERE code_hash = $1 AND identifier = $2 AND used_at IS NULL RETURNING code_hash
"""

COUNT_WRONG_LINK_CODE = """
UPDATE link_codes SET wrong_attempts = wrong_attempts + 1
WHERE identifier = $1 AND used_at IS NULL AND expires_at > $2
"""

ENSURE_ACCOUNTS = """
INSERT INTO accounts (account_id, kind, member_id)
SELECT * FROM unnest($1::text[], $2::text[], $3::uuid[])
ON CONFLICT (account_id) DO NOTHING
"""

LOCK_ACCOUNTS = """
WITH locked AS (
    SELECT account_id, kind, debits_posted, credits_posted, debits_pending, credits_pending
    FROM accounts WHERE account_id = ANY($1::text[]) ORDER BY account_id FOR NO KEY UPDATE
)
SELECT * FROM locked
UNION ALL
SELECT account_id, kind, debits_posted, credits_posted, debits_pending, credits_pending
FROM accounts WHERE account_id = ANY($2::text[])
"""
"""Accounts whose balance decides something are locked, in id order; shared ones are only read.

FOR NO KEY UPDATE, the lock an UPDATE of the balance takes anyway: it excludes other lockers of the account
as FOR UPDATE would, but not the key-share lock with which a concurrent batch's transfers and lots check
their foreign key to it, so a batch that only credits the account (read unlocked) never makes one wait."""

LOCK_SHARED_ACCOUNTS = """
SELECT account_id FROM accounts WHERE account_id = ANY($1::text[]) ORDER BY account_id FOR NO KEY UPDATE
"""

LIVE_LOTS = """
SELECT lot_id, account_id, amount, remaining, earned_at, expires_at, issuer
FROM lots WHERE account_id = ANY($1::text[]) AND remaining > 0
"""

TRANSFER_COLUMNS = (
    "transfer_id",
    "debit_account",
    "credit_account",
    "amount",
    "reason",
    "cause_event_id",
    "occurred_at",
    "expires_at",
    "memo",
    "posted_at",
)
LOT_COLUMNS = ("lot_id", "account_id", "amount", "remaining", "earned_at", "expires_at", "issuer")
LOT_DEBIT_COLUMNS = ("transfer_id", "lot_id", "amount")
EARNING_COLUMNS = (
    "source_key",
    "event_id",
    "identifier",
    "issuer_account",
    "amount_minor",
    "currency",
    "points",
    "refunded_minor",
    "points_reversed",
    "occurred_at",
    "channel",
    "partner_id",
    "category",
    "mcc",
    "holder_account",
    "qualifying_day",
    "tier_code",
    "tier_bonus",
    "tier_bonus_reversed",
)
"""The rows a batch adds are written with binary COPY (loyalty_runtime.db.copy_rows), not INSERT ... unnest:
no arrays to build and check element by element, and the cheapest way into PostgreSQL (the bench's COPY limit)."""

UPDATE_LOTS = """
UPDATE lots l SET remaining = u.remaining
FROM unnest($1::uuid[], $2::bigint[]) AS u(lot_id, remaining)
WHERE l.lot_id = u.lot_id
"""

APPLY_DELTAS = """
UPDATE accounts a
SET debits_posted = a.debits_posted + d.debits, credits_posted = a.credits_posted + d.credits,
    debits_pending = a.debits_pending + d.debits_pending, credits_pending = a.credits_pending + d.credits_pending
FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[])
    AS d(account_id, debits, credits, debits_pending, credits_pending)
WHERE a.account_id = d.account_id
"""

INSERT_HOLDS = """
INSERT INTO holds (hold_id, member_id, order_id, debit_account, credit_account, amount, expires_at, status)
SELECT *, 'pending' FROM unnest(
    $1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::bigint[], $7::timestamptz[]
)
"""

LOAD_HOLDS = """
SELECT hold_id, member_id, order_id, debit_account, credit_account, amount, expires_at, status, void_reason,
       transfer_id
FROM holds WHERE hold_id = ANY($1::uuid[]) ORDER BY hold_id FOR UPDATE
"""

SETTLE_HOLDS = """
UPDATE holds h SET status = u.status, void_reason = u.void_reason, transfer_id = u.transfer_id, settled_at = $5
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::uuid[]) AS u(hold_id, status, void_reason, transfer_id)
WHERE h.hold_id = u.hold_id
"""

DUE_HOLDS = """
SELECT hold_id FROM holds WHERE status = 'pending' AND expires_at <= $1 ORDER BY expires_at LIMIT $2
"""

EXISTING_MEMBERS = "SELECT member_id FROM members WHERE member_id = ANY($1::uuid[])"

FIND_GIFT = "SELECT gift_id, sender, recipient, amount, message, given_at FROM gifts WHERE gift_id = $1"

GIFTED_SINCE = """
SELECT (SELECT COALESCE(sum(amount), 0) FROM gifts WHERE sender = $1 AND given_at >= $2)
     + (SELECT COALESCE(sum(points), 0) FROM red_packets WHERE creator_member = $1 AND created_at >= $2)
"""
"""What a member gave away since a moment: its gifts, and the points it put into red packets (one daily limit)."""

INSERT_GIFT = """
INSERT INTO gifts (gift_id, sender, recipient, amount, message, given_at) VALUES ($1, $2, $3, $4, $5, $6)
"""

LOAD_EARNINGS = """
SELECT source_key, event_id, identifier, issuer_account, amount_minor, currency, points, refunded_minor,
       points_reversed, partner_id, holder_account, qualifying_day, tier_code, tier_bonus, tier_bonus_reversed
FROM earnings WHERE source_key = ANY($1::text[]) ORDER BY source_key FOR UPDATE
"""

LOCK_PURCHASES = """
SELECT pg_advisory_xact_lock(h) FROM (
    SELECT DISTINCT hashtextextended(k, 0) AS h FROM unnest($1::text[]) AS k ORDER BY h
) keys
"""
"""Purchases (source keys) locked in one order, even before their earning exists: a purchase and its
refund applied at once by two transactions are serialised, so one always sees the other."""

CLAIM_EARNINGS = """
UPDATE earnings SET holder_account = $3
WHERE identifier = $1 AND (holder_account = $2 OR holder_account IS NULL)
"""
"""The member who claims an identifier's unclaimed points now holds what they were earned by."""

LOCK_GIFT_ID = "SELECT pg_advisory_xact_lock(hashtextextended('gift:' || $1::uuid::text, 0))"
"""Requests with one gift id queue here, even before the gift exists; the later ones read the first."""

UPDATE_EARNINGS = """
UPDATE earnings e
SET refunded_minor = u.refunded, points_reversed = u.reversed, tier_bonus_reversed = u.tier_reversed
FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[]) AS u(source_key, refunded, reversed, tier_reversed)
WHERE e.source_key = u.source_key
"""

LOAD_PARKED = """
SELECT event_id, source_key, amount_minor, currency, occurred_at, reason, memo
FROM parked_reversals WHERE source_key = ANY($1::text[]) ORDER BY parked_at, event_id
"""

PARK = """
INSERT INTO parked_reversals (event_id, source_key, amount_minor, currency, occurred_at, reason, memo)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::text[], $5::timestamptz[], $6::text[], $7::jsonb[])
"""

UNPARK = "DELETE FROM parked_reversals WHERE event_id = ANY($1::uuid[])"

CARD_RATES = "SELECT mcc, valid_from, points_per_unit FROM card_earn_rates"

ADD_CARD_RATE = """
INSERT INTO card_earn_rates (mcc, valid_from, points_per_unit) VALUES ($1, $2, $3)
ON CONFLICT (mcc, valid_from) DO NOTHING RETURNING mcc
"""


CREATE_MEMBER = """
WITH m AS (INSERT INTO members (member_id, display_name) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING member_id)
INSERT INTO accounts (account_id, kind, member_id) SELECT $3, 'member', member_id FROM m
RETURNING account_id
"""

MEMBER_EXISTS = "SELECT 1 FROM members WHERE member_id = $1"

BALANCE = """
WITH next AS (
    SELECT date_trunc('day', min(expires_at), 'UTC') AS day, min(expires_at) AS at
    FROM lots WHERE account_id = $1 AND remaining > 0
)
SELECT credits_posted - debits_posted AS posted, debits_pending AS pending,
       credits_posted - debits_posted - debits_pending AS available,
       COALESCE((SELECT debits_posted - credits_posted FROM accounts r WHERE r.account_id = $2), 0) AS owed,
       COALESCE((SELECT sum(remaining) FROM lots
                 WHERE lots.account_id = $1 AND remaining > 0 AND expires_at <= now() + $3::interval), 0)
           AS expiring_soon,
       next.at AS next_expiry_at,
       COALESCE((SELECT sum(remaining) FROM lots
                 WHERE lots.account_id = $1 AND remaining > 0
                   AND expires_at >= next.day AND expires_at < next.day + interval '24 hours'), 0)::bigint
           AS next_expiry_points
FROM accounts, next WHERE account_id = $1
"""
"""Balances, what expires within the window, and the next expiry: the live lots of its UTC date (lots_live)."""

LOTS_PAGE = """
SELECT lot_id, amount, remaining, earned_at, expires_at FROM lots
WHERE account_id = $1 AND remaining > 0 AND (expires_at, lot_id) > ($2, $3)
ORDER BY expires_at, lot_id LIMIT $4
"""

HISTORY_PAGE = """
SELECT * FROM (
    (SELECT seq, 'transfer' AS kind, transfer_id, 'debit' AS direction, credit_account AS counterparty, amount,
            reason, cause_event_id, occurred_at, posted_at, expires_at, memo, NULL::text AS identifier,
            NULL::text AS actor
     FROM transfers WHERE debit_account = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3)
    UNION ALL
    (SELECT seq, 'transfer', transfer_id, 'credit', debit_account, amount, reason, cause_event_id,
            occurred_at, posted_at, expires_at, memo, NULL, NULL
     FROM transfers WHERE credit_account = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3)
    UNION ALL
    (SELECT seq, 'identifier', NULL, NULL, NULL, 0, 'identifier_' || action, NULL, occurred_at, occurred_at, NULL,
            jsonb_strip_nulls(
                jsonb_build_object('actor_role', actor_role, 'via', via, 'code_issued_by', code_issued_by)
            ),
            identifier, actor
     FROM identifier_events WHERE member_id = $4 AND seq < $2 ORDER BY seq DESC LIMIT $3)
) every_entry ORDER BY seq DESC LIMIT $3
"""
"""Transfers in and out of the member's account, and its links and unlinks (their seq shares the sequence)."""

IDENTIFIERS_OF = "SELECT identifier, linked_at FROM identifiers WHERE member_id = $1 ORDER BY linked_at, identifier"

TRANSFERS_OF_EVENT = """
SELECT transfer_id, debit_account, credit_account, amount, reason, occurred_at, posted_at
FROM transfers WHERE cause_event_id = $1 ORDER BY seq
"""

INBOX_ENTRY = "SELECT event_id, topic, received_at FROM inbox WHERE event_id = $1"


def _json(memo: Any) -> str:
    return orjson.dumps(memo).decode()


class Transaction:
    """The statements available inside one database transaction."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self._shared_deltas: dict[str, tuple[int, int, int, int]] = {}
        self._credit_only: set[str] = set()
        """Accounts read without their lock because this transaction only credits them (see `lock_accounts`)."""

    async def claim_inbox(self, topic: str, event_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """Record the ids in the inbox; returns those seen for the first time."""
        return await inbox.claim(self.conn, topic, event_ids)

    async def lock_identifiers(self, identifiers: Iterable[str]) -> dict[str, uuid.UUID | None]:
        """Create unknown identifiers, then share-lock all of them: a concurrent link waits for us."""
        wanted = sorted(set(identifiers))
        if not wanted:
            return {}
        found: dict[str, uuid.UUID | None] = {}
        while missing := [i for i in wanted if i not in found]:
            # A row can vanish while we wait for its lock: an erasure renamed it (handlers/member_data.py).
            await self.conn.execute(ENSURE_IDENTIFIERS, missing)
            rows = await self.conn.fetch(LOCK_IDENTIFIERS_SHARED, missing)
            found |= {row["identifier"]: row["member_id"] for row in rows}
        return found

    async def lock_identifier(self, identifier: str) -> uuid.UUID | None:
        row = None
        while row is None:  # the row vanishes if an erasure renamed it while we waited for its lock
            await self.conn.execute(ENSURE_IDENTIFIERS, [identifier])
            row = await self.conn.fetchrow(LOCK_IDENTIFIER, identifier)
        member: uuid.UUID | None = row["member_id"]
        return member

    async def link_identifier(self, identifier: str, member_id: uuid.UUID, at: datetime) -> None:
        await self.conn.execute(LINK_IDENTIFIER, identifier, member_id, at)

    async def unlink_identifier(self, identifier: str) -> None:
        await self.conn.execute(UNLINK_IDENTIFIER, identifier)

    async def record_identifier_event(self, event: IdentifierEvent) -> None:
        await self.conn.execute(
            INSERT_IDENTIFIER_EVENT, event.member_id, event.identifier, event.action, event.actor, event.actor_role,
            event.via.value, event.code_issued_by, event.occurred_at,
        )  # fmt: skip

    async def link_code(self, code_hash: str, identifier: str) -> LinkCode | None:
        row = await self.conn.fetchrow(FIND_LINK_CODE, code_hash, identifier)
        if row is None:
            return None
        return LinkCode(
            row["code_hash"], row["identifier"], row["issued_by"], row["issued_at"], row["expires_at"],
            row["wrong_attempts"], row["used_at"], row["used_by"],
        )  # fmt: skip

    async def add_link_codes(self, codes: Sequence[LinkCode]) -> None:
        """Store issued codes; one known already (a redelivered issue) stays as it is."""
        if codes:
            await self.conn.execute(
                INSERT_LINK_CODES,
                [c.code_hash for c in codes],
                [c.identifier for c in codes],
                [c.issued_by for c in codes],
                [c.issued_at for c in codes],
                [c.expires_at for c in codes],
            )

    async def use_link_code(self, code: LinkCode, member_id: uuid.UUID, at: datetime) -> bool:
        """Mark the code used by the member; False when it was used already."""
        return await self.conn.fetchval(USE_LINK_CODE, code.code_hash, code.identifier, at, member_id) is not None

    async def count_wrong_link_code(self, identifier: str, at: datetime) -> None:
        """A wrong code was tried for the identifier: it counts against each of its open codes."""
        await self.conn.execute(COUNT_WRONG_LINK_CODE, identifier, at)

    async def ensure_accounts(self, account_ids: Iterable[str]) -> None:
        ids = sorted(set(account_ids))
        kinds = [kind_of(a) for a in ids]
        members = [
            member_of(a) if k in (AccountKind.MEMBER, AccountKind.RECEIVABLE) else None
            for a, k in zip(ids, kinds, strict=True)
        ]
        await self.conn.execute(ENSURE_ACCOUNTS, ids, [k.value for k in kinds], members)

    async def lock_accounts(self, account_ids: Iterable[str], *, credit_only: Iterable[str] = ()) -> list[Account]:
        """Lock the accounts that exist, in account id order so that concurrent batches never deadlock.

        Shared accounts (no decision reads their balance) are only read here: their changes are applied
        as the transaction's last statement (`apply_shared_deltas`), so concurrent batches of several
        consumers queue on them for the moment of a commit instead of for a whole batch. So are the
        `credit_only` accounts: members (or unclaimed identifiers) that this transaction only credits, as an
        earn batch does most of its members; a credit cannot overdraw, so no decision needs their balance,
        and a refund or a hold of the same member on another consumer does not wait for the whole batch.
        Debiting one of them in this transaction is a bug, refused when it is written (`write`).
        """
        ids = sorted(set(account_ids))
        later = set(credit_only)
        decisive = [a for a in ids if kind_of(a).balance_decides and a not in later]
        shared = [a for a in ids if not kind_of(a).balance_decides or a in later]
        self._credit_only = (self._credit_only | (later & set(ids))) - set(decisive)
        rows = await self.conn.fetch(LOCK_ACCOUNTS, decisive, shared)
        return [
            Account(r["account_id"], AccountKind.of(r["kind"]), r["debits_posted"], r["credits_posted"],
                    r["debits_pending"], r["credits_pending"])
            for r in rows
        ]  # fmt: skip

    async def live_lots(self, account_ids: Iterable[str]) -> list[Lot]:
        ids = sorted(set(account_ids))
        if not ids:
            return []
        rows = await self.conn.fetch(LIVE_LOTS, ids)
        return [
            Lot(r["lot_id"], r["account_id"], r["amount"], r["remaining"], r["earned_at"], r["expires_at"], r["issuer"])
            for r in rows
        ]

    async def write(self, changes: Changes, posted_at: datetime) -> None:
        """Persist what a `Book` did: transfers (posted at `posted_at`), lots, lot debits and balances."""
        transfers = changes.transfers
        if transfers:
            await self._write_transfers(changes, posted_at)
        ids = []
        for account_id in sorted(changes.deltas):
            if kind_of(account_id).balance_decides and account_id not in self._credit_only:
                ids.append(account_id)
            else:
                d, c, dp, cp = self._shared_deltas.get(account_id, (0, 0, 0, 0))
                d2, c2, dp2, cp2 = changes.deltas[account_id]
                if (d2 or dp2) and account_id in self._credit_only:
                    raise LedgerError(f"{account_id} was read without its lock, as only credited: it cannot be debited")
                self._shared_deltas[account_id] = (d + d2, c + c2, dp + dp2, cp + cp2)
        await self._apply_deltas(ids, changes.deltas)

    async def apply_shared_deltas(self) -> None:
        """The last statement of a transaction: lock the shared accounts in id order and add their changes."""
        ids = sorted(self._shared_deltas)
        if ids:
            await self.conn.execute(LOCK_SHARED_ACCOUNTS, ids)
            await self._apply_deltas(ids, self._shared_deltas)
            self._shared_deltas = {}

    async def _apply_deltas(self, ids: list[str], deltas: Mapping[str, tuple[int, int, int, int]]) -> None:
        if ids:
            columns = list(zip(*(deltas[a] for a in ids), strict=True))
            await self.conn.execute(APPLY_DELTAS, ids, *(list(c) for c in columns))

    async def _write_transfers(self, changes: Changes, posted_at: datetime) -> None:
        transfers = changes.transfers
        await copy_rows(self.conn, "transfers", TRANSFER_COLUMNS, [
            (t.transfer_id, t.debit_account, t.credit_account, t.amount, t.reason, t.cause_event_id, t.occurred_at,
             t.expires_at, _json(t.memo), posted_at)
            for t in transfers
        ])  # fmt: skip
        await copy_rows(self.conn, "lots", LOT_COLUMNS, [
            (x.lot_id, x.account_id, x.amount, x.remaining, x.earned_at, x.expires_at, x.issuer)
            for x in changes.new_lots
        ])  # fmt: skip
        if changes.lot_remaining:
            await self.conn.execute(UPDATE_LOTS, list(changes.lot_remaining), list(changes.lot_remaining.values()))
        await copy_rows(self.conn, "lot_debits", LOT_DEBIT_COLUMNS,
                        [(d.transfer_id, d.lot_id, d.amount) for d in changes.lot_debits])  # fmt: skip

    async def existing_members(self, member_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
        rows = await self.conn.fetch(EXISTING_MEMBERS, list(set(member_ids)))
        return {r["member_id"] for r in rows}

    async def holds(self, hold_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Hold]:
        """Lock and load the holds, by id."""
        rows = await self.conn.fetch(LOAD_HOLDS, sorted(set(hold_ids)))
        return {
            r["hold_id"]: Hold(
                r["hold_id"], r["member_id"], r["order_id"], r["debit_account"], r["credit_account"], r["amount"],
                r["expires_at"], HoldStatus(r["status"]), r["void_reason"], r["transfer_id"],
            )
            for r in rows
        }  # fmt: skip

    async def insert_holds(self, holds: Sequence[Hold]) -> None:
        if holds:
            await self.conn.execute(
                INSERT_HOLDS,
                [h.hold_id for h in holds],
                [h.member_id for h in holds],
                [h.order_id for h in holds],
                [h.debit_account for h in holds],
                [h.credit_account for h in holds],
                [h.amount for h in holds],
                [h.expires_at for h in holds],
            )

    async def settle_holds(self, holds: Sequence[Hold], at: datetime) -> None:
        if holds:
            await self.conn.execute(
                SETTLE_HOLDS,
                [h.hold_id for h in holds],
                [h.status.value for h in holds],
                [h.void_reason for h in holds],
                [h.transfer_id for h in holds],
                at,
            )

    async def due_holds(self, as_of: datetime, limit: int) -> list[uuid.UUID]:
        return [r["hold_id"] for r in await self.conn.fetch(DUE_HOLDS, as_of, limit)]

    async def lock_gift_id(self, gift_id: uuid.UUID) -> None:
        """Take before anything else: concurrent requests with one gift id are handled one after another."""
        await self.conn.execute(LOCK_GIFT_ID, gift_id)

    async def find_gift(self, gift_id: uuid.UUID) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await self.conn.fetchrow(FIND_GIFT, gift_id)
        return row

    async def gifted_since(self, sender: uuid.UUID, since: datetime) -> int:
        return int(await self.conn.fetchval(GIFTED_SINCE, sender, since))

    async def insert_gift(
        self, gift_id: uuid.UUID, sender: uuid.UUID, recipient: uuid.UUID, amount: int, message: str, at: datetime
    ) -> None:
        await self.conn.execute(INSERT_GIFT, gift_id, sender, recipient, amount, message, at)

    async def earnings(self, source_keys: Iterable[str]) -> dict[str, Earning]:
        keys = sorted(set(source_keys))
        if not keys:
            return {}
        rows = await self.conn.fetch(LOAD_EARNINGS, keys)
        return {
            r["source_key"]: Earning(
                r["source_key"], r["event_id"], r["identifier"], r["issuer_account"], r["amount_minor"],
                r["currency"], r["points"], r["refunded_minor"], r["points_reversed"], r["partner_id"],
                r["holder_account"], r["qualifying_day"], r["tier_code"], r["tier_bonus"], r["tier_bonus_reversed"],
            )
            for r in rows
        }  # fmt: skip

    async def claim_earnings(self, identifier: str, unclaimed: str, member: str) -> None:
        await self.conn.execute(CLAIM_EARNINGS, identifier, unclaimed, member)

    async def lock_purchases(self, source_keys: Iterable[str]) -> None:
        """Serialise the transactions that touch these purchases (first lock of an earn batch)."""
        keys = sorted(set(source_keys))
        if keys:
            await self.conn.execute(LOCK_PURCHASES, keys)

    async def save_earnings(self, new: Sequence[Earning], facts: dict[str, Earn], changed: Sequence[Earning]) -> None:
        """Insert new earnings (with what their purchase was, from `facts`) and update refunded ones."""
        await copy_rows(self.conn, "earnings", EARNING_COLUMNS, [
            (e.source_key, e.event_id, e.identifier, e.issuer_account, e.amount_minor, e.currency, e.points,
             e.refunded_minor, e.points_reversed, f.occurred_at, f.channel, f.partner_id, f.category, f.mcc,
             e.holder_account, e.qualifying_day, e.tier_code, e.tier_bonus, e.tier_bonus_reversed)
            for e in new
            for f in (facts[e.source_key],)
        ])  # fmt: skip
        if changed:
            await self.conn.execute(
                UPDATE_EARNINGS,
                [e.source_key for e in changed],
                [e.refunded_minor for e in changed],
                [e.points_reversed for e in changed],
                [e.tier_bonus_reversed for e in changed],
            )

    async def parked(self, source_keys: Iterable[str]) -> dict[str, list[Reverse]]:
        keys = sorted(set(source_keys))
        if not keys:
            return {}
        found: dict[str, list[Reverse]] = {}
        for r in await self.conn.fetch(LOAD_PARKED, keys):
            found.setdefault(r["source_key"], []).append(
                Reverse(r["event_id"], r["source_key"], r["amount_minor"], r["currency"], r["occurred_at"],
                        r["reason"], orjson.loads(r["memo"]))
            )  # fmt: skip
        return found

    async def park(self, reversals: Sequence[Reverse]) -> None:
        if reversals:
            await self.conn.execute(
                PARK,
                [r.event_id for r in reversals],
                [r.source_key for r in reversals],
                [r.amount_minor for r in reversals],
                [r.currency for r in reversals],
                [r.occurred_at for r in reversals],
                [r.reason for r in reversals],
                [_json(r.memo) for r in reversals],
            )

    async def unpark(self, event_ids: Sequence[uuid.UUID]) -> None:
        if event_ids:
            await self.conn.execute(UNPARK, list(event_ids))

    async def card_rates(self) -> list[CardRate]:
        rows = await self.conn.fetch(CARD_RATES)
        return [CardRate(r["mcc"], r["valid_from"], r["points_per_unit"]) for r in rows]

    async def add_card_rate(self, rate: CardRate) -> bool:
        return await self.conn.fetchval(ADD_CARD_RATE, rate.mcc, rate.valid_from, rate.points_per_unit) is not None

    async def enqueue(self, messages: Sequence[OutboxMessage]) -> None:
        await enqueue(self.conn, messages)

    async def create_member(self, member_id: uuid.UUID, display_name: str, account_id: str) -> bool:
        return await self.conn.fetchval(CREATE_MEMBER, member_id, display_name, account_id) is not None

    async def member_exists(self, member_id: uuid.UUID) -> bool:
        return await self.conn.fetchval(MEMBER_EXISTS, member_id) is not None


class PointsStore:
    """Borrows a pool it does not own; hands out transactions and answers reads."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        async with self._pool.acquire() as conn, conn.transaction():
            tx = Transaction(conn)
            yield tx
            await tx.apply_shared_deltas()

    async def balance(self, member_id: uuid.UUID, expiring_within: timedelta) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await self._pool.fetchrow(
            BALANCE, member_account(member_id), receivable_account(member_id), expiring_within
        )
        return row

    async def lots_page(
        self, member_id: uuid.UUID, after: tuple[datetime, uuid.UUID], limit: int
    ) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await self._pool.fetch(
            LOTS_PAGE, member_account(member_id), after[0], after[1], limit
        )
        return rows

    async def history_page(self, member_id: uuid.UUID, before_seq: int, limit: int) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await self._pool.fetch(
            HISTORY_PAGE, member_account(member_id), before_seq, limit, member_id
        )
        return rows

    async def identifiers_of(self, member_id: uuid.UUID) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await self._pool.fetch(IDENTIFIERS_OF, member_id)
        return rows

    async def member_exists(self, member_id: uuid.UUID) -> bool:
        return await self._pool.fetchval(MEMBER_EXISTS, member_id) is not None

    async def event_trail(self, event_id: uuid.UUID) -> tuple[asyncpg.Record | None, list[asyncpg.Record]]:
        """The inbox entry of an event and the transfers it caused."""
        entry = await self._pool.fetchrow(INBOX_ENTRY, event_id)
        transfers = await self._pool.fetch(TRANSFERS_OF_EVENT, event_id)
        return entry, transfers
