"""PostgreSQL statements of the points exchange (domain/exchange.py), inside a points transaction."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import asyncpg

from points.domain.exchange import Conversion, DatedRate, ExchangeProgramme, Quote

CARD_POINTS_RATES = "SELECT valid_from, points_per_card_point FROM card_points_rates ORDER BY valid_from"

ADD_CARD_POINTS_RATE = """
INSERT INTO card_points_rates (valid_from, points_per_card_point, created_by) VALUES ($1, $2, $3)
ON CONFLICT (valid_from) DO NOTHING RETURNING valid_from
"""

KNOWN_CONVERSIONS = "SELECT request_id FROM card_points_conversions WHERE request_id = ANY($1::uuid[])"

INSERT_CONVERSIONS = """
INSERT INTO card_points_conversions
    (request_id, event_id, card_token, card_points, rate_valid_from, rate, points, remainder, credited, transfer_id,
     occurred_at)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::bigint[], $5::timestamptz[], $6::numeric[],
                     $7::bigint[], $8::numeric[], $9::text[], $10::uuid[], $11::timestamptz[])
"""

PROGRAMMES = """
SELECT p.partner_id, p.units_name, p.min_points, p.step_points, p.daily_limit_points, p.active,
       COALESCE(array_agg(r.valid_from ORDER BY r.valid_from) FILTER (WHERE r.valid_from IS NOT NULL), '{}')
           AS valid_from,
       COALESCE(array_agg(r.units_per_point ORDER BY r.valid_from) FILTER (WHERE r.valid_from IS NOT NULL), '{}')
           AS units_per_point
FROM exchange_programmes p LEFT JOIN exchange_rates r USING (partner_id)
WHERE $1::text IS NULL OR p.partner_id = $1
GROUP BY p.partner_id ORDER BY p.partner_id
"""

LOCK_PROGRAMME = "SELECT partner_id FROM exchange_programmes WHERE partner_id = $1 FOR UPDATE"

UPSERT_PROGRAMME = """
INSERT INTO exchange_programmes (partner_id, units_name, min_points, step_points, daily_limit_points, active,
                                 updated_by)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (partner_id) DO UPDATE SET units_name = $2, min_points = $3, step_points = $4, daily_limit_points = $5,
    active = $6, updated_by = $7, updated_at = now()
"""

ADD_EXCHANGE_RATE = """
INSERT INTO exchange_rates (partner_id, valid_from, units_per_point, created_by) VALUES ($1, $2, $3, $4)
ON CONFLICT (partner_id, valid_from) DO NOTHING RETURNING valid_from
"""

LOCK_EXCHANGE_ID = "SELECT pg_advisory_xact_lock(hashtextextended('exchange:' || $1::uuid::text, 0))"
"""Requests with one exchange id queue here, even before the exchange exists; the later ones read the first."""

_EXCHANGE_COLUMNS = """
e.exchange_id, e.member_id, e.partner_id, e.membership_number, e.points, e.units, e.units_name, e.units_per_point,
e.daily_limit_points, e.programme_day, e.hold_id, e.requested_at, e.partner_reference, e.decision, e.decision_reason,
e.decided_at, h.status AS hold_status, h.void_reason, h.expires_at, h.settled_at
"""

FIND_EXCHANGES = f"""
SELECT {_EXCHANGE_COLUMNS} FROM exchanges e JOIN holds h USING (hold_id)
WHERE e.exchange_id = ANY($1::uuid[]) ORDER BY e.exchange_id FOR UPDATE OF e
"""

EXCHANGES_OF_MEMBER = f"""
SELECT {_EXCHANGE_COLUMNS} FROM exchanges e JOIN holds h USING (hold_id)
WHERE e.member_id = $1 ORDER BY e.requested_at DESC, e.exchange_id LIMIT $2
"""

EXCHANGED_ON = """
SELECT COALESCE(sum(e.points), 0)::bigint FROM exchanges e JOIN holds h USING (hold_id)
WHERE e.member_id = $1 AND e.partner_id = $2 AND e.programme_day = $3 AND h.status <> 'voided'
"""
"""What a member has pending or captured with a programme on a programme day: the daily limit counts it."""

INSERT_EXCHANGE = """
INSERT INTO exchanges (exchange_id, member_id, partner_id, membership_number, points, units, units_name,
                       units_per_point, daily_limit_points, programme_day, hold_id, requested_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
"""

DECIDE_EXCHANGES = """
UPDATE exchanges e SET decision = u.decision, decision_reason = u.reason, partner_reference = u.reference,
                       decided_at = u.decided_at
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])
    AS u(exchange_id, decision, reason, reference, decided_at)
WHERE e.exchange_id = u.exchange_id
"""


@dataclass(frozen=True)
class ExchangeRow:
    exchange_id: uuid.UUID
    member_id: uuid.UUID
    partner_id: str
    membership_number: str
    points: int
    units: int
    units_name: str
    units_per_point: Decimal
    daily_limit_points: int
    programme_day: date
    hold_id: uuid.UUID
    requested_at: datetime
    partner_reference: str | None
    decision: str | None
    decision_reason: str | None
    decided_at: datetime | None
    hold_status: str
    void_reason: str | None
    expires_at: datetime
    settled_at: datetime | None


@dataclass(frozen=True)
class NewConversion:
    request_id: uuid.UUID
    event_id: uuid.UUID
    card_token: str
    conversion: Conversion
    credited: str
    transfer_id: uuid.UUID
    occurred_at: datetime


@dataclass(frozen=True)
class Decided:
    exchange_id: uuid.UUID
    decision: str
    reason: str | None
    reference: str | None
    at: datetime


def _programme(r: asyncpg.Record) -> ExchangeProgramme:
    rates = tuple(DatedRate(f, u) for f, u in zip(r["valid_from"], r["units_per_point"], strict=True))
    return ExchangeProgramme(r["partner_id"], r["units_name"], r["min_points"], r["step_points"],
                             r["daily_limit_points"], rates, r["active"])  # fmt: skip


class ExchangeSql:
    """The exchange's statements on a connection whose transaction the caller holds."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def card_points_rates(self) -> list[DatedRate]:
        return [
            DatedRate(r["valid_from"], r["points_per_card_point"]) for r in await self.conn.fetch(CARD_POINTS_RATES)
        ]

    async def add_card_points_rate(self, rate: DatedRate, by: str) -> bool:
        return await self.conn.fetchval(ADD_CARD_POINTS_RATE, rate.valid_from, rate.rate, by) is not None

    async def known_conversions(self, request_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
        return {r["request_id"] for r in await self.conn.fetch(KNOWN_CONVERSIONS, list(set(request_ids)))}

    async def insert_conversions(self, made: Sequence[NewConversion]) -> None:
        if made:
            await self.conn.execute(
                INSERT_CONVERSIONS,
                [m.request_id for m in made],
                [m.event_id for m in made],
                [m.card_token for m in made],
                [m.conversion.card_points for m in made],
                [m.conversion.rate.valid_from for m in made],
                [m.conversion.rate.rate for m in made],
                [m.conversion.points for m in made],
                [m.conversion.remainder for m in made],
                [m.credited for m in made],
                [m.transfer_id for m in made],
                [m.occurred_at for m in made],
            )

    async def programmes(self, partner_id: str | None = None) -> list[ExchangeProgramme]:
        return [_programme(r) for r in await self.conn.fetch(PROGRAMMES, partner_id)]

    async def lock_programme(self, partner_id: str) -> bool:
        return await self.conn.fetchval(LOCK_PROGRAMME, partner_id) is not None

    async def save_programme(self, p: ExchangeProgramme, by: str) -> None:
        await self.conn.execute(UPSERT_PROGRAMME, p.partner_id, p.units_name, p.min_points, p.step_points,
                                p.daily_limit_points, p.active, by)  # fmt: skip

    async def add_exchange_rate(self, partner_id: str, rate: DatedRate, by: str) -> bool:
        return await self.conn.fetchval(ADD_EXCHANGE_RATE, partner_id, rate.valid_from, rate.rate, by) is not None

    async def lock_exchange_id(self, exchange_id: uuid.UUID) -> None:
        await self.conn.execute(LOCK_EXCHANGE_ID, exchange_id)

    async def exchanges(self, exchange_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, ExchangeRow]:
        """Lock and load the exchanges, with their holds' state."""
        rows = await self.conn.fetch(FIND_EXCHANGES, sorted(set(exchange_ids)))
        return {r["exchange_id"]: ExchangeRow(**dict(r)) for r in rows}

    async def exchanged_on(self, member_id: uuid.UUID, partner_id: str, day: date) -> int:
        return int(await self.conn.fetchval(EXCHANGED_ON, member_id, partner_id, day))

    async def insert_exchange(
        self, exchange_id: uuid.UUID, member_id: uuid.UUID, programme: ExchangeProgramme, membership_number: str,
        q: Quote, day: date, hold_id: uuid.UUID, at: datetime,
    ) -> None:  # fmt: skip
        await self.conn.execute(
            INSERT_EXCHANGE, exchange_id, member_id, programme.partner_id, membership_number, q.points, q.units,
            programme.units_name, q.rate.rate, programme.daily_limit_points, day, hold_id, at,
        )  # fmt: skip

    async def decide(self, decided: Sequence[Decided]) -> None:
        if decided:
            await self.conn.execute(
                DECIDE_EXCHANGES,
                [d.exchange_id for d in decided],
                [d.decision for d in decided],
                [d.reason for d in decided],
                [d.reference for d in decided],
                [d.at for d in decided],
            )


async def exchanges_of_member(pool: asyncpg.Pool, member_id: uuid.UUID, limit: int) -> list[ExchangeRow]:
    return [ExchangeRow(**dict(r)) for r in await pool.fetch(EXCHANGES_OF_MEMBER, member_id, limit)]
