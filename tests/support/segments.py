"""Seed a points database directly with SQL: members, identifiers, purchases, activities.

For segment and report tests that need exact dates and amounts; nothing here goes through Kafka.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg

from points.domain.activities import budget_account
from tests.support.services import http, points_service, running


class Seed:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def member(self, name: str = "") -> uuid.UUID:
        member_id = uuid.uuid4()
        await self.conn.execute("INSERT INTO members (member_id, display_name) VALUES ($1, $2)", member_id, name)
        return member_id

    async def members(self, count: int) -> list[uuid.UUID]:
        rows = await self.conn.fetch(
            "INSERT INTO members (member_id) SELECT gen_random_uuid() FROM generate_series(1, $1) RETURNING member_id",
            count,
        )
        return [r["member_id"] for r in rows]

    async def identifier(self, identifier: str, member_id: uuid.UUID | None, at: datetime | None = None) -> str:
        await self.conn.execute(
            "INSERT INTO identifiers (identifier, member_id, linked_at) VALUES ($1, $2, $3)",
            identifier,
            member_id,
            (at or datetime.now().astimezone()) if member_id else None,
        )
        return identifier

    async def purchase(
        self,
        identifier: str,
        amount_minor: int,
        at: datetime,
        *,
        currency: str = "CNY",
        refunded_minor: int = 0,
        category: str | None = None,
        mcc: str | None = None,
        legacy: bool = False,
    ) -> None:
        """An earning as the ledger stores it; `legacy` leaves channel and partner_id NULL, as on older rows."""
        card = identifier.startswith("card:")
        partner = None if card else identifier.split(":")[1]
        issuer = "card:issued" if card else f"partner:{partner}:issued"
        await self.conn.execute(
            "INSERT INTO accounts (account_id, kind) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            issuer,
            "card_issued" if card else "partner_issued",
        )
        key = uuid.uuid4()
        await self.conn.execute(
            """
            INSERT INTO earnings (source_key, event_id, identifier, issuer_account, amount_minor, currency, points,
                                  refunded_minor, occurred_at, channel, partner_id, category, mcc)
            VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8, $9, $10, $11, $12)
            """,
            f"test:{key}",
            key,
            identifier,
            issuer,
            amount_minor,
            currency,
            refunded_minor,
            at,
            None if legacy else ("card" if card else "partner"),
            None if legacy else partner,
            category,
            mcc,
        )

    async def activity(
        self, *, budget_points: int = 10_000, points_granted: int = 0, holdout_share: Decimal = Decimal(0)
    ) -> uuid.UUID:
        activity_id = uuid.uuid4()
        await self.conn.execute(
            """
            INSERT INTO activities (activity_id, name, kind, budget_points, points_granted, holdout_share)
            VALUES ($1, 'Double points weekend', 'multiplier', $2, $3, $4)
            """,
            activity_id,
            budget_points,
            points_granted,
            holdout_share,
        )
        return activity_id

    async def version(
        self,
        activity_id: uuid.UUID,
        version: int,
        state: str,
        effective_from: datetime,
        window: tuple[datetime | None, datetime | None] = (None, None),
    ) -> None:
        await self.conn.execute(
            """
            INSERT INTO activity_versions
                (activity_id, version, effective_from, state, rules, window_start, window_end, changed_by)
            VALUES ($1, $2, $3, $4, '{}', $5, $6, 'ops-test')
            """,
            activity_id,
            version,
            effective_from,
            state,
            window[0],
            window[1],
        )

    async def targets(self, activity_id: uuid.UUID, members: list[uuid.UUID], *, holdout: bool) -> None:
        await self.conn.execute(
            "INSERT INTO activity_targets (activity_id, member_id, holdout) SELECT $1, unnest($2::uuid[]), $3",
            activity_id,
            members,
            holdout,
        )

    async def standing(self, activity_id: uuid.UUID, member_id: uuid.UUID, grants: int, points: int = 0) -> None:
        await self.conn.execute(
            "INSERT INTO activity_members (activity_id, member_id, grants, points) VALUES ($1, $2, $3, $4)",
            activity_id,
            member_id,
            grants,
            points,
        )

    async def budget(self, activity_id: uuid.UUID, funded: int, spent: int) -> None:
        await self.conn.execute(
            """
            INSERT INTO accounts (account_id, kind, credits_posted, debits_posted)
            VALUES ($1, 'activity_budget', $2, $3)
            """,
            budget_account(activity_id),
            funded,
            spent,
        )


@asynccontextmanager
async def points_with_seed(kafka: str, dsn: str, prefix: str) -> AsyncIterator[tuple[Any, Seed]]:
    """The points service in-process, with an HTTP client and a `Seed` writing into its database."""
    conn = await asyncpg.connect(dsn)
    try:
        async with running(points_service(kafka, dsn, prefix)) as shell, http(shell) as client:
            yield client, Seed(conn)
    finally:
        await conn.close()
