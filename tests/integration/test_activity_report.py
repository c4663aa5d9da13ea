"""Activity reports on a real database: every figure checked exactly, as JSON and as CSV."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from points.adapters.segments import SegmentStore
from points.api.reports import CSV_COLUMNS
from points.handlers.reports import activity_report
from tests.support.ledger import OPS, member_headers
from tests.support.segments import Seed, points_with_seed

pytestmark = pytest.mark.integration
Database = Callable[[str], Awaitable[str]]

DAY = timedelta(days=1)
TICK = timedelta(microseconds=1)


async def measured_activity(seed: Seed, t0: datetime) -> dict[str, Any]:
    """An activity that ran [t0, t0 + 7 days): three members targeted, two held out, two responded.

    Spend within the window, net of refunds:
      CNY: targeted 13,000 + 4,000 + 0 = 17,000 (3 members), holdout 6,000 + 1,000 = 7,000 (2 members),
           responders (t1, t2) 17,000;
      USD: targeted 999 (t3), holdout 0, responders 0.
    Everything else (outside the window, untargeted, unlinked, another activity's groups) must not count.
    """
    t1, t2, t3, h1, h2, outsider = [await seed.member(n) for n in ("t1", "t2", "t3", "h1", "h2", "u1")]
    activity = await seed.activity(budget_points=10_000, points_granted=1_200, holdout_share=Decimal("0.4"))
    await seed.version(activity, 1, "draft", t0 - 9 * DAY)
    await seed.version(activity, 2, "active", t0, (t0, t0 + 5 * DAY))
    await seed.version(activity, 3, "paused", t0 + 2 * DAY, (t0, t0 + 5 * DAY))
    await seed.version(activity, 4, "active", t0 + 3 * DAY, (t0, t0 + 7 * DAY))
    await seed.targets(activity, [t1, t2, t3], holdout=False)
    await seed.targets(activity, [h1, h2], holdout=True)
    await seed.standing(activity, t1, grants=2, points=800)
    await seed.standing(activity, t2, grants=1, points=400)
    await seed.standing(activity, t3, grants=0)
    await seed.standing(activity, outsider, grants=1, points=0)
    await seed.budget(activity, funded=10_000, spent=1_200)

    other = await seed.activity()
    await seed.version(other, 1, "active", t0, (t0, t0 + 7 * DAY))
    await seed.targets(other, [h1], holdout=False)
    await seed.targets(other, [t1], holdout=True)
    await seed.standing(other, h1, grants=5)

    for member, name in ((t1, "t1"), (t2, "t2"), (t3, "t3"), (h1, "h1"), (h2, "h2"), (outsider, "u1")):
        await seed.identifier(f"partner:skymall:{name}", member)
    await seed.identifier("card:tok_t1000000001", t1)
    await seed.identifier("partner:skymall:ghost", None)

    await seed.purchase("partner:skymall:t1", 10_000, t0 + DAY)
    await seed.purchase("card:tok_t1000000001", 5_000, t0 + 2 * DAY, refunded_minor=2_000, mcc="5411")
    await seed.purchase("partner:skymall:t2", 4_000, t0)  # the window's first instant counts
    await seed.purchase("partner:skymall:t3", 999, t0 + 6 * DAY, currency="USD")
    await seed.purchase("partner:skymall:t3", 50_000, t0 - TICK)  # before the window
    await seed.purchase("partner:skymall:t3", 50_000, t0 + 7 * DAY)  # the window's end is excluded
    await seed.purchase("partner:skymall:h1", 6_000, t0 + 3 * DAY)
    await seed.purchase("partner:skymall:h2", 1_000, t0 + 7 * DAY - TICK)
    await seed.purchase("partner:skymall:u1", 80_000, t0 + DAY)  # not targeted
    await seed.purchase("partner:skymall:ghost", 70_000, t0 + DAY)  # nobody's
    return {"activity_id": activity}


CNY = {
    "currency": "CNY",
    "targeted_spend_minor": 17_000,
    "targeted_average_minor": "5666.67",
    "holdout_spend_minor": 7_000,
    "holdout_average_minor": "3500.00",
    "responders_spend_minor": 17_000,
    "responders_average_minor": "8500.00",
    "lift_per_member_minor": "2166.67",
    "incremental_spend_minor": 6_500,
}
USD = {
    "currency": "USD",
    "targeted_spend_minor": 999,
    "targeted_average_minor": "333.00",
    "holdout_spend_minor": 0,
    "holdout_average_minor": "0.00",
    "responders_spend_minor": 0,
    "responders_average_minor": "0.00",
    "lift_per_member_minor": "333.00",
    "incremental_spend_minor": 999,
}


HOLDOUT_BOUGHT = {"channel": None, "members": 2, "delivered": 0, "opened": 0, "clicked": 0, "responders": 2,
                  "response_rate": "1.0000"}  # fmt: skip


@pytest.fixture
async def service(infra, topic_prefix, database: Database) -> AsyncIterator[tuple[Any, Seed]]:
    async with points_with_seed(infra.kafka, await database("points"), topic_prefix) as ready:
        yield ready


async def test_the_report_gives_reach_response_budget_and_incremental_spend_against_the_holdout(service):
    client, seed = service
    t0 = (datetime.now(UTC) - 30 * DAY).replace(microsecond=0)
    activity = (await measured_activity(seed, t0))["activity_id"]

    answer = await client.get(f"/v1/ops/activities/{activity}/report", headers=OPS)

    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report.pop("generated_at")
    assert report == {
        "activity_id": str(activity),
        "name": "Double points weekend",
        "kind": "multiplier",
        "window_start": t0.isoformat().replace("+00:00", "Z"),
        "window_end": (t0 + 7 * DAY).isoformat().replace("+00:00", "Z"),
        "holdout_share": "0.400",
        "targeted": 3,
        "holdout": 2,
        "responded": 2,
        "response_rate": "0.6667",
        "members_granted": 3,
        "points_granted": 1_200,
        "points_reversed": 0,
        "points_net": 1_200,
        "budget_points": 10_000,
        "budget_left": 8_800,
        "packet_points": 0,
        "packet_points_returned": 0,
        "spend": [CNY, USD],
        # Nobody was messaged (seeded without the job); beside the channels, the holdout: both bought in the window.
        "channels": [HOLDOUT_BOUGHT],
    }

    exported = await client.get(f"/v1/ops/activities/{activity}/report.csv", headers=OPS)

    assert exported.status_code == 200
    assert exported.headers["content-type"] == "text/csv; charset=utf-8"
    assert f'filename="activity-{activity}-report.csv"' in exported.headers["content-disposition"]
    lines = list(csv.reader(io.StringIO(exported.text)))
    assert tuple(lines[0]) == CSV_COLUMNS
    rows = [dict(zip(lines[0], line, strict=True)) for line in lines[1:]]
    assert [r["currency"] for r in rows] == ["CNY", "USD"]
    common = {
        "activity_id": str(activity),
        "name": "Double points weekend",
        "kind": "multiplier",
        "window_start": t0.isoformat(),
        "window_end": (t0 + 7 * DAY).isoformat(),
        "holdout_share": "0.400",
        "targeted": "3",
        "holdout": "2",
        "responded": "2",
        "response_rate": "0.6667",
        "members_granted": "3",
        "points_granted": "1200",
        "points_reversed": "0",
        "points_net": "1200",
        "budget_points": "10000",
        "budget_left": "8800",
        "packet_points": "0",
        "packet_points_returned": "0",
    }
    for row, figures in zip(rows, (CNY, USD), strict=True):
        assert row.pop("generated_at")
        assert row == {**common, **{k: str(v) for k, v in figures.items()}}


async def test_an_activity_never_run_reports_zeros_and_an_unknown_one_is_not_found(service):
    client, seed = service
    member = await seed.member()
    draft = await seed.activity(budget_points=500)
    await seed.version(draft, 1, "draft", datetime.now(UTC) - DAY)

    report = (await client.get(f"/v1/ops/activities/{draft}/report", headers=OPS)).json()
    exported = await client.get(f"/v1/ops/activities/{draft}/report.csv", headers=OPS)
    unknown = uuid.uuid4()
    missing = await client.get(f"/v1/ops/activities/{unknown}/report", headers=OPS)
    missing_csv = await client.get(f"/v1/ops/activities/{unknown}/report.csv", headers=OPS)

    assert (report["window_start"], report["window_end"], report["spend"]) == (None, None, [])
    assert (report["targeted"], report["holdout"], report["responded"], report["response_rate"]) == (0, 0, 0, "0.0000")
    assert (report["budget_points"], report["budget_left"], report["points_granted"]) == (500, None, 0)
    [header, row] = list(csv.reader(io.StringIO(exported.text)))
    values = dict(zip(header, row, strict=True))
    assert (values["currency"], values["budget_left"], values["targeted"]) == ("", "", "0")
    assert missing.status_code == missing_csv.status_code == 404
    assert missing.json()["detail"].startswith(f"activity {unknown} does not exist")
    for path in (f"/v1/ops/activities/{draft}/report", f"/v1/ops/activities/{draft}/report.csv"):
        assert (await client.get(path)).status_code == 401
        assert (await client.get(path, headers=member_headers(member))).status_code == 403


@pytest.fixture
async def reports(database: Database) -> AsyncIterator[tuple[SegmentStore, Seed]]:
    pool = await asyncpg.create_pool(await database("points"), min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn:
            yield SegmentStore(pool), Seed(conn)
    finally:
        await pool.close()


async def test_a_running_activity_is_measured_until_now_and_one_ended_early_until_it_ended(reports):
    store, seed = reports
    t0 = datetime(2026, 3, 2, tzinfo=UTC)
    activity = (await measured_activity(seed, t0))["activity_id"]

    running_now = await activity_report(store, activity, now=t0 + 2 * DAY)
    await seed.version(activity, 5, "ended", t0 + 3 * DAY + TICK, (t0, t0 + 3 * DAY + TICK))
    ended_early = await activity_report(store, activity, now=t0 + 30 * DAY)

    assert running_now.window is not None
    assert (running_now.window.start, running_now.window.end) == (t0, t0 + 2 * DAY)
    # Before t0 + 2 days only t1's first purchase (10,000) and t2's (4,000) had happened.
    assert [(s.currency, s.targeted.total_minor, s.holdout.total_minor) for s in running_now.spend] == [
        ("CNY", 14_000, 0)
    ]
    assert ended_early.window is not None
    assert ended_early.window.end == t0 + 3 * DAY + TICK
    assert [(s.currency, s.targeted.total_minor, s.holdout.total_minor) for s in ended_early.spend] == [
        ("CNY", 17_000, 6_000)
    ]
    assert ended_early.spend[0].incremental_spend_minor == 17_000 - 3 * 3_000
