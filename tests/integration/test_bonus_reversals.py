"""Refunds take activity bonuses back into the activity's budget, on the real ledger; the report shows it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from contracts.topics import PARTNER_PURCHASES
from points.adapters.segments import SegmentStore
from points.domain.activities import Activity, ActivityKind, Rules, budget_account
from points.handlers.activities import change_lifecycle, create_activity, set_referrer
from points.handlers.gifts import give
from points.handlers.reports import activity_report
from points.handlers.verify import verify_ledger
from tests.support.earn_batches import Ledger, bought, ledger, refunded
from tests.support.ledger import OPS, balance, new_member, publish, purchase, refund
from tests.support.services import http, points_service, running
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration
Database = Callable[[str], Awaitable[str]]


@pytest.fixture
async def books(database: Database) -> AsyncIterator[tuple[Ledger, str]]:
    dsn = await database("points")
    async with ledger(dsn) as opened:
        yield opened, dsn


async def running_activity(books: Ledger, kind: ActivityKind, rules: Rules, budget: int = 10_000) -> Activity:
    """Targets every member that exists now."""
    made = await create_activity(
        books.store, books.events, name=f"{kind} test", kind=kind, rules=rules, budget_points=budget, by="ops-test"
    )
    ends = datetime.now(UTC) + timedelta(hours=1)
    return await change_lifecycle(books.store, made.activity_id, "activate", "ops-test", ends_at=ends)


async def figures(books: Ledger, activity: Activity) -> tuple[int, int, int]:
    """(points granted, points reversed, budget left) as the activity and its budget account hold them."""
    row = await books.row(
        "SELECT points_granted, points_reversed FROM activities WHERE activity_id = $1", activity.activity_id
    )
    return row["points_granted"], row["points_reversed"], await books.posted(budget_account(activity.activity_id))


async def test_a_half_refund_takes_half_the_multiplier_bonus_back_into_the_budget_and_a_full_refund_all_of_it(books):
    books, dsn = books
    member = await books.member("ada")
    double = await running_activity(books, ActivityKind.MULTIPLIER, Rules(multiplier=Decimal(2)))

    await books.apply(bought("ada", "o-1", 10_000, 101))
    assert (await books.posted(f"member:{member}"), await figures(books, double)) == (202, (101, 0, 10_000 - 101))
    await books.apply(refunded("o-1", 5_000))
    assert (await books.posted(f"member:{member}"), await figures(books, double)) == (102, (101, 50, 10_000 - 51))
    await books.apply(refunded("o-1", 5_000))
    assert (await books.posted(f"member:{member}"), await figures(books, double)) == (0, (101, 101, 10_000))

    report = await activity_report(SegmentStore(books.store.pool), double.activity_id, datetime.now(UTC))
    assert (report.points_granted, report.points_reversed, report.points_net) == (101, 101, 0)
    assert (report.budget_points, report.budget_left) == (10_000, 10_000), "the budget left includes what came back"
    assert (report.responded, report.members_granted) == (1, 1)
    assert await verify_ledger(dsn) == []


async def test_what_comes_back_into_the_budget_can_be_granted_again(books):
    books, dsn = books
    member = await books.member("ada")
    double = await running_activity(books, ActivityKind.MULTIPLIER, Rules(multiplier=Decimal(2)), budget=100)

    await books.apply(bought("ada", "o-1", 10_000, 100), refunded("o-1", 10_000))
    await books.apply(bought("ada", "o-2", 10_000, 100))
    await books.apply(bought("ada", "o-3", 10_000, 100))

    assert await figures(books, double) == (200, 100, 0), "granted beyond the budget only what came back"
    assert await books.posted(f"member:{member}") == 300
    assert await verify_ledger(dsn) == []


async def test_a_refund_after_the_bonus_was_spent_claws_the_bonus_back_into_the_budget(books):
    books, dsn = books
    ada, bob = await books.member("ada"), await books.member("bob")
    double = await running_activity(books, ActivityKind.MULTIPLIER, Rules(multiplier=Decimal(2)))
    await books.apply(bought("ada", "o-1", 10_000, 100))
    await give(books.store, books.events, uuid.uuid4(), ada, bob, 150, "", daily_limit=10_000)

    await books.apply(refunded("o-1", 10_000))

    assert await books.posted(f"member:{ada}") == 0
    assert await books.posted(f"receivable:{ada}") == -150, "50 of the purchase's points and 100 of the bonus"
    assert await figures(books, double) == (100, 100, 10_000)
    clawed = await books.row(
        "SELECT debit_account, amount FROM transfers WHERE reason = 'bonus_clawback' AND credit_account = $1",
        budget_account(double.activity_id),
    )
    assert (clawed["debit_account"], clawed["amount"]) == (f"receivable:{ada}", 100)
    await books.apply(bought("ada", "o-2", 20_000, 200))  # later earnings repay the debt first
    assert (await books.posted(f"member:{ada}"), await books.posted(f"receivable:{ada}")) == (200 + 200 - 150, 0)
    assert await verify_ledger(dsn) == []


async def test_replaying_a_refund_moves_nothing(books):
    books, dsn = books
    member = await books.member("ada")
    double = await running_activity(books, ActivityKind.MULTIPLIER, Rules(multiplier=Decimal(2)))
    await books.apply(bought("ada", "o-1", 10_000, 100))
    half = refunded("o-1", 5_000)
    await books.apply(half)
    transfers = (await books.row("SELECT count(*) AS n FROM transfers"))["n"]

    again = await books.apply(half)
    with_others = await books.apply(refunded("o-1", 2_500), half)

    assert again.counts == {"duplicate_delivery": 1}
    assert with_others.counts == {"duplicate_delivery": 1, "applied": 1}
    assert (await books.row("SELECT count(*) AS n FROM transfers"))["n"] == transfers + 2, "only the new refund"
    assert await figures(books, double) == (100, 75, 10_000 - 25)
    assert await books.posted(f"member:{member}") == 50
    assert await verify_ledger(dsn) == []


async def test_a_refund_that_overtook_its_purchase_takes_the_bonus_back_when_the_purchase_arrives(books):
    books, dsn = books
    member = await books.member("ada")
    double = await running_activity(books, ActivityKind.MULTIPLIER, Rules(multiplier=Decimal(2)))

    assert (await books.apply(refunded("o-1", 2_500))).counts == {"parked": 1}
    await books.apply(bought("ada", "o-1", 10_000, 100))

    assert await books.posted(f"member:{member}") == 200 - 25 - 25
    assert await figures(books, double) == (100, 25, 10_000 - 75)
    grant = await books.row("SELECT points, points_reversed FROM activity_grants")
    assert (grant["points"], grant["points_reversed"]) == (100, 25)
    assert await verify_ledger(dsn) == []


async def test_a_threshold_bonus_is_taken_back_when_refunds_take_net_spend_below_the_threshold(books):
    books, dsn = books
    member = await books.member("ada")
    rules = Rules(threshold_minor=100_000, currency="CNY", bonus_points=500)
    spend = await running_activity(books, ActivityKind.SPEND_THRESHOLD, rules)
    await books.apply(bought("ada", "a", 60_000, 600))
    await books.apply(bought("ada", "b", 60_000, 600))
    assert await figures(books, spend) == (500, 0, 9_500)

    await books.apply(refunded("b", 10_000))  # net spend 110,000: the bonus stays
    assert await figures(books, spend) == (500, 0, 9_500)
    await books.apply(refunded("a", 30_000))  # 80,000: below the threshold, the bonus goes back whole
    assert await figures(books, spend) == (500, 500, 10_000)
    standing = await books.row("SELECT spend_minor, threshold_met, points FROM activity_members")
    assert (standing["spend_minor"], standing["threshold_met"], standing["points"]) == (80_000, False, 0)

    await books.apply(bought("ada", "c", 20_000, 200))  # 100,000 again
    assert await figures(books, spend) == (1_000, 500, 9_500)
    assert await books.posted(f"member:{member}") == 600 + 600 + 200 - 100 - 300 + 500
    assert await verify_ledger(dsn) == []


async def test_a_fully_refunded_first_purchase_is_no_purchase_and_the_next_one_earns_the_bonus(books):
    books, dsn = books
    member = await books.member("ada")
    first = await running_activity(
        books, ActivityKind.FIRST_PURCHASE, Rules(partner_id="skymall", bonus_points=500), budget=10_000
    )
    await books.apply(bought("ada", "o-1", 10_000, 100))
    await books.apply(refunded("o-1", 4_000))
    assert await figures(books, first) == (500, 200, 9_700), "in proportion: 40% of the purchase, 40% of the bonus"
    await books.apply(bought("ada", "o-2", 10_000, 100))
    assert await figures(books, first) == (500, 200, 9_700), "a partly refunded first purchase still counts"

    await books.apply(refunded("o-1", 6_000), bought("ada", "o-3", 10_000, 100))
    assert await figures(books, first) == (500, 500, 10_000)
    assert await books.posted(f"member:{member}") == 200, "o-2 is the first purchase now, but it was judged before"

    other = await books.member("bob")
    later = await running_activity(
        books, ActivityKind.FIRST_PURCHASE, Rules(partner_id="skymall", bonus_points=300), budget=10_000
    )
    await books.apply(bought("bob", "b-1", 10_000, 100), refunded("b-1", 10_000), bought("bob", "b-2", 5_000, 50))
    assert await figures(books, later) == (600, 300, 9_700), "b-1 earned the bonus and gave it back, b-2 earns it"
    assert await books.posted(f"member:{other}") == 50 + 300
    assert await verify_ledger(dsn) == []


async def test_a_referral_is_taken_back_in_proportion_with_the_invited_members_first_purchase(books):
    books, dsn = books
    ada, bob = await books.member("ada"), await books.member("bob")
    invite = await running_activity(
        books, ActivityKind.REFERRAL, Rules(referrer_points=300, referee_points=100), budget=10_000
    )
    await set_referrer(books.store, bob, ada)
    await books.apply(bought("bob", "o-1", 10_000, 100))
    assert (await books.posted(f"member:{ada}"), await books.posted(f"member:{bob}")) == (300, 200)

    await books.apply(refunded("o-1", 5_000))

    assert (await books.posted(f"member:{ada}"), await books.posted(f"member:{bob}")) == (150, 50 + 50)
    assert await figures(books, invite) == (400, 200, 10_000 - 200)
    assert await verify_ledger(dsn) == []


async def test_the_report_shows_bonuses_granted_reversed_and_net_through_the_services(infra, topic_prefix, database):
    dsn = await database("points")
    async with running(points_service(infra.kafka, dsn, topic_prefix)) as shell, http(shell) as api:
        member = await new_member(api)
        linked = await api.post(
            f"/v1/members/{member}/identifiers",
            json={"kind": "partner", "partner_id": "skymall", "customer_ref": "rep-1"},
            headers=OPS,
        )
        assert linked.status_code == 201, linked.text
        made = await api.post(
            "/v1/ops/activities",
            json={"name": "Double", "kind": "multiplier", "rules": {"multiplier": "2"}, "budget_points": 1_000},
            headers=OPS,
        )
        activity = made.json()["activity_id"]
        ends = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        await api.post(f"/v1/ops/activities/{activity}/activate", json={"ends_at": ends}, headers=OPS)
        topic = PARTNER_PURCHASES.qualified(topic_prefix)
        await publish(infra.kafka, topic, [purchase("rep-1", "o-1", 30_000, 300), refund("rep-1", "o-1", 10_000)])

        async def reversed_once() -> dict | None:
            report = (await api.get(f"/v1/ops/activities/{activity}/report", headers=OPS)).json()
            return report if report["points_reversed"] else None

        report = await eventually(reversed_once, what="the refund's bonus reversal")
        listed = (await api.get(f"/v1/ops/activities/{activity}", headers=OPS)).json()
        assert (await balance(api, member))["posted"] == 200 + 200

    assert (report["points_granted"], report["points_reversed"], report["points_net"]) == (300, 100, 200)
    assert (report["budget_points"], report["budget_left"]) == (1_000, 800)
    assert (listed["points_granted"], listed["points_reversed"]) == (300, 100)
    assert await verify_ledger(dsn) == []


async def test_verify_reports_a_bonus_reversal_that_its_grant_and_budget_do_not_match(books):
    books, dsn = books
    await books.member("ada")
    await running_activity(books, ActivityKind.MULTIPLIER, Rules(multiplier=Decimal(2)))
    purchase_fact = bought("ada", "o-1", 10_000, 100)
    await books.apply(purchase_fact, refunded("o-1", 5_000))
    assert await verify_ledger(dsn) == []

    await books.conn.execute("UPDATE activity_grants SET points_reversed = points_reversed + 1")
    await books.conn.execute(
        "INSERT INTO parked_reversals (event_id, source_key, amount_minor, currency, occurred_at, reason)"
        " VALUES ($1, $2, 100, 'CNY', now(), 'partner_refund')",
        uuid.uuid4(),
        purchase_fact.source_key,
    )

    broken = {v.check: v for v in await verify_ledger(dsn)}
    assert set(broken) == {
        "bonus_reversals_match_their_grants",
        "activities_within_budget_and_quantity",
        "standings_match_grants",
        "refunds_wait_only_for_unseen_purchases",
    }
    [row] = broken["bonus_reversals_match_their_grants"].rows
    assert (row["points"], row["points_reversed"], row["transferred"]) == (100, 51, 50)
