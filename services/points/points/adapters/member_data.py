"""A member's data in the points database: its export, and the statements of its erasure (points/domain/erasure.py).

Every table that holds member-related data, how the member's rows are found ($1 the member id, $2 its accounts:
`member:`, `receivable:` and the `unclaimed:` accounts of its identifiers, $3 its identifiers), and what its
erasure does to them ("-": nothing personal, kept):

- members: member_id. Erased: display_name -> pseudonym.
- identifiers: identifier in $3. Erased: renamed to pseudonyms, unlinked.
- identifier_events: member_id. Erased: identifier renamed (a foreign key).
- link_codes: identifier in $3, or used_by; without the code hash. Erased: identifier renamed.
- accounts: account_id in $2. Erased: `unclaimed:<identifier>` renamed, its totals copied.
- transfers: debit or credit account in $2. Erased: the accounts renamed, messages in memos emptied; amounts,
  ids, reasons untouched.
- lots, lot_debits: account_id in $2 (lot_debits: of those lots). Erased: the accounts renamed.
- holds: member_id. -
- gifts: sender or recipient. Erased: message emptied (also in the memo of its transfer).
- earnings: identifier in $3, or holder_account in $2. Erased: identifier and holder renamed.
- earning_reviews: member_id, or identifier in $3. Erased: identifier renamed.
- velocity_counts: scope `member:<id>` or `identifier:<$3>`. Erased: the identifier scope renamed.
- adjustments: member_id; without the request hash. - (ops' reasons and notes belong with the audit)
- activity_targets, activity_members, activity_grants, activity_spend: member_id. -
- referrals: referee or referrer. -
- member_qualifying_days, member_tiers, tier_history, daily_summaries: member_id. -
- share_cards: member_id; without the token hash. Erased: display_name removed, live cards revoked.
- share_links: sharer_member; without the request hash. - (staff and branch ids are not the member's data)
- share_link_opens: member_id. -
- red_packets: creator_member; without the link and request hashes. Erased: message emptied (also in the memos
  of the grabs).
- red_packet_shares, red_packet_audience: member_id. -
- member_messages: member_id. - (a channel and delivery times)
- member_erasures: member_id. - (the record that the erasure happened)
- audit_log: subject `member:<id>`. - (append-only; its entries name ids, never the values erased)
- exchanges: member_id. Erased: membership_number (the partner programme's, e.g. a frequent flyer number)
  -> a random `erased-` token.
- card_points_conversions: card_token of a card in $3. Erased: card_token -> the card pseudonym's value.
- imported_purchases: member_id, or identifier in $3. Erased: identifier and customer_ref renamed.
- import_members, import_balance_rows: member_id. - (the old programme's id and row keys stay: they are what
  keeps a rerun of an import from crediting the member twice, and they name no person)

Not member data, so not exported: activity_messaging (`after_member` is the cursor of a messaging job), the
inbox, outbox and dead letters (messages in flight: the outbox is emptied as it is relayed; dead letters are
replayed or purged by ops), and the programme's own tables (activities, segments, tier sets, card rates...).
`tests/integration/test_data_rights_coverage.py` fails when a table with a member column is in neither list.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson


@dataclass(frozen=True)
class Exported:
    table: str
    where: str
    order: str
    hidden: tuple[str, ...] = ()
    """Columns left out: hashes of secrets, which are nobody's data and only help guessing."""


EXPORTED: tuple[Exported, ...] = (
    Exported("members", "member_id = $1", "member_id"),
    Exported("identifiers", "identifier = ANY($3::text[])", "identifier"),
    Exported("identifier_events", "member_id = $1", "seq"),
    Exported("link_codes", "identifier = ANY($3::text[]) OR used_by = $1", "issued_at", ("code_hash",)),
    Exported("accounts", "account_id = ANY($2::text[])", "account_id"),
    Exported("transfers", "debit_account = ANY($2::text[]) OR credit_account = ANY($2::text[])", "seq"),
    Exported("lots", "account_id = ANY($2::text[])", "earned_at, lot_id"),
    Exported("lot_debits", "lot_id IN (SELECT lot_id FROM lots WHERE account_id = ANY($2::text[]))", "transfer_id"),
    Exported("holds", "member_id = $1", "created_at"),
    Exported("gifts", "sender = $1 OR recipient = $1", "given_at"),
    Exported("earnings", "identifier = ANY($3::text[]) OR holder_account = ANY($2::text[])", "occurred_at"),
    Exported("earning_reviews", "member_id = $1 OR identifier = ANY($3::text[])", "opened_at"),
    Exported(
        "velocity_counts",
        "scope = 'member:' || $1::uuid::text OR scope IN (SELECT 'identifier:' || i FROM unnest($3::text[]) AS i)",
        "scope, span, bucket",
    ),
    Exported("adjustments", "member_id = $1", "requested_at", ("request_sha256",)),
    Exported("activity_targets", "member_id = $1", "activity_id"),
    Exported("activity_members", "member_id = $1", "activity_id"),
    Exported("activity_grants", "member_id = $1", "occurred_at"),
    Exported("activity_spend", "member_id = $1", "purchase_id"),
    Exported("referrals", "referee = $1 OR referrer = $1", "created_at"),
    Exported("member_qualifying_days", "member_id = $1", "day"),
    Exported("member_tiers", "member_id = $1", "member_id"),
    Exported("tier_history", "member_id = $1", "seq"),
    Exported("daily_summaries", "member_id = $1", "day"),
    Exported("share_cards", "member_id = $1", "created_at", ("token_sha256",)),
    Exported("share_links", "sharer_member = $1", "created_at", ("request_sha256",)),
    Exported("share_link_opens", "member_id = $1", "opened_at"),
    Exported("red_packets", "creator_member = $1", "created_at", ("link_sha256", "request_sha256")),
    Exported("red_packet_shares", "member_id = $1", "grabbed_at"),
    Exported("red_packet_audience", "member_id = $1", "packet_id"),
    Exported("member_messages", "member_id = $1", "sent_at"),
    Exported("member_erasures", "member_id = $1", "erased_at"),
    Exported("exchanges", "member_id = $1", "requested_at"),
    Exported("card_points_conversions", "'card:' || card_token = ANY($3::text[])", "occurred_at"),
    Exported("imported_purchases", "member_id = $1 OR identifier = ANY($3::text[])", "occurred_at"),
    Exported("import_members", "member_id = $1", "legacy_id"),
    Exported("import_balance_rows", "member_id = $1", "line_no"),
    Exported("audit_log", "subject = 'member:' || $1::uuid::text", "seq"),
)

NOT_MEMBER_DATA: dict[str, str] = {
    "activity_messaging": "after_member is where a messaging job stopped, not data about that member",
}
"""Tables with a member column that the export leaves out on purpose, and why."""


def export_sql(table: Exported) -> str:
    hidden = "".join(f" - '{column}'" for column in table.hidden)
    return (  # the three parameters declared once: a table's rows need not name all of them
        "WITH params AS (SELECT $1::uuid, $2::text[], $3::text[]) "
        f"SELECT COALESCE(jsonb_agg(to_jsonb(t){hidden} ORDER BY {table.order}), '[]'::jsonb) "
        f"FROM {table.table} t WHERE {table.where}"
    )


MEMBER = "SELECT member_id, display_name FROM members WHERE member_id = $1"
LOCK_MEMBER = "SELECT member_id, display_name FROM members WHERE member_id = $1 FOR UPDATE"

# Those linked now, and those it held before that nobody holds now (another member's now are that member's data).
IDENTIFIERS_OF = """
SELECT identifier FROM identifiers WHERE member_id = $1
UNION
SELECT e.identifier FROM identifier_events e JOIN identifiers i USING (identifier)
 WHERE e.member_id = $1 AND i.member_id IS NULL
"""

# In the earn batch's order (purchases, identifiers, accounts), so that an erasure and a batch never deadlock.
LOCK_EARNINGS = """
SELECT source_key FROM earnings WHERE identifier = ANY($1::text[]) ORDER BY source_key FOR UPDATE
"""
LOCK_IDENTIFIERS = """
SELECT identifier, member_id FROM identifiers WHERE identifier = ANY($1::text[]) ORDER BY identifier FOR UPDATE
"""
LOCK_ACCOUNTS = "SELECT account_id FROM accounts WHERE account_id = ANY($1::text[]) ORDER BY account_id FOR UPDATE"

# Single-column foreign keys that point at a table's key: the rows to repoint when a key is renamed.
REFERENCING = """
SELECT cl.relname AS tbl, a.attname AS col
  FROM pg_constraint c
  JOIN pg_class cl ON cl.oid = c.conrelid
  JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
 WHERE c.contype = 'f' AND c.confrelid = $1::regclass AND cardinality(c.conkey) = 1
 ORDER BY 1, 2
"""

IDENTIFIER_COPIES: tuple[str, ...] = (
    "UPDATE link_codes SET identifier = $2 WHERE identifier = $1",
    "UPDATE earning_reviews SET identifier = $2 WHERE identifier = $1",
    "UPDATE velocity_counts SET scope = 'identifier:' || $2 WHERE scope = 'identifier:' || $1",
    "UPDATE imported_purchases SET identifier = $2, customer_ref = regexp_replace($2, '^.*:', '')"
    " WHERE identifier = $1",
    "UPDATE card_points_conversions SET card_token = substr($2, 6) WHERE 'card:' || card_token = $1",
)
"""Where identifiers (or their values) are copied without a foreign key: statements of $1 old, $2 new."""

NEW_IDENTIFIER = "INSERT INTO identifiers (identifier, member_id, linked_at) VALUES ($1, NULL, NULL)"
DROP_IDENTIFIER = "DELETE FROM identifiers WHERE identifier = $1"

NEW_ACCOUNT = """
INSERT INTO accounts (account_id, kind, member_id, debits_posted, credits_posted, debits_pending, credits_pending,
                      created_at)
SELECT $2, kind, member_id, debits_posted, credits_posted, debits_pending, credits_pending, created_at
  FROM accounts WHERE account_id = $1
"""
DROP_ACCOUNT = "DELETE FROM accounts WHERE account_id = $1"
# A claim's memo names the identifier whose unclaimed points it moved (domain/lifecycle.py).
RENAME_IN_MEMOS = """
UPDATE transfers SET memo = memo || jsonb_build_object('identifier', $3::text)
 WHERE (debit_account = $1 OR credit_account = $1) AND memo->>'identifier' = $2
"""

RENAME_MEMBER = "UPDATE members SET display_name = $2 WHERE member_id = $1"
FORGET_SHARE_CARD_NAMES = """
UPDATE share_cards SET display_name = NULL, revoked_at = COALESCE(revoked_at, $2)
 WHERE member_id = $1 AND (display_name IS NOT NULL OR revoked_at IS NULL)
"""
EMPTY_GIFT_MESSAGES = "UPDATE gifts SET message = '' WHERE (sender = $1 OR recipient = $1) AND message <> ''"
EMPTY_PACKET_MESSAGES = "UPDATE red_packets SET message = '' WHERE creator_member = $1 AND message <> ''"
# The copies of those messages in the memos of the gift and grab transfers (reasons, amounts stay).
EMPTY_GIFT_MEMOS = """
UPDATE transfers SET memo = memo || '{"message": ""}'::jsonb
 WHERE (debit_account = 'member:' || $1::uuid::text OR credit_account = 'member:' || $1::uuid::text)
   AND reason = 'gift' AND memo->>'message' <> ''
"""
EMPTY_GRAB_MEMOS = """
UPDATE transfers SET memo = memo || '{"message": ""}'::jsonb
 WHERE debit_account IN (SELECT account_id FROM red_packets WHERE creator_member = $1) AND memo->>'message' <> ''
"""
# A random token, not an HMAC: nothing else needs to match it.
FORGET_MEMBERSHIP_NUMBERS = """
UPDATE exchanges SET membership_number = 'erased-' || replace(gen_random_uuid()::text, '-', '')
 WHERE member_id = $1 AND membership_number NOT LIKE 'erased-%'
"""

PURCHASES_UNDER = """
SELECT event_id FROM earnings WHERE identifier = $1 AND channel = 'partner' ORDER BY occurred_at, event_id
"""
TRANSFERS_OF = """
SELECT transfer_id FROM transfers WHERE debit_account = $1 OR credit_account = $1 ORDER BY seq
"""

ERASURE_OF = "SELECT erasure_id, requested_by, identifiers, erased_at FROM member_erasures WHERE member_id = $1"
RECORD_ERASURE = """
INSERT INTO member_erasures (member_id, erasure_id, requested_by, requested_role, identifiers, erased_at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (member_id) DO NOTHING
"""


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _jsonable(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str) else value


class MemberData:
    """The statements of one transaction (export or erasure) over a member's rows."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self._referencing: dict[str, list[tuple[str, str]]] = {}

    async def member(self, member_id: uuid.UUID, *, lock: bool = False) -> str | None:
        row = await self.conn.fetchrow(LOCK_MEMBER if lock else MEMBER, member_id)
        return None if row is None else str(row["display_name"])

    async def identifiers_of(self, member_id: uuid.UUID) -> list[str]:
        return sorted(r["identifier"] for r in await self.conn.fetch(IDENTIFIERS_OF, member_id))

    async def export(self, member_id: uuid.UUID, accounts: list[str], identifiers: list[str]) -> dict[str, Any]:
        """Every exported table's rows of the member, as JSON values (one statement per table)."""
        tables: dict[str, Any] = {}
        for table in EXPORTED:
            tables[table.table] = _jsonable(await self.conn.fetchval(export_sql(table), member_id, accounts,
                                                                     identifiers))  # fmt: skip
        return tables

    async def lock(self, identifiers: list[str], accounts: list[str]) -> dict[str, uuid.UUID | None]:
        """The earnings, identifiers and accounts an erasure rewrites, locked in the earn batch's order."""
        await self.conn.fetch(LOCK_EARNINGS, identifiers)
        rows = await self.conn.fetch(LOCK_IDENTIFIERS, identifiers)
        await self.conn.fetch(LOCK_ACCOUNTS, accounts)
        return {r["identifier"]: r["member_id"] for r in rows}

    async def existing_accounts(self, accounts: list[str]) -> list[str]:
        return [r["account_id"] for r in await self.conn.fetch(LOCK_ACCOUNTS, accounts)]

    async def _references(self, table: str) -> list[tuple[str, str]]:
        if table not in self._referencing:
            rows = await self.conn.fetch(REFERENCING, table)
            self._referencing[table] = [(r["tbl"], r["col"]) for r in rows]
        return self._referencing[table]

    async def _repoint(self, references: list[tuple[str, str]], old: str, new: str) -> None:
        for table, column in references:
            await self.conn.execute(
                f"UPDATE {_quoted(table)} SET {_quoted(column)} = $2 WHERE {_quoted(column)} = $1", old, new
            )

    async def rename_identifier(self, old: str, new: str) -> None:
        """`new` takes `old`'s place in every row, unlinked; `old` is gone from the database."""
        await self.conn.execute(NEW_IDENTIFIER, new)
        await self._repoint(await self._references("identifiers"), old, new)
        for statement in IDENTIFIER_COPIES:
            await self.conn.execute(statement, old, new)
        await self.conn.execute(DROP_IDENTIFIER, old)

    async def rename_account(self, old: str, new: str) -> None:
        """`new` takes `old`'s place with the same totals: every transfer, lot and hold names `new` instead."""
        await self.conn.execute(NEW_ACCOUNT, old, new)
        await self._repoint(await self._references("accounts"), old, new)
        await self.conn.execute(RENAME_IN_MEMOS, new, old.removeprefix("unclaimed:"), new.removeprefix("unclaimed:"))
        await self.conn.execute(DROP_ACCOUNT, old)

    async def forget_names(self, member_id: uuid.UUID, display_name: str | None, at: datetime) -> None:
        if display_name is not None:
            await self.conn.execute(RENAME_MEMBER, member_id, display_name)
        await self.conn.execute(FORGET_SHARE_CARD_NAMES, member_id, at)
        await self.conn.execute(EMPTY_GIFT_MESSAGES, member_id)
        await self.conn.execute(EMPTY_PACKET_MESSAGES, member_id)
        await self.conn.execute(EMPTY_GIFT_MEMOS, member_id)
        await self.conn.execute(EMPTY_GRAB_MEMOS, member_id)
        await self.conn.execute(FORGET_MEMBERSHIP_NUMBERS, member_id)

    async def purchases_under(self, identifier: str) -> list[uuid.UUID]:
        return [r["event_id"] for r in await self.conn.fetch(PURCHASES_UNDER, identifier)]

    async def transfers_of(self, account_id: str) -> list[uuid.UUID]:
        return [r["transfer_id"] for r in await self.conn.fetch(TRANSFERS_OF, account_id)]

    async def erasure_of(self, member_id: uuid.UUID) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await self.conn.fetchrow(ERASURE_OF, member_id)
        return row

    async def record_erasure(
        self, member_id: uuid.UUID, erasure_id: uuid.UUID, by: str, role: str, identifiers: int, at: datetime
    ) -> None:
        await self.conn.execute(RECORD_ERASURE, member_id, erasure_id, by, role, identifiers, at)
