"""Velocity rules hold suspicious earnings for review (real PostgreSQL, and Kafka for the whole path): a purchase
over the daily limit is held, release credits it with its own expiry, reject returns it to its issuer, a refund
cancels it, two ops deciding at once give one decision, and the same event twice holds once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import orjson
import pytest

from contracts.events.holds import HoldPoints, HoldRequest
from contracts.topics import EARNING_REVIEWS, PARTNER_PURCHASES
from loyalty_runtime.auth import Principal, Role
from points.domain.ledger import REVIEW_PENDING, partner_issued_account
from points.domain.velocity import Limits, VelocityRules
from points.handlers.earn import apply_earn_batch
from points.handlers.holds import HoldResults, apply_hold_commands
from points.handlers.reviews import Decision, ReviewDecidedError, decide
from points.handlers.verify import verify_ledger
from tests.support.earn_batches import LOT_VALIDITY, TOPIC, Ledger, bought, ledger, now, refunded
from tests.support.kafka import read_all
from tests.support.ledger import OPS, balance, link, member_headers, new_member, publish, purchase
from tests.support.services import http, points_service, running
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

DAILY_1000 = VelocityRules(member=Limits(points_per_day=1000), version=1)
ISSUER = partner_issued_account("skymall")
ANN = Principal("ops-ann", Role.OPS)
BOB = Principal("ops-bob", Role.OPS)


async def held(books: Ledger, *facts: object, rules: VelocityRules = DAILY_1000) -> None:
    await apply_earn_batch(books.store, TOPIC, facts, {}, books.events, LOT_VALIDITY, rules=rules)  # type: ignore[arg-type]


async def review_of(books: Ledger, order: str) -> uuid.UUID:
    row = await books.row("SELECT review_id FROM earning_reviews WHERE source_key = $1", f"partner:skymall:{order}")
    return uuid.UUID(str(row["review_id"]))


async def test_a_purchase_over_the_daily_limit_pends_then_release_credits_it_through_kafka(
    infra, topic_prefix, database
):
    dsn = await database("points")
    async with running(points_service(infra.kafka, dsn, topic_prefix)) as shell, http(shell) as api:
        rules = {"member": {"points_per_day": 1000}, "gifts_per_day": 1}
        put = await api.put("/v1/ops/velocity-rules", json=rules, headers=OPS)
        assert put.status_code == 200, put.text
        assert put.json()["version"] == 1
        assert (await api.put("/v1/ops/velocity-rules", json={"new_member_days": 3}, headers=OPS)).status_code == 422
        member = await new_member(api)
        await link(api, member, partner_id="skymall", customer_ref="c-big")
        await publish(infra.kafka, PARTNER_PURCHASES.qualified(topic_prefix),
                      [purchase("c-big", "o-1", 60_000, 600), purchase("c-big", "o-2", 90_000, 900)])  # fmt: skip

        async def queued() -> list[dict[str, object]] | None:
            items = (await api.get("/v1/ops/reviews?status=open", headers=OPS)).json()["items"]
            return items or None

        [review] = await eventually(queued, timeout=30, what="the big purchase held for review")
        assert (review["rule"], review["points"], review["member_id"]) == ("member_points_per_day", 900, str(member))
        shown = await balance(api, member)
        assert (shown["posted"], shown["available"], shown["pending_review"]) == (600, 600, 900)

        answer = await api.post(f"/v1/ops/reviews/{review['review_id']}/release", json={"note": "called them"},
                                headers=OPS)  # fmt: skip
        assert (answer.status_code, answer.json()["points"]) == (200, 900), answer.text
        again = await api.post(f"/v1/ops/reviews/{review['review_id']}/reject", headers=OPS)
        assert again.status_code == 409
        assert "ops-test" in again.json()["detail"]
        shown = await balance(api, member)
        assert (shown["posted"], shown["pending_review"]) == (1500, 0)
        lots = (await api.get(f"/v1/members/{member}/lots", headers=member_headers(member))).json()["items"]
        assert sorted(lot["amount"] for lot in lots) == [600, 900]
        assert len({lot["expires_at"][:10] for lot in lots}) == 1, "the released lot keeps the purchase's expiry"

        friend = await new_member(api, "Bo")
        for n in range(2):  # gifts_per_day 1: the second gift of the day is refused with the reason
            gift = {"gift_id": str(uuid.uuid4()), "to_member_id": str(friend), "amount": 10}
            given = await api.post(f"/v1/members/{member}/gifts", json=gift, headers=member_headers(member))
            assert given.status_code == (201 if n == 0 else 422), given.text
        assert "at most 1 gifts per day" in given.json()["detail"]

        records = await read_all(infra.kafka, EARNING_REVIEWS.qualified(topic_prefix), 2)
        decoded = [EARNING_REVIEWS.decode(r.value) for r in records]
        assert [type(e).__name__ for e in decoded] == ["EarningHeldForReview", "EarningReviewDecided"]
        assert {r.key for r in records} == {str(member).encode()}
    assert await verify_ledger(dsn) == []


async def test_reject_returns_the_points_to_the_issuer_and_is_audited(database):
    dsn = await database("points")
    async with ledger(dsn) as books:
        member = await books.member("c1")
        await held(books, bought("c1", "o-1", 10_000, 1000), bought("c1", "o-2", 50_000, 500))
        assert (await books.posted(f"member:{member}"), await books.posted(REVIEW_PENDING)) == (1000, 500)
        made = await decide(books.store, books.events, books.events.reviews_topic, await review_of(books, "o-2"),
                            Decision.REJECT, ANN, "stolen card")  # fmt: skip
        assert made.points == 500
        assert (await books.posted(ISSUER), await books.posted(REVIEW_PENDING)) == (-1000, 0)
        entry = await books.row("SELECT actor, action, note FROM audit_log")
        assert tuple(entry) == ("ops-ann", "earning_review.rejected", "stolen card")
        await books.apply(refunded("o-2", 50_000))  # a refund after the rejection moves nothing more
        assert (await books.posted(ISSUER), await books.posted(f"member:{member}")) == (-1000, 1000)
    assert await verify_ledger(dsn) == []


async def test_a_refund_of_a_pending_earning_cancels_its_review_and_a_partial_one_shrinks_it(database):
    dsn = await database("points")
    async with ledger(dsn) as books:
        member = await books.member("c1")
        rules = VelocityRules(member=Limits(points_per_day=0), version=1)
        await held(books, bought("c1", "o-1", 10_000, 400), bought("c1", "o-2", 10_000, 300), rules=rules)
        await books.apply(refunded("o-1", 10_000), refunded("o-2", 5_000))
        rows = await books.conn.fetch("SELECT source_key, status FROM earning_reviews ORDER BY source_key")
        assert [r["status"] for r in rows] == ["cancelled", "open"]
        assert (await books.posted(REVIEW_PENDING), await books.posted(ISSUER)) == (150, -150)
        made = await decide(books.store, books.events, books.events.reviews_topic, await review_of(books, "o-2"),
                            Decision.RELEASE, ANN, None)  # fmt: skip
        assert made.points == 150
        assert await books.posted(f"member:{member}") == 150
    assert await verify_ledger(dsn) == []


async def test_two_ops_deciding_one_review_at_once_give_exactly_one_decision(database):
    dsn = await database("points")
    async with ledger(dsn) as books:
        member = await books.member("c1")
        await held(books, *(bought("c1", f"o-{i}", 10_000, 2000) for i in range(5)))
        for i in range(5):
            review = await review_of(books, f"o-{i}")
            outcomes = await asyncio.gather(
                decide(books.store, books.events, books.events.reviews_topic, review, Decision.RELEASE, ANN, None),
                decide(books.store, books.events, books.events.reviews_topic, review, Decision.REJECT, BOB, None),
                return_exceptions=True,
            )
            refused = [o for o in outcomes if isinstance(o, ReviewDecidedError)]
            assert len(refused) == 1, outcomes
            assert refused[0].decided_by in ("ops-ann", "ops-bob")
        decided = await books.row("SELECT count(*) AS n FROM audit_log WHERE action LIKE 'earning_review.%'")
        assert decided["n"] == 5
        released = await books.row("SELECT count(*) AS n FROM earning_reviews WHERE status = 'released'")
        assert await books.posted(f"member:{member}") == 2000 * released["n"]
        assert await books.posted(REVIEW_PENDING) == 0
    assert await verify_ledger(dsn) == []


async def test_the_same_event_twice_pends_once_and_a_new_member_cools_off(database):
    dsn = await database("points")
    async with ledger(dsn) as books:
        await books.member("c1")
        big = bought("c1", "o-1", 10_000, 5000)
        await held(books, big, big)
        await held(books, big)
        await held(books, bought("c1", "o-1", 10_000, 5000))  # the same purchase under another event id
        assert (await books.row("SELECT count(*) AS n FROM earning_reviews"))["n"] == 1
        assert await books.posted(REVIEW_PENDING) == 5000
        cool = VelocityRules(new_member_days=7, new_member_points=100, version=2)
        await held(books, bought("c1", "o-2", 10_000, 101), bought("c1", "o-3", 10_000, 100), rules=cool)
        row = await books.row("SELECT rule FROM earning_reviews WHERE source_key = 'partner:skymall:o-2'")
        assert row["rule"] == "new_member_cool_off"
        assert (await books.row("SELECT count(*) AS n FROM earning_reviews"))["n"] == 2
    assert await verify_ledger(dsn) == []


def hold_command(member: uuid.UUID, amount: int) -> HoldPoints:
    event_id = uuid.uuid4()
    return HoldPoints(
        event_id=event_id, occurred_at=now(), source="redemption", correlation_id=event_id,
        payload=HoldRequest(hold_id=uuid.uuid4(), member_id=member, order_id=uuid.uuid4(), amount=amount,
                            partner_id="skymall", expires_at=now() + timedelta(minutes=10)),
    )  # fmt: skip


async def test_redemptions_beyond_the_days_count_are_refused_with_the_reason(database):
    dsn = await database("points")
    async with ledger(dsn) as books:
        member = await books.member("c1")
        await books.apply(bought("c1", "o-1", 10_000, 1000))
        first, again = hold_command(member, 10), hold_command(member, 10)
        results = HoldResults("test.")
        await apply_hold_commands(books.store, "holds", [first], books.events, results, redemptions_per_day=1)
        await apply_hold_commands(books.store, "holds", [again, hold_command(member, 10)], books.events, results,
                                  redemptions_per_day=1)  # fmt: skip
        answers = [orjson.loads(m.payload) for m in results.messages]
        assert [(a["type"], a["payload"].get("reason")) for a in answers] == [
            ("PointsHeld", None), ("HoldRejected", "redemption_limit"), ("HoldRejected", "redemption_limit")
        ]  # fmt: skip
        assert (await books.row("SELECT count(*) AS n FROM holds"))["n"] == 1
    assert await verify_ledger(dsn) == []


async def test_verify_reports_suspense_that_no_open_review_explains(database):
    dsn = await database("points")
    async with ledger(dsn) as books:
        await books.member("c1")
        await held(books, bought("c1", "o-1", 10_000, 5000))
        # A review closed without moving its points: the suspense account holds what nobody reviews.
        await books.conn.execute("UPDATE earning_reviews SET status = 'cancelled', decided_at = now()")
    assert {v.check for v in await verify_ledger(dsn)} == {"suspense_holds_the_open_reviews"}
