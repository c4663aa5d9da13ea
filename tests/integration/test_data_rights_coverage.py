"""Every table with a member column is covered by the data export (or said not to hold member data, with why).

A new table that names members must be added to the export of its service (points/adapters/member_data.py,
redemption/adapters/member_data_store.py) or the erasure may miss it: this test fails until it is.
"""

from __future__ import annotations

import asyncpg
import pytest

from partners.adapters.member_data_store import MEMBER_TABLES as PARTNERS_MEMBER_TABLES
from points.adapters.member_data import EXPORTED as POINTS_EXPORTED
from points.adapters.member_data import NOT_MEMBER_DATA as POINTS_NOT_MEMBER_DATA
from redemption.adapters.member_data_store import EXPORTED as REDEMPTION_EXPORTED

pytestmark = pytest.mark.integration

# Columns named like a member, or foreign keys to members (gifts.sender, referrals.referee, share_links.sharer_member).
MEMBER_COLUMNS = """
SELECT DISTINCT c.table_name FROM information_schema.columns c
 WHERE c.table_schema = current_schema() AND c.data_type = 'uuid' AND c.column_name LIKE '%member%'
UNION
SELECT DISTINCT cl.relname FROM pg_constraint k JOIN pg_class cl ON cl.oid = k.conrelid
 WHERE k.contype = 'f' AND k.confrelid = to_regclass('members')
ORDER BY 1
"""


async def tables_with_members(dsn: str) -> set[str]:
    conn = await asyncpg.connect(dsn)
    try:
        return {r[0] for r in await conn.fetch(MEMBER_COLUMNS)}
    finally:
        await conn.close()


async def test_every_points_table_with_a_member_column_is_exported(database):
    found = await tables_with_members(await database("points"))
    covered = {t.table for t in POINTS_EXPORTED} | set(POINTS_NOT_MEMBER_DATA)
    assert found - covered == set(), "add these tables to points/adapters/member_data.py (EXPORTED, and the erasure)"
    assert {"members", "gifts", "referrals", "share_links", "holds"} <= found, "the query finds member columns"


async def test_every_redemption_table_with_a_member_column_is_exported(database):
    found = await tables_with_members(await database("redemption"))
    assert found - set(REDEMPTION_EXPORTED) == set(), "add these tables to redemption/adapters/member_data_store.py"
    assert "orders" in found


async def test_every_partners_table_with_a_member_column_is_exported(database):
    found = await tables_with_members(await database("partners"))
    assert found - set(PARTNERS_MEMBER_TABLES) == set(), "add these tables to partners/adapters/member_data_store.py"
