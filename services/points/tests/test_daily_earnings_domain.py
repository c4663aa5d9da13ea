"""Daily earnings without a database: days in the programme's zone, sources, reversals, running totals, share cards."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from points.domain.daily_earnings import (
    MOST_DAYS_BEHIND,
    Baseline,
    Direction,
    Movement,
    Source,
    Sums,
    by_day,
    days_to_summarise,
    is_earned,
    is_finished,
    is_taken_back,
    latest_finished_day,
    recent_days,
    source_of,
    summary_event_id,
    tally,
    totals,
)
from points.domain.days import day_of, day_window
from points.domain.share_cards import (
    BadDisplayNameError,
    DayNotShareableError,
    check_day,
    display_name,
    looks_like_token,
    token_sha256,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
LONDON = ZoneInfo("Europe/London")
DAY = date(2026, 11, 20)
NOON = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai


def earned(amount: int, reason: str, counterparty: str, at: datetime = NOON) -> Movement:
    return Movement(Direction.EARNED, amount, reason, counterparty, at)


def taken(amount: int, reason: str, counterparty: str, at: datetime = NOON) -> Movement:
    return Movement(Direction.TAKEN_BACK, amount, reason, counterparty, at)


# --- days in the zone -------------------------------------------------------------------------------------------


def test_a_shanghai_day_runs_from_its_local_midnight_which_is_four_pm_utc_the_day_before():
    start, end = day_window(DAY, SHANGHAI)
    assert start == datetime(2026, 11, 19, 16, 0, tzinfo=UTC)
    assert end == datetime(2026, 11, 20, 16, 0, tzinfo=UTC)


def test_one_second_before_midnight_in_shanghai_is_the_old_day_and_midnight_the_new_one():
    last_second = datetime(2026, 11, 20, 23, 59, 59, tzinfo=SHANGHAI)
    midnight = datetime(2026, 11, 21, 0, 0, 0, tzinfo=SHANGHAI)
    assert day_of(last_second, SHANGHAI) == date(2026, 11, 20)
    assert day_of(midnight, SHANGHAI) == date(2026, 11, 21)
    start, end = day_window(date(2026, 11, 20), SHANGHAI)
    assert start <= last_second < end
    assert midnight == end  # a window excludes its end: midnight belongs to the next day only


def test_a_movement_at_the_edge_is_counted_on_one_day_only():
    before = earned(10, "card_purchase", "card:issued", datetime(2026, 11, 20, 15, 59, 59, tzinfo=UTC))
    at_midnight = earned(20, "card_purchase", "card:issued", datetime(2026, 11, 20, 16, 0, 0, tzinfo=UTC))
    today, yesterday = by_day([before, at_midnight], recent_days(date(2026, 11, 21), 2), SHANGHAI)
    assert (today.day, today.earned) == (date(2026, 11, 21), 20)
    assert (yesterday.day, yesterday.earned) == (date(2026, 11, 20), 10)


def test_a_day_when_clocks_go_forward_is_23_hours_long_in_london():
    start, end = day_window(date(2026, 3, 29), LONDON)
    assert end - start == timedelta(hours=23)
    start, end = day_window(date(2026, 10, 25), LONDON)
    assert end - start == timedelta(hours=25)


def test_a_day_is_finished_five_minutes_after_its_midnight():
    just_after = datetime(2026, 11, 21, 0, 4, 59, tzinfo=SHANGHAI)
    settled = datetime(2026, 11, 21, 0, 5, 0, tzinfo=SHANGHAI)
    assert not is_finished(DAY, just_after, SHANGHAI)
    assert is_finished(DAY, settled, SHANGHAI)
    assert not is_finished(date(2026, 11, 21), settled, SHANGHAI), "today is never finished"
    assert latest_finished_day(settled, SHANGHAI) == DAY


def test_the_first_run_summarises_only_yesterday_never_a_backlog():
    now = datetime(2026, 11, 21, 9, 0, tzinfo=SHANGHAI)
    assert days_to_summarise(now, SHANGHAI, None, set()) == [DAY]


def test_later_runs_summarise_each_finished_day_not_done_since_summaries_began():
    now = datetime(2026, 11, 24, 9, 0, tzinfo=SHANGHAI)
    done = {date(2026, 11, 20), date(2026, 11, 22)}
    assert days_to_summarise(now, SHANGHAI, date(2026, 11, 20), done) == [date(2026, 11, 21), date(2026, 11, 23)]
    assert days_to_summarise(now, SHANGHAI, date(2026, 11, 20), done | {date(2026, 11, 21), date(2026, 11, 23)}) == []


def test_after_a_long_stop_at_most_a_month_is_caught_up():
    now = datetime(2027, 6, 1, 9, 0, tzinfo=SHANGHAI)
    days = days_to_summarise(now, SHANGHAI, date(2025, 1, 1), set())
    assert len(days) == MOST_DAYS_BEHIND
    assert days[-1] == date(2027, 5, 31)


# --- sources and reversals --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("movement", "source", "partner"),
    [
        (earned(1, "partner_purchase", "partner:skymall:issued"), Source.PARTNER, "skymall"),
        (earned(1, "card_purchase", "card:issued"), Source.CARD, None),
        (earned(1, "bonus_multiplier", "activity:a1:budget"), Source.ACTIVITY, None),
        (earned(1, "bonus_limited_claim", "activity:a1:budget"), Source.ACTIVITY, None),
        (earned(1, "gift", "member:5b0c7a52-3f0e-4d8a-9a51-6f1d2e3c4b5a"), Source.GIFT, None),
        (earned(1, "tier_bonus", "programme"), Source.TIER, None),
        (earned(1, "claim", "unclaimed:partner:skyair:FF-1:x"), Source.PARTNER, "skyair"),
        (earned(1, "claim", "unclaimed:card:tok_1"), Source.CARD, None),
        (earned(1, "red_packet_grab", "packet:p1"), Source.OTHER, None),
        (earned(1, "something_new", "programme"), Source.OTHER, None),
        (taken(1, "partner_refund", "partner:skymall:issued"), Source.PARTNER, "skymall"),
        (taken(1, "card_reversal", "card:issued"), Source.CARD, None),
        (taken(1, "bonus_reversal", "activity:a1:budget"), Source.ACTIVITY, None),
        (taken(1, "bonus_clawback", "activity:a1:budget"), Source.ACTIVITY, None),
        (taken(1, "clawback", "partner:skyair:issued"), Source.PARTNER, "skyair"),
        (taken(1, "clawback", "card:issued"), Source.CARD, None),
        (taken(1, "clawback", "programme"), Source.TIER, None),
        (taken(1, "tier_bonus_reversal", "programme"), Source.TIER, None),
    ],
)
def test_each_reason_has_its_source(movement: Movement, source: Source, partner: str | None):
    assert source_of(movement) == (source, partner)


def test_refunds_reversals_and_clawbacks_take_back_but_repayments_spending_and_expiry_do_not():
    for reason in ("partner_refund", "card_reversal", "bonus_reversal", "bonus_clawback", "clawback",
                   "tier_bonus_reversal", "someday_reversal"):  # fmt: skip
        assert is_taken_back(reason), reason
    for reason in ("clawback_repayment", "redemption", "gift", "expiry", "red_packet_funding"):
        assert not is_taken_back(reason), reason


def test_a_red_packets_return_to_its_creator_is_not_an_earning():
    assert not is_earned("red_packet_return")
    assert is_earned("red_packet_grab")


def test_a_day_sums_earned_and_taken_back_by_source_and_partner():
    day = tally(DAY, [
        earned(1_000, "partner_purchase", "partner:skymall:issued"),
        earned(300, "partner_purchase", "partner:skyair:issued"),
        earned(88, "card_purchase", "card:issued"),
        earned(100, "bonus_first_purchase", "activity:a1:budget"),
        earned(50, "gift", "member:5b0c7a52-3f0e-4d8a-9a51-6f1d2e3c4b5a"),
        taken(400, "partner_refund", "partner:skymall:issued"),
        taken(100, "clawback", "partner:skymall:issued"),
        taken(40, "bonus_reversal", "activity:a1:budget"),
    ])  # fmt: skip
    assert (day.earned, day.taken_back, day.net) == (1_538, 540, 998)
    assert day.by_source == {Source.PARTNER: 800, Source.CARD: 88, Source.ACTIVITY: 60, Source.GIFT: 50,
                             Source.TIER: 0, Source.OTHER: 0}  # fmt: skip
    assert sum(day.by_source.values()) == day.net
    assert day.by_partner == {"skyair": 300, "skymall": 500}
    assert day.sources_earned == {Source.PARTNER: 800, Source.CARD: 88, Source.ACTIVITY: 60, Source.GIFT: 50}


def test_a_day_with_only_a_refund_of_an_earlier_purchase_nets_below_zero():
    day = tally(DAY, [taken(600, "partner_refund", "partner:skymall:issued")])
    assert (day.earned, day.taken_back, day.net, day.any) == (0, 600, -600, True)
    assert day.by_partner == {"skymall": -600}
    assert day.sources_earned == {}


def test_a_day_without_movements_is_all_zero_for_every_source():
    day = tally(DAY, [])
    assert (day.earned, day.taken_back, day.any) == (0, 0, False)
    assert set(day.by_source) == set(Source)
    assert not any(day.by_source.values())


def test_a_movement_of_no_points_is_refused():
    with pytest.raises(ValueError, match="positive"):
        tally(DAY, [earned(0, "card_purchase", "card:issued")])


def test_lifetime_continues_from_the_latest_summary_and_the_month_is_its_own_sum():
    baseline = Baseline(lifetime=5_000, as_of=datetime(2026, 11, 19, 16, 0, tzinfo=UTC))
    running = totals(baseline, Sums(earned=700, taken_back=200), Sums(earned=2_000, taken_back=300))
    assert (running.lifetime, running.month_to_date) == (5_500, 1_700)
    assert totals(None, Sums(900, 100), Sums(900, 100)).lifetime == 800


def test_a_summary_has_one_event_id_per_member_and_day():
    member = uuid.uuid4()
    assert summary_event_id(DAY, member) == summary_event_id(DAY, member)
    assert summary_event_id(DAY, member) != summary_event_id(DAY + timedelta(days=1), member)
    assert summary_event_id(DAY, member) != summary_event_id(DAY, uuid.uuid4())


# --- share cards ------------------------------------------------------------------------------------------------


def test_a_card_shows_a_day_of_the_last_31_never_a_day_to_come():
    check_day(DAY, DAY)
    check_day(DAY - timedelta(days=30), DAY)
    for wrong in (DAY + timedelta(days=1), DAY - timedelta(days=31)):
        with pytest.raises(DayNotShareableError, match="choose a day from 2026-10-21 to today"):
            check_day(wrong, DAY)


def test_a_display_name_is_trimmed_and_none_shows_none():
    assert display_name(None) is None
    assert display_name("  Ada  ") == "Ada"
    assert display_name("阿达 🎉") == "阿达 🎉"
    assert display_name("x" * 40) == "x" * 40


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("", "1 to 40"),
        ("   ", "1 to 40"),
        ("x" * 41, "1 to 40"),
        ("Ada\nBob", "U\\+000A"),
        ("Ada\x00", "U\\+0000"),
        ("evil\u202etxt.exe", "U\\+202E"),
        ("line\u2028break", "U\\+2028"),
    ],
)
def test_a_display_name_that_cannot_be_shown_is_refused_with_the_reason(name: str, why: str):
    with pytest.raises(BadDisplayNameError, match=why):
        display_name(name)


def test_only_tokens_of_the_links_shape_are_looked_up_and_only_their_hash_is_kept():

    token = secrets.token_urlsafe(24)
    assert looks_like_token(token)
    for wrong in ("", "short", token + "x", token[:-1] + "!", "../../etc/passwd"):
        assert not looks_like_token(wrong), wrong
    assert len(token_sha256(token)) == 64
    assert token not in token_sha256(token)
