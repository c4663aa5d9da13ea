"""Segments on a real database: each condition, windows, refunds, links, targeting; and the ops API."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from points.adapters.segments import SegmentStore, freeze_targets
from points.domain.segments import segment_rules_from_json
from tests.support.ledger import OPS, member_headers
from tests.support.segments import Seed, points_with_seed

pytestmark = pytest.mark.integration
Database = Callable[[str], Awaitable[str]]

AS_OF = datetime(2026, 6, 1, 12, tzinfo=UTC)
DAY = timedelta(days=1)
TICK = timedelta(microseconds=1)


@dataclass
class Points:
    seed: Seed
    segments: SegmentStore
    pool: asyncpg.Pool

    async def matching(self, *conditions: dict[str, Any], as_of: datetime = AS_OF) -> set[uuid.UUID]:
        rules = segment_rules_from_json({"all": list(conditions)})
        found = await self.segments.preview(rules, as_of, sample_size=10_000)
        assert found.count == len(found.sample)
        return set(found.sample)


@pytest.fixture
async def points(database: Database) -> AsyncIterator[Points]:
    pool = await asyncpg.create_pool(await database("points"), min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn:
            yield Points(Seed(conn), SegmentStore(pool), pool)
    finally:
        await pool.close()


def spend(days: int, min_minor: int, currency: str = "CNY", **options: str) -> dict[str, Any]:
    return {"kind": "spend", "window_days": days, "min_minor": min_minor, "currency": currency, **options}


async def shopper(seed: Seed, name: str, *identifiers: str) -> uuid.UUID:
    member = await seed.member(name)
    for identifier in identifiers or (f"partner:skymall:{name}",):
        await seed.identifier(identifier, member)
    return member


# --- conditions --------------------------------------------------------------------------------


async def test_spend_is_net_of_refunds_in_one_currency_within_the_window(points):
    seed = points.seed
    ada = await shopper(seed, "ada")
    bob = await shopper(seed, "bob")
    cy = await shopper(seed, "cy")
    await seed.purchase("partner:skymall:ada", 30_000, AS_OF - 10 * DAY, refunded_minor=5_000)
    await seed.purchase("partner:skymall:ada", 100, AS_OF - 3 * DAY, currency="USD")
    await seed.purchase("partner:skymall:bob", 40_000, AS_OF - 40 * DAY)
    await seed.purchase("partner:skymall:cy", 25_000, AS_OF - DAY, currency="USD")

    assert await points.matching(spend(30, 25_000)) == {ada}
    assert await points.matching(spend(30, 25_001)) == set()
    assert await points.matching(spend(45, 25_000)) == {ada, bob}
    assert await points.matching(spend(30, 100, "USD")) == {ada, cy}
    assert await points.matching(spend(30, 0)) == {ada, bob, cy}


async def test_a_window_of_n_days_excludes_its_first_instant_and_includes_as_of(points):
    seed = points.seed
    too_old = await shopper(seed, "old")
    just_in = await shopper(seed, "in")
    at_as_of = await shopper(seed, "now")
    too_late = await shopper(seed, "late")
    never = await seed.member("never")
    await seed.purchase("partner:skymall:old", 1_000, AS_OF - 30 * DAY)
    await seed.purchase("partner:skymall:in", 1_000, AS_OF - 30 * DAY + TICK)
    await seed.purchase("partner:skymall:now", 1_000, AS_OF)
    await seed.purchase("partner:skymall:late", 1_000, AS_OF + TICK)

    assert await points.matching({"kind": "last_activity", "within_days": 30}) == {just_in, at_as_of}
    assert await points.matching(spend(30, 1_000)) == {just_in, at_as_of}
    assert await points.matching({"kind": "inactive", "for_days": 30}) == {too_old, too_late, never}
    assert await points.matching(spend(30, 1_000), as_of=AS_OF + TICK) == {at_as_of, too_late}
    # Each condition keeps its own window when another one looks further back.
    anything_in_60_days = spend(60, 0)
    assert await points.matching({"kind": "last_activity", "within_days": 30}, anything_in_60_days) == {
        just_in,
        at_as_of,
    }
    assert await points.matching({"kind": "inactive", "for_days": 30}, anything_in_60_days) == {
        too_old,
        too_late,
        never,
    }


async def test_spend_can_be_limited_to_a_partner_category_channel_or_merchant_category(points):
    seed = points.seed
    await shopper(seed, "ada", "partner:skymall:ada", "partner:hotelco:ada", "card:tok_ada00000001")
    at = AS_OF - DAY
    await seed.purchase("partner:skymall:ada", 10_000, at, category="electronics")
    await seed.purchase("partner:skymall:ada", 5_000, at, category="books")
    await seed.purchase("partner:hotelco:ada", 7_000, at, category="electronics")
    await seed.purchase("card:tok_ada00000001", 3_000, at, mcc="4511")
    await seed.purchase("card:tok_ada00000001", 500, at, mcc="5411")

    async def reaches(min_minor: int, **options: str) -> bool:
        return bool(await points.matching(spend(30, min_minor, **options)))

    assert await reaches(25_500)
    assert not await reaches(25_501)
    assert await reaches(15_000, partner_id="skymall")
    assert not await reaches(15_001, partner_id="skymall")
    assert await reaches(17_000, category="electronics")
    assert not await reaches(17_001, category="electronics")
    assert await reaches(10_000, partner_id="skymall", category="electronics")
    assert not await reaches(10_001, partner_id="skymall", category="electronics")
    assert await reaches(3_500, channel="card")
    assert not await reaches(3_501, channel="card")
    assert await reaches(22_000, channel="partner")
    assert not await reaches(22_001, channel="partner")
    assert await reaches(3_000, mcc="4511")
    assert not await reaches(3_001, mcc="4511")


async def test_partners_used_counts_distinct_partners_with_a_purchase_not_refunded_in_full(points):
    seed = points.seed
    two = await shopper(seed, "two", "partner:skymall:two", "partner:hotelco:two", "card:tok_two00000001")
    await seed.purchase("partner:skymall:two", 1_000, AS_OF - DAY)
    await seed.purchase("partner:hotelco:two", 1_000, AS_OF - 2 * DAY)
    one_twice = await shopper(seed, "once", "partner:skymall:once", "card:tok_once0000001")
    await seed.purchase("partner:skymall:once", 1_000, AS_OF - DAY)
    await seed.purchase("partner:skymall:once", 2_000, AS_OF - 2 * DAY)
    await seed.purchase("card:tok_once0000001", 2_000, AS_OF - 2 * DAY)
    refunded = await shopper(seed, "refunded", "partner:skymall:refunded", "partner:hotelco:refunded")
    await seed.purchase("partner:skymall:refunded", 1_000, AS_OF - DAY)
    await seed.purchase("partner:hotelco:refunded", 1_000, AS_OF - DAY, refunded_minor=1_000)
    older_rows = await shopper(seed, "legacy", "partner:skymall:legacy", "partner:hotelco:legacy")
    await seed.purchase("partner:skymall:legacy", 1_000, AS_OF - DAY, legacy=True)
    await seed.purchase("partner:hotelco:legacy", 1_000, AS_OF - DAY, legacy=True)
    long_ago = await shopper(seed, "ago", "partner:skymall:ago", "partner:hotelco:ago")
    await seed.purchase("partner:skymall:ago", 1_000, AS_OF - DAY)
    await seed.purchase("partner:hotelco:ago", 1_000, AS_OF - 100 * DAY)

    used_two = {"kind": "partners_used", "window_days": 90, "min": 2}
    assert await points.matching(used_two) == {two, older_rows}
    assert await points.matching({**used_two, "min": 1}) == {two, one_twice, refunded, older_rows, long_ago}
    assert await points.matching({**used_two, "window_days": 100}) == {two, older_rows}  # 100 days ago is outside
    assert await points.matching({**used_two, "window_days": 101}) == {two, older_rows, long_ago}


async def test_card_usage_counts_card_purchases_not_refunded_in_full(points):
    seed = points.seed
    card = "card:tok_{}0000000001"
    regular = await shopper(seed, "reg", card.format("reg"))
    partner_too = await shopper(seed, "mix", card.format("mix"), "partner:skymall:mix")
    reversed_one = await shopper(seed, "rev", card.format("rev"))
    older_rows = await shopper(seed, "old", card.format("old"))
    for name in ("reg", "rev", "old"):
        for n in range(3):
            await seed.purchase(
                card.format(name),
                1_000,
                AS_OF - (n + 1) * DAY,
                mcc="5411",
                refunded_minor=1_000 if name == "rev" and n == 0 else 0,
                legacy=name == "old",
            )
    for _ in range(2):
        await seed.purchase(card.format("mix"), 1_000, AS_OF - DAY)
        await seed.purchase("partner:skymall:mix", 1_000, AS_OF - DAY)

    usage = {"kind": "card_usage", "window_days": 30, "min_transactions": 3}
    assert await points.matching(usage) == {regular, older_rows}
    assert await points.matching({**usage, "min_transactions": 2}) == {regular, older_rows, partner_too, reversed_one}
    assert await points.matching({**usage, "window_days": 2}) == set()
    assert await points.matching({**usage, "window_days": 2, "min_transactions": 1}) == {
        regular,
        older_rows,
        partner_too,
    }


async def test_last_activity_and_inactive_split_members_and_a_refunded_purchase_is_no_activity(points):
    seed = points.seed
    recent = await shopper(seed, "recent")
    lapsed = await shopper(seed, "lapsed")
    refunded = await shopper(seed, "refunded")
    never = await seed.member("never")
    await seed.purchase("partner:skymall:recent", 1_000, AS_OF - 5 * DAY)
    await seed.purchase("partner:skymall:lapsed", 1_000, AS_OF - 40 * DAY)
    await seed.purchase("partner:skymall:refunded", 1_000, AS_OF - 5 * DAY, refunded_minor=1_000)

    assert await points.matching({"kind": "last_activity", "within_days": 30}) == {recent}
    assert await points.matching({"kind": "inactive", "for_days": 30}) == {lapsed, refunded, never}
    assert await points.matching({"kind": "inactive", "for_days": 60}) == {refunded, never}


async def test_conditions_combine_with_and(points):
    seed = points.seed
    members = [await shopper(seed, f"m{n}") for n in range(4)]
    for n in range(3):
        await seed.purchase(f"partner:skymall:m{n}", 10_000 * (n + 1), AS_OF - DAY)
    listed = {"kind": "members", "member_ids": [str(m) for m in members[1:]]}

    assert await points.matching(listed) == set(members[1:])
    assert await points.matching(listed, spend(30, 20_000)) == set(members[1:3])
    assert await points.matching(listed, spend(30, 20_000), {"kind": "members", "member_ids": [str(members[2])]}) == {
        members[2]
    }
    assert await points.matching(spend(30, 10_000), {"kind": "inactive", "for_days": 7}) == set()
    assert await points.matching({"kind": "members", "member_ids": [str(uuid.uuid4())]}) == set()


async def test_purchases_belong_to_the_member_their_identifier_is_linked_to_now(points):
    seed = points.seed
    await seed.identifier("partner:skymall:ghost", None)
    await seed.purchase("partner:skymall:ghost", 99_000, AS_OF - DAY)
    nobody = await seed.member("nobody")
    early = await seed.member("early")
    await seed.identifier("card:tok_early0000001", early, at=AS_OF + 10 * DAY)  # linked after the purchase
    await seed.purchase("card:tok_early0000001", 5_000, AS_OF - DAY)

    assert await points.matching(spend(30, 5_000)) == {early}
    assert await points.matching({"kind": "last_activity", "within_days": 30}) == {early}
    assert await points.matching({"kind": "card_usage", "window_days": 30, "min_transactions": 1}) == {early}
    assert await points.matching({"kind": "inactive", "for_days": 30}) == {nobody}


async def test_a_preview_counts_every_member_and_samples_twenty(points):
    seed = points.seed
    buyers = set()
    for n in range(25):
        buyers.add(await shopper(seed, f"b{n}"))
        await seed.purchase(f"partner:skymall:b{n}", 1_000, AS_OF - DAY)
    await shopper(seed, "idle")

    found = await points.segments.preview(
        segment_rules_from_json({"all": [{"kind": "last_activity", "within_days": 7}]}), AS_OF, sample_size=20
    )

    assert found.count == 25
    assert len(found.sample) == len(set(found.sample)) == 20
    assert set(found.sample) <= buyers


# --- targeting --------------------------------------------------------------------------------


async def frozen(conn: asyncpg.Connection, activity_id: uuid.UUID) -> dict[uuid.UUID, bool]:
    rows = await conn.fetch("SELECT member_id, holdout FROM activity_targets WHERE activity_id = $1", activity_id)
    return {r["member_id"]: r["holdout"] for r in rows}


async def freeze_and_roll_back(
    conn: asyncpg.Connection, activity_id: uuid.UUID, rules: dict[str, Any] | None, share: str
) -> tuple[tuple[int, int], dict[uuid.UUID, bool]]:
    """Freeze inside a transaction, as activation does, read the targets, then undo it all."""
    transaction = conn.transaction()
    await transaction.start()
    try:
        parsed = None if rules is None else segment_rules_from_json(rules)
        counts = await freeze_targets(conn, activity_id, parsed, Decimal(share), AS_OF)
        return counts, await frozen(conn, activity_id)
    finally:
        await transaction.rollback()


async def test_freezing_targets_every_member_and_holds_out_about_the_share_the_same_way_every_time(points):
    seed = points.seed
    members = set(await seed.members(2_000))
    activity = await seed.activity(holdout_share=Decimal("0.2"))
    other = await seed.activity(holdout_share=Decimal("0.2"))

    (targeted, held_out), first = await freeze_and_roll_back(seed.conn, activity, None, "0.2")
    _, again = await freeze_and_roll_back(seed.conn, activity, None, "0.2")
    _, elsewhere = await freeze_and_roll_back(seed.conn, other, None, "0.2")

    assert set(first) == members
    assert targeted + held_out == 2_000
    assert held_out == sum(first.values())
    assert 340 <= held_out <= 460, held_out  # 20 % ± 3 %
    assert again == first
    assert elsewhere != first  # the draw depends on the activity, not only on the member
    assert await frozen(seed.conn, activity) == {}  # rolled back with the caller's transaction


async def test_only_members_in_the_segment_are_targeted(points):
    seed = points.seed
    members = await seed.members(1_000)
    inside = members[:300]
    for member in inside[:100]:
        await seed.identifier(f"card:tok_{member.hex[:16]}", member)
        await seed.purchase(f"card:tok_{member.hex[:16]}", 2_000, AS_OF - DAY)
    activity = await seed.activity()
    rules = {"all": [{"kind": "members", "member_ids": [str(m) for m in inside]}]}

    (targeted, held_out), targets = await freeze_and_roll_back(seed.conn, activity, rules, "0")
    spenders = {"all": [*rules["all"], spend(7, 2_000)]}
    (spenders_targeted, _), spender_targets = await freeze_and_roll_back(seed.conn, activity, spenders, "0.5")

    assert (targeted, held_out) == (300, 0)
    assert set(targets) == set(inside)
    assert not any(targets.values())
    assert set(spender_targets) == set(inside[:100])
    assert spenders_targeted + sum(spender_targets.values()) == 100


async def test_freezing_twice_for_one_activity_fails_loudly(points):
    seed = points.seed
    await seed.members(3)
    activity = await seed.activity()
    async with seed.conn.transaction():
        assert await freeze_targets(seed.conn, activity, None, Decimal(0), AS_OF) == (3, 0)
    with pytest.raises(asyncpg.UniqueViolationError):
        async with seed.conn.transaction():
            await freeze_targets(seed.conn, activity, None, Decimal(0), AS_OF)
    assert len(await frozen(seed.conn, activity)) == 3


# --- the ops API ------------------------------------------------------------------------------


@pytest.fixture
async def api(infra, topic_prefix, database: Database) -> AsyncIterator[tuple[Any, Seed]]:
    async with points_with_seed(infra.kafka, await database("points"), topic_prefix) as ready:
        yield ready


FREQUENT = {"all": [spend(90, 1_000), {"kind": "partners_used", "window_days": 90, "min": 1}]}


async def test_ops_define_read_list_and_preview_segments(api):
    client, seed = api
    now = datetime.now(UTC)
    buyers = []
    for n in range(3):
        buyers.append(await shopper(seed, f"b{n}"))
        await seed.purchase(f"partner:skymall:b{n}", 1_000 * (n + 1), now - DAY)
    await shopper(seed, "idle")

    created = await client.post("/v1/ops/segments", json={"name": "Frequent shoppers", "rules": FREQUENT}, headers=OPS)
    assert created.status_code == 201, created.text
    segment = created.json()
    segment_id = segment["segment_id"]
    assert segment["rules"] == FREQUENT
    assert segment["name"] == "Frequent shoppers"

    read = await client.get(f"/v1/ops/segments/{segment_id}", headers=OPS)
    assert read.status_code == 200
    assert read.json() == segment

    by_id = await client.post("/v1/ops/segments/preview", json={"segment_id": segment_id}, headers=OPS)
    assert by_id.status_code == 200, by_id.text
    assert by_id.json()["count"] == 3
    assert sorted(by_id.json()["sample"]) == sorted(str(b) for b in buyers)

    tighter = {"all": [spend(90, 2_000)]}
    by_rules = await client.post("/v1/ops/segments/preview", json={"rules": tighter}, headers=OPS)
    assert by_rules.json()["count"] == 2
    assert set(by_rules.json()["sample"]) == {str(b) for b in buyers[1:]}

    earlier = await client.post(
        "/v1/ops/segments/preview",
        json={"rules": tighter, "as_of": (now - 2 * DAY).isoformat()},
        headers=OPS,
    )
    assert earlier.json() == {"count": 0, "sample": [], "as_of": (now - 2 * DAY).isoformat().replace("+00:00", "Z")}


async def test_creating_a_segment_again_with_its_id_is_idempotent_and_a_changed_one_is_refused(api):
    client, _ = api
    body = {"segment_id": str(uuid.uuid4()), "name": "Lapsed", "rules": {"all": [{"kind": "inactive", "for_days": 90}]}}

    first = await client.post("/v1/ops/segments", json=body, headers=OPS)
    again = await client.post("/v1/ops/segments", json=body, headers=OPS)
    changed = await client.post(
        "/v1/ops/segments", json={**body, "rules": {"all": [{"kind": "inactive", "for_days": 60}]}}, headers=OPS
    )

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert changed.status_code == 409
    assert "segments never change: create a new one" in changed.json()["detail"]


async def test_segments_are_listed_newest_first_a_page_at_a_time(api):
    client, _ = api
    made = []
    for n in range(5):
        answer = await client.post(
            "/v1/ops/segments",
            json={"name": f"s{n}", "rules": {"all": [{"kind": "last_activity", "within_days": n + 1}]}},
            headers=OPS,
        )
        made.append(answer.json()["segment_id"])

    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/ops/segments", params=params, headers=OPS)).json()
        seen += [s["segment_id"] for s in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert seen == made[::-1]
    assert pages == 3
    bad = await client.get("/v1/ops/segments", params={"cursor": "bm90LWEtY3Vyc29y"}, headers=OPS)
    assert bad.status_code == 400
    assert "start again without it" in bad.json()["detail"]


BAD_RULES = [
    ({"all": [spend(0, 100)]}, ["all", 0, "spend", "window_days"], "greater than or equal to 1"),
    ({"all": [spend(30, 100, "XYZ")]}, ["all", 0, "spend", "currency"], "unknown currency 'XYZ'"),
    ({"all": [{"kind": "loyal"}]}, ["all", 0], "does not match any of the expected tags"),
    ({"all": []}, ["all"], "at least 1 item"),
    ({"any": []}, ["any"], "Extra inputs are not permitted"),
]


async def test_bad_rules_are_refused_with_422_saying_where_and_why(api):
    client, _ = api

    for rules, where, why in BAD_RULES:
        for path, body in (
            ("/v1/ops/segments", {"name": "bad", "rules": rules}),
            ("/v1/ops/segments/preview", {"rules": rules}),
        ):
            answer = await client.post(path, json=body, headers=OPS)
            assert answer.status_code == 422, answer.text
            problems = answer.json()["detail"]
            assert any(p["loc"] == ["body", "rules", *where] and why in p["msg"] for p in problems), problems
    assert (await client.get("/v1/ops/segments", headers=OPS)).json()["items"] == []


async def test_a_preview_needs_rules_or_a_segment_id_that_exists(api):
    client, _ = api
    rules = {"all": [{"kind": "inactive", "for_days": 30}]}

    both = await client.post(
        "/v1/ops/segments/preview", json={"rules": rules, "segment_id": str(uuid.uuid4())}, headers=OPS
    )
    neither = await client.post("/v1/ops/segments/preview", json={}, headers=OPS)
    unknown = await client.post("/v1/ops/segments/preview", json={"segment_id": str(uuid.uuid4())}, headers=OPS)
    missing = await client.get(f"/v1/ops/segments/{uuid.uuid4()}", headers=OPS)

    assert both.status_code == neither.status_code == 422
    assert "give either rules or segment_id" in both.text
    assert unknown.status_code == missing.status_code == 404
    assert "create it first" in missing.json()["detail"]


async def test_segments_are_for_ops_only(api):
    client, _ = api
    member = member_headers(uuid.uuid4())
    body = {"name": "x", "rules": {"all": [{"kind": "inactive", "for_days": 30}]}}
    calls = [
        ("POST", "/v1/ops/segments", body),
        ("GET", "/v1/ops/segments", None),
        ("GET", f"/v1/ops/segments/{uuid.uuid4()}", None),
        ("POST", "/v1/ops/segments/preview", {"rules": body["rules"]}),
    ]
    for method, path, payload in calls:
        anonymous = await client.request(method, path, json=payload)
        as_member = await client.request(method, path, json=payload, headers=member)
        assert anonymous.status_code == 401, (method, path)
        assert as_member.status_code == 403, (method, path)
        assert as_member.json()["detail"] == "this endpoint needs an ops token"
