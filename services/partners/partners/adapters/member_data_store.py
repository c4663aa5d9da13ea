"""A member's data in the partners database: its export, and the erasure of its copies (contracts/events/erasures.py).

The partners service keys nothing by member: it holds what partners' systems posted, under their customer
references, and the settlement copies of the ledger's transfers. The tables with data of a member, and how its
rows are found from what the points service names (the purchase event ids of its identifiers, and the transfers
of their unclaimed accounts):

- intake_requests: event_id among the purchases; then every row of the same partner and customer_ref, and the
  refunds of those purchases. Erased: customer_ref -> the pseudonym's.
- intake_refusals: the same partner and customer_ref (refusals carry no event id). Erased: customer_ref.
- ledger_transfers: transfer_id among the unclaimed account's transfers. Erased: `unclaimed:<identifier>` renamed
  to `unclaimed:<pseudonym>`, as in the points service (amounts and settlement entries untouched).
- audit_log: subject `member:<id>`. Kept (append-only; it names ids, never values).
- exchange_requests (points exchange): member_id. Erased: membership_number (the partner programme's number for
  the member) -> a random `erased-` token.

Left as they are: `body_hash` (the SHA-256 of a whole request body, kept so a retried request gets its first
answer; it is never exported), settlement entries, lines and statements (partner ids and sums only), and what
other features keep of purchases outside these tables. Link codes are not stored here: only their hashes leave
through the outbox, which is emptied as it is relayed.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson

from loyalty_runtime import audit, inbox

REFS_OF_PURCHASES = """
SELECT DISTINCT partner_id, customer_ref FROM intake_requests
 WHERE event_id = ANY($1::uuid[]) AND customer_ref IS NOT NULL ORDER BY 1, 2
"""

REQUESTS_OF = """
SELECT COALESCE(jsonb_agg(to_jsonb(r) - 'body_hash' ORDER BY r.seq), '[]'::jsonb) FROM intake_requests r
 WHERE r.event_id = ANY($1::uuid[])
    OR (r.partner_id, r.customer_ref) IN (SELECT * FROM unnest($2::text[], $3::text[]))
    OR (r.kind = 'refund' AND (r.partner_id, r.purchase_id) IN (
          SELECT p.partner_id, p.external_id FROM intake_requests p
           WHERE p.kind = 'purchase'
             AND (p.partner_id, p.customer_ref) IN (SELECT * FROM unnest($2::text[], $3::text[]))))
"""

REFUSALS_OF = """
SELECT COALESCE(jsonb_agg(to_jsonb(r) ORDER BY r.seq), '[]'::jsonb) FROM intake_refusals r
 WHERE (r.partner_id, r.customer_ref) IN (SELECT * FROM unnest($1::text[], $2::text[]))
"""

MEMBER_TABLES = ("exchange_requests",)
"""Tables keyed by member id (tests/integration/test_data_rights_coverage.py checks that none is missing)."""

EXCHANGES_OF = """
SELECT COALESCE(jsonb_agg(to_jsonb(x) ORDER BY x.requested_at), '[]'::jsonb) FROM exchange_requests x
 WHERE x.member_id = $1
"""
FORGET_MEMBERSHIP_NUMBERS = """
UPDATE exchange_requests SET membership_number = 'erased-' || replace(gen_random_uuid()::text, '-', '')
 WHERE member_id = $1 AND membership_number NOT LIKE 'erased-%'
"""

AUDIT_OF = """
SELECT COALESCE(jsonb_agg(to_jsonb(a) ORDER BY a.seq), '[]'::jsonb) FROM audit_log a WHERE a.subject = $1
"""

# In customer order, so that two erasures (or an erasure and a replayed part) never deadlock.
RENAME_REQUESTS = """
UPDATE intake_requests SET customer_ref = $3 WHERE partner_id = $1 AND customer_ref = $2
"""
RENAME_REFUSALS = """
UPDATE intake_refusals SET customer_ref = $3 WHERE partner_id = $1 AND customer_ref = $2
"""

UNCLAIMED_IN_TRANSFERS = """
SELECT DISTINCT account FROM ledger_transfers, LATERAL (VALUES (debit_account), (credit_account)) AS a(account)
 WHERE transfer_id = ANY($1::uuid[]) AND account LIKE 'unclaimed:%' ORDER BY 1
"""
RENAME_ACCOUNT = """
UPDATE ledger_transfers
   SET debit_account = CASE WHEN debit_account = $2 THEN $3 ELSE debit_account END,
       credit_account = CASE WHEN credit_account = $2 THEN $3 ELSE credit_account END
 WHERE transfer_id = ANY($1::uuid[]) AND $2 IN (debit_account, credit_account)
"""


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str) else value


class MemberDataTransaction:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def claim_inbox(self, topic: str, event_ids: list[uuid.UUID]) -> set[uuid.UUID]:
        return await inbox.claim(self.conn, topic, event_ids)

    async def customer_refs(self, purchase_event_ids: list[uuid.UUID]) -> list[tuple[str, str]]:
        return [(r["partner_id"], r["customer_ref"]) for r in await self.conn.fetch(REFS_OF_PURCHASES,
                                                                                     purchase_event_ids)]  # fmt: skip

    async def export(self, purchase_event_ids: list[uuid.UUID], refs: list[tuple[str, str]],
                     member_id: uuid.UUID) -> dict[str, Any]:  # fmt: skip
        partners, customers = [p for p, _ in refs], [c for _, c in refs]
        return {
            "intake_requests": _json(await self.conn.fetchval(REQUESTS_OF, purchase_event_ids, partners, customers)),
            "intake_refusals": _json(await self.conn.fetchval(REFUSALS_OF, partners, customers)),
            "exchange_requests": _json(await self.conn.fetchval(EXCHANGES_OF, member_id)),
            "audit_log": _json(await self.conn.fetchval(AUDIT_OF, f"member:{member_id}")),
        }

    async def rename_customer(self, partner_id: str, customer_ref: str, pseudonym: str) -> int:
        """Rows of the partner's customer now under `pseudonym`; how many."""
        changed = 0
        for statement in (RENAME_REQUESTS, RENAME_REFUSALS):
            status = await self.conn.execute(statement, partner_id, customer_ref, pseudonym)
            changed += int(status.rsplit(" ", 1)[-1])
        return changed

    async def forget_membership_numbers(self, member_id: uuid.UUID) -> int:
        status = await self.conn.execute(FORGET_MEMBERSHIP_NUMBERS, member_id)
        return int(status.rsplit(" ", 1)[-1])

    async def unclaimed_accounts(self, transfer_ids: list[uuid.UUID]) -> list[str]:
        return [r["account"] for r in await self.conn.fetch(UNCLAIMED_IN_TRANSFERS, transfer_ids)]

    async def rename_account(self, transfer_ids: list[uuid.UUID], old: str, new: str) -> int:
        status = await self.conn.execute(RENAME_ACCOUNT, transfer_ids, old, new)
        return int(status.rsplit(" ", 1)[-1])

    async def audit(self, entry: audit.AuditEntry) -> None:
        await audit.record(self.conn, entry)


class MemberDataStore:
    def __init__(self, pool: Callable[[], asyncpg.Pool]) -> None:
        self._pool = pool

    @asynccontextmanager
    async def transaction(self, *, snapshot: bool = False) -> AsyncIterator[MemberDataTransaction]:
        isolation = "repeatable_read" if snapshot else "read_committed"
        async with self._pool().acquire() as conn, conn.transaction(isolation=isolation):
            yield MemberDataTransaction(conn)
