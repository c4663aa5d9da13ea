"""Daily earnings on the real ledger: a day by source, the summary of a finished day once per member whoever runs it,
share cards that show only what the member chose."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from contracts.events.earnings import DailyEarningsSummarised
from contracts.topics import CARD_TRANSACTIONS, DAILY_EARNINGS, PARTNER_PURCHASES
from points.adapters.store import PointsStore
from points.domain.days import day_of, day_window
from points.domain.share_cards import MAX_LIVE_CARDS
from points.handlers.daily_earnings import member_earnings, summarise_finished_days
from points.handlers.verify import verify_ledger
from tests.support.kafka import read_all
from tests.support.ledger import OPS, card_purchase, link, member_headers, new_member, publish, purchase, refund
from tests.support.services import http, points_service, running
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration
ZONE = ZoneInfo("Asia/Shanghai")


@pytest.fixture
async def points(infra, topic_prefix, database):
    dsn = await database("points")
    async with running(points_service(infra.kafka, dsn, topic_prefix)) as shell, http(shell) as api:
        yield shell, api, dsn, topic_prefix


async def fetch(dsn: str, sql: str, *args):
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def applied(dsn: str, count: int) -> bool:
    return (await fetch(dsn, "SELECT count(*) AS n FROM inbox"))[0]["n"] >= count


async def shopper(api, infra, prefix: str, dsn: str, name: str, points: int) -> uuid.UUID:
    """A member who bought something at SkyMall worth `points` today."""
    member = await new_member(api, name)
    await link(api, member, partner_id="skymall", customer_ref=f"c-{member.hex[:8]}")
    before = (await fetch(dsn, "SELECT count(*) AS n FROM inbox"))[0]["n"]
    await publish(infra.kafka, PARTNER_PURCHASES.qualified(prefix), [
        purchase(f"c-{member.hex[:8]}", f"o-{member.hex[:8]}", points * 100, points=points),
    ])  # fmt: skip
    await eventually(lambda: applied(dsn, before + 1), what=f"{name}'s purchase")
    return member


async def test_a_purchase_a_card_payment_and_a_refund_show_by_source_and_net(points, infra):
    _shell, api, dsn, prefix = points
    ada = await new_member(api, "Ada")
    await link(api, ada, partner_id="skymall", customer_ref="ada-1")
    await link(api, ada, card_token="tok_ada000001")
    await publish(infra.kafka, PARTNER_PURCHASES.qualified(prefix), [
        purchase("ada-1", "phone", 100_000, points=1_000), refund("ada-1", "phone", 50_000),
    ])  # fmt: skip
    await publish(infra.kafka, CARD_TRANSACTIONS.qualified(prefix), [card_purchase("tok_ada000001", "t-1", 5_000)])
    await eventually(lambda: applied(dsn, 3), what="the purchase, its refund and the card payment")

    answer = await api.get("/v1/members/me/daily-earnings?days=2", headers=member_headers(ada))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["time_zone"] == "Asia/Shanghai"
    assert [d["date"] for d in body["days"]] == sorted((d["date"] for d in body["days"]), reverse=True)
    # Both days, so that a run across midnight in Shanghai still adds up.
    total = {key: sum(d[key] for d in body["days"]) for key in ("earned", "taken_back", "net")}
    assert total == {"earned": 1_000 + 100, "taken_back": 500, "net": 600}, "grocery: 2 points per CNY on 50.00"
    sources = {s: sum(d["by_source"][s] for d in body["days"]) for s in body["days"][0]["by_source"]}
    assert sources == {"partner": 500, "card": 100, "activity": 0, "gift": 0, "tier": 0, "other": 0}
    assert sum(d["by_partner"].get("skymall", 0) for d in body["days"]) == 500
    assert body["totals"]["lifetime"] == 600
    today, yesterday = body["days"]
    same_month = today["date"][:7] == yesterday["date"][:7]
    assert body["totals"]["month_to_date"] == (600 if same_month else today["net"])

    for days in (1, 32):
        out_of_range = await api.get(f"/v1/members/me/daily-earnings?days={days}", headers=member_headers(ada))
        assert out_of_range.status_code == 422
    other = await api.get(f"/v1/members/{ada}/daily-earnings", headers=member_headers(uuid.uuid4()))
    assert other.status_code == 403
    assert (await api.get(f"/v1/members/{ada}/daily-earnings", headers=OPS)).json()["totals"]["lifetime"] == 600
    assert await verify_ledger(dsn) == []


async def published(infra, topic: str) -> int:
    """How many records the topic holds (every partition's end offset)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka)
    consumer = AIOKafkaConsumer(bootstrap_servers=infra.kafka, group_id=None)
    await admin.start()
    await consumer.start()
    try:
        [described] = await admin.describe_topics([topic])
        partitions = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
        return sum((await consumer.end_offsets(partitions)).values())
    finally:
        await consumer.stop()
        await admin.close()


async def test_a_finished_day_is_summarised_once_per_member_even_by_two_runs_at_once(points, infra):
    shell, api, dsn, prefix = points
    ada = await shopper(api, infra, prefix, dsn, "Ada", 700)
    bob = await shopper(api, infra, prefix, dsn, "Bob", 300)
    await new_member(api, "Cy")  # earned nothing: no summary
    [row] = await fetch(dsn, "SELECT min(posted_at) AS at FROM transfers WHERE reason = 'partner_purchase'")
    zone = shell.settings.programme_zone
    day = day_of(row["at"], zone)
    tomorrow = day_window(day, zone)[1] + timedelta(hours=1)
    topic = DAILY_EARNINGS.qualified(prefix)
    store = PointsStore(shell.pool)

    async def run():
        return await summarise_finished_days(store, topic, zone, lambda: tomorrow)

    first, second = await asyncio.gather(run(), run())
    again = await run()

    assert sum(r.emitted for r in [*first, *second, *again] if r.day == day) == 2
    assert not [r for r in again if r.day == day], "a day once finished is not run again"
    records = await read_all(infra.kafka, topic, expected=2)
    await eventually(lambda: _outbox_empty(dsn), what="the outbox relayed")
    assert await published(infra, topic) == 2
    events = {e.payload.member_id: e for e in (DAILY_EARNINGS.decode(r.value) for r in records)}
    assert set(events) == {ada, bob}
    summary = events[ada]
    assert isinstance(summary, DailyEarningsSummarised)
    p = summary.payload
    assert (p.date, p.time_zone, p.earned, p.taken_back, p.net) == (day, "Asia/Shanghai", 700, 0, 700)
    assert (p.by_source.partner, p.by_source.card, p.month_to_date, p.lifetime) == (700, 0, 700, 700)
    assert [r.key for r in records if DAILY_EARNINGS.decode(r.value).payload.member_id == ada] == [str(ada).encode()]
    # The next day, Ada's lifetime continues from her summary (counted once, not again from the ledger).
    next_day = await member_earnings(store, ada, 2, tomorrow, zone)
    assert [(d["date"], d["net"]) for d in next_day["days"]] == [(day + timedelta(days=1), 0), (day, 700)]
    assert next_day["totals"]["lifetime"] == 700

    today = await api.post(f"/v1/ops/daily-summaries?date={day_of(tomorrow - timedelta(days=1), zone)}", headers=OPS)
    assert today.status_code in (200, 422)  # 200 only when the test runs just after midnight in Shanghai
    future = await api.post(f"/v1/ops/daily-summaries?date={day + timedelta(days=2)}", headers=OPS)
    assert (future.status_code, future.json()["reason"]) == (422, "day_not_finished")
    refused = await api.post(f"/v1/ops/daily-summaries?date={day - timedelta(days=1)}", headers=member_headers(ada))
    assert refused.status_code == 403
    earlier = await api.post(f"/v1/ops/daily-summaries?date={day - timedelta(days=1)}", headers=OPS)
    assert (earlier.status_code, earlier.json()["emitted"]) == (200, 0)
    assert await verify_ledger(dsn) == []
    await fetch(dsn, "UPDATE daily_summaries SET earned = earned + 1 WHERE member_id = $1", ada)
    assert [v.check for v in await verify_ledger(dsn)] == ["daily_summaries_match_the_ledger"]


async def _outbox_empty(dsn: str) -> bool:
    return (await fetch(dsn, "SELECT count(*) AS n FROM outbox"))[0]["n"] == 0


async def test_a_share_card_shows_only_what_was_chosen_until_its_member_revokes_it(points, infra):
    _shell, api, dsn, prefix = points
    ada = await shopper(api, infra, prefix, dsn, "Ada Lovelace", 1_280)
    bob = await new_member(api, "Bob")
    me, bobs = member_headers(ada), member_headers(bob)
    day = (await api.get("/v1/members/me/daily-earnings?days=2", headers=me)).json()["days"]
    shared_day = next(d for d in day if d["net"] > 0)["date"]
    card_id = str(uuid.uuid4())
    card = {"card_id": card_id, "date": shared_day, "display_name": "  <Ada> & co  ", "show_sources": True}

    made = await api.post("/v1/members/me/share-cards", json=card, headers=me)
    assert made.status_code == 201, made.text
    token = made.json()["url_token"]
    assert (made.json()["points"], made.json()["display_name"]) == (1_280, "<Ada> & co")
    repeat = await api.post("/v1/members/me/share-cards", json=card, headers=me)
    assert (repeat.status_code, repeat.json()["url_token"], repeat.json()["card_id"]) == (200, None, card_id)
    listed = (await api.get("/v1/members/me/share-cards", headers=me)).json()["items"]
    assert [c["card_id"] for c in listed] == [card_id]
    assert "url_token" not in listed[0]

    public = await api.get(f"/v1/share-cards/{token}")
    assert public.status_code == 200, public.text
    assert public.json() == {"programme": "Alliance Points", "date": shared_day, "points": 1_280,
                             "display_name": "<Ada> & co", "sources": {"partner": 1_280}}  # fmt: skip
    for secret in (str(ada), "skymall", "balance", "member"):
        assert secret not in public.text
    assert public.headers["cache-control"] == "no-store"

    assert (await api.delete(f"/v1/members/me/share-cards/{card_id}", headers=bobs)).status_code == 404
    assert (await api.get("/v1/members/me/share-cards", headers=bobs)).json()["items"] == []
    assert (await api.get(f"/v1/share-cards/{token}")).status_code == 200, "another member cannot revoke it"
    for _ in range(2):
        assert (await api.delete(f"/v1/members/me/share-cards/{card_id}", headers=me)).status_code == 204
    gone = await api.get(f"/v1/share-cards/{token}")
    never = await api.get(f"/v1/share-cards/{'A' * 32}")
    assert (gone.status_code, never.status_code) == (404, 404)
    assert gone.json() == never.json(), "a revoked link says nothing an unknown one does not"

    nothing = await api.post("/v1/members/me/share-cards", json={"date": shared_day}, headers=bobs)
    assert (nothing.status_code, nothing.json()["reason"]) == (422, "nothing_to_share")
    future = {"date": str(day_of(datetime.fromisoformat(made.json()["created_at"]), ZONE) + timedelta(days=1))}
    ahead = await api.post("/v1/members/me/share-cards", json=future, headers=me)
    assert (ahead.status_code, ahead.json()["reason"]) == (422, "day_out_of_range")
    hostile = {"date": shared_day, "display_name": "Ada\u202egnp.exe"}
    assert (await api.post("/v1/members/me/share-cards", json=hostile, headers=me)).status_code == 422
    assert (await api.post("/v1/members/me/share-cards", json={"date": shared_day}, headers=OPS)).status_code == 400

    for _ in range(MAX_LIVE_CARDS):
        assert (await api.post("/v1/members/me/share-cards", json={"date": shared_day}, headers=me)).status_code == 201
    over = await api.post("/v1/members/me/share-cards", json={"date": shared_day}, headers=me)
    assert (over.status_code, over.json()["reason"]) == (409, "too_many_cards")
    assert await verify_ledger(dsn) == []
    await fetch(dsn, "UPDATE share_cards SET points = points + 1 WHERE card_id = $1", uuid.UUID(card_id))
    assert [v.check for v in await verify_ledger(dsn)] == ["share_cards_within_the_days_points"]
