"""Intake's history in PostgreSQL (asyncpg): refusals are written here; accepted items by intake_store."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import asyncpg

from partners.domain.intake import Kind
from partners.handlers.history import IntakeRecord, ItemFacts, Outcome, RefusedItem

INSERT_REFUSALS = """
INSERT INTO intake_refusals (partner_id, kind, reason, idempotency_key, customer_ref, purchase_id, refund_id,
                             amount_minor, currency)
SELECT $1, $2, r.reason, r.idempotency_key, r.customer_ref, r.purchase_id, r.refund_id, r.amount_minor, r.currency
  FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[], $9::text[])
       WITH ORDINALITY AS r(reason, idempotency_key, customer_ref, purchase_id, refund_id, amount_minor, currency, n)
 ORDER BY r.n
"""

# Each branch walks its (partner_id, seq) index backwards and stops at $4 rows; the union keeps the newest $4.
# A purchase's own id is external_id; a refund's purchase_id column names the purchase it reverses.
SELECT_NEWEST = """
SELECT seq, received_at, kind, outcome, reason, idempotency_key, customer_ref, purchase_id, refund_id,
       amount_minor, currency, points, event_id
  FROM ((SELECT seq, accepted_at AS received_at, kind, 'accepted' AS outcome, NULL::text AS reason, idempotency_key,
                customer_ref, CASE kind WHEN 'purchase' THEN external_id ELSE purchase_id END AS purchase_id,
                CASE kind WHEN 'refund' THEN external_id END AS refund_id, amount_minor, currency, points, event_id
           FROM intake_requests
          WHERE partner_id = $1 AND seq < $3 AND $2::text IS DISTINCT FROM 'refused'
          ORDER BY seq DESC
          LIMIT $4)
        UNION ALL
        (SELECT seq, received_at, kind, 'refused', reason, idempotency_key, customer_ref, purchase_id, refund_id,
                amount_minor, currency, NULL::bigint, NULL::uuid
           FROM intake_refusals
          WHERE partner_id = $1 AND seq < $3 AND $2::text IS DISTINCT FROM 'accepted'
          ORDER BY seq DESC
          LIMIT $4)) AS history
 ORDER BY seq DESC
 LIMIT $4
"""

NEWEST_POSSIBLE = 2**63 - 1


class HistoryStore:
    """Borrows the service's pool (it exists only while the service runs), never owns it."""

    def __init__(self, pool: Callable[[], asyncpg.Pool]) -> None:
        self._pool = pool

    async def keep_refused(self, partner_id: str, kind: Kind, items: Sequence[RefusedItem]) -> None:
        facts = [i.facts for i in items]
        await self._pool().execute(
            INSERT_REFUSALS,
            partner_id,
            kind,
            [i.reason for i in items],
            [f.idempotency_key for f in facts],
            [f.customer_ref for f in facts],
            [f.purchase_id for f in facts],
            [f.refund_id for f in facts],
            [f.amount_minor for f in facts],
            [f.currency for f in facts],
        )

    async def newest(
        self, partner_id: str, outcome: Outcome | None, before: int | None, limit: int
    ) -> list[IntakeRecord]:
        rows = await self._pool().fetch(
            SELECT_NEWEST, partner_id, outcome, before if before is not None else NEWEST_POSSIBLE, limit
        )
        return [_record(row) for row in rows]


def _record(row: asyncpg.Record) -> IntakeRecord:
    facts = ItemFacts(
        idempotency_key=row["idempotency_key"],
        customer_ref=row["customer_ref"],
        purchase_id=row["purchase_id"],
        refund_id=row["refund_id"],
        amount_minor=row["amount_minor"],
        currency=row["currency"],
    )
    return IntakeRecord(
        position=row["seq"],
        received_at=row["received_at"],
        kind=row["kind"],
        outcome=row["outcome"],
        reason=row["reason"],
        facts=facts,
        points=row["points"],
        event_id=row["event_id"],
    )
