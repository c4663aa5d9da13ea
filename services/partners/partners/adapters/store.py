"""The partner registry and the replay log in PostgreSQL (asyncpg). All SQL of the service lives here."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal

import asyncpg

from partners.domain.credentials import ApiKey
from partners.domain.earn import EarnContract
from partners.domain.registry import (
    ContractVersionExistsError,
    InvalidContractError,
    KeyNotFoundError,
    Partner,
    PartnerExistsError,
    UnknownPartnerError,
)
from partners.handlers.registry import PartnerOverview

INSERT_PARTNER = """
INSERT INTO partners (partner_id, name) VALUES ($1, $2)
ON CONFLICT (partner_id) DO NOTHING
RETURNING partner_id
"""

# Category rates arrive as two arrays so that asyncpg sends exact numerics; jsonb stores JSON numbers exactly.
INSERT_CONTRACT = """
INSERT INTO earn_contracts (partner_id, valid_from, currency, points_per_unit, category_rates,
                            issue_price_minor_per_point, redemption_price_minor_per_point, breakage_rebate_share)
SELECT $1, $2, $3, $4,
       (SELECT coalesce(jsonb_object_agg(category, rate), '{}'::jsonb)
          FROM unnest($5::text[], $6::numeric[]) AS r(category, rate)),
       $7, $8, $9
ON CONFLICT (partner_id, valid_from) DO NOTHING
RETURNING valid_from
"""

SELECT_CONTRACTS = """
SELECT partner_id, valid_from, currency, points_per_unit, category_rates::text AS category_rates,
       issue_price_minor_per_point, redemption_price_minor_per_point, breakage_rebate_share
  FROM earn_contracts
 WHERE partner_id = $1
 ORDER BY valid_from
"""

INSERT_KEY = """
INSERT INTO api_keys (key_id, partner_id) VALUES ($1, $2)
RETURNING key_id, partner_id, created_at, revoked_at
"""

REVOKE_KEY = """
UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
 WHERE key_id = $1 AND partner_id = $2
RETURNING key_id, partner_id, created_at, revoked_at
"""

SELECT_KEY = "SELECT key_id, partner_id, created_at, revoked_at FROM api_keys WHERE key_id = $1"

SELECT_PARTNER = "SELECT partner_id, name, created_at FROM partners WHERE partner_id = $1"

SELECT_KEYS_OF = """
SELECT key_id, partner_id, created_at, revoked_at FROM api_keys WHERE partner_id = $1 ORDER BY created_at, key_id
"""

# The contract columns are named as in SELECT_CONTRACTS, so that _contract reads a row of either.
SELECT_OVERVIEW = """
SELECT p.partner_id, p.name, p.created_at,
       c.valid_from, c.currency, c.points_per_unit, c.category_rates::text AS category_rates,
       c.issue_price_minor_per_point, c.redemption_price_minor_per_point, c.breakage_rebate_share,
       (SELECT count(*) FROM api_keys k WHERE k.partner_id = p.partner_id AND k.revoked_at IS NULL) AS active_keys
  FROM partners p
  LEFT JOIN LATERAL (SELECT * FROM earn_contracts e
                      WHERE e.partner_id = p.partner_id AND e.valid_from <= $1
                      ORDER BY e.valid_from DESC
                      LIMIT 1) c ON true
 ORDER BY p.partner_id
"""

CLAIM_SIGNATURE = """
INSERT INTO seen_signatures (signature, signed_at) VALUES ($1, $2)
ON CONFLICT (signature) DO NOTHING
RETURNING true
"""

FORGET_SIGNATURES = "DELETE FROM seen_signatures WHERE signed_at < $1"


class PartnerStore:
    """Borrows the service's pool (it exists only while the service runs), never owns it."""

    def __init__(self, pool: Callable[[], asyncpg.Pool]) -> None:
        self._pool = pool

    async def create_partner(self, partner_id: str, name: str, contract: EarnContract, key_id: str) -> None:
        async with self._pool().acquire() as conn, conn.transaction():
            if await conn.fetchval(INSERT_PARTNER, partner_id, name) is None:
                raise PartnerExistsError(partner_id)
            await _insert_contract(conn, contract)
            await conn.execute(INSERT_KEY, key_id, partner_id)

    async def partner(self, partner_id: str) -> Partner | None:
        async with self._pool().acquire() as conn:
            row = await conn.fetchrow(SELECT_PARTNER, partner_id)
            if row is None:
                return None
            keys = await conn.fetch(SELECT_KEYS_OF, partner_id)
        return Partner(row["partner_id"], row["name"], row["created_at"], tuple(_key(k) for k in keys))

    async def add_contract(self, contract: EarnContract) -> None:
        async with self._pool().acquire() as conn:
            await _insert_contract(conn, contract)

    async def contracts_of(self, partner_id: str) -> Sequence[EarnContract]:
        rows = await self._pool().fetch(SELECT_CONTRACTS, partner_id)
        return [_contract(row) for row in rows]

    async def add_key(self, partner_id: str, key_id: str) -> ApiKey:
        try:
            row = await self._pool().fetchrow(INSERT_KEY, key_id, partner_id)
        except asyncpg.ForeignKeyViolationError as error:
            raise UnknownPartnerError(partner_id) from error
        assert row is not None
        return _key(row)

    async def revoke_key(self, partner_id: str, key_id: str) -> ApiKey:
        row = await self._pool().fetchrow(REVOKE_KEY, key_id, partner_id)
        if row is None:
            raise KeyNotFoundError(partner_id, key_id)
        return _key(row)

    async def overview(self, today: date) -> Sequence[PartnerOverview]:
        rows = await self._pool().fetch(SELECT_OVERVIEW, today)
        return [
            PartnerOverview(
                Partner(row["partner_id"], row["name"], row["created_at"]),
                _contract(row) if row["valid_from"] is not None else None,
                row["active_keys"],
            )
            for row in rows
        ]

    async def find_key(self, key_id: str) -> ApiKey | None:
        row = await self._pool().fetchrow(SELECT_KEY, key_id)
        return _key(row) if row is not None else None

    async def claim(self, signature: str, signed_at: datetime) -> bool:
        return bool(await self._pool().fetchval(CLAIM_SIGNATURE, signature, signed_at))

    async def forget_signed_before(self, moment: datetime) -> int:
        status: str = await self._pool().execute(FORGET_SIGNATURES, moment)
        return int(status.split()[-1])


async def _insert_contract(conn: asyncpg.Connection, contract: EarnContract) -> None:
    categories = sorted(contract.category_rates)
    try:
        inserted = await conn.fetchval(
            INSERT_CONTRACT,
            contract.partner_id,
            contract.valid_from,
            contract.currency,
            contract.points_per_unit,
            categories,
            [contract.category_rates[c] for c in categories],
            contract.issue_price_minor_per_point,
            contract.redemption_price_minor_per_point,
            contract.breakage_rebate_share,
        )
    except asyncpg.ForeignKeyViolationError as error:
        raise UnknownPartnerError(contract.partner_id) from error
    except asyncpg.CheckViolationError as error:
        raise InvalidContractError(error.constraint_name or "check") from error
    if inserted is None:
        raise ContractVersionExistsError(contract.partner_id, contract.valid_from)


def _contract(row: asyncpg.Record) -> EarnContract:
    rates = json.loads(row["category_rates"], parse_float=Decimal, parse_int=Decimal)
    return EarnContract(
        partner_id=row["partner_id"],
        valid_from=row["valid_from"],
        currency=row["currency"],
        points_per_unit=row["points_per_unit"],
        category_rates=rates,
        issue_price_minor_per_point=row["issue_price_minor_per_point"],
        redemption_price_minor_per_point=row["redemption_price_minor_per_point"],
        breakage_rebate_share=row["breakage_rebate_share"],
    )


def _key(row: asyncpg.Record) -> ApiKey:
    return ApiKey(row["key_id"], row["partner_id"], row["created_at"], row["revoked_at"])
