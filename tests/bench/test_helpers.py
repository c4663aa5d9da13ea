"""The benchmark's pure helpers: percentiles, the results table and JSON, profile parsing. No clock, no I/O."""

from __future__ import annotations

import math

import pytest

from bench.profile import hotspots, stages
from bench.report import Report, Result, number, table
from bench.stats import percentile, rate, summary
from bench.targets import evaluate


def test_percentile_is_the_nearest_rank_so_a_p99_is_a_latency_some_request_had():
    values = list(range(1, 101))  # 1..100
    assert percentile(values, 0.5) == 50
    assert percentile(values, 0.99) == 99
    assert percentile(values, 1.0) == 100
    assert percentile([7.0], 0.99) == 7.0
    assert percentile(list(reversed(values)), 0.95) == 95


def test_percentile_of_nothing_is_nan_and_a_share_outside_0_to_1_is_refused():
    assert math.isnan(percentile([], 0.5))
    with pytest.raises(ValueError, match=r"within 0\.\.1"):
        percentile([1.0], 99)


def test_summary_names_each_percentile():
    assert summary([1.0, 2.0, 3.0, 4.0]) == {"p50": 2.0, "p95": 4.0, "p99": 4.0}


def test_rate_of_an_empty_interval_is_zero():
    assert rate(10, 0) == 0.0
    assert rate(10, 2) == 5.0


def test_a_result_with_a_limit_carries_its_ratio_into_the_json():
    row = Result("earn: ingestion vs COPY limit", 2_500.0, "events/s", limit=10_000.0)
    assert row.as_json() == {
        "name": "earn: ingestion vs COPY limit", "value": 2500.0, "unit": "events/s", "limit": 10000.0, "ratio": 0.25,
    }  # fmt: skip
    assert Result("intake", 300.0, "requests/s").as_json() == {"name": "intake", "value": 300.0, "unit": "requests/s"}


def test_the_table_aligns_figures_and_shows_ratios_as_percentages():
    lines = table([Result("a", 2_500.0, "events/s", limit=10_000.0), Result("longer name", 3.456, "ms")]).splitlines()
    assert lines[0].split() == ["scenario", "value", "unit", "limit", "ratio", "note"]
    assert lines[2].split()[1:5] == ["2,500", "events/s", "10,000", "25%"]
    assert lines[3].split()[2:4] == ["3.46", "ms"]
    assert lines[2].index("events/s") == lines[3].index("ms") == lines[0].index("unit")


def test_numbers_read_well_at_every_size():
    assert number(12_345.6) == "12,346"
    assert number(42.25) == "42.2"
    assert number(3.14159) == "3.14"
    assert number(None) == "-"
    assert number(math.nan) == "-"


def test_targets_say_by_how_much_one_is_missed():
    report = Report()
    report.add(
        [
            Result("earn: ingestion vs COPY limit", 2_000.0, "events/s", limit=10_000.0),
            Result("latency @ 1,000/s: p99", 140.0, "ms"),
            Result("growth: balance read, 1,000 entries, p50", 2.0, "ms"),
            Result("growth: balance read, 10,000,000 entries, p50", 2.2, "ms", note="10,000,000 entries"),
        ]
    )
    earn, latency, growth, *_ = evaluate(report)
    assert earn.met is False
    assert "short by 3,000 events/s" in earn.detail
    assert latency.met is False
    assert "40.0 ms over" in latency.detail
    assert growth.met is True


def test_a_latency_within_its_limit_misses_when_requests_went_unanswered_and_an_expiry_that_blocks_earn_misses():
    report = Report()
    report.add(
        [
            Result("latency @ 100/s: p50", 9.0, "ms", note="100 purchases/s accepted"),
            Result("latency @ 100/s: p99", 20.0, "ms"),
            Result("latency @ 1,000/s: p50", 30.0, "ms", note="612 purchases/s accepted; 40 not visible within 60 s"),
            Result("latency @ 1,000/s: p99", 90.0, "ms"),
            Result("expiry: run, 100,000 expiring lots", 4.0, "s"),
            Result("expiry: earn latency with no run, max", 40.0, "ms"),
            Result("expiry: earn latency during the 100,000-lot run, max", 900.0, "ms"),
        ]
    )
    verdicts = {v.target: v for v in evaluate(report)}

    assert verdicts["p99 <= 25 ms at 100 single purchases/s"].met is True
    single = verdicts["p99 <= 100 ms at 1,000 single purchases/s, every one accepted"]
    assert single.met is False
    assert "40 not visible" in single.detail
    expiry = verdicts["expiry: 100,000 lots in <= 5 s without blocking earn"]
    assert expiry.met is False
    assert "(blocked)" in expiry.detail


def test_targets_not_measured_are_neither_met_nor_missed():
    assert all(v.met is None for v in evaluate(Report()))


def test_hotspots_count_own_time_at_the_leaf_and_total_time_once_per_stack():
    collapsed = "\n".join(
        [
            "<module> (points/__main__.py:5);apply (points/handlers/earn.py:10);execute (asyncpg/connection.py:1) 6",
            "<module> (points/__main__.py:5);apply (points/handlers/earn.py:12);apply (points/handlers/earn.py:12) 3",
            "<module> (points/__main__.py:5);encode (orjson.py:1) 1",
        ]
    )
    samples, top_own, top_total = hotspots(collapsed)
    assert samples == 10
    assert [(h.function, h.own) for h in top_own] == [
        ("execute (asyncpg/connection.py)", 0.6),
        ("apply (points/handlers/earn.py)", 0.3),
        ("encode (orjson.py)", 0.1),
    ]
    assert ("apply (points/handlers/earn.py)", 0.9) in [(h.function, h.total) for h in top_total]


def test_a_sampled_stack_counts_for_its_first_stage_and_the_shares_add_up():
    collapsed = "\n".join(
        [
            "_run_once (asyncio/base_events.py:1);select (selectors.py:2) 10",
            "OutboxRelay.run (loyalty_runtime/outbox.py:3);send (aiokafka/p.py:5) 20",
            "consume (faststream/x.py:6);EnvelopeBatchDecoder.__call__ (loyalty_runtime/consumer.py:7) 25",
            "Runner.run (asyncio/runners.py:118) 5",
            "handle (points/handlers/earn.py:9);write (points/adapters/store.py:10);copy (asyncpg/connection.py:11) 25",
            "handle (points/handlers/earn.py:9);enqueue (loyalty_runtime/outbox.py:12) 5",
            "handle (points/handlers/earn.py:9);plan (points/domain/earning.py:13) 10",
        ]
    )

    shares = stages(collapsed)

    assert shares == {
        "decode": 0.25, "SQL": 0.25, "outbox relay": 0.2, "idle": 0.1, "plan": 0.1, "event loop": 0.05,
        "outbox rows": 0.05,
    }  # fmt: skip
