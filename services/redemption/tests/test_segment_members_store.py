"""Published segments' members on a real database: a publication counts once complete, parts may come twice,
and a late older publication never replaces a newer one."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from redemption.adapters.catalog_store import CatalogStore
from redemption.adapters.segment_members_store import SegmentMembersStore
from redemption.domain.prices import SegmentPart
from redemption.handlers.segment_members import apply_segment_batch

pytestmark = pytest.mark.integration

SEGMENT = uuid.uuid4()
ADA, BO, CY = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
T0 = datetime(2026, 12, 1, 8, tzinfo=UTC)


def publication(as_of: datetime, *parts: tuple[uuid.UUID, ...]) -> list[SegmentPart]:
    publication_id = uuid.uuid4()
    return [SegmentPart(uuid.uuid4(), SEGMENT, publication_id, as_of, number, len(parts), members)
            for number, members in enumerate(parts, start=1)]  # fmt: skip


@pytest.fixture
async def pool(database) -> AsyncIterator[asyncpg.Pool]:
    made = await asyncpg.create_pool(await database("redemption"), min_size=1, max_size=2)
    try:
        yield made
    finally:
        await made.close()


async def segments_of(pool: asyncpg.Pool, member: uuid.UUID) -> tuple[uuid.UUID, ...]:
    return (await CatalogStore(pool).reader(member)).segments


async def test_a_publication_counts_once_all_its_parts_arrived_even_twice(pool):
    store = SegmentMembersStore(pool)
    first, second = publication(T0, (ADA,), (BO,))
    assert await apply_segment_batch(store, "t", [first]) == 1
    assert await segments_of(pool, ADA) == (), "half a publication is nobody's segment yet"
    repeated = SegmentPart(uuid.uuid4(), *[getattr(first, f) for f in ("segment_id", "publication_id", "as_of",
                                                                      "part", "parts", "member_ids")])  # fmt: skip
    await apply_segment_batch(store, "t", [repeated, second, second])
    assert await segments_of(pool, ADA) == (SEGMENT,)
    assert await segments_of(pool, BO) == (SEGMENT,)
    seen = await pool.fetchval("SELECT parts_seen FROM segment_publications WHERE publication_id = $1",
                               first.publication_id)  # fmt: skip
    assert seen == 2, "a part sent again (another event id) is counted once"


async def test_a_newer_publication_replaces_the_members_and_a_late_older_one_changes_nothing(pool):
    store = SegmentMembersStore(pool)
    await apply_segment_batch(store, "t", publication(T0, (ADA, BO)))
    await apply_segment_batch(store, "t", publication(T0 + timedelta(hours=1), (BO, CY)))
    await apply_segment_batch(store, "t", publication(T0 - timedelta(hours=1), (ADA,)))
    assert [await segments_of(pool, m) for m in (ADA, BO, CY)] == [(), (SEGMENT,), (SEGMENT,)]
    kept = await pool.fetchval("SELECT count(*) FROM segment_publications")
    assert kept == 1, "what the newer publication replaced is forgotten"
    empty = publication(T0 + timedelta(hours=2), ())
    await apply_segment_batch(store, "t", empty)
    assert [await segments_of(pool, m) for m in (ADA, BO, CY)] == [(), (), ()], "an empty segment empties it"
